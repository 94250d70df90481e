"""Which Postfix parameters mailsim simulates.

Every Postfix 3.7 parameter is accepted (``postconf`` shows it with its
real default), but only these change what a simulated host does. For any
other parameter named on the command line, ``postconf`` adds a note on
stderr (``postconf: mailsim: NAME is accepted but not simulated``) so that a
learner knows the setting will have no visible effect; stdout stays exactly
Postfix's. (``postfix check`` stays silent about them, as Postfix's is when all is well.)

Engineers who make mailsim read another parameter add it here (a test
checks that every name is a real Postfix parameter).

>>> "mydestination" in SIMULATED, "smtp_tls_security_level" in SIMULATED
(True, False)
"""
from __future__ import annotations

__all__ = ["SIMULATED", "is_simulated"]

_ADDRESSING = {
    "myhostname", "mydomain", "myorigin", "mydestination", "mynetworks",
    "mynetworks_style", "relay_domains", "relayhost", "inet_interfaces",
    "inet_protocols", "proxy_interfaces", "recipient_delimiter",
    "append_dot_mydomain", "append_at_myorigin", "parent_domain_matches_subdomains",
    "allow_untrusted_routing", "swap_bangpath", "allow_percent_hack", "resolve_null_domain",
    "allow_min_user", "local_transport", "virtual_transport", "relay_transport",
    "default_transport",
}
_TABLES = {
    "alias_maps", "alias_database", "local_recipient_maps", "virtual_alias_maps",
    "virtual_alias_domains", "virtual_mailbox_domains", "virtual_mailbox_maps",
    "relay_recipient_maps", "default_database_type", "virtual_maps",
}
_SMTPD = {
    "smtpd_banner", "mail_name", "mail_version", "message_size_limit",
    "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
    "smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions",
    "smtpd_restriction_classes", "smtpd_relay_before_recipient_restrictions",
    "smtpd_delay_reject", "smtpd_helo_required", "disable_vrfy_command",
    "strict_rfc821_envelopes", "smtpd_recipient_limit", "smtpd_recipient_overshoot_limit",
    "smtpd_soft_error_limit", "smtpd_hard_error_limit", "smtpd_error_sleep_time",
    "smtpd_junk_command_limit", "smtpd_forbidden_commands", "smtpd_forbid_bare_newline",
    "smtpd_forbid_unauth_pipelining", "smtpd_discard_ehlo_keywords",
    "smtpd_reject_unlisted_recipient", "smtpd_null_access_lookup_key",
    "smtpd_reject_footer", "smtpd_expansion_filter", "line_length_limit",
    "smtputf8_enable", "access_map_reject_code", "access_map_defer_code",
    "defer_code", "reject_code", "invalid_hostname_reject_code", "non_fqdn_reject_code",
    "relay_domains_reject_code", "multi_recipient_bounce_reject_code",
    "unknown_local_recipient_reject_code", "unknown_relay_recipient_reject_code",
    "unknown_virtual_alias_reject_code", "unknown_virtual_mailbox_reject_code",
    "soft_bounce", "smtpd_reject_unlisted_sender", "show_user_unknown_table_name",
    "double_bounce_sender", "smtpd_forbid_bare_newline_exclusions",
    "smtpd_forbid_bare_newline_reject_code", "fast_flush_domains",
}
_CLEANUP = {
    "always_add_missing_headers", "local_header_rewrite_clients", "header_checks",
    "body_checks",
}
_SYSTEM = {
    "compatibility_level", "maillog_file", "syslog_name", "queue_directory",
    "maximal_queue_lifetime",
}

#: names of the parameters mailsim actually simulates
SIMULATED: frozenset[str] = frozenset(_ADDRESSING | _TABLES | _SMTPD | _CLEANUP | _SYSTEM)


def is_simulated(name: str) -> bool:
    """True when mailsim acts on parameter ``name``."""
    return name in SIMULATED

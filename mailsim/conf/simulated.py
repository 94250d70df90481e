"""Which Postfix parameters mailsim simulates.

Every Postfix 3.7 parameter is accepted (``postconf`` shows it with its
real default), but only these change what a simulated host does. For any
other parameter named on the command line, ``postconf`` adds a note on
stderr (``postconf: mailsim: NAME is accepted but not simulated``) so that a
learner knows the setting will have no visible effect; stdout stays exactly
Postfix's. (``postfix check`` stays silent about them, as Postfix's is when all is well.)

Engineers who make mailsim read another parameter add it here (a test
checks that every name is a real Postfix parameter).

>>> "mydestination" in SIMULATED, "lmtp_sasl_auth_enable" in SIMULATED
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
    "relay_recipient_maps", "default_database_type", "virtual_maps", "transport_maps",
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
    # master(8) throttling an smtpd service whose process died (smtpd/session.py)
    "service_throttle_time",
    # smtpd's transcript notice to the postmaster (mailsim/smtpd/notify.py)
    "smtpd_history_flush_threshold", "error_notice_recipient",
    # trivial-rewrite's nagging about domain lists (resolve.c; mailsim/trivial_rewrite.py)
    "helpful_warnings",
    # flush(8): mailsim/flush.py (its housekeeping, mailsim.flush.refresh)
    "fast_flush_refresh_time", "fast_flush_purge_time",
}
_CLEANUP = {
    "message_drop_headers",
    "always_add_missing_headers", "local_header_rewrite_clients", "header_checks",
    "body_checks",
    # mailsim/cleanup.py, canonical.py, virtual_alias.py
    "canonical_maps", "sender_canonical_maps", "recipient_canonical_maps",
    "canonical_classes", "sender_canonical_classes", "recipient_canonical_classes",
    "remote_header_rewrite_domain", "hopcount_limit", "undisclosed_recipients_header",
    "header_size_limit",
    "header_from_format", "virtual_alias_recursion_limit", "virtual_alias_expansion_limit",
    "virtual_alias_address_length_limit", "duplicate_filter_limit",
    "enable_original_recipient", "propagate_unmatched_extensions", "cleanup_replace_stray_cr_lf",
    "empty_address_recipient",
}
_VIRTUAL = {  # virtual(8): mailsim/virtual.py
    "virtual_mailbox_base", "virtual_mailbox_limit", "virtual_minimum_uid",
    "virtual_uid_maps", "virtual_gid_maps",
}
_SMTP = {  # smtp(8): mailsim/smtp/
    "smtp_helo_name", "smtp_connect_timeout", "smtp_helo_timeout", "smtp_mail_timeout",
    "smtp_rcpt_timeout", "smtp_data_init_timeout", "smtp_data_xfer_timeout",
    "smtp_data_done_timeout", "smtp_rset_timeout", "smtp_quit_timeout", "smtp_never_send_ehlo",
    "smtp_always_send_ehlo", "smtp_skip_5xx_greeting", "smtp_skip_quit_response",
    "smtp_line_length_limit", "smtp_tcp_port", "smtp_bind_address", "smtp_mx_address_limit",
    "smtp_dns_support_level", "smtp_host_lookup", "disable_mime_output_conversion",
    # next hops through a lab's virtual DNS: mailsim/smtp/addr.py
    "smtp_randomize_addresses", "smtp_address_preference", "smtp_balance_inet_protocols",
    "ignore_mx_lookup_error", "smtp_defer_if_no_mx_address_found",
    "smtp_cname_overrides_servername",
    # STARTTLS in the client: mailsim/smtp/proto.py, mailsim/tls/client.py
    "smtp_tls_security_level", "smtp_use_tls", "smtp_enforce_tls", "smtp_tls_enforce_peername",
    "smtp_tls_policy_maps", "smtp_tls_loglevel", "smtp_tls_note_starttls_offer",
    "smtp_starttls_timeout", "smtp_tls_CAfile", "smtp_tls_CApath", "smtp_tls_verify_cert_match",
    "smtp_tls_secure_cert_match", "smtp_tls_fingerprint_cert_match", "smtp_tls_fingerprint_digest",
    "smtp_tls_protocols", "smtp_tls_mandatory_protocols", "smtp_tls_servername",
    "smtp_tls_cert_file", "smtp_tls_key_file",
    # SASL AUTH in the client: mailsim/smtp/proto.py, mailsim/smtp/sasl.py
    "smtp_sasl_auth_enable", "smtp_sasl_password_maps", "smtp_sasl_security_options",
    "smtp_sasl_tls_security_options", "smtp_sasl_tls_verified_security_options",
    "smtp_sasl_mechanism_filter", "smtp_sasl_auth_soft_bounce", "smtp_sasl_auth_cache_name",
    "smtp_sasl_auth_cache_time", "smtp_sender_dependent_authentication",
    "smtp_send_dummy_mail_auth",
}
_SYSTEM = {
    "compatibility_level", "maillog_file", "syslog_name", "queue_directory",
}

_LOCAL = {  # local(8): mailsim/local/
    "mail_spool_directory", "home_mailbox", "mailbox_size_limit", "forward_path",
    "forward_expansion_filter", "allow_mail_to_commands", "allow_mail_to_files",
    "prepend_delivered_header", "enable_original_recipient", "owner_request_special",
    "expand_owner_alias", "reset_owner_alias", "frozen_delivered_to",
    "propagate_unmatched_extensions", "require_home_directory", "default_privs",
    "mailbox_command", "mailbox_command_maps", "mailbox_transport", "mailbox_transport_maps",
    "fallback_transport", "fallback_transport_maps", "luser_relay",
}

_QUEUE = {  # qmgr(8), bounce(8), the delivery log: mailsim/qmgr.py, bounce_notify.py, log_adhoc.py
    "queue_run_delay", "minimal_backoff_time", "maximal_backoff_time", "maximal_queue_lifetime",
    "bounce_queue_lifetime", "delay_warning_time", "default_destination_recipient_limit",
    "notify_classes", "bounce_notice_recipient", "2bounce_notice_recipient",
    "delay_notice_recipient", "double_bounce_sender", "delay_logging_resolution_limit",
    "stale_lock_time", "bounce_size_limit", "default_filter_nexthop",
}

_TLS = {  # smtpd's STARTTLS: mailsim/tls/context.py, mailsim/smtpd/session.py
    "smtpd_tls_security_level", "smtpd_use_tls", "smtpd_enforce_tls", "smtpd_tls_loglevel",
    "smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_dcert_file", "smtpd_tls_dkey_file",
    "smtpd_tls_eccert_file", "smtpd_tls_eckey_file", "smtpd_tls_chain_files",
    "smtpd_tls_CAfile", "smtpd_tls_CApath", "tls_append_default_CA",
    "smtpd_tls_protocols", "smtpd_tls_mandatory_protocols",
    "smtpd_tls_ciphers", "smtpd_tls_mandatory_ciphers", "smtpd_tls_exclude_ciphers",
    "smtpd_tls_mandatory_exclude_ciphers", "tls_high_cipherlist", "tls_medium_cipherlist",
    "tls_low_cipherlist", "tls_export_cipherlist", "tls_null_cipherlist", "tls_preempt_cipherlist",
    "smtpd_tls_received_header", "smtpd_tls_session_cache_timeout", "tls_session_ticket_cipher",
    "mail_owner",
}

_SASL = {  # AUTH in smtpd: mailsim/sasl.py, mailsim/smtpd/session.py and check.py
    "smtpd_sasl_auth_enable", "smtpd_sasl_type", "smtpd_sasl_path", "smtpd_sasl_security_options",
    "smtpd_sasl_tls_security_options", "smtpd_sasl_local_domain",
    "smtpd_sasl_authenticated_header", "smtpd_sasl_exceptions_networks",
    "smtpd_sasl_mechanism_filter", "smtpd_sasl_response_limit", "smtpd_tls_auth_only",
    "broken_sasl_auth_clients", "smtpd_sender_login_maps", "config_directory",
}

_SENDMAIL = {  # sendmail(1), postdrop(1), pickup(8): mailsim/sendmail/, postdrop.py, pickup.py
    "authorized_submit_users", "authorized_mailq_users", "authorized_flush_users",
    "sendmail_fix_line_endings", "default_verp_delimiters", "verp_delimiter_filter",
}

#: names of the parameters mailsim actually simulates
SIMULATED: frozenset[str] = frozenset(_ADDRESSING | _TABLES | _SMTPD | _CLEANUP | _QUEUE | _LOCAL
                                      | _VIRTUAL | _SMTP | _SENDMAIL | _SYSTEM | _TLS | _SASL)


def is_simulated(name: str) -> bool:
    """True when mailsim acts on parameter ``name``."""
    return name in SIMULATED

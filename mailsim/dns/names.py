"""Postfix's checks of host names and addresses (src/util/valid_hostname.c).

Postfix refuses to ask the DNS about a name that is no host name, and to
believe a PTR answer that is none: ``valid_hostname`` takes letters, digits,
``-`` inside a label and ``_`` (labels up to 63 characters, names up to 255,
no leading, trailing or doubled dot, not all-numeric); ``valid_hostaddr``
recognises an IPv4 or IPv6 address literal.

Examples
--------
>>> valid_hostname("mx1.example.org"), valid_hostname("example.org."), valid_hostname("127.0.0.1")
(True, False, False)
>>> valid_hostname("*.example.org", wildcard=True), valid_hostname("-bad.example")
(True, False)
>>> valid_hostaddr("127.0.0.2"), valid_hostaddr("2001:db8::1"), valid_hostaddr("mail")
(True, True, False)
"""
from __future__ import annotations

import ipaddress

__all__ = ["valid_hostname", "valid_hostaddr"]

#: Postfix's VALID_HOSTNAME_LEN and VALID_LABEL_LEN
HOSTNAME_LEN, LABEL_LEN = 255, 63


def _valid_label(label: str, first: bool, wildcard: bool) -> bool:
    if wildcard and first and label == "*":
        return True
    if not label or len(label) > LABEL_LEN or label[0] == "-" or label[-1] == "-":
        return False
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in label)


def valid_hostname(name: str, *, wildcard: bool = False) -> bool:
    """True for a syntactically valid host name (Postfix's valid_hostname())."""
    if not name or len(name) > HOSTNAME_LEN:
        return False
    labels = name.split(".")
    if not all(_valid_label(lb, i == 0, wildcard) for i, lb in enumerate(labels)):
        return False
    return not all(c.isdigit() or c == "." for c in name)


def valid_hostaddr(text: str) -> bool:
    """True for an IPv4 or IPv6 address literal (Postfix's valid_hostaddr())."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""The one exception of :mod:`mailsim.tls`."""
from __future__ import annotations

__all__ = ["TLSError"]


class TLSError(ValueError):
    """A key, certificate or request that cannot be used (missing, encrypted,
    mismatched, not PEM ...); the message says why in words a learner can act on."""

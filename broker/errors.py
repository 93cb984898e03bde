"""The error tree. Every error has a public face and a private detail.

`public` is safe to show to a browser or an API caller; `detail` (expected vs got,
which check failed) goes to the audit log, the flow row and the logs only.
Edges translate these into their own wire format (OAuth error, SCIM error JSON,
an HTML page with a correlation id).
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error the broker raises on purpose."""

    code = "broker_error"

    def __init__(self, public: str, detail: str | None = None) -> None:
        super().__init__(public)
        self.public = public
        self.detail = detail or public


class ConfigError(BrokerError):
    """A setting is missing or wrong; start-up stops with exit code 2."""

    code = "config_error"


class NotFound(BrokerError):
    """The store has no such record."""

    code = "not_found"


class AlreadyExists(BrokerError):
    """A record with the same unique key exists."""

    code = "already_exists"


class Conflict(BrokerError):
    """The change clashes with the current state (version mismatch, claimed domain)."""

    code = "conflict"


class InvalidInput(BrokerError):
    """The caller sent something malformed."""

    code = "invalid_input"


class PolicyError(BrokerError):
    """A rule of the product forbids the action (SSO needs a verified domain, ...)."""

    code = "policy"


class LoginRefused(BrokerError):
    """A login was checked and refused; `reason` is a stable machine-readable code."""

    code = "login_refused"

    def __init__(self, reason: str, public: str, detail: str | None = None) -> None:
        super().__init__(public, detail)
        self.reason = reason


class StoreUnavailable(BrokerError):
    """The database cannot be opened, is locked too long, read-only or of a newer schema."""

    code = "store_unavailable"

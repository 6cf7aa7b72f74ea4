"""One exception hierarchy for everything the service can report to a user.

Every error carries a one-line message that names the problem and, where the user can fix it,
`fix` says how. `cli.py` is the one place that turns a DigestError into a message and an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a source or a delivery failed; the next run catches up
EXIT_USAGE = 2  # bad usage, config or state the user must fix


class DigestError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} (fix: {self.fix})"
        return self.message


class ConfigError(DigestError):
    """The config file is missing, unreadable or invalid."""

    exit_code = EXIT_USAGE


class UsageError(DigestError):
    """A command-line argument is wrong."""

    exit_code = EXIT_USAGE


class StateError(DigestError):
    """The state (a SQLite file or a PostgreSQL database) cannot be opened, migrated or
    written: the user must fix it (a path, permissions, disk space, the server). What was
    committed before stays as it was."""

    exit_code = EXIT_USAGE


class StateReplaced(StateError):
    """The state a daemon works on is gone or was replaced under it: the daemon stops rather
    than send every digest again to a state that has no record of them."""


# --- sources ---------------------------------------------------------------------------------


class SourceError(DigestError):
    """A source could not be fetched or parsed. Nothing from it is marked seen."""

    def __init__(self, message: str, *, source: str = "", fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.source = source


class FetchError(SourceError):
    """The HTTP request (or file read) failed: network, timeout, HTTP status."""


class ParseError(SourceError):
    """The response arrived but is not what the source type expects."""


class PageChangedError(ParseError):
    """The page parsed but holds no paper data: its structure changed. Never an empty day."""


# --- delivery --------------------------------------------------------------------------------


class DeliveryError(DigestError):
    """A digest could not be delivered."""

    def __init__(self, message: str, *, code: int | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


class DuplicateMailError(DeliveryError):
    """A mailer was handed two mails with one (subscriber, date) key in a run: a bug. The
    second is never sent, and the run stops."""


class DeliverySetupError(DeliveryError):
    """The mail server cannot be used at all (login refused, TLS refused): stop the run."""

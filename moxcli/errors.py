"""Exceptions whose class decides the exit code scripts see.

0 ok, 1 what was checked is wrong or failed, 2 usage or configuration error,
3 temporary failure (DNS timeout, network, a lock held by another run).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TEMPORARY = 3


class MoxcliError(Exception):
    """A user-facing error: printed as one line on stderr, never as a traceback.

    `code` is the stable machine code scripts see in `--json` error objects (docs/json.md):
    a class default, or a more precise one given when raising (`UsageError(msg, code="bad-domain")`).
    """

    exit_code = EXIT_FAILED
    code = "failed"

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code


class CheckFailed(MoxcliError):
    """The thing checked is wrong (invalid record, failed verification, corrupt data)."""

    exit_code = EXIT_FAILED
    code = "check-failed"


class UsageError(MoxcliError):
    """Bad arguments or bad input named on the command line."""

    exit_code = EXIT_USAGE
    code = "usage"


class ConfigError(UsageError):
    """The configuration file or data directory is unusable; the message names key and file."""

    code = "config"


class TemporaryError(MoxcliError):
    """Worth retrying later: DNS or network trouble, a lock held by another process."""

    exit_code = EXIT_TEMPORARY
    code = "temporary"


class LockHeld(TemporaryError):
    """Another moxcli process runs a job that must not overlap with this one."""

    code = "lock-held"


class StoreError(MoxcliError):
    """The store cannot be opened or is inconsistent."""

    exit_code = EXIT_FAILED
    code = "store"

"""How a command's exception reaches the user: one line `moxcli: <what>: <why>` on stderr (and
with --json an error object on stdout), the exit code by its class (docs/json.md, Errors).

Click-free, so that the click root group (moxcli.cli.root) and the calls answered without
click (moxcli.cli.fast) report every failure the same way.
"""

from __future__ import annotations

import errno
import sys

from moxcli.cli import output
from moxcli.errors import MoxcliError

# Errors of the environment rather than of a file named by the user: one line even without a name.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EPERM}
MAX_ERROR_LINE = 1000
_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}


def reported(exc: BaseException) -> tuple[str, str, int] | None:
    """(code, message, exit code) of an exception the CLI prints as one line; None for one
    that is not the user's (a bug: re-raised, with its traceback).

    A BrokenPipeError (the reader of our output stopped early) is not an error: ("", "", 0),
    nothing to print."""
    if isinstance(exc, MoxcliError):
        return exc.code, str(exc), exc.exit_code
    stop = sys.modules.get("moxcli.stop")  # not imported: nothing can have raised Interrupted
    if stop is not None and isinstance(exc, stop.Interrupted):
        return "interrupted", str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted", 130
    if isinstance(exc, BrokenPipeError):
        return "", "", 0
    if isinstance(exc, OSError):
        if exc.filename is None and exc.errno not in ENVIRONMENT_ERRNOS:
            return None
        if exc.errno == errno.ELOOP and exc.filename is not None:
            # A symlink where moxcli needs its own directory or file (planted, or a loop):
            # never followed; the data directory needs fixing, not a retry (exit 2).
            return "symlink", f"{exc.filename}: {exc.strerror}", 2
        timeout = isinstance(exc, (TimeoutError, ConnectionError))
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return ("temporary" if timeout else "io"), f"{where}{exc.strerror}", (3 if timeout else 1)
    if isinstance(exc, Exception) and type(exc).__module__.startswith("lmdb"):
        # LMDB's own errors (disk full or read-only file system at commit, I/O errors):
        # the transaction was aborted, nothing is half-written.
        return "io", f"store: {exc}", 1
    return None


def print_error(code: str, message: str) -> None:
    """One line on stderr; with --json also `{"error": {"code", "message"}}` on stdout (docs/json.md)."""
    line = clip(message.translate(_CONTROL))
    if output.json_mode():
        output.emit_error(code, line)
    sys.stderr.write(f"moxcli: {line}\n")
    sys.stderr.flush()


def clip(text: str) -> str:
    """An error line echoes input (names, values): never more than MAX_ERROR_LINE characters."""
    if len(text) <= MAX_ERROR_LINE:
        return text
    return f"{text[: MAX_ERROR_LINE - 40]}... ({len(text)} characters, cut)"

"""Files named by the user (config, keys, reports, messages): regular files only, size-capped.

A FIFO blocks a reader forever, a device such as /dev/zero never ends, a directory is no
input: each is refused by name before a byte is read. Every read is bounded, so a huge
file costs at most the cap in memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from moxcli.errors import MoxcliError, UsageError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: Path | str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (symlinks to one are fine).

    O_NONBLOCK makes the open of a FIFO return at once instead of waiting for a writer; the
    type is then checked on the open descriptor (no race with a rename in between)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise UsageError(f"{path}: is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path | str, limit: int, what: str = "file", too_large: type[MoxcliError] = UsageError) -> bytes:
    """The content of a regular file of at most ``limit`` bytes (``too_large`` otherwise)."""
    with open_regular(path) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}") from None
    if len(data) > limit:
        raise too_large(f"{path}: {what} larger than {limit} bytes, refused")
    return data

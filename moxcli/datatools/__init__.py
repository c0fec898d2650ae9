"""Data tools: backup, verifydata and gentestdata (docs/behaviour-notes.md §7).

Names shared by the three tools: the version file a backup or generated data dir carries,
the marker of an unfinished backup, and where ``verifydata --fix`` moves files to.
"""

import ctypes
import ctypes.util
import os
from pathlib import Path

VERSION_FILE = "moxcliversion"
INCOMPLETE_MARKER = "BACKUP-INCOMPLETE"
MOVED_DIR = "moved"


def syncfs(path: Path) -> None:
    """One sync of the file system holding ``path``, instead of an fsync per file written."""
    libc_name = ctypes.util.find_library("c")
    fn = getattr(ctypes.CDLL(libc_name, use_errno=True), "syncfs", None) if libc_name else None
    if fn is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fn(fd) != 0:
            os.sync()
    finally:
        os.close(fd)

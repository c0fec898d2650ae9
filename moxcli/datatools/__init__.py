"""Data tools: backup, verifydata and gentestdata (docs/behaviour-notes.md §7).

Names shared by the three tools: the version file a backup or generated data dir carries,
the marker of an unfinished backup, where ``verifydata --fix`` moves files to, and the
seal of the store file (its SHA-256, moxcli.store.seal), which a backup writes as well.
"""

import os
from pathlib import Path

from moxcli import osdep
from moxcli.store.seal import SEAL_FILE

VERSION_FILE = "moxcliversion"
INCOMPLETE_MARKER = "BACKUP-INCOMPLETE"
MOVED_DIR = "moved"
STORE_SUM = SEAL_FILE


def syncfs(path: Path) -> None:
    """One sync of the file system holding ``path``, instead of an fsync per file written;
    where there is no syncfs(2), os.sync(); on a system with neither (Windows) nothing, so
    there a backup's copies are durable only once the system flushes them."""
    if not osdep.syncfs(path) and hasattr(os, "sync"):
        os.sync()

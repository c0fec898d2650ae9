"""The top level of a data directory: each entry, what it holds, and how backup and
verifydata treat it (docs/data-tools.md). One list, so the two tools cannot disagree.

backup policy:
- ``OWN_STEP``: backup copies it in a step of its own (the store as a consistent snapshot,
  message and queue files as hard links or copies of what the snapshot references);
- ``COPY``: copied as it is, without a warning;
- ``SKIP``: never copied (locks, temporary files, and the markers backup writes itself).

verifydata accepts every entry listed here; anything else at the top is a warning. Any
entry not listed that backup finds is copied with a warning.
"""

from __future__ import annotations

from moxcli.context import CONFIG_NAME
from moxcli.datatools import INCOMPLETE_MARKER, MOVED_DIR, STORE_SUM, VERSION_FILE
from moxcli.dmarc.receivedid import KEY_FILE as RECEIVED_ID_KEY_FILE
from moxcli.store.env import STORE_DIR
from moxcli.store.seal import VOID_FILE
from moxcli.values import dataclass

OWN_STEP, COPY, SKIP = "own-step", "copy", "skip"


@dataclass(frozen=True)
class Entry:
    name: str
    holds: str
    backup: str  # OWN_STEP, COPY or SKIP


ENTRIES = (
    Entry(STORE_DIR, "the LMDB store (records of every feature)", OWN_STEP),
    Entry("accounts", "message files of each account (accounts/<account>/msg/...)", OWN_STEP),
    Entry("queue", "message files of the outgoing queue", OWN_STEP),
    Entry(CONFIG_NAME, "the configuration", COPY),
    Entry("dkim", "DKIM private keys written by moxcli init", COPY),
    Entry(RECEIVED_ID_KEY_FILE, "the key of DMARC report ids and Received ids", COPY),
    Entry(MOVED_DIR, "files verifydata --fix moved aside", COPY),
    Entry("local-zone.txt", "the [dns] local_zone file gentestdata writes", COPY),
    Entry("locks", "job locks (flock files)", SKIP),
    Entry("tmp", "temporary files", SKIP),
    Entry(VERSION_FILE, "the moxcli version that wrote a backup or generated data", SKIP),
    Entry(STORE_SUM, "the seal: SHA-256 of the store file at its last commit (each backup writes its own)", SKIP),
    Entry(VOID_FILE, "a seal set aside by a commit (its writer was killed before sealing again)", SKIP),
    Entry(INCOMPLETE_MARKER, "the marker of an unfinished backup", SKIP),
)

KNOWN = frozenset(e.name for e in ENTRIES)
"""Top-level names verifydata knows."""
COPIED_QUIETLY = frozenset(e.name for e in ENTRIES if e.backup == COPY)
"""Copied by backup's last step without a warning."""
NOT_COPIED_AS_IS = frozenset(e.name for e in ENTRIES if e.backup != COPY)
"""Left out of backup's last step: copied by a step of their own, or never."""

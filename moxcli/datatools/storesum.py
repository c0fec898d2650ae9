"""The SHA-256 a backup records of its store file, and its check by verifydata.

LMDB keeps no checksums, and most of a store file is bytes no reader ever reads (the free
space in each page, free pages, the rest of the meta pages), holding stale data, so a
flipped bit there cannot be found by looking at the store (docs/data-tools.md, "Bit
flips"). A backup is written once and then only read, so a digest of the whole file finds
any change to it. It applies as long as the store has not been written since: the backup
records the transaction id of its newest meta page, and once a restored backup is used
(a newer transaction) the digest no longer applies and is not checked.

The file is in ``sha256sum`` format (``sha256sum -c store.sha256`` in the backup checks it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from moxcli.datatools import STORE_SUM
from moxcli.store.datafile import newest_txnid
from moxcli.store.env import STORE_DIR

STORE_FILE = f"{STORE_DIR}/data.mdb"
_TXN_LINE = re.compile(r"^# moxcli backup: .* at LMDB transaction (\d+)\b")
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  " + re.escape(STORE_FILE) + r"$")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks (a store can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def sum_text(data_dir: Path) -> str:
    """The content of STORE_SUM for the store file of ``data_dir`` as it is now."""
    txnid = newest_txnid(data_dir / STORE_FILE)
    return (
        f"# moxcli backup: SHA-256 of the store as written at LMDB transaction {txnid}; it no longer "
        f"applies once the store is written. Check: sha256sum -c {STORE_SUM}\n"
        f"{file_sha256(data_dir / STORE_FILE)}  {STORE_FILE}\n"
    )


@dataclass
class SumCheck:
    problem: str | None = None  # the store file differs from the digest: it is damaged
    warning: str | None = None  # the sum file itself is unreadable
    note: str | None = None  # the digest no longer applies (the store was written since)


def check_sum(data_dir: Path) -> SumCheck | None:
    """Compare the store file with the digest its backup recorded (None: no digest here)."""
    path = data_dir / STORE_SUM
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(4096).splitlines()
    except OSError as exc:
        return SumCheck(warning=f"cannot read: {exc.strerror}")
    txn = next((m for m in map(_TXN_LINE.match, lines) if m), None)
    digest = next((m for m in map(_SUM_LINE.match, lines) if m), None)
    if txn is None or digest is None:
        return SumCheck(warning=f"not a {STORE_SUM} written by moxcli backup; not checked")
    data_file = data_dir / STORE_FILE
    recorded = int(txn.group(1))
    now = newest_txnid(data_file)
    if now is None:
        return SumCheck()  # an unreadable store file: the store checks report it
    if now == recorded:
        try:
            got = file_sha256(data_file)
        except OSError as exc:
            return SumCheck(warning=f"cannot read {STORE_FILE}: {exc.strerror}")
        if newest_txnid(data_file) == recorded:  # not written while hashing
            if got != digest.group(1):
                return SumCheck(
                    problem=f"differs from the SHA-256 its backup recorded in {STORE_SUM} (the file is damaged)"
                )
            return SumCheck()
    return SumCheck(
        note=f"{STORE_SUM}: the store was written after the backup recorded it (transaction {recorded}); "
        "its digest no longer applies and was not checked"
    )

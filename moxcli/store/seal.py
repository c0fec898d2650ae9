"""The seal of a store: the SHA-256 of its whole ``data.mdb``, kept in ``store.sha256``.

LMDB keeps no checksums, and most of a store file is bytes no reader ever reads (the free
space in each page, free pages, the slack after overflow values), holding stale data: a
flipped bit there cannot be found by looking at the store (docs/data-tools.md, "Bit
flips"). A digest of the whole file finds any change, as long as it applies: between two
commits. So:

- every write transaction removes the seal before it commits (:func:`remove_seal`, called under
  LMDB's writer lock). An LMDB commit writes its pages first and the meta page with the new
  transaction id last: a process killed in between has changed the file under the old
  transaction id, so a seal keyed by the transaction id alone would then raise a false alarm
  (measured: 7 of 12 kills during a large commit did that);
- a process that committed seals the store again when it closes it (:func:`write_seal`,
  under the writer lock too, so no commit can run while it hashes), unless the file is
  larger than ``[store] seal_max_size``;
- ``backup`` writes the same file for its store copy (kind ``backup``); a backup is then
  sealed until it is written to, and sealed again by that writer.

The seal names the LMDB transaction it applies to: a seal for an older transaction (the
store was written by something that does not seal, e.g. an older moxcli) no longer applies
and is not checked. The file is in ``sha256sum`` format: ``sha256sum -c store.sha256`` in
the data directory checks it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from moxcli import osdep
from moxcli.osdep import sync_dir
from moxcli.store.datafile import newest_txnid
from moxcli.store.files import write_file
from moxcli.values import dataclass

SEAL_FILE = "store.sha256"  # in the data directory, beside store/
STORE_FILE = "store/data.mdb"  # relative to the data directory (moxcli.store.env.STORE_DIR)
# Bytes of data.mdb; sealing costs ~50 ms of CPU at 64 MiB. The same figure as
# moxcli.config.DEFAULT_SEAL_MAX_SIZE (not imported: opening a store must not load the config).
DEFAULT_SEAL_MAX_SIZE = 64 << 20

KINDS = ("seal", "backup")  # who wrote it: the last writer of a live store, or backup
_TXN_LINE = re.compile(r"^# moxcli (seal|backup): .* at LMDB transaction (\d+)\b")
VOID_FILE = f".{SEAL_FILE}.void"  # a seal set aside before a commit (see remove_seal)
_LEFTOVER_PREFIX = f".{SEAL_FILE}."  # VOID_FILE, and moxcli.store.files.create_temp's names
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  " + re.escape(STORE_FILE) + r"$")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks (a store can be gigabytes). SHA-256 rather than
    the twice as fast CRC-32: ``sha256sum -c`` checks it without moxcli, as for backups."""
    import hashlib  # here: opening a store must not load OpenSSL

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def seal_text(data_dir: Path, kind: str = "seal") -> str:
    """The content of SEAL_FILE for the store file of ``data_dir`` as it is now. The caller
    makes sure nothing commits meanwhile (holds the writer lock, or owns the only copy)."""
    txnid = newest_txnid(data_dir / STORE_FILE)
    who = "backup" if kind == "backup" else "seal"
    return (
        f"# moxcli {who}: SHA-256 of the store as written at LMDB transaction {txnid}; it no longer "
        f"applies once the store is written. Check: sha256sum -c {SEAL_FILE}\n"
        f"{file_sha256(data_dir / STORE_FILE)}  {STORE_FILE}\n"
    )


def write_seal(data_dir: Path) -> None:
    """Seal the store of ``data_dir`` (temp file, fsync, rename; 0600). The caller holds
    LMDB's writer lock, so the set-aside seal and the temporary files of a sealer killed
    earlier can go."""
    discard_leftovers(data_dir)
    write_file(data_dir / SEAL_FILE, seal_text(data_dir).encode())


def discard_leftovers(data_dir: Path) -> None:
    """Delete VOID_FILE and temporary files of killed sealers (under the writer lock)."""
    with os.scandir(data_dir) as entries:
        for entry in entries:
            if entry.name.startswith(_LEFTOVER_PREFIX):
                Path(entry.path).unlink(missing_ok=True)


def remove_seal(data_dir: Path) -> None:
    """Take the seal away before a commit changes the file (under the writer lock). Durable
    before the commit's own sync: after a power loss the seal must not come back while the
    commit's pages do.

    Renamed to VOID_FILE rather than deleted: deleting it would free a block of a full file
    system, which the commit would then fill part way, and LMDB reports such a short write as
    EIO instead of ENOSPC (mdb_page_flush). The next seal deletes it.
    """
    try:
        os.replace(data_dir / SEAL_FILE, data_dir / VOID_FILE)
    except FileNotFoundError:
        return
    sync_dir(data_dir)


@dataclass
class SealCheck:
    kind: str = "seal"  # KINDS
    txnid: int = 0  # the transaction the seal applies to
    problem: str | None = None  # the store file differs from the digest: it is damaged
    warning: str | None = None  # the seal file itself is unreadable
    note: str | None = None  # the seal no longer applies (the store was written since)


def check_seal(data_dir: Path) -> SealCheck | None:
    """Compare the store file with its seal (None: no seal here).

    Safe while a writer runs: a writer removes the seal before its commit writes a byte, so
    the same seal still in place after hashing means the hash saw the sealed file.
    """
    path = data_dir / SEAL_FILE
    try:
        text = _read_seal(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return SealCheck(warning=f"cannot read: {exc.strerror}")
    lines = text.splitlines()
    txn = next((m for m in map(_TXN_LINE.match, lines) if m), None)
    digest = next((m for m in map(_SUM_LINE.match, lines) if m), None)
    if txn is None or digest is None:
        return SealCheck(warning=f"not a {SEAL_FILE} written by moxcli; not checked")
    out = SealCheck(kind=txn.group(1), txnid=int(txn.group(2)))
    data_file = data_dir / STORE_FILE
    now = newest_txnid(data_file)
    if now is None:
        return out  # an unreadable store file: the store checks report it
    if now != out.txnid:
        out.note = _stale(out)
        return out
    try:
        got = file_sha256(data_file)
    except OSError as exc:
        out.warning = f"cannot read {STORE_FILE}: {exc.strerror}"
        return out
    if got == digest.group(1):
        return out
    try:
        again = _read_seal(path)
    except OSError:
        again = None
    if again != text:  # an inode number can be reused at once: compare what the seal says
        out.note = _stale(out)  # a writer removed it while we hashed: its commit changed the file
    elif out.kind == "backup":
        out.problem = f"differs from the SHA-256 its backup recorded in {SEAL_FILE} (the file is damaged)"
    else:
        out.problem = (
            f"changed on disk since its last commit (transaction {out.txnid}; {SEAL_FILE}): damaged; "
            "restore from a backup"
        )
    return out


def _read_seal(path: Path) -> str:
    """At most 4 KiB of a regular file: never through a symlink, never waiting on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | osdep.O_NOFOLLOW | osdep.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read(4096).decode("utf-8", "replace")


def _stale(seal: SealCheck) -> str:
    if seal.kind == "backup":
        return (
            f"{SEAL_FILE}: the store was written after the backup recorded it (transaction {seal.txnid}); "
            "its digest no longer applies and was not checked"
        )
    return (
        f"{SEAL_FILE}: the store was written after it was sealed (transaction {seal.txnid}) by a writer "
        "that did not seal it again; not checked"
    )

"""backup: a consistent copy of a data directory while other moxcli processes keep writing.

The store is copied in ONE LMDB read transaction (compacting), so the copy is the state of
one moment. Then the copy (not the live store) says which message and queue files belong to
the backup: those are hard-linked (message files are never changed once written, docs/behaviour-notes.md §9.1)
or copied. Files created after the snapshot are left out; files the snapshot references but
that are gone are errors. Until the backup has finished, DEST holds a marker file, so a
killed or failed backup is recognisable (``verifydata`` reports it).

Restoring is pointing ``--data`` at the backup (or moving it in place) and running
``moxcli verifydata`` on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moxcli import __version__, osdep
from moxcli.datatools import INCOMPLETE_MARKER, STORE_SUM, VERSION_FILE, layout, syncfs
from moxcli.datatools.verify import (
    MESSAGE_SEQUENCE,
    IdSet,
    decode_error,
    key_text,
    message_key,
    meta_value,
    reserved_ids,
)
from moxcli.errors import MoxcliError, StoreError, UsageError
from moxcli.jsonfmt import Finding, findings_json
from moxcli.store import Store, StoreNeedsMigration, Txn, job_lock
from moxcli.store import queue as qstore
from moxcli.store.datafile import data_file_problem
from moxcli.store.env import STORE_DIR, StoreDamaged, decode
from moxcli.store.files import check_account_name, msg_path, parse_msg_path, sync_dir
from moxcli.store.schema import MESSAGE, QUEUE, Table, from_u64, u64
from moxcli.store.seal import seal_text
from moxcli.values import dataclass, field

Progress = Callable[[int, int], None]


@dataclass
class BackupResult:
    source: Path
    dest: Path
    files_linked: int = 0
    files_copied: int = 0
    bytes: int = 0
    store_bytes: int = 0
    seconds: float = 0.0
    schema_version: int | None = None
    warnings: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "dest": str(self.dest),
            "ok": self.ok,
            "files_linked": self.files_linked,
            "files_copied": self.files_copied,
            "bytes": self.bytes,
            "store_bytes": self.store_bytes,
            "seconds": round(self.seconds, 3),
            "schema_version": self.schema_version,
            "warnings": findings_json(self.warnings),
            "errors": findings_json(self.errors),
        }


def backup(data_dir: Path, dest: Path, progress: Progress | None = None, link: bool = True) -> BackupResult:
    """Back up ``data_dir`` to the new or empty directory ``dest``.

    Errors on single files do not stop the backup: they are collected, and the result (and
    the marker file left in ``dest``) lists them. ``link=False`` always copies.
    """
    src = Path(data_dir).resolve()
    dst = Path(dest).resolve()
    if not (src / STORE_DIR / "data.mdb").exists():
        raise UsageError(f"{src}: no store here (is --data right?)")
    why = data_file_problem(src / STORE_DIR / "data.mdb")
    if why:  # refused before DEST is made: a backup of a damaged store is no backup
        raise StoreDamaged(f"{src / STORE_DIR / 'data.mdb'}: {why}; run moxcli verifydata")
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise UsageError(f"{dest}: the backup must not be inside the data directory {src} or contain it")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty directory")
    with job_lock(src, "backup"):
        dst.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = dst / INCOMPLETE_MARKER
        _write(
            marker,
            f"backup of {src} started {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} by pid "
            f"{os.getpid()}, not finished\n",
        )
        sync_dir(dst)
        job = _Backup(src, dst, progress, link)
        start = time.monotonic()
        try:
            job.run()
        except (OSError, MoxcliError) as exc:
            job.res.errors.append(Finding("io", _describe(exc)))
        finally:
            job.close()
        if job.res.errors:
            n = len(job.res.errors)
            _write(
                marker,
                f"backup of {src} failed with {n} error{'s' if n != 1 else ''}:\n"
                + "".join(f"{e}\n" for e in job.res.errors),
            )
        else:
            job.sync()
            marker.unlink()
        sync_dir(dst)
        job.res.seconds = time.monotonic() - start
        return job.res


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _write(path: Path, text: str) -> None:
    """(Re)write a small file of the backup, 0600 whatever the umask, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | osdep.O_NOFOLLOW | osdep.O_BINARY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        osdep.fchmod(fd, path, 0o600)
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class _Backup:
    def __init__(self, src: Path, dst: Path, progress: Progress | None, link: bool) -> None:
        self.src = src
        self.dst = dst
        self.progress = progress
        self.link = link
        self.res = BackupResult(src, dst)
        self.src_s = str(src) + "/"
        self.dst_s = str(dst) + "/"
        self.made_dirs: set[str] = {str(dst)}
        self.fds: dict[str, tuple[int, int]] = {}
        self.bulk_copied = False
        self.vanished: list[int] = []
        self.done = 0
        self.total = 0

    def run(self) -> None:
        old = self._copy_store()
        # The whole file's digest: verifydata finds any flipped bit of a backup's store
        # file with it, also in the bytes no LMDB reader reads (moxcli/store/seal.py).
        _write(self.dst / STORE_SUM, seal_text(self.dst, kind="backup"))
        _write(self.dst / VERSION_FILE, __version__ + "\n")
        if old:
            self._copy_tree("accounts", quiet=True)
            self._copy_tree("queue", quiet=True)
        else:
            self._referenced_files()
        self._other_files()

    def _copy_store(self) -> bool:
        """Copy the store; True when it has an older schema (then copied as a file)."""
        out = self.dst / STORE_DIR
        try:
            with Store.open(self.src, readonly=True) as store:
                try:
                    store.copy_to(out, compact=True)
                except Exception as exc:  # lmdb's errors on a damaged store: this backup failed
                    raise StoreError(
                        f"{self.src / STORE_DIR}: copying the store failed: {type(exc).__name__}: {exc}"
                    ) from None
        except StoreNeedsMigration as exc:
            # No current moxcli writes to an older-schema store (a writable open migrates it
            # first), so a plain file copy is consistent. The backup keeps the old schema.
            out.mkdir(mode=0o700)
            _copy_file(self.src / STORE_DIR / "data.mdb", out / "data.mdb")
            self.res.schema_version = exc.version
            self.res.warnings.append(
                Finding(
                    "store-old-schema",
                    f"the store has the older schema version {exc.version}: copied as it is, with every "
                    "file under accounts/ and queue/",
                )
            )
            self.res.store_bytes = (out / "data.mdb").stat().st_size
            return True
        self.res.store_bytes = (out / "data.mdb").stat().st_size
        return False

    def _referenced_files(self) -> None:
        with Store.open(self.dst, readonly=True) as snap, snap.read() as tx:
            self.res.schema_version = tx.meta("schema_version")
            self.total = tx.count(MESSAGE) + tx.count(QUEUE)
            ids: dict[str, IdSet] = {}
            sequences: dict[str, int] = {}
            valid: set[str] = set()
            for key, raw in tx.scan_raw(MESSAGE):
                try:
                    rec = decode(MESSAGE, key, raw)
                    parsed = message_key(key)
                    if parsed is None:
                        raise ValueError("key does not match the message key layout")
                    account = parsed[0]
                    if account not in valid:
                        valid.add(check_account_name(account))
                    msg_id, size = _id_size(rec)
                except (StoreError, ValueError, struct.error) as exc:
                    why = decode_error(MESSAGE, key, exc) if isinstance(exc, StoreError) else str(exc)
                    self.res.errors.append(
                        Finding("file-path-invalid", f"{key_text(MESSAGE, key)}: cannot back up its file: {why}")
                    )
                    continue
                if account not in sequences:
                    sequences[account] = _sequence(tx, MESSAGE_SEQUENCE.format(account=account))
                if msg_id <= sequences[account]:  # beyond it: not a file to keep apart (and no huge bitmap)
                    ids.setdefault(account, IdSet()).add(msg_id)
                self._put_ref(f"accounts/{account}/msg/{msg_path(msg_id)}", size, key)
            queue_ids = IdSet()
            queue_seq = _sequence(tx, qstore.SEQUENCE)
            for key, raw in tx.scan_raw(QUEUE):
                try:
                    rec = decode(QUEUE, key, raw)
                    msg_id, size = from_u64(key), _id_size(rec)[1]
                except (StoreError, ValueError, struct.error) as exc:
                    why = decode_error(QUEUE, key, exc) if isinstance(exc, StoreError) else str(exc)
                    self.res.errors.append(
                        Finding("file-path-invalid", f"{key_text(QUEUE, key)}: cannot back up its file: {why}")
                    )
                    continue
                if msg_id <= queue_seq:
                    queue_ids.add(msg_id)
                self._put_ref(f"queue/{msg_path(msg_id)}", size - len(rec.get("prefix") or b""), key, QUEUE)
            accounts = sorted(set(ids) | {d.name for d in _dirs(self.src / "accounts")})
            for a in accounts:
                if a not in sequences:
                    sequences[a] = _sequence(tx, MESSAGE_SEQUENCE.format(account=a))
            reserved = reserved_ids(tx)
        if self.progress:
            self.progress(self.done, self.total)
        if self.vanished:
            self._drop_delivered()
        for account in accounts:
            self._unreferenced(
                f"accounts/{account}/msg", ids.get(account, IdSet()), sequences[account], reserved.get(account, [])
            )
            self._account_extras(account)
        self._unreferenced("queue", queue_ids, queue_seq)

    def _put_ref(self, rel: str, size: int, key: bytes, table: Table = MESSAGE) -> None:
        try:
            if self._link_or_copy(rel):
                self.res.bytes += size
        except FileNotFoundError:
            if table is QUEUE:
                self.vanished.append(from_u64(key))
            else:
                self.res.errors.append(
                    Finding("file-missing", f"{rel}: missing in {self.src}, but the store references it")
                )
        except OSError as exc:
            self.res.errors.append(Finding("io", _describe(exc)))
        self.done += 1
        if self.progress and self.done & 255 == 0:
            self.progress(self.done, self.total)

    def _drop_delivered(self) -> None:
        """Queue files that vanished after the snapshot: delivery (or a drop) removes the
        record, then the file. If the live store no longer has the record, the message left
        the queue after the snapshot, and its record is removed from the backup so that the
        backup stays consistent; if the live store still has it, the file is really missing."""
        with Store.open(self.src, readonly=True) as live, live.read() as tx:
            gone = [i for i in self.vanished if not tx.exists(QUEUE, u64(i))]
        for i in self.vanished:
            if i not in gone:
                self.res.errors.append(
                    Finding("file-missing", f"queue/{msg_path(i)}: missing in {self.src}, but the store references it")
                )
        with Store.open(self.dst, seal_max_size=0) as snap, snap.write() as tx:
            for i in gone:
                qstore.delete(tx, i)
                self.res.warnings.append(
                    Finding(
                        "queue-file-left", f"queue/{msg_path(i)}: left the queue during the backup; not in the backup"
                    )
                )
        _write(self.dst / STORE_SUM, seal_text(self.dst, kind="backup"))  # the write removed it

    def _link_or_copy(self, rel: str) -> bool:
        """Hard-link (or copy) one file; True if linked (caller counts bytes).

        This runs once per message: plain strings instead of Path objects, and links made
        relative to cached directory descriptors (no full path lookup per file)."""
        rel_dir, _, name = rel.rpartition("/")
        link: Callable[[], None]
        if osdep.has_dir_fds():
            src_fd, dst_fd = self._dir_fds(rel_dir)
            mode = os.stat(name, dir_fd=src_fd, follow_symlinks=False).st_mode

            def link() -> None:
                os.link(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
        else:  # Windows: by path, each level checked not to be a link
            _check_no_links(self.src, rel_dir)
            self._mkdirs(self.dst_s + rel_dir)
            mode = os.lstat(self.src_s + rel).st_mode

            def link() -> None:
                os.link(self.src_s + rel, self.dst_s + rel)

        if not stat.S_ISREG(mode):
            # A symlink (or device, FIFO) planted in the message store: neither followed nor kept.
            raise OSError(errno.EPERM, "not a regular file (a symlink?), not backed up", rel)
        if self.link:
            try:
                link()
                self.res.files_linked += 1
                return True
            except (FileNotFoundError, FileExistsError):
                raise
            except OSError as exc:
                # EXDEV (another file system, e.g. systemd ReadWritePaths mounts), EPERM
                # (protected_hardlinks, file systems without links), EMLINK, ...: copy.
                self.link = False
                hint = " (DEST is on another file system than the data directory)" if exc.errno == errno.EXDEV else ""
                self.res.warnings.append(
                    Finding(
                        "hard-link-failed",
                        f"hard-linking {rel} failed: {exc.strerror}{hint}; copying files from now on",
                    )
                )
        self._mkdirs(self.dst_s + rel_dir)
        self.res.bytes += _copy_file(Path(self.src_s + rel), Path(self.dst_s + rel))
        self.res.files_copied += 1
        self.bulk_copied = True
        return False

    def _dir_fds(self, rel_dir: str) -> tuple[int, int]:
        """Descriptors of a source directory and its (created) backup twin; a few are kept."""
        fds = self.fds.get(rel_dir)
        if fds is not None:
            return fds
        self._mkdirs(self.dst_s + rel_dir)
        src_fd = _open_dir_nofollow(self.src, rel_dir)
        try:
            dst_fd = os.open(self.dst_s + rel_dir, os.O_RDONLY | os.O_DIRECTORY)
        except BaseException:
            os.close(src_fd)
            raise
        if len(self.fds) >= 32:
            for fd in self.fds.pop(next(iter(self.fds))):
                os.close(fd)
        self.fds[rel_dir] = (src_fd, dst_fd)
        return src_fd, dst_fd

    def sync(self) -> None:
        """Make the backup durable before the marker goes. Links are directory entries: an
        fsync per directory does. Copied bytes need a sync of DEST's file system, which is
        far cheaper than an fsync per file (but also flushes whatever else is dirty there)."""
        if self.bulk_copied:
            syncfs(self.dst)
            return
        store_file = self.dst / STORE_DIR / "data.mdb"
        fd = os.open(store_file, os.O_RDWR)  # Windows' fsync (_commit) needs write access
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        for d in sorted(self.made_dirs | {str(self.dst / STORE_DIR)}, reverse=True):
            sync_dir(Path(d))

    def close(self) -> None:
        for pair in self.fds.values():
            for fd in pair:
                os.close(fd)
        self.fds.clear()

    def _mkdirs(self, path: Path | str) -> None:
        """Create a directory and missing parents, each readable only by us (mail is private)."""
        path = str(path)
        if path in self.made_dirs:
            return
        self._mkdirs(os.path.dirname(path))
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        self.made_dirs.add(path)

    def _unreferenced(
        self,
        rel_root: str,
        referenced: IdSet,
        sequence: int,
        reserved: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
    ) -> None:
        """Files the snapshot does not reference: newer ones and those of unfinished imports
        are skipped, older ones kept."""
        for d in _dirs(self.src / rel_root):
            for f in os.scandir(d.path):
                name = f"{d.name}/{f.name}"
                msg_id = parse_msg_path(name)
                if msg_id is not None and msg_id in referenced:
                    continue
                if f.name.startswith(".") or (
                    msg_id is not None and (msg_id > sequence or any(lo <= msg_id <= hi for lo, hi in reserved))
                ):
                    continue  # a write in progress, or a file created after the snapshot
                rel = f"{rel_root}/{name}"
                self.res.warnings.append(
                    Finding("file-unreferenced", f"{rel}: not referenced by the store, backed up anyway")
                )
                try:
                    self._link_or_copy(rel)
                except OSError as exc:
                    self.res.errors.append(Finding("io", _describe(exc)))

    def _account_extras(self, account: str) -> None:
        """Anything in an account directory besides msg/ (copied, with a warning)."""
        for entry in _entries(self.src / "accounts" / account):
            if entry.name != "msg":
                self._copy_entry(f"accounts/{account}/{entry.name}", quiet=False)

    def _other_files(self) -> None:
        for entry in _entries(self.src):
            if entry.name in layout.NOT_COPIED_AS_IS:
                continue
            self._copy_entry(entry.name, quiet=entry.name in layout.COPIED_QUIETLY)

    def _copy_tree(self, rel: str, quiet: bool) -> None:
        if (self.src / rel).exists():
            self._copy_entry(rel, quiet)

    def _copy_entry(self, rel: str, quiet: bool) -> None:
        """Copy a file, symlink or directory tree (other file types are skipped)."""
        src = self.src / rel
        if not quiet:
            self.res.warnings.append(Finding("file-unrecognized", f"{rel}: unrecognized, backed up anyway"))
        try:
            if src.is_symlink():
                # Never followed out of the data directory: the link is copied as a link, and
                # what it points to is not in the backup (a symlinked dkim/ leaves the keys out).
                target = os.readlink(src)
                self._mkdirs((self.dst / rel).parent)
                os.symlink(target, self.dst / rel)
                self.res.warnings.append(
                    Finding(
                        "symlink-copied",
                        f"{rel}: a symlink to {target}, copied as a symlink: what it points to is not in the backup",
                    )
                )
            elif src.is_dir():
                self._mkdirs((self.dst / rel).parent)
                (self.dst / rel).mkdir(exist_ok=True, mode=0o700)
                self.made_dirs.add(str(self.dst / rel))
                for entry in _entries(src):
                    self._copy_entry(f"{rel}/{entry.name}", quiet=True)
            elif src.is_file():
                self._mkdirs((self.dst / rel).parent)
                self.res.bytes += _copy_file(src, self.dst / rel, 0o600, sync=True)
                self.res.files_copied += 1
            else:
                self.res.warnings.append(
                    Finding("file-skipped", f"{rel}: not a regular file, directory or symlink; skipped")
                )
        except OSError as exc:
            self.res.errors.append(Finding("io", _describe(exc)))


def _sequence(tx: Txn, name: str) -> int:
    """The last id a sequence of the snapshot handed out (0 if its record is broken)."""
    value = meta_value(tx, "seq:" + name, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def _id_size(rec: dict[str, Any]) -> tuple[int, int]:
    msg_id, size = rec.get("id"), rec.get("size")
    if not isinstance(msg_id, int) or msg_id < 1 or not isinstance(size, int) or size < 0:
        raise ValueError(f"id {msg_id!r} / size {size!r} are not valid numbers")
    return msg_id, size


def _entries(path: Path) -> list[os.DirEntry[str]]:
    try:
        return sorted(os.scandir(path), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _dirs(path: Path) -> list[os.DirEntry[str]]:
    return [e for e in _entries(path) if e.is_dir(follow_symlinks=False)]


def _open_dir_nofollow(root: Path, rel_dir: str) -> int:
    """A descriptor of ``root/rel_dir``, refusing a symlink at any level below root (a planted
    symlink must not lead a backup out of the data directory)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in rel_dir.split("/"):
            if not part:
                continue
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(
                        errno.ELOOP, "a symlink or not a directory, not followed", f"{root}/{rel_dir}"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_no_links(root: Path, rel_dir: str) -> None:
    """Where directories cannot be opened: refuse a symlink at any level below root, by lstat
    (the path-based twin of _open_dir_nofollow)."""
    path = str(root)
    for part in rel_dir.split("/"):
        if not part:
            continue
        path += "/" + part
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise OSError(errno.ELOOP, "a symlink or not a directory, not followed", f"{root}/{rel_dir}")


def _copy_file(src: Path, dst: Path, mode: int = 0o600, sync: bool = False) -> int:
    """Copy into a new file (never overwriting one); returns the bytes copied."""
    flags = os.O_RDONLY | osdep.O_NOFOLLOW | osdep.O_CLOEXEC | osdep.O_BINARY
    with os.fdopen(os.open(src, flags), "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | osdep.O_BINARY, mode)
        try:
            offset = 0
            try:
                if not hasattr(os, "sendfile"):  # Windows
                    raise OSError(errno.ENOSYS, "no sendfile")
                while True:
                    n = os.sendfile(fd, fin.fileno(), offset, 1 << 24)
                    if n == 0:
                        break
                    offset += n
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS) or offset:
                    raise
                with os.fdopen(os.dup(fd), "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                    offset = fout.tell()
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)
    return offset

"""Import mbox files and maildirs into an account: all or nothing, fast, bounded memory.

How it stays all-or-nothing (docs/behaviour-notes.md §8.1 "abort leaves nothing changed"):
  1. a short committed transaction records the import in progress ("import:<account>" in the
     store) and reserves a block of message ids; more blocks as needed;
  2. message files are written to their final paths, unsynced;
  3. at the end one filesystem sync, then ONE write transaction adds all message records,
     mailbox counters and the account/mailboxes if missing, and deletes the import record;
  4. on an error or Ctrl-C the files written so far are removed and the record deleted; after
     SIGKILL the record is still there and :func:`cleanup_interrupted_imports` (run by the
     next import) removes the files of its id blocks.
Per message only a few numbers are kept (arrays), so memory stays flat; the input is read in
large chunks and only the headers that carry flags are looked at (no MIME parse).
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import gzip
import os
import queue
import signal
import stat
import struct
import sys
import threading
import time
import unicodedata
import zlib
from array import array
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from moxcli import log, osdep
from moxcli.config import DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_SEAL_MAX_SIZE
from moxcli.errors import CheckFailed, LockHeld, UsageError
from moxcli.inputs import open_regular
from moxcli.mail import maildir as md
from moxcli.mail.archive import ArchiveError, ArchiveLimits, Entry
from moxcli.mail.archive import entries as archive_entries
from moxcli.mail.flags import flag_names, maildir_flags, mbox_header_flags, parse_dovecot_keywords
from moxcli.mail.mbox import MboxError, MessageTooLarge, from_line_time, iter_mbox, to_crlf
from moxcli.mail.names import MailboxNameError, check_mailbox_name, maildirpp_folder
from moxcli.store import Store, Txn, job_lock
from moxcli.store import mail as store_mail
from moxcli.store.files import (
    FILES_PER_DIR_SHIFT,
    PathError,
    account_dir,
    check_account_name,
    ensure_dir,
    msg_dir,
    open_dir,
    remove_empty_dir,
    symlink_refused,
    sync_files,
    unlink_files,
)
from moxcli.values import dataclass, field

_log = log.get("import")

MAX_WARNINGS = 1000  # kept for the report; more are only counted
PROGRESS_EVERY = 1000  # messages between progress callbacks
_FIRST_BLOCK = 4096  # message ids reserved per store commit, doubling up to _MAX_BLOCK
_MAX_BLOCK = 65536
_SYNCFS_FROM = 512  # files: from here on one syncfs instead of an fsync per file


@dataclass
class ImportWarning:
    number: int  # 1-based message number in the whole import (0: not about one message)
    position: str  # "<file>:<line>" (mbox) or "<dir>/<subdir>/<file>" (maildir)
    code: str  # stable machine code (docs/json.md, Findings; listed in docs/import.md)
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "number": self.number, "position": self.position}


@dataclass
class ImportProgress:
    messages: int
    bytes_read: int
    bytes_total: int | None  # input bytes (mbox files), None when unknown (stdin)
    messages_total: int | None  # known for maildirs (counted first)
    mailboxes: int  # mailboxes started so far
    mailboxes_total: int
    mailbox: str
    elapsed: float


@dataclass
class MailboxResult:
    name: str
    created: bool
    messages: int = 0
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "messages": self.messages, "bytes": self.size}


@dataclass
class ImportResult:
    account: str
    account_created: bool
    mailboxes: list[MailboxResult]
    messages: int
    size: int  # bytes stored (CRLF line ends)
    input_bytes: int
    seconds: float
    dry_run: bool
    warnings: list[ImportWarning] = field(default_factory=list)
    warnings_total: int = 0
    interrupted: bool = False  # a signal came during the commit: it was held and everything imported

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "account_created": self.account_created,
            "mailboxes": [m.to_json() for m in self.mailboxes],
            "messages": self.messages,
            "bytes": self.size,
            "input_bytes": self.input_bytes,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.messages_per_second, 1),
            "dry_run": self.dry_run,
            "warnings": [w.to_json() for w in self.warnings],
            "warnings_total": self.warnings_total,
            "interrupted": self.interrupted,
        }


ProgressFn = Callable[[ImportProgress], None]


@dataclass(frozen=True)
class ImportOptions:
    """How an import runs; the defaults are what the CLI does without options."""

    dry_run: bool = False
    quota: int = 0  # bytes the account's messages may take in all (quota_message_size), 0: none
    ignore_quota: bool = False  # --ignore-quota: import past the quota (a warning instead)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE  # a larger message stops the import
    seal_max_size: int = DEFAULT_SEAL_MAX_SIZE  # [store] seal_max_size (moxcli.store.seal)
    progress: ProgressFn | None = None
    # Called inside the commit's signal-deferred section once the commit is durable: from then
    # on an interrupt must not be reported as "nothing imported" (the CLI's signal handler asks).
    on_commit: Callable[[], None] | None = None


class _Import:
    """State of one import: reserved ids, files written, small per-message arrays."""

    def __init__(self, data_dir: Path, account: str, opts: ImportOptions) -> None:
        self.data_dir = Path(data_dir)
        self.account = account
        self.opts = opts
        self.dry_run = opts.dry_run
        self.quota = opts.quota
        self.progress_fn = opts.progress
        self.interrupted = False
        self.started = time.monotonic()
        self.store: Store | None = None
        self.committed = False
        self.mailbox_names: list[str] = []
        self.mailbox_index: dict[str, int] = {}
        self.mailboxes_total = 1
        # One entry per message, in import order: a few bytes each.
        self.mb = array("I")
        self.ids = array("Q")
        self.sizes = array("Q")
        self.received = array("d")
        self.flags = array("H")
        self.kwsets = array("I")
        self.kw_index: dict[tuple[str, ...], int] = {(): 0}
        self.kw_list: list[tuple[str, ...]] = [()]
        self.total_size = 0
        self.warnings: list[ImportWarning] = []
        self.warnings_total = 0
        self.input_bytes = 0
        self.bytes_total: int | None = None
        self.messages_total: int | None = None
        self.existing_size = 0
        self.over_quota = False
        self.next_id = 0
        self.end_id = -1
        self.block = _FIRST_BLOCK
        self.acc_dir = account_dir(self.data_dir, account)
        self.msg_root = self.acc_dir / "msg"
        self.files: _FileWriter = _ForkFiles(self.acc_dir) if osdep.can_fork() else _ThreadFiles(self.acc_dir)

    # -- bookkeeping

    def warn(self, number: int, position: str, code: str, message: str) -> None:
        self.warnings_total += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(ImportWarning(number, position, code, message))

    def too_large(self, position: str, number: int) -> CheckFailed:
        return CheckFailed(
            f"{position}: message {number} is larger than max_message_size ({self.opts.max_message_size} bytes); "
            "nothing was imported"
        )

    def mailbox(self, name: str) -> int:
        i = self.mailbox_index.get(name)
        if i is None:
            i = self.mailbox_index[name] = len(self.mailbox_names)
            self.mailbox_names.append(name)
            self.report()
        return i

    def report(self) -> None:
        if self.progress_fn is not None:
            self.progress_fn(
                ImportProgress(
                    messages=len(self.ids),
                    bytes_read=self.input_bytes,
                    bytes_total=self.bytes_total,
                    messages_total=self.messages_total,
                    mailboxes=len(self.mailbox_names),
                    mailboxes_total=self.mailboxes_total,
                    mailbox=self.mailbox_names[-1] if self.mailbox_names else "",
                    elapsed=time.monotonic() - self.started,
                )
            )

    # -- adding messages

    def add(self, mailbox: int, data: bytes, received: float, mask: int, keywords: list[str], position: str) -> None:
        number = len(self.ids) + 1
        size = len(data)
        if size > self.opts.max_message_size:
            raise self.too_large(position, number)
        self.total_size += size
        if self.quota and not self.over_quota and self.existing_size + self.total_size > self.quota:
            self.over_quota = True
            if not self.opts.ignore_quota:
                # As mox: an import that would take the account over its quota changes nothing.
                raise CheckFailed(
                    f"{position}: message {number} takes account {self.account} to "
                    f"{self.existing_size + self.total_size} bytes, over its quota_message_size of {self.quota} "
                    "bytes; nothing was imported (--ignore-quota imports anyway)"
                )
            self.warn(
                number,
                position,
                "over-quota",
                f"account over quota_message_size of {self.quota} bytes from this message on",
            )
        msg_id = 0 if self.dry_run else self._write(data)
        k = self.keyword_set(keywords)
        self.mb.append(mailbox)
        self.ids.append(msg_id)
        self.sizes.append(size)
        self.received.append(received)
        self.flags.append(mask)
        self.kwsets.append(k)
        if number % PROGRESS_EVERY == 0:
            self.report()

    def keyword_set(self, keywords: list[str]) -> int:
        """Index of a keyword list in ``kw_list`` (messages share the lists, a few per import)."""
        if not keywords:
            return 0
        k = self.kw_index.get(tuple(keywords))
        if k is None:
            k = self.kw_index[tuple(keywords)] = len(self.kw_list)
            self.kw_list.append(tuple(keywords))
        return k

    def _write(self, data: bytes) -> int:
        """Queue a message file under the next reserved id (no sync: one sync at the end)."""
        if self.next_id > self.end_id:
            assert self.store is not None
            count = self.block
            self.block = min(self.block * 2, _MAX_BLOCK)
            self.next_id = self.store.update(lambda tx: store_mail.reserve_message_ids(tx, self.account, count))
            self.end_id = self.next_id + count - 1
        msg_id = self.next_id
        self.next_id += 1
        self.files.put(msg_id, data)
        return msg_id

    # -- start, commit, abort

    def begin(self) -> None:
        """Open the store and note the account's size; unless dry run, record the import."""
        if self.dry_run:
            if (self.data_dir / "store").exists():
                self.store = Store.open(self.data_dir, readonly=True)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.store = Store.open(self.data_dir, seal_max_size=self.opts.seal_max_size)
        if self.store is not None:
            with self.store.read() as tx:
                self.existing_size = store_mail.account_size(tx, self.account)
        if not self.dry_run:
            assert self.store is not None
            info = store_mail.ImportRecord(os.getpid(), time.time(), self.acc_dir.exists())
            self.store.update(lambda tx: store_mail.begin_import(tx, self.account, info))

    def commit(self) -> ImportResult:
        self.files.finish()
        if self.dry_run:
            return self._result(*self._dry_mailboxes())
        assert self.store is not None
        if len(self.ids):
            paths = (self.msg_root / msg_dir(i) / str(i) for i in self.ids)
            _sync(self.msg_root, paths, many=len(self.ids) >= _SYNCFS_FROM)
        with _signals_deferred() as pending:
            mailboxes, account_created = self.store.update(self._commit_tx)
            self.committed = True
            if self.opts.on_commit is not None:
                self.opts.on_commit()
        # A signal held during the commit does not undo it: the result says it came.
        self.interrupted = bool(pending)
        return self._result(mailboxes, account_created)

    def _commit_tx(self, tx: Txn) -> tuple[list[MailboxResult], bool]:
        _, account_created = store_mail.ensure_account(tx, self.account)
        recs = []
        results = []
        parents: list[str] = []
        for name in self.mailbox_names:
            parents += _missing_parents(tx, self.account, name, self.mailbox_index, parents)
            rec, created = store_mail.ensure_mailbox(tx, self.account, name)
            recs.append(rec)
            results.append(MailboxResult(name, created))
        new_keywords: list[set[str]] = [set() for _ in recs]
        flag_lists: dict[int, list[str]] = {}
        kw_lists = [list(kw) for kw in self.kw_list]
        for i in range(len(self.ids)):
            m = self.mb[i]
            mask = self.flags[i]
            names = flag_lists.get(mask)
            if names is None:
                names = flag_lists[mask] = flag_names(mask)
            kws = kw_lists[self.kwsets[i]]
            store_mail.add_message(tx, self.account, recs[m], self.ids[i], self.sizes[i], self.received[i], names, kws)
            if kws:
                new_keywords[m].update(kws)
            results[m].messages += 1
            results[m].size += self.sizes[i]
        for rec, new in zip(recs, new_keywords, strict=True):
            rec.add_keywords(new)
            store_mail.put_mailbox(tx, self.account, rec)
        store_mail.finish_import(tx, self.account, self.ids[-1] if len(self.ids) else None)
        return results + [MailboxResult(p, True) for p in parents], account_created

    def abort(self) -> None:
        """Remove every file written and the import record: the account is as it was."""
        if self.dry_run or self.committed or self.store is None:
            self.files.cancel()
            return
        with _signals_deferred():
            self.files.cancel()
            # Also the id after the last recorded one: its file may have been half written.
            last = self.next_id - 1 if self.next_id else 0
            paths = [self.msg_root / msg_dir(i) / str(i) for i in [*list(self.ids), last] if i]
            with contextlib.suppress(OSError):  # a planted symlink: left for verifydata, never followed
                unlink_files(self.data_dir, paths)
            for d in reversed(self.files.created_dirs):
                with contextlib.suppress(OSError):  # a planted symlink: left, never followed
                    remove_empty_dir(self.data_dir, d)
            self.store.update(lambda tx: store_mail.finish_import(tx, self.account, None))

    def close(self) -> None:
        self.files.cancel()
        if self.store is not None:
            self.store.close()
            self.store = None

    def _dry_mailboxes(self) -> tuple[list[MailboxResult], bool]:
        out = []
        parents: list[str] = []
        account_exists = False
        with contextlib.ExitStack() as stack:
            tx = stack.enter_context(self.store.read()) if self.store is not None else None
            if tx is not None:
                account_exists = store_mail.get_account(tx, self.account) is not None
            for name in self.mailbox_names:
                parents += _missing_parents(tx, self.account, name, self.mailbox_index, parents)
                exists = tx is not None and store_mail.get_mailbox(tx, self.account, name) is not None
                out.append(MailboxResult(name, not exists))
        for i in range(len(self.ids)):
            out[self.mb[i]].messages += 1
            out[self.mb[i]].size += self.sizes[i]
        return out + [MailboxResult(p, True) for p in parents], not account_exists

    def _result(self, mailboxes: list[MailboxResult], account_created: bool) -> ImportResult:
        return ImportResult(
            account=self.account,
            account_created=account_created,
            mailboxes=mailboxes,
            messages=len(self.ids),
            size=self.total_size,
            input_bytes=self.input_bytes,
            seconds=time.monotonic() - self.started,
            dry_run=self.dry_run,
            warnings=self.warnings,
            warnings_total=self.warnings_total,
            interrupted=self.interrupted,
        )


class _FileWriter:
    """Writes message files beside the parser; keeps the list of directories it creates, so
    cleanup needs nothing back from the writer but an error."""

    def __init__(self, acc_dir: Path) -> None:
        self.acc_dir = acc_dir
        self.msg_root = acc_dir / "msg"
        self.created_dirs: list[Path] = []
        self._sent_dir = ""  # directory of the last file handed to the writer

    def put(self, msg_id: int, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Wait until every file is written; raise the writer's error if it had one."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop the writer at once (files already written stay: the caller removes them)."""
        raise NotImplementedError

    def _track_dirs(self, msg_id: int) -> None:
        name = msg_dir(msg_id)
        if name != self._sent_dir:
            self._sent_dir = name
            path = self.msg_root / name
            for p in (self.acc_dir.parent, self.acc_dir, self.msg_root, path):
                if p not in self.created_dirs and not p.is_dir():
                    self.created_dirs.append(p)

    def _write_path(self, msg_id: int, data: bytes) -> None:
        """One file by path (the portable way; the forked writer keeps a directory fd open)."""
        path = self._make_dirs(msg_dir(msg_id))
        try:
            fd = os.open(path / str(msg_id), _NEW_FILE | osdep.O_BINARY, 0o600)
        except OSError as exc:
            raise _file_error(exc, path / str(msg_id)) from None
        _write_all(fd, data)

    def _make_dirs(self, name: str) -> Path:
        """The message directory ``name`` and its missing parents (0700); returns its path.

        A planted symlink among them (accounts/, the account, msg/, the directory) is refused,
        never followed: the files would land wherever it points."""
        return ensure_dir(self.acc_dir.parent.parent, self.msg_root / name)


class _ThreadFiles(_FileWriter):
    """Where there is no fork (Windows): a writer thread fed through a bounded queue.

    Slower than the forked writer (the thread needs the GIL after each system call) but the
    same contract: files at their final paths, errors raised by finish() or the next put().
    """

    _QUEUE = 64  # messages in flight

    def __init__(self, acc_dir: Path) -> None:
        super().__init__(acc_dir)
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(self._QUEUE)
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None
        self._cancelled = False

    def put(self, msg_id: int, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="moxcli-import-writer", daemon=True)
            self._thread.start()
        self._track_dirs(msg_id)
        self._queue.put((msg_id, data))

    def finish(self) -> None:
        self._join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self._cancelled = True
        self._join()

    def _join(self) -> None:
        if self._thread is None:
            return
        if self._cancelled:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._cancelled or self._error is not None:
                continue
            msg_id, data = item
            try:
                self._write_path(msg_id, data)
            except OSError as exc:
                path = self.msg_root / msg_dir(msg_id) / str(msg_id)
                self._error = OSError(exc.errno, exc.strerror, exc.filename or str(path))


class _ForkFiles(_FileWriter):
    """Writes message files in a forked writer process, fed through a pipe.

    Creating files is most of an import's time on ext4 and is done by the kernel; a writer
    *thread* needs the GIL after every open/write/close while the parser holds it, so the two
    ran one after the other. A process runs beside the parser on another core. The parent
    keeps the list of directories the writer will create (it checks each before sending its
    first file), so cleanup needs nothing back from the writer but an error.
    """

    _BATCH = 64  # messages per writev; with _BATCH_BYTES, bounds the memory in flight
    _BATCH_BYTES = 1 << 20  # also the pipe's size (when the system allows it)
    _HEADER = struct.Struct("<QQ")  # message id, length; then the message bytes

    def __init__(self, acc_dir: Path) -> None:
        super().__init__(acc_dir)
        self._dir_name = ""  # writer: directory open as _dir_fd
        self._dir_fd = -1
        self._batch: list[bytes] = []  # header, data, header, data, ...
        self._batch_bytes = 0
        self._pid = 0
        self._data_fd = -1  # parent: write end of the message pipe
        self._error_fd = -1  # parent: read end of the writer's error report

    def put(self, msg_id: int, data: bytes) -> None:
        if not self._pid:
            self._start()
        self._track_dirs(msg_id)
        self._batch += (self._HEADER.pack(msg_id, len(data)), data)
        self._batch_bytes += len(data)
        if len(self._batch) >= 2 * self._BATCH or self._batch_bytes >= self._BATCH_BYTES:
            self._flush()

    def finish(self) -> None:
        if self._pid:
            self._flush()
            self._stop(kill=False)

    def cancel(self) -> None:
        self._batch = []
        if self._pid:
            self._stop(kill=True)

    def _start(self) -> None:
        data_r, self._data_fd = os.pipe()
        self._error_fd, error_w = os.pipe()
        osdep.grow_pipe(self._data_fd, self._BATCH_BYTES)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the writer: never returns into the importer's code
            code = 1
            try:
                os.close(self._data_fd)
                os.close(self._error_fd)
                code = self._child(data_r, error_w, parent)
            finally:
                os._exit(code)
        self._pid = pid
        os.close(data_r)
        os.close(error_w)

    def _flush(self) -> None:
        if not self._batch:
            return
        bufs = [memoryview(b) for b in self._batch if b]
        self._batch = []
        self._batch_bytes = 0
        try:
            while bufs:
                n = os.writev(self._data_fd, bufs[:1024])  # IOV_MAX
                while n and n >= len(bufs[0]):
                    n -= len(bufs[0])
                    bufs.pop(0)
                if n:
                    bufs[0] = bufs[0][n:]
        except BrokenPipeError:  # the writer stopped: it says why
            self._stop(kill=False)
            raise OSError("file writer stopped") from None

    def _stop(self, kill: bool) -> None:
        """Close the pipe (or kill), reap the writer, raise the error it reported.

        The writer is forgotten only once reaped: interrupted here, cancel() still kills it,
        so no file appears after the caller's cleanup.
        """
        if self._data_fd >= 0:
            os.close(self._data_fd)
            self._data_fd = -1
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        report = b"".join(iter(lambda: os.read(self._error_fd, 1 << 16), b""))
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        os.close(self._error_fd)
        if kill:
            return
        if report:
            code, strerror, filename = report.decode("utf-8", "replace").split("\0", 2)
            raise OSError(int(code), strerror, filename)
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError(f"file writer exited with status {os.waitstatus_to_exitcode(status)}")

    def _child(self, data_r: int, error_w: int, parent: int) -> int:
        """The writer's loop: a frame per file until the pipe closes; reports one error."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        osdep.die_with_parent()  # killed with the importer (kill -9): no late files
        if os.getppid() != parent:
            return 1
        msg_id = 0
        with open(data_r, "rb", buffering=self._BATCH_BYTES) as f:
            try:
                while len(header := f.read(self._HEADER.size)) == self._HEADER.size:
                    msg_id, size = self._HEADER.unpack(header)
                    data = f.read(size)
                    if len(data) != size:  # the importer went away mid-file
                        return 1
                    self._write(msg_id, data)
            except Exception as exc:  # handed to the importer, naming the file
                path = self.msg_root / msg_dir(msg_id) / str(msg_id)
                code = getattr(exc, "errno", None) or 0
                strerror = getattr(exc, "strerror", None) or str(exc)
                filename = getattr(exc, "filename", None) or str(path)
                os.write(error_w, f"{code}\0{strerror}\0{filename}".encode())
                return 1
        return 0

    def _write(self, msg_id: int, data: bytes) -> None:
        name = msg_dir(msg_id)
        if name != self._dir_name:
            if self._dir_fd >= 0:
                os.close(self._dir_fd)
            self._dir_fd = -1
            self._dir_fd = open_dir(self.acc_dir.parent.parent, self.msg_root / name)
            self._dir_name = name
        try:
            fd = os.open(str(msg_id), _NEW_FILE, 0o600, dir_fd=self._dir_fd)
        except OSError as exc:
            raise _file_error(exc, self.msg_root / name / str(msg_id)) from None
        _write_all(fd, data)


# A message file: a leftover of a killed import is overwritten, a planted symlink never followed.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | osdep.O_NOFOLLOW | osdep.O_CLOEXEC


def _file_error(exc: OSError, path: Path) -> OSError:
    """A message file's open error naming the whole path; a symlink planted as the file is the
    planted-symlink error."""
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return symlink_refused(path)
    return OSError(exc.errno, exc.strerror, str(path))


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the new file ``fd`` and close it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _missing_parents(tx: Txn | None, account: str, name: str, importing: dict[str, int], seen: list[str]) -> list[str]:
    """Parent mailboxes of ``name`` that do not exist yet and are not imported into themselves."""
    out = []
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in importing or parent in seen or parent in out:
            continue
        if tx is None or store_mail.get_mailbox(tx, account, parent) is None:
            out.append(parent)
    return out


def _sync(root: Path, paths: Iterator[Path], many: bool) -> None:
    """Make the written files durable with one sync before the commit.

    Many files: one syncfs(2) of the filesystem holding the account (Linux); for 200,000
    files it takes a fraction of a second where an fsync per file takes minutes. It also
    flushes other programs' dirty data, which is why small imports (and systems without
    syncfs) fsync each file instead (sync_files).
    """
    if many and osdep.syncfs(root):
        return
    sync_files(paths)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM while committing or cleaning up; yields the signals that came.

    A Ctrl-C during the store commit must neither interrupt it nor make the abort path delete
    the files of a committed import; the caller decides what a held signal means (after a
    commit: nothing more to stop; during an abort: the import is already being stopped).
    """
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    old = {s: signal.signal(s, lambda n, _f: pending.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _check_names(account: str, mailbox: str) -> tuple[str, str]:
    """The account and mailbox names, checked and NFC-normalised (é typed either way is one name)."""
    try:
        account = check_account_name(unicodedata.normalize("NFC", account))
        return account, check_mailbox_name(mailbox, allow_inbox=True)
    except (MailboxNameError, PathError) as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _running(data_dir: Path, account: str, opts: ImportOptions) -> Iterator[_Import]:
    """An import holding the account's job lock; aborted (files removed) unless committed."""
    with contextlib.ExitStack() as stack:
        if not opts.dry_run:
            Path(data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            stack.enter_context(job_lock(data_dir, f"import-{account}"))
            cleanup_interrupted_imports(data_dir, holding=account, seal_max_size=opts.seal_max_size)
        imp = _Import(data_dir, account, opts)
        try:
            imp.begin()
            yield imp
        except BaseException:
            imp.abort()
            raise
        finally:
            imp.close()


def import_mbox(
    data_dir: Path,
    account: str,
    mailbox: str,
    sources: list[str],
    dry_run: bool = False,
    quota: int = 0,
    progress: ProgressFn | None = None,
    stdin: BinaryIO | None = None,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Import mbox files (".gz" decompressed, "-" for stdin) into one mailbox, all or nothing.

    ``options`` (when given) replaces ``dry_run``, ``quota`` and ``progress``."""
    opts = options or ImportOptions(dry_run=dry_run, quota=quota, progress=progress)
    account, mailbox = _check_names(account, mailbox)
    for src in sources:
        if src != "-":  # refused by name: missing, a FIFO (would block), a device (never ends)
            open_regular(src).close()
    with _running(data_dir, account, opts) as imp:
        imp.bytes_total = None if "-" in sources else sum(Path(s).stat().st_size for s in sources)
        mb = imp.mailbox(mailbox)
        for src in sources:
            _import_mbox_source(imp, mb, src, stdin)
        imp.report()
        result = imp.commit()
    _log.info("imported", account=account, mailbox=mailbox, messages=result.messages, dry_run=opts.dry_run)
    return result


class _Counting:
    """A read-only stream that counts the bytes read from it (progress, ETA)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        # read1: take what a pipe has now instead of waiting for a full chunk.
        read = getattr(self.raw, "read1", self.raw.read)
        data = read(n)
        self.count += len(data)
        return data


def _is_gzip(f: BinaryIO, name: str) -> bool:
    """A ".gz" name, or gzip's magic bytes (RFC 1952 2.3.1) at the start (stdin, other names)."""
    if name.endswith(".gz"):
        return True
    peek = getattr(f, "peek", None)
    return peek is not None and peek(2)[:2] == b"\x1f\x8b"


def _import_mbox_source(imp: _Import, mb: int, src: str, stdin: BinaryIO | None) -> None:
    name = "<stdin>" if src == "-" else src
    with contextlib.ExitStack() as stack:
        f = (stdin or sys.stdin.buffer) if src == "-" else stack.enter_context(open_regular(src))
        raw = _Counting(f)
        stream: Any = stack.enter_context(gzip.open(raw, "rb")) if _is_gzip(f, src) else raw  # type: ignore[call-overload]
        base = imp.input_bytes
        try:
            _import_mbox_stream(imp, mb, stream, name, lambda: base + raw.count)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise CheckFailed(f"{name}: bad gzip data: {exc}") from None
        imp.input_bytes = base + raw.count


def _import_mbox_stream(imp: _Import, mb: int, stream: Any, name: str, read_so_far: Callable[[], int]) -> None:
    """The messages of one mbox stream into mailbox ``mb``; ``name`` is for positions."""
    try:
        for msg in iter_mbox(stream, max_size=imp.opts.max_message_size):
            number = len(imp.ids) + 1
            position = f"{name}:{msg.line}"
            data = msg.data
            hdr_end = data.find(b"\r\n\r\n")
            header = data if hdr_end < 0 else data[: hdr_end + 2]
            mask, keywords, bad = mbox_header_flags(header)
            for word in bad:
                imp.warn(number, position, "keyword-invalid", f"invalid keyword {word!r} dropped")
            received = from_line_time(msg.from_line)
            if received is None:
                received = _date_header_time(header)
                used = "the Date header" if received is not None else "the import time"
                imp.warn(
                    number,
                    position,
                    "date-unparsable",
                    f"unparsable date in {msg.from_line[:100].decode('utf-8', 'replace')!r}, using {used}",
                )
                if received is None:
                    received = time.time()
            imp.input_bytes = read_so_far()
            imp.add(mb, data, received, mask, keywords, position)
    except MboxError as exc:
        raise CheckFailed(f"{name}: not an mbox: {exc}") from None
    except MessageTooLarge as exc:
        raise imp.too_large(f"{name}:{exc.line}", len(imp.ids) + 1) from None


def _date_header_time(header: bytes) -> float | None:
    """Unix time of the Date header (RFC 5322 3.6.1), None when missing or unparsable."""
    i = 0 if header.startswith(b"Date:") else header.find(b"\nDate:") + 1
    if i == 0 and not header.startswith(b"Date:"):
        return None
    end = header.find(b"\n", i)
    value = header[i + 5 : end if end >= 0 else len(header)].decode("ascii", "replace").strip()
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def import_maildir(
    data_dir: Path,
    account: str,
    mailbox: str,
    directory: Path,
    recursive: bool = False,
    dry_run: bool = False,
    quota: int = 0,
    progress: ProgressFn | None = None,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Import a maildir (cur/ and new/), with ``recursive`` a maildir++ tree, all or nothing.

    Folders ".A.B" go to "<mailbox>/A/B", or to "A/B" when the mailbox is Inbox (maildir++
    keeps every folder under the inbox; people see them at the top level). ``options`` (when
    given) replaces ``dry_run``, ``quota`` and ``progress``.
    """
    opts = options or ImportOptions(dry_run=dry_run, quota=quota, progress=progress)
    account, mailbox = _check_names(account, mailbox)
    directory = Path(directory)
    try:
        folders = md.folders(directory, recursive)
        targets = [(f, _folder_mailbox(mailbox, f.name)) for f in folders]
    except (md.MaildirError, MailboxNameError) as exc:
        raise UsageError(str(exc)) from None
    except NotADirectoryError:
        raise UsageError(f"{directory}: not a directory") from None
    with _running(data_dir, account, opts) as imp:
        imp.mailboxes_total = len(targets)
        imp.messages_total = sum(md.count_entries(f.path) for f, _ in targets)
        for folder, name in targets:
            _import_folder(imp, imp.mailbox(name), folder)
        imp.report()
        result = imp.commit()
    _log.info("imported", account=account, mailbox=mailbox, messages=result.messages, dry_run=opts.dry_run)
    return result


def _folder_mailbox(mailbox: str, sub: str) -> str:
    if not sub:
        return mailbox
    name = sub if mailbox == "Inbox" else f"{mailbox}/{sub}"
    return check_mailbox_name(name, allow_inbox=True)


def _import_folder(imp: _Import, mb: int, folder: md.Folder) -> None:
    keywords, errors = md.dovecot_keywords(folder.path)
    for err in errors:
        imp.warn(0, str(folder.path / "dovecot-keywords"), "dovecot-keywords-invalid", err)
    for sub, fname in md.entries(folder.path):
        path = folder.path / sub / fname
        try:
            # Never through a symlink (one planted after the listing): only the maildir's own files.
            fd = os.open(path, os.O_RDONLY | osdep.O_NOFOLLOW | osdep.O_NONBLOCK | osdep.O_BINARY)
        except FileNotFoundError:
            # A live maildir: the owner's client moved it (new/ -> cur/) or deleted it.
            imp.warn(len(imp.ids) + 1, str(path), "file-vanished", "file vanished while importing, skipped")
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                imp.warn(len(imp.ids) + 1, str(path), "symlink-skipped", "symbolic link, skipped")
                continue
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                imp.warn(len(imp.ids) + 1, str(path), "not-a-file", "not a regular file, skipped")
                continue
            if st.st_size > imp.opts.max_message_size:
                raise imp.too_large(str(path), len(imp.ids) + 1)
            chunks = []
            left = imp.opts.max_message_size + 1  # a file growing while read still stops at the limit
            while left > 0:
                chunk = os.read(fd, min(max(st.st_size, 1 << 16), left))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        finally:
            os.close(fd)
        data = to_crlf(b"".join(chunks))
        imp.input_bytes += st.st_size
        received = md.name_time(fname)
        mask, kws = maildir_flags(md.name_info(fname), keywords)
        imp.add(mb, data, st.st_mtime if received is None else received, mask, kws, str(path))


def cleanup_interrupted_imports(
    data_dir: Path, holding: str | None = None, seal_max_size: int = DEFAULT_SEAL_MAX_SIZE
) -> list[str]:
    """Remove what killed imports left behind (their files, their record); returns the accounts.

    An import whose process still runs holds its job lock and is left alone; ``holding`` names
    the account whose import lock the caller already holds.
    """
    if not (Path(data_dir) / "store" / "data.mdb").exists():
        return []
    cleaned = []
    with Store.open(data_dir, seal_max_size=seal_max_size) as st:
        with st.read() as tx:
            pending = list(store_mail.unfinished_imports(tx))
        for account, info in pending:
            with contextlib.ExitStack() as stack:
                if account != holding:
                    try:
                        stack.enter_context(job_lock(data_dir, f"import-{account}"))
                    except LockHeld:
                        continue
                _remove_leftovers(Path(data_dir), account, info)
                st.update(partial(store_mail.finish_import, account=account, last_used=None))
            cleaned.append(account)
            _log.info("removed files of an interrupted import", account=account, pid=info.pid)
    return cleaned


def _remove_leftovers(data_dir: Path, account: str, info: store_mail.ImportRecord) -> None:
    """Unlink every file in the import's reserved id blocks, then directories left empty."""
    root = account_dir(data_dir, account) / "msg"
    dirs = {msg_dir(i) for lo, hi in info.ranges for i in (lo, hi)}
    for lo, hi in info.ranges:
        dirs.update(msg_dir(i) for i in range(lo, hi + 1, 1 << FILES_PER_DIR_SHIFT))
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        unlink_files(data_dir, (root / msg_dir(i) / str(i) for lo, hi in info.ranges for i in range(lo, hi + 1)))
    for name in dirs:
        remove_empty_dir(data_dir, root / name)
    if not info.account_dir_existed:
        for d in (root, root.parent):
            remove_empty_dir(data_dir, d)


# -- archives (docs/behaviour-notes.md §8.6: mox's web import of .zip and .tgz files)

_MAILDIR_META = ("dovecot", "maildirfolder", "subscriptions", "courierimap")  # name prefixes: not mail


@dataclass
class _ArchiveMailboxes:
    """Per-mailbox maildir state while an archive streams by: dovecot-keywords may come after
    the messages that use its letters (mox remembers the letters and applies them later)."""

    keywords: dict[str, list[str]] = field(default_factory=dict)
    pending: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # mailbox: (message index, info)

    def message_flags(self, imp: _Import, mailbox: str, info: str) -> tuple[int, list[str]]:
        kws = self.keywords.get(mailbox)
        if kws is None and any("a" <= c <= "z" for c in info):
            self.pending.setdefault(mailbox, []).append((len(imp.ids), info))
        return maildir_flags(info, kws or [])

    def set_keywords(self, imp: _Import, mailbox: str, keywords: list[str]) -> None:
        self.keywords[mailbox] = keywords
        for i, info in self.pending.pop(mailbox, []):
            mask, kws = maildir_flags(info, keywords)
            imp.flags[i] = mask
            imp.kwsets[i] = imp.keyword_set(kws)


def archive_mailbox(path: str, skip_prefix: str) -> str:
    """The mailbox of an mbox file (path without ".mbox") or a maildir (the directory above
    new/ and cur/), after removing ``skip_prefix``. Maildir++ folder elements (".A.B") are
    decoded as the maildir import does, and the archive's root maildir is Inbox."""
    parts = path.split("/") if path else []
    prefix = [p for p in skip_prefix.strip("/").split("/") if p]
    if prefix and parts[: len(prefix)] == prefix:
        parts = parts[len(prefix) :]
    names = []
    for p in parts:
        folder = maildirpp_folder(p)
        names.append(folder if folder is not None else p)
    return check_mailbox_name("/".join(names) or "Inbox", allow_inbox=True)


def import_archive(
    data_dir: Path,
    account: str,
    archive: Path,
    skip_prefix: str = "",
    options: ImportOptions | None = None,
    limits: ArchiveLimits | None = None,
) -> ImportResult:
    """Import every mbox file ("*.mbox") and maildir inside a zip or tar archive, each into the
    mailbox named after its path, all or nothing; never extracted to disk."""
    opts = options or ImportOptions()
    account, _ = _check_names(account, "Inbox")
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive}: not a regular file")
    with _running(data_dir, account, opts) as imp:
        imp.bytes_total = archive.stat().st_size
        imp.mailboxes_total = 0
        state = _ArchiveMailboxes()
        try:
            with archive_entries(archive, limits or ArchiveLimits()) as (it, counting):
                for entry in it:
                    start = imp.input_bytes
                    read = (lambda: counting.count) if counting is not None else (lambda start=start: start)
                    _archive_entry(imp, state, archive, entry, skip_prefix, read)
                    imp.input_bytes = counting.count if counting is not None else start + entry.compressed
        except ArchiveError as exc:
            raise CheckFailed(f"{archive}: {exc}; nothing was imported") from None
        except MailboxNameError as exc:
            raise CheckFailed(f"{archive}: {exc}; nothing was imported") from None
        imp.report()
        result = imp.commit()
    _log.info("imported", account=account, archive=str(archive), messages=result.messages, dry_run=opts.dry_run)
    return result


def _archive_entry(
    imp: _Import, state: _ArchiveMailboxes, archive: Path, entry: Entry, skip_prefix: str, read: Callable[[], int]
) -> None:
    parts = entry.name.split("/")
    base = parts[-1]
    position = f"{archive}:{entry.name}"
    parent = parts[-2] if len(parts) > 1 else ""
    if entry.is_dir:
        if base in md.SUBDIRS:  # an empty maildir still becomes a mailbox
            _archive_mailbox_index(imp, archive_mailbox("/".join(parts[:-1]), skip_prefix))
        return
    assert entry.stream is not None
    if base.endswith(".mbox"):
        if base == ".mbox":
            imp.warn(0, position, "mailbox-name-empty", "empty mailbox name for an mbox file, skipped")
            return
        mb = _archive_mailbox_index(imp, archive_mailbox(entry.name[: -len(".mbox")], skip_prefix))
        _import_mbox_stream(imp, mb, entry.stream, position, read)
    elif parent in md.SUBDIRS and not base.startswith("."):
        name = archive_mailbox("/".join(parts[:-2]), skip_prefix)
        mb = _archive_mailbox_index(imp, name)
        if entry.size > imp.opts.max_message_size:
            raise imp.too_large(position, len(imp.ids) + 1)
        data = to_crlf(entry.stream.read(imp.opts.max_message_size + 1))
        received = md.name_time(base)
        mask, kws = state.message_flags(imp, name, md.name_info(base))
        imp.add(mb, data, entry.mtime if received is None else received, mask, kws, position)
    elif base == "dovecot-keywords":
        name = archive_mailbox("/".join(parts[:-1]), skip_prefix)
        text = entry.stream.read(1 << 20).decode("utf-8", "replace")
        keywords, errors = parse_dovecot_keywords(text)
        for err in errors:
            imp.warn(0, position, "dovecot-keywords-invalid", err)
        state.set_keywords(imp, name, keywords)
    elif parent == "tmp" or base.startswith(_MAILDIR_META) or base.startswith("."):
        return  # deliveries in progress, maildir/IMAP server metadata, dot files: not mail
    else:
        imp.warn(0, position, "file-unrecognized", "not an mbox file (*.mbox) or a maildir message, skipped")


def _archive_mailbox_index(imp: _Import, name: str) -> int:
    i = imp.mailbox(name)
    imp.mailboxes_total = max(imp.mailboxes_total, len(imp.mailbox_names))
    return i

"""verifydata: check a data directory's store, records and files (docs/behaviour-notes.md §7.2).

DIR is never changed, except that ``fix=True`` moves unreferenced message and queue files to
``DIR/moved/``. A store with an older schema is verified on a migrated copy in a temporary
directory. Memory stays flat in the number of messages: records are streamed, and referenced
ids are kept as one bit per id.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from moxcli import __version__, osdep
from moxcli.context import CONFIG_NAME
from moxcli.datatools import INCOMPLETE_MARKER, MOVED_DIR, STORE_SUM, VERSION_FILE, layout
from moxcli.errors import MoxcliError, StoreError, UsageError
from moxcli.jsonfmt import Finding, findings_json
from moxcli.store import Store, StoreNeedsMigration
from moxcli.store import dmarc as store_dmarc
from moxcli.store import queue as qstore
from moxcli.store import tlsreports as store_tlsreports
from moxcli.store.datafile import data_file_problem
from moxcli.store.env import STORE_DIR, Txn, decode
from moxcli.store.files import PathError, check_account_name, move_file, msg_path, parse_msg_path
from moxcli.store.schema import (
    ACCOUNT,
    DMARC_REPORT_IN,
    DMARC_REPORT_IN_BY_DOMAIN,
    DMARC_REPORT_IN_BY_KEY,
    MAILBOX,
    MAILBOX_BY_NAME,
    MESSAGE,
    META,
    QUEUE,
    SCHEMA_VERSION,
    TABLES,
    TLS_REPORT_IN,
    TLS_REPORT_IN_BY_DOMAIN,
    TLS_REPORT_IN_BY_KEY,
    TLS_RESULT,
    TLS_RESULT_BY_RCPT,
    Table,
    from_u64,
    split_key,
    text_key,
    u64,
)
from moxcli.store.seal import STORE_FILE, check_seal
from moxcli.values import dataclass, field

# Index tables hold raw values, not records (their schema.py Table names the value).
INDEX_TABLES = {t.name for t in TABLES if t.is_index}

MESSAGE_SEQUENCE = "message:{account}"  # docs/development.md, data contracts
# Meta key prefix of an unfinished import (moxcli.store.mail.begin_import; read here record by
# record so that one malformed record is reported instead of stopping the scan).
IMPORT_PREFIX = "import:"


@dataclass(frozen=True)
class PathFinding:
    """One problem or warning: a stable ``code`` (docs/data-tools.md), where (path relative to DIR) and what."""

    code: str
    path: str
    what: str

    def __str__(self) -> str:
        """One line: names from keys and file names may hold control characters."""
        return _printable(f"{self.path}: {self.what}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.what, "path": self.path}


@dataclass
class VerifyResult:
    data_dir: Path
    problems: list[PathFinding] = field(default_factory=list)
    warnings: list[PathFinding] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    schema_version: int | None = None
    migrated_from: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, code: str, path: str, what: str) -> None:
        self.problems.append(PathFinding(code, path, what))

    def warning(self, code: str, path: str, what: str) -> None:
        self.warnings.append(PathFinding(code, path, what))

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "warnings": [w.to_json() for w in self.warnings],
            "moved": [{"from": a, "to": b} for a, b in self.moved],
            "notes": findings_json(self.notes),
            "schema_version": self.schema_version,
            "migrated_from": self.migrated_from,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }


def _printable(text: str) -> str:
    return (
        text
        if text.isprintable()
        else "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    )


class IdSet:
    """Referenced ids as a bitmap: one bit per id, however many messages there are."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.max = 0

    def add(self, n: int) -> bool:
        """Mark an id; False if it was already marked."""
        byte = n >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        mask = 1 << (n & 7)
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        self.max = max(self.max, n)
        return True

    def __contains__(self, n: int) -> bool:
        byte = n >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (n & 7)))


def message_key(key: bytes) -> tuple[str, int, int] | None:
    """(account, mailbox id, uid) of a MESSAGE key (text_key(account, mailbox_id, uid)),
    cutting the two u64 off the end: the per-message hot path of verifydata and backup."""
    if len(key) >= 19 and key[-18] == 0 and key[-9] == 0:
        try:
            return key[:-18].decode("utf-8"), from_u64(key[-17:-9]), from_u64(key[-8:])
        except UnicodeDecodeError:
            return None
    return None


def key_text(table: Table, key: bytes) -> str:
    """A key as a readable path below store/<table>/ (hex for the digest keys of dedupe indexes)."""
    if table in (TLS_REPORT_IN_BY_KEY, DMARC_REPORT_IN_BY_KEY):
        return f"{STORE_DIR}/{table.name}/{key.hex()}"
    try:
        parts = split_key(key, table.int_parts)
        return f"{STORE_DIR}/{table.name}/" + "/".join(str(p) for p in parts)
    except (UnicodeDecodeError, struct.error, ValueError):
        return f"{STORE_DIR}/{table.name}/{key.hex()}"


def decode_error(table: Table, key: bytes, exc: StoreError) -> str:
    """What the store layer said about an undecodable record, without repeating the key."""
    what = str(exc).replace(f"table {table.name}: record {key!r} ", "")
    if what.endswith(": ") and exc.__context__ is not None:
        what = f"{what[:-2]} (msgpack: {type(exc.__context__).__name__})"
    return what


_PROBE = (
    "import sys\nfrom pathlib import Path\nfrom moxcli.errors import MoxcliError\n"
    "from moxcli.datatools.verify import walk_pages\n"
    "try:\n    walk_pages(Path(sys.argv[1]))\nexcept MoxcliError:\n    pass\n"
)


def walk_pages(data_dir: Path) -> int:
    """Touch every page of every table (run in a child process by :func:`probe_store`).

    Errors the store layer reports (MoxcliError) are left to the in-process checks."""
    n = 0
    with Store.open(data_dir, readonly=True) as store, store.read() as tx:
        for t in TABLES:
            try:
                for _ in tx.scan_raw(t):
                    n += 1
            except Exception as exc:  # lmdb's errors: the parent reports the table and error
                raise SystemExit(f"table {t.name}: {type(exc).__name__}: {exc}") from None
    return n


def probe_store(data_dir: Path, timeout: float = 600) -> str | None:
    """Read the whole store in a child process: damaged pages can crash LMDB readers
    (SIGSEGV, SIGBUS) or make them raise, and that must become a reported problem, not a
    dead verifier or a traceback.

    The child is a fork of this process where there is fork (a few milliseconds: no second
    interpreter to start and import into), else a new Python (Windows)."""
    if osdep.can_fork():
        return _probe_forked(data_dir, timeout)
    return _probe_spawned(data_dir, timeout)


def _probe_forked(data_dir: Path, timeout: float) -> str | None:
    """The probe in a forked child: it reports a failure on a pipe; a crash is its exit status.

    This process opens no store before the fork (verify_data probes first), so the child's
    LMDB environment is its own."""
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the verifier's code
        code = 0
        try:
            os.close(report_r)
            with suppress(MoxcliError):  # the store layer's errors: the in-process checks report them
                walk_pages(data_dir)
        except SystemExit as exc:
            code = 1
            os.write(report_w, str(exc.code).encode("utf-8", "replace")[:_REPORT_MAX])
        except BaseException as exc:  # as a new Python would: the exception's last line
            code = 1
            os.write(report_w, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:_REPORT_MAX])
        finally:
            os._exit(code)
    os.close(report_w)
    try:
        report, finished = _read_until(report_r, time.monotonic() + timeout)
    finally:
        os.close(report_r)
    if not finished:
        with suppress(ProcessLookupError):
            os.kill(pid, 9)  # SIGKILL (the signal module's enums cost start-up)
    _, status = os.waitpid(pid, 0)
    if not finished:
        return f"reading every page took longer than {timeout:.0f} s"
    return _probe_outcome(os.waitstatus_to_exitcode(status), report)


_REPORT_MAX = 4096  # bytes of a failure report: below the pipe's buffer, so the child never blocks


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """What the child writes to ``fd`` until it exits (end of file), and whether it did by ``deadline``."""
    import select

    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return out, False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return out, True
        out += chunk


def _probe_spawned(data_dir: Path, timeout: float) -> str | None:
    """The probe in a new Python process (where there is no fork)."""
    import subprocess

    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, str(data_dir)], env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"reading every page took longer than {timeout:.0f} s"
    lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
    return _probe_outcome(r.returncode, lines[-1].encode() if lines else b"")


def _probe_outcome(code: int, report: bytes) -> str | None:
    """The problem a probe child's exit code (negative: killed by that signal) and report tell."""
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"reading its pages crashed the reader ({name}): the file is damaged"
    if code != 0:
        last = report.decode("utf-8", "replace").strip()
        return f"reading its pages failed: {last or f'exit code {code}'}"
    return None


def verify_data(data_dir: Path, fix: bool = False) -> VerifyResult:
    """Check everything under a data directory; never changes it unless ``fix``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"{data_dir}: not a directory")
    start = time.monotonic()
    res = VerifyResult(data_dir)
    marker = data_dir / INCOMPLETE_MARKER
    if marker.exists():
        first = _first_line(marker).rstrip(":")
        res.problem(
            "backup-incomplete",
            INCOMPLETE_MARKER,
            f"this backup is incomplete ({first})" if first else "this backup is incomplete",
        )
    sealed = check_seal(data_dir)
    if sealed is not None:
        if sealed.problem:
            res.problem("store-checksum-mismatch", STORE_FILE, sealed.problem)
        if sealed.warning:
            res.warning("store-checksum-unreadable", STORE_SUM, sealed.warning)
        if sealed.note:
            code = "store-written-after-backup" if sealed.kind == "backup" else "store-seal-stale"
            res.notes.append(Finding(code, sealed.note))
    tmp: Path | None = None
    try:
        store, tmp = _open_store(data_dir, res)
        if store is not None and fix and res.migrated_from is None:
            store = _remove_interrupted_imports(data_dir, store, res)
        if store is not None:
            _check_pages(store, res)
            with store:
                _Checker(data_dir, res, fix).run(store)
        else:
            res.notes.append(
                Finding(
                    "checks-skipped",
                    "store checks skipped: the store cannot be read; file checks skipped as well (every "
                    "file would look unreferenced)",
                )
            )
        _check_top(data_dir, res)
    finally:
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    res.seconds = time.monotonic() - start
    return res


def _remove_interrupted_imports(data_dir: Path, store: Store, res: VerifyResult) -> Store:
    """--fix: remove what killed imports left (files, directories, their record), as the next
    import would; an import that still runs holds its lock and is left alone."""
    with store.read() as tx:
        pending = reserved_ids(tx)
    if not pending:
        return store
    from moxcli.mail.importer import cleanup_interrupted_imports

    store.close()
    for account in cleanup_interrupted_imports(data_dir, seal_max_size=_seal_max_size(data_dir)):
        res.notes.append(
            Finding("import-removed", f"removed the files of an interrupted import into account {account}")
        )
    return Store.open(data_dir, readonly=True)


def _check_pages(store: Store, res: VerifyResult) -> None:
    """LMDB's own structures (page headers, node bounds, key order, statistics): a flipped
    bit there is invisible to the record checksums."""
    try:
        problems = store.check_pages()
    except (OSError, ValueError, struct.error, IndexError) as exc:
        res.problem(
            "store-pages-unreadable", f"{STORE_DIR}/data.mdb", f"page structure unreadable: {type(exc).__name__}: {exc}"
        )
        return
    if problems is None:
        res.notes.append(
            Finding("pages-not-checked", "page structure not checked: the store changed too fast while verifying")
        )
        return
    for p in problems:
        res.problem("store-pages", f"{STORE_DIR}/data.mdb", f"page structure: {p}")


def _first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


def _open_store(data_dir: Path, res: VerifyResult) -> tuple[Store | None, Path | None]:
    """Open DIR's store read-only, or a migrated copy of it; problems go to ``res``."""
    data_file = data_dir / STORE_DIR / "data.mdb"
    rel = f"{STORE_DIR}/data.mdb"
    if not data_file.exists():
        res.problem("store-missing", rel, "missing: no store in this directory")
        return None, None
    why = data_file_problem(data_file)
    if why:
        res.problem("store-unreadable", rel, why)
        return None, None
    why = probe_store(data_dir)
    if why:
        res.problem("store-unreadable", rel, why)
        return None, None
    try:
        return Store.open(data_dir, readonly=True), None
    except StoreNeedsMigration as exc:
        old = exc.version
    except MoxcliError as exc:
        res.problem("store-unreadable", STORE_DIR, str(exc).replace(str(data_dir / STORE_DIR) + ": ", ""))
        return None, None
    # No current moxcli writes to a store of an older schema (a writable open migrates it
    # first), so a file copy is consistent; the migration runs on the copy only.
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="moxcli-verify-"))
    try:
        (tmp / STORE_DIR).mkdir(mode=0o700)
        shutil.copyfile(data_file, tmp / STORE_DIR / "data.mdb")
        Store.open(tmp).close()
        why = probe_store(tmp)
        if why:
            res.problem("store-migration-failed", rel, f"migrated copy: {why}")
            return None, tmp
        store = Store.open(tmp, readonly=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"{tmp}: cannot make a copy of the store to migrate: {exc.strerror}") from None
    except Exception as exc:  # whatever a migration step raises: this store does not migrate
        what = str(exc) if isinstance(exc, MoxcliError) else f"{type(exc).__name__}: {exc}"
        res.problem("store-migration-failed", STORE_DIR, f"migrating a copy from schema version {old} failed: {what}")
        return None, tmp
    res.migrated_from = old
    res.notes.append(
        Finding(
            "store-migrated-copy",
            f"the store has schema version {old}; verified a copy migrated to version {SCHEMA_VERSION}. "
            f"{data_dir} was not changed: the first writable open by this moxcli migrates it (make a backup first)",
        )
    )
    return store, tmp


class _Checker:
    """One pass over the records in a single read transaction, then over the files."""

    def __init__(self, data_dir: Path, res: VerifyResult, fix: bool) -> None:
        self.data_dir = data_dir
        self.data_s = str(data_dir) + "/"
        self.res = res
        self.fix = fix
        self.accounts: set[str] = set()
        self.mailboxes: dict[tuple[str, int], dict[str, Any]] = {}
        self.sums: dict[tuple[str, int], list[int]] = {}
        self.message_ids: dict[str, IdSet] = {}
        self.queue_ids = IdSet()
        self.queue_unlinking: set[int] = set()
        self.sequences: dict[str, int] = {}
        self.reserved: dict[str, list[tuple[int, int]]] = {}
        self.vanished: list[int] = []
        self.real_dirs: dict[str, bool] = {}
        self.bytes = 0

    def run(self, store: Store) -> None:
        res = self.res
        with store.read() as tx:
            res.schema_version = meta_value(tx, "schema_version")
            self._accounts(tx)
            self.sequences["queue"] = self._sequence(tx, qstore.SEQUENCE)
            self.queue_unlinking = set(qstore.unlinking(tx))
            self.reserved = reserved_ids(tx, self.res)
            for acc in self.accounts | set(self.reserved):
                self.sequences[acc] = self._sequence(tx, MESSAGE_SEQUENCE.format(account=acc))
            self._mailboxes(tx)
            self._mailbox_names(tx)
            self._messages(tx)
            self._queue(tx)
            for t in TABLES:
                if t.name not in res.counts:
                    self._generic(tx, t)
        if self.vanished:
            self._vanished_queue_files(store)
        self._check_counters()
        self._account_files()
        self._queue_files()
        res.counts["message_bytes"] = self.bytes

    def _vanished_queue_files(self, store: Store) -> None:
        """A queue file missing for a record of the snapshot is a problem only if the record is
        still there now: delivery removes the record first, then the file."""
        with store.read() as tx:
            for msg_id in self.vanished:
                rel = f"queue/{msg_path(msg_id)}"
                if tx.exists(QUEUE, u64(msg_id)):
                    self.res.problem("file-missing", rel, f"missing (referenced by {key_text(QUEUE, u64(msg_id))})")
                else:
                    self.res.warning("queue-file-left", rel, "left the queue while verifying")

    def _sequence(self, tx: Txn, name: str) -> int:
        """The last id a sequence handed out (a broken record counts as 0, reported here or by
        the META decode pass)."""
        value = meta_value(tx, "seq:" + name, 0)
        if not isinstance(value, int) or value < 0:
            self.res.problem(
                "sequence-invalid", f"{STORE_DIR}/meta/seq:{name}", f"sequence value {value!r} is not a number"
            )
            return 0
        return value

    def _records(self, tx: Txn, table: Table) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Every record that decodes under its version; the others become problems."""
        n = 0
        for key, raw in tx.scan_raw(table):
            n += 1
            try:
                rec = decode(table, key, raw)
            except StoreError as exc:
                self.res.problem("record-invalid", key_text(table, key), decode_error(table, key, exc))
                continue
            yield key, rec
        self._count(tx, table, n)

    def _count(self, tx: Txn, table: Table, n: int) -> None:
        self.res.counts[table.name] = n
        stat = tx.count(table)
        if stat != n:
            self.res.problem(
                "table-count-mismatch",
                f"{STORE_DIR}/{table.name}",
                f"table statistics say {stat} entries but a scan found {n}",
            )

    def _split(self, table: Table, key: bytes, nparts: int) -> list[str | int] | None:
        try:
            parts = split_key(key, table.int_parts)
        except (UnicodeDecodeError, struct.error, ValueError):
            parts = []
        if len(parts) != nparts:
            self.res.problem("key-invalid", key_text(table, key), f"key does not match the layout '{table.key_layout}'")
            return None
        return parts

    def _accounts(self, tx: Txn) -> None:
        for key, rec in self._records(tx, ACCOUNT):
            name = key.decode("utf-8", "replace")
            if rec.get("name") != name:
                self.res.problem(
                    "account-name-mismatch",
                    key_text(ACCOUNT, key),
                    f"record name {rec.get('name')!r} differs from its key",
                )
            try:
                check_account_name(name)
            except PathError as exc:
                self.res.problem("account-invalid", key_text(ACCOUNT, key), str(exc))
                continue
            self.accounts.add(name)

    def _mailboxes(self, tx: Txn) -> None:
        for key, rec in self._records(tx, MAILBOX):
            parts = self._split(MAILBOX, key, 2)
            if parts is None:
                continue
            acc, mb_id = parts
            where = key_text(MAILBOX, key)
            if acc not in self.accounts:
                self.res.problem("account-missing", where, f"account {acc!r} does not exist")
            if rec.get("id") != mb_id:
                self.res.problem("id-mismatch", where, f"record id {rec.get('id')!r} differs from its key")
            for name in ("uidnext", "messages", "size"):
                if not isinstance(rec.get(name), int):
                    self.res.problem("field-invalid", where, f"field {name} is {rec.get(name)!r}, not a number")
                    break
            else:
                self.mailboxes[(str(acc), int(mb_id))] = rec
                self.sums[(str(acc), int(mb_id))] = [0, 0]

    def _mailbox_names(self, tx: Txn) -> None:
        n = 0
        named: set[tuple[str, int]] = set()
        for key, raw in tx.scan_raw(MAILBOX_BY_NAME):
            n += 1
            where = key_text(MAILBOX_BY_NAME, key)
            parts = self._split(MAILBOX_BY_NAME, key, 2)
            if parts is None:
                continue
            if len(raw) != 8:
                self.res.problem("index-invalid", where, "index value is not a mailbox id")
                continue
            acc, name = str(parts[0]), parts[1]
            mb = self.mailboxes.get((acc, from_u64(raw)))
            if mb is None:
                self.res.problem(
                    "mailbox-missing", where, f"points to mailbox id {from_u64(raw)}, which does not exist"
                )
            elif mb.get("name") != name:
                self.res.problem(
                    "index-mismatch", where, f"points to mailbox id {from_u64(raw)}, which is named {mb.get('name')!r}"
                )
            else:
                named.add((acc, from_u64(raw)))
        self._count(tx, MAILBOX_BY_NAME, n)
        for (acc, mb_id), mb in self.mailboxes.items():
            if (acc, mb_id) not in named:
                self.res.problem(
                    "index-entry-missing",
                    key_text(MAILBOX, text_key(acc, mb_id)),
                    f"mailbox {mb.get('name')!r} is missing from the name index",
                )

    def _message_key(self, key: bytes) -> tuple[str, int, int] | None:
        parsed = message_key(key)
        if parsed is not None:
            return parsed
        parts = self._split(MESSAGE, key, 3)
        return None if parts is None else (str(parts[0]), int(parts[1]), int(parts[2]))

    def _messages(self, tx: Txn) -> None:
        """Per message: key, mailbox, uid, id, file; runs 100,000s of times, so the record's
        readable name is only made for a problem."""
        res = self.res
        for key, rec in self._records(tx, MESSAGE):
            parsed = self._message_key(key)
            if parsed is None:
                continue
            acc, mb_id, uid = parsed
            known = acc in self.accounts
            if not known:
                res.problem("account-missing", key_text(MESSAGE, key), f"account {acc!r} does not exist")
            mb = self.mailboxes.get((acc, mb_id))
            if mb is None:
                res.problem(
                    "mailbox-missing", key_text(MESSAGE, key), f"mailbox id {mb_id} of account {acc!r} does not exist"
                )
            elif uid >= mb["uidnext"]:
                res.problem(
                    "uid-invalid",
                    key_text(MESSAGE, key),
                    f"uid {uid} is not below the mailbox's uidnext {mb['uidnext']}",
                )
            if rec.get("uid") != uid or rec.get("mailbox_id") != mb_id:
                res.problem(
                    "id-mismatch",
                    key_text(MESSAGE, key),
                    f"record uid {rec.get('uid')!r} / mailbox_id {rec.get('mailbox_id')!r} differ from its key",
                )
            if not _str_list(rec.get("flags", [])) or not _str_list(rec.get("keywords", [])):
                res.problem("field-invalid", key_text(MESSAGE, key), "flags and keywords must be lists of text")
            msg_id, size = rec.get("id"), rec.get("size")
            if not isinstance(msg_id, int) or msg_id < 1 or not isinstance(size, int) or size < 0:
                res.problem(
                    "field-invalid", key_text(MESSAGE, key), f"id {msg_id!r} / size {size!r} are not valid numbers"
                )
                continue
            if mb is not None:
                s = self.sums[(acc, mb_id)]
                s[0] += 1
                s[1] += size
            if not known:
                continue  # no sequence to check against; maybe not even a valid directory name
            if msg_id > self.sequences[acc]:
                # The sequence would hand this id out again (and overwrite the file).
                res.problem(
                    "id-beyond-sequence",
                    key_text(MESSAGE, key),
                    f"message id {msg_id} is beyond the last id handed out ({self.sequences[acc]})",
                )
                continue
            if not self.message_ids.setdefault(acc, IdSet()).add(msg_id):
                res.problem(
                    "id-duplicate",
                    key_text(MESSAGE, key),
                    f"message id {msg_id} is used by another message of account {acc!r}",
                )
                continue
            self._check_file(f"accounts/{acc}/msg/{msg_path(msg_id)}", size, 0, MESSAGE, key)

    def _queue(self, tx: Txn) -> None:
        res = self.res
        for key, rec in self._records(tx, QUEUE):
            where = key_text(QUEUE, key)
            if len(key) != 8:
                res.problem("key-invalid", where, "key is not a queue id")
                continue
            msg_id = from_u64(key)
            if rec.get("id") != msg_id:
                res.problem("id-mismatch", where, f"record id {rec.get('id')!r} differs from its key")
            prefix = rec.get("prefix", b"")
            if isinstance(prefix, str):
                prefix = prefix.encode("utf-8")
            size = rec.get("size")
            if not isinstance(size, int) or not isinstance(prefix, bytes):
                res.problem("field-invalid", where, f"size {size!r} or prefix are not valid")
                continue
            if msg_id > self.sequences["queue"]:
                res.problem(
                    "id-beyond-sequence",
                    where,
                    f"queue id {msg_id} is beyond the last id handed out ({self.sequences['queue']})",
                )
                continue
            self.queue_ids.add(msg_id)
            rel = f"queue/{msg_path(msg_id)}"
            if not os.path.lexists(self.data_s + rel):
                self.vanished.append(msg_id)  # decided after the pass: delivery may have removed it
                continue
            self._check_file(rel, size, len(prefix), QUEUE, key)

    def _real_dir(self, rel_dir: str) -> bool:
        """Whether every level of ``rel_dir`` is a directory, not a symlink (cached)."""
        ok = self.real_dirs.get(rel_dir)
        if ok is None:
            parent, _, _ = rel_dir.rpartition("/")
            try:
                mode = os.lstat(self.data_s + rel_dir).st_mode
                ok = stat.S_ISDIR(mode) and (not parent or self._real_dir(parent))
            except OSError:
                ok = True  # missing: the file check below reports it
            self.real_dirs[rel_dir] = ok
        return ok

    def _check_file(self, rel: str, size: int, prefix: int, table: Table, key: bytes) -> None:
        rel_dir = rel.rpartition("/")[0]
        if not self._real_dir(rel_dir):
            self.res.problem(
                "symlink-not-followed",
                rel,
                f"a directory on its path is a symlink, not followed (referenced by {key_text(table, key)})",
            )
            return
        try:
            st = os.lstat(self.data_s + rel)
            if not stat.S_ISREG(st.st_mode):
                self.res.problem(
                    "symlink-not-followed",
                    rel,
                    f"not a regular file (a symlink?), not followed (referenced by {key_text(table, key)})",
                )
                return
        except FileNotFoundError:
            self.res.problem("file-missing", rel, f"missing (referenced by {key_text(table, key)})")
            return
        except OSError as exc:
            self.res.problem(
                "file-unreadable", rel, f"cannot read: {exc.strerror} (referenced by {key_text(table, key)})"
            )
            return
        self.bytes += st.st_size
        if prefix + st.st_size != size:
            with_prefix = f" + {prefix} bytes of prefix" if prefix else ""
            self.res.problem(
                "file-size-mismatch",
                rel,
                f"file has {st.st_size} bytes{with_prefix}, but {key_text(table, key)} says size {size}",
            )

    def _generic(self, tx: Txn, table: Table) -> None:
        """Decode every record; index entries must point at their record (both directions
        for the indexes whose layout the store modules document, see _index_keys)."""
        if table.name not in INDEX_TABLES:
            for key, rec in self._records(tx, table):
                for index, ikey, value in _index_keys(table, key, rec):
                    raw = tx.get_raw(index, ikey)
                    if raw is None:
                        self.res.problem(
                            "index-entry-missing",
                            key_text(table, key),
                            f"index entry {key_text(index, ikey)} is missing",
                        )
                    elif value is not None and raw != value:
                        self.res.problem(
                            "index-mismatch",
                            key_text(index, ikey),
                            f"index value {raw!r} does not match {key_text(table, key)} ({value!r})",
                        )
            return
        n = 0
        for key, raw in tx.scan_raw(table):
            n += 1
            target = _index_target(table, key, raw)
            if target is not None and not tx.exists(*target):
                self.res.problem(
                    "index-target-missing", key_text(table, key), f"points to {key_text(*target)}, which does not exist"
                )
        self._count(tx, table, n)

    def _check_counters(self) -> None:
        for (acc, mb_id), mb in self.mailboxes.items():
            count, size = self.sums[(acc, mb_id)]
            if mb["messages"] != count or mb["size"] != size:
                self.res.problem(
                    "counters-mismatch",
                    key_text(MAILBOX, text_key(acc, mb_id)),
                    f"mailbox {mb.get('name')!r} counters say {mb['messages']} messages / "
                    f"{mb['size']} bytes, its messages add up to {count} / {size}",
                )

    def _account_files(self) -> None:
        accounts_dir = self.data_dir / "accounts"
        files = 0
        if accounts_dir.is_dir():
            for entry in sorted(os.scandir(accounts_dir), key=lambda e: e.name):
                rel = f"accounts/{entry.name}"
                if not entry.is_dir(follow_symlinks=False):
                    self.res.warning("not-a-directory", rel, "not a directory, ignoring")
                elif entry.name not in self.accounts and entry.name in self.reserved:
                    # A new account's first import was killed before its commit: only its
                    # reserved files exist. The next import or verifydata --fix removes them.
                    self.res.warning(
                        "import-leftover",
                        rel,
                        "account directory of an unfinished import (verifydata --fix removes it)",
                    )
                    files += self._walk_ids(
                        rel + "/msg", IdSet(), self.sequences[entry.name], self.reserved[entry.name]
                    )
                elif entry.name not in self.accounts:
                    self.res.problem("account-dir-orphan", rel, "account directory without an account record")
                else:
                    ids = self.message_ids.get(entry.name, IdSet())
                    files += self._walk_ids(
                        rel + "/msg", ids, self.sequences[entry.name], self.reserved.get(entry.name, [])
                    )
        self.res.counts["message_files"] = files

    def _queue_files(self) -> None:
        self.res.counts["queue_files"] = self._walk_ids(
            "queue", self.queue_ids, self.sequences["queue"], removed=self.queue_unlinking
        )

    def _walk_ids(
        self,
        rel_root: str,
        referenced: IdSet,
        sequence: int,
        reserved: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
        removed: set[int] | frozenset[int] = frozenset(),
    ) -> int:
        """Compare a message directory with the referenced ids; returns the referenced files seen."""
        root = self.data_dir / rel_root
        if root.is_symlink() or (rel_root.count("/") and not self._real_dir(rel_root.rpartition("/")[0])):
            self.res.problem("symlink-not-followed", rel_root, "is a symlink, not followed")
            return 0
        if not root.is_dir():
            return 0
        seen = 0
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            rel_dir = f"{rel_root}/{entry.name}"
            if not entry.is_dir(follow_symlinks=False):
                self.res.warning("file-unrecognized", rel_dir, "unrecognized file, ignoring")
                continue
            for f in sorted(os.scandir(entry.path), key=lambda e: e.name):
                rel = f"{rel_dir}/{f.name}"
                msg_id = parse_msg_path(f"{entry.name}/{f.name}")
                if msg_id is None or not f.is_file(follow_symlinks=False):
                    what = (
                        "temporary file of an interrupted write"
                        if f.name.startswith(".")
                        else "not a message file name"
                    )
                    self.res.warning("file-unrecognized", rel, f"{what}, ignoring")
                elif msg_id in referenced:
                    seen += 1
                elif any(lo <= msg_id <= hi for lo, hi in reserved):
                    # moxcli.mail.importer reserves ids before writing files; the next import
                    # of the account removes what a killed one left. Never moved: it may run.
                    self.res.warning(
                        "import-leftover", rel, f"not referenced, id {msg_id} is reserved by an unfinished import"
                    )
                elif msg_id in removed:
                    # Its record was deleted and the file noted for unlinking in one commit
                    # (moxcli.store.queue.note_removed): a run killed before the unlink.
                    self.res.warning(
                        "queue-file-removed",
                        rel,
                        "not referenced, its record was removed; the next queue run deletes it",
                    )
                elif msg_id > sequence:
                    # Written by a transaction that aborted or has not committed yet: the id
                    # is handed out again and the file overwritten. Never moved: a running
                    # writer may be about to commit it.
                    self.res.warning(
                        "write-leftover",
                        rel,
                        f"not referenced, id {msg_id} is beyond the last one handed out ({sequence}): "
                        "left by an aborted or running write",
                    )
                elif self.fix:
                    self._move(rel)
                else:
                    self.res.problem("file-unreferenced", rel, "not referenced by any record (--fix moves it away)")
        return seen

    def _move(self, rel: str) -> None:
        dest = self.data_dir / MOVED_DIR / rel
        n = 1
        while dest.exists():
            dest = self.data_dir / MOVED_DIR / f"{rel}.{n}"
            n += 1
        move_file(self.data_dir, self.data_dir / rel, dest)  # never out of the data directory
        self.res.moved.append((rel, str(dest.relative_to(self.data_dir))))


def meta_value(tx: Txn, name: str, default: Any = None) -> Any:
    """A meta value, or ``default`` when its record does not decode."""
    try:
        return tx.meta(name, default)
    except StoreError:
        return default


def _index_keys(table: Table, key: bytes, rec: dict[str, Any]) -> list[tuple[Table, bytes, bytes | None]]:
    """Index entries a record must have: (index table, key, value or None for any), from the
    layouts moxcli.tlsrpt.resultsdb, moxcli.store.tlsreports and .dmarc document."""
    try:
        if table is TLS_RESULT:
            day, policy, rcpt = split_key(key)
            return [
                (
                    TLS_RESULT_BY_RCPT,
                    text_key(str(day), str(rcpt), str(policy)),
                    b"\x01" if rec.get("send_report") else b"\x00",
                )
            ]
        # The dedupe key entry may point at an older copy of the same report (value None: any).
        if table is TLS_REPORT_IN:
            by_domain = [
                (TLS_REPORT_IN_BY_DOMAIN, text_key(d, from_u64(key)), None) for d in rec.get("policy_domains", [])
            ]
            return [*by_domain, (TLS_REPORT_IN_BY_KEY, store_tlsreports.dedupe_key(rec), None)]
        if table is DMARC_REPORT_IN:
            return [
                (DMARC_REPORT_IN_BY_DOMAIN, text_key(rec["policy_domain"], from_u64(key)), None),
                (DMARC_REPORT_IN_BY_KEY, store_dmarc.report_dedupe_key(rec), None),
            ]
    except (ValueError, TypeError, KeyError, struct.error):
        return []  # a malformed record: its own checks report it
    return []


def _index_target(index: Table, key: bytes, value: bytes) -> tuple[Table, bytes] | None:
    """The record an index entry points at."""
    try:
        if index is TLS_REPORT_IN_BY_KEY:
            return TLS_REPORT_IN, value
        if index is DMARC_REPORT_IN_BY_KEY:
            return DMARC_REPORT_IN, value
        if index is TLS_RESULT_BY_RCPT:
            day, rcpt, policy = split_key(key)
            return TLS_RESULT, text_key(str(day), str(policy), str(rcpt))
        if index in (TLS_REPORT_IN_BY_DOMAIN, DMARC_REPORT_IN_BY_DOMAIN):
            _domain, rid = split_key(key, (1,))
            return (TLS_REPORT_IN if index is TLS_REPORT_IN_BY_DOMAIN else DMARC_REPORT_IN), u64(int(rid))
    except (ValueError, struct.error):
        return None
    return None


def reserved_ids(tx: Txn, res: VerifyResult | None = None) -> dict[str, list[tuple[int, int]]]:
    """Message id ranges reserved by imports that have not committed (or were killed).

    Read from the records moxcli.store.mail keeps for them (meta ``import:<account>``);
    a malformed one is reported to ``res`` and ignored."""
    out: dict[str, list[tuple[int, int]]] = {}
    for key, raw in tx.scan_raw(META, IMPORT_PREFIX.encode()):
        account = key.decode("utf-8", "replace")[len(IMPORT_PREFIX) :]
        try:
            info: Any = decode(META, key, raw).get("value")  # malformed shapes raise below
            ranges = [(int(lo), int(hi)) for lo, hi in info["ranges"]]
        except (StoreError, TypeError, ValueError, KeyError, AttributeError):
            if res is not None:
                res.problem("import-record-invalid", key_text(META, key), "record of an unfinished import is malformed")
            continue
        out[account] = ranges
    return out


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _seal_max_size(data_dir: Path) -> int:
    """``[store] seal_max_size`` of DIR's config for --fix's writes (a config that does not
    load is a problem reported by _check_config; the default then)."""
    from moxcli.config import DEFAULT_SEAL_MAX_SIZE, load_config

    try:
        return load_config(data_dir / CONFIG_NAME).store.seal_max_size
    except MoxcliError:
        return DEFAULT_SEAL_MAX_SIZE


def _check_config(data_dir: Path, res: VerifyResult) -> None:
    """The config in DIR parses and its DKIM keys exist: a restored backup must be usable."""
    from moxcli.config import load_config
    from moxcli.perms import check_dkim_keys

    path = data_dir / CONFIG_NAME
    if not path.exists():
        return
    try:
        cfg = load_config(path, required=True)
    except MoxcliError as exc:
        res.problem("config-invalid", CONFIG_NAME, str(exc).replace(f"{path}: ", ""))
        return
    check_dkim_keys(cfg)  # a log warning once per run, as for the data directory
    for domain in cfg.domains.values():
        for sel in domain.dkim.selectors.values():
            if not sel.private_key_file.is_file():
                res.problem(
                    "dkim-key-missing",
                    CONFIG_NAME,
                    f"domain {domain.name}: DKIM selector {sel.name}: key file {sel.private_key_file} is missing",
                )


def _check_top(data_dir: Path, res: VerifyResult) -> None:
    _check_config(data_dir, res)
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        if entry.name not in layout.KNOWN:
            res.warning("file-unrecognized", entry.name, "unrecognized file, ignoring")
    version_file = data_dir / VERSION_FILE
    if version_file.exists():
        made_by = _first_line(version_file)
        if made_by != __version__:
            res.notes.append(
                Finding(
                    "written-by-other-version",
                    f"this data was written by moxcli {made_by or '(unknown)'}, verified with moxcli {__version__}: "
                    "once this moxcli opens it for writing its store may be upgraded; make a fresh backup then",
                )
            )

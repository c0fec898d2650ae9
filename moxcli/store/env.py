"""The LMDB environment: open, transactions, record encoding, map growth.

LMDB gives us what the store promises: one writer at a time across processes, readers that
never block behind a writer (MVCC), and a file that is consistent after a crash at any point
(copy-on-write pages, the meta page is switched at commit).
"""

from __future__ import annotations

import functools
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import lmdb
import msgpack

from moxcli import osdep
from moxcli.errors import ConfigError, StoreError, UsageError
from moxcli.store import migrate
from moxcli.store.datafile import data_file_problem
from moxcli.store.files import ensure_dir, private_dir
from moxcli.store.schema import META, SCHEMA_VERSION, TABLES, Table
from moxcli.store.seal import DEFAULT_SEAL_MAX_SIZE, discard_leftovers, remove_seal, write_seal

if TYPE_CHECKING:
    import ctypes

T = TypeVar("T")

DEFAULT_MAP_SIZE = 1 << 30
MAX_MAP_SIZE = 1 << 40
STORE_DIR = "store"


class StoreDamaged(UsageError):
    """The data file cannot be mapped safely (truncated, not LMDB): refused before LMDB sees it."""


class StoreNeedsMigration(StoreError):
    """A read-only open found an older schema: the caller decides (migrate a copy, or reopen writable)."""

    def __init__(self, path: Path, version: int) -> None:
        super().__init__(
            f"{path}: store has schema version {version}, this moxcli uses {SCHEMA_VERSION}; it needs a migration"
        )
        self.version = version


# Every record value ends with a CRC-32 of its key and msgpack payload (schema 2 on): LMDB
# keeps no checksums, so without it a flipped bit in a record is read as valid data.
_CRC = struct.Struct(">I")


def seal(key: bytes, payload: bytes) -> bytes:
    """``payload`` with the checksum trailer that :func:`decode` verifies."""
    return payload + _CRC.pack(zlib.crc32(payload, zlib.crc32(key)))


def unseal(key: bytes, raw: bytes) -> bytes | None:
    """The payload of a sealed value, or None when its checksum does not match."""
    if len(raw) < _CRC.size:
        return None
    payload = raw[: -_CRC.size]
    if _CRC.unpack(raw[-_CRC.size :])[0] != zlib.crc32(payload, zlib.crc32(key)):
        return None
    return payload


def encode(table: Table, key: bytes, record: dict[str, Any]) -> bytes:
    return seal(key, msgpack.packb({**record, "_v": table.version}, use_bin_type=True))


class RecordFieldMissing(StoreError, KeyError):
    """A field a reader needs is not in the record: a damaged (or foreign) store, one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Record(dict[str, Any]):
    """A decoded record: a missing field is a StoreError naming table and key, not a KeyError
    that would end a command with a traceback."""

    table: str = ""
    key: bytes = b""

    def __missing__(self, field: str) -> Any:
        raise RecordFieldMissing(
            f"table {self.table}: record {self.key!r} has no field {field!r} (damaged store? run moxcli verifydata)"
        )


F = TypeVar("F", bound=Callable[..., Any])


def record_reader(table: Table) -> Callable[[F], F]:
    """Turn what a malformed record makes a converter raise (missing or mistyped fields) into
    a one-line StoreError."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except StoreError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise StoreError(
                    f"table {table.name}: a record has unexpected content ({type(exc).__name__}: {str(exc)[:100]}); "
                    "run moxcli verifydata"
                ) from None

        return inner  # type: ignore[return-value]

    return wrap


def decode(table: Table, key: bytes, raw: bytes) -> dict[str, Any]:
    """The record of a stored value; StoreError (never another exception) when it is damaged."""
    payload = unseal(key, raw)
    if payload is None:
        raise StoreError(f"table {table.name}: record {key!r} fails its checksum (the store is damaged)")
    return _unpack(table, key, payload)


def _unpack(table: Table, key: bytes, payload: bytes) -> dict[str, Any]:
    try:
        record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StoreError(f"table {table.name}: record {key!r} does not decode: {exc}") from None
    if not isinstance(record, dict):
        raise StoreError(f"table {table.name}: record {key!r} is not a map")
    version = record.get("_v")
    if not isinstance(version, int) or version > table.version or version < 1:
        raise StoreError(f"table {table.name}: record {key!r} has unknown version {version!r}")
    out = Record(record)
    out.table = table.name
    out.key = key
    return out


def decode_unsealed(table: Table, key: bytes, raw: bytes) -> dict[str, Any]:
    """A record as schema 1 stored it (no checksum): for reading the schema version and migrating."""
    return _unpack(table, key, raw)


class Txn:
    """A read or write transaction; records are dicts, keys are bytes from schema key functions."""

    def __init__(self, store: Store, txn: lmdb.Transaction, write: bool) -> None:
        self._store = store
        self._txn = txn
        self.write = write

    def _db(self, table: Table) -> Any:
        return self._store._dbs.get(table.name)

    def get(self, table: Table, key: bytes) -> dict[str, Any] | None:
        db = self._db(table)
        if db is None:
            return None
        raw = self._txn.get(key, db=db)
        return None if raw is None else decode(table, key, cast(bytes, raw))

    def exists(self, table: Table, key: bytes) -> bool:
        db = self._db(table)
        return db is not None and self._txn.get(key, db=db) is not None

    def put(self, table: Table, key: bytes, record: dict[str, Any], overwrite: bool = True) -> bool:
        """Store a record; with overwrite=False, returns False if the key exists."""
        return self._txn.put(key, encode(table, key, record), db=self._db(table), overwrite=overwrite)

    def put_raw(self, table: Table, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        """Index entries: a key whose value carries no record. With overwrite=False, an
        existing key is kept (one lookup, not a get and a put): returns False then."""
        return bool(self._txn.put(key, value, db=self._db(table), overwrite=overwrite))

    def get_raw(self, table: Table, key: bytes) -> bytes | None:
        db = self._db(table)
        return None if db is None else cast(bytes | None, self._txn.get(key, db=db))

    def delete(self, table: Table, key: bytes) -> bool:
        return self._txn.delete(key, db=self._db(table))

    def scan_raw(
        self, table: Table, prefix: bytes = b"", start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys and raw values with ``prefix``, in key order (from ``start`` if given)."""
        db = self._db(table)
        if db is None:
            return
        with self._txn.cursor(db=db) as cur:
            if reverse:
                upper = _prefix_upper(prefix) if prefix else None
                ok = cur.prev() if upper is not None and cur.set_range(upper) else cur.last()
                while ok:
                    key = cast(bytes, cur.key())
                    if not key.startswith(prefix):
                        return
                    yield key, cast(bytes, cur.value())
                    ok = cur.prev()
                return
            ok = cur.set_range(max(prefix, start or b"")) if (prefix or start) else cur.first()
            while ok:
                key = cast(bytes, cur.key())
                if not key.startswith(prefix):
                    return
                yield key, cast(bytes, cur.value())
                ok = cur.next()

    def scan(
        self, table: Table, prefix: bytes = b"", start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, dict[str, Any]]]:
        for key, raw in self.scan_raw(table, prefix, start, reverse):
            yield key, decode(table, key, raw)

    def count(self, table: Table) -> int:
        db = self._db(table)
        return 0 if db is None else self._txn.stat(db)["entries"]

    def delete_prefix(self, table: Table, prefix: bytes) -> int:
        keys = [k for k, _ in self.scan_raw(table, prefix)]
        for k in keys:
            self.delete(table, k)
        return len(keys)

    def meta(self, name: str, default: Any = None) -> Any:
        record = self.get(META, name.encode())
        return default if record is None else record.get("value", default)

    def set_meta(self, name: str, value: Any) -> None:
        self.put(META, name.encode(), {"value": value})

    def next_id(self, sequence: str) -> int:
        """Allocate the next id (1, 2, ...) of a named sequence; rolled back with the txn."""
        n = int(self.meta("seq:" + sequence, 0)) + 1
        self.set_meta("seq:" + sequence, n)
        return n

    def reserve_ids(self, sequence: str, n: int) -> int:
        """Allocate ``n`` consecutive ids of a sequence at once (one meta read and write, not
        one per id): returns the first; the same ids as ``n`` calls of next_id."""
        first = int(self.meta("seq:" + sequence, 0)) + 1
        if n > 0:
            self.set_meta("seq:" + sequence, first + n - 1)
        return first

    def peek_id(self, sequence: str) -> int:
        """The last id handed out by a sequence (0 if none)."""
        return int(self.meta("seq:" + sequence, 0))


_MADV_DONTNEED = 4  # <sys/mman.h>


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    import ctypes  # here: only drop_read_pages needs it, and it costs every store-using command start-up

    return ctypes.CDLL(None, use_errno=True)


def _prefix_upper(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with prefix (None if there is none)."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


class Store:
    """One LMDB environment at ``<data>/store``: open with :meth:`open`."""

    def __init__(
        self, env: lmdb.Environment, path: Path, readonly: bool, seal_max_size: int = DEFAULT_SEAL_MAX_SIZE
    ) -> None:
        self._env = env
        self.path = path
        self.readonly = readonly
        self.seal_max_size = seal_max_size
        self._committed = False  # a write transaction was committed: seal the store on close
        self._dbs: dict[str, Any] = {}

    @classmethod
    def open(
        cls,
        data_dir: Path,
        readonly: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        migrate_old: bool = True,
        seal_max_size: int = DEFAULT_SEAL_MAX_SIZE,
    ) -> Store:
        """Open (creating when writable) the store of a data directory.

        Read-only opens never create anything and never block behind a writer. A writable open
        of an older schema migrates it in one write transaction; a newer one is refused.
        ``seal_max_size``: the largest data file :meth:`close` seals (0: none; moxcli.store.seal).
        """
        path = Path(data_dir) / STORE_DIR
        data_file = path / "data.mdb"
        if readonly:
            if not data_file.exists():
                raise StoreError(f"{path}: no store here (is --data right?)")
        else:
            ensure_dir(Path(data_dir), path)  # store/ a planted symlink: refused, not followed
        for name in ("data.mdb", "lock.mdb"):
            if (path / name).is_symlink():  # LMDB would write wherever it points
                raise StoreError(f"{path / name}: a symlink, not followed; the store files must be files")
        if data_file.exists():
            why = data_file_problem(data_file)
            if why:
                raise StoreDamaged(f"{data_file}: {why}; run moxcli verifydata")
        # A read-only directory (a backup on read-only media) cannot hold LMDB's lock file; with
        # nothing able to write there, reading without the reader table is safe.
        lock = not readonly or (path / "lock.mdb").exists() or os.access(path, os.W_OK)
        try:
            env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(TABLES) + 8,
                subdir=True,
                readonly=readonly,
                lock=lock,
                mode=0o600,
                max_readers=256,
                # Commits sync, except in a data directory gentestdata is still making
                # (osdep.deferred_syncs: one sync of everything at its end).
                metasync=not osdep.syncs_deferred(),
                sync=not osdep.syncs_deferred(),
            )
        except lmdb.Error as exc:
            raise StoreError(f"{path}: cannot open store: {exc}") from None
        store = cls(env, path, readonly, seal_max_size)
        try:
            store._init_schema(migrate_old)
        except BaseException:
            env.close()
            raise
        return store

    def _init_schema(self, migrate_old: bool) -> None:
        if self.readonly:
            for t in TABLES:
                try:
                    self._dbs[t.name] = self._env.open_db(t.name.encode(), create=False)
                except lmdb.NotFoundError:
                    pass
                except lmdb.Error as exc:
                    raise StoreError(f"{self.path}: table {t.name}: {exc}") from None
            version = self._read_version()
            if version is None:
                raise StoreError(f"{self.path}: store has no schema version record")
            self._check_version(version)
            if version < SCHEMA_VERSION:
                raise StoreNeedsMigration(self.path, version)
            return
        with self._env.begin(write=True) as txn:
            if any(txn.get(t.name.encode()) is None for t in TABLES):  # creating a table is a write
                self._unseal()
            for t in TABLES:
                self._dbs[t.name] = self._env.open_db(t.name.encode(), txn=txn, create=True)
        version = self._read_version()
        if version is None:
            with self.write() as tx:
                tx.set_meta("schema_version", SCHEMA_VERSION)
                tx.set_meta("created", time.time())
            return
        self._check_version(version)
        if version < SCHEMA_VERSION:
            if not migrate_old:
                raise StoreNeedsMigration(self.path, version)
            with self.write() as tx:
                migrate.upgrade(tx, version, SCHEMA_VERSION)
                tx.set_meta("schema_version", SCHEMA_VERSION)

    def _read_version(self) -> int | None:
        with self.read() as tx:
            key = b"schema_version"
            raw = tx.get_raw(META, key)
            if raw is None:
                return None
            payload = unseal(key, raw)
            if payload is None:
                payload = raw  # schema 1 stored records without a checksum
            try:
                v = decode_unsealed(META, key, payload).get("value")
            except StoreError:
                v = None
            if v is None or (payload is raw and v != 1):
                raise StoreError(f"{self.path}: the schema version record is damaged; run moxcli verifydata")
        if v is not None and not isinstance(v, int):
            raise StoreError(f"{self.path}: schema version record is not a number: {v!r}")
        return v

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: store has schema version {version}, newer than this moxcli understands "
                f"({SCHEMA_VERSION}); upgrade moxcli or use a backup"
            )

    def _begin(self, write: bool) -> lmdb.Transaction:
        try:
            return self._env.begin(write=write)
        except lmdb.MapResizedError:
            self._env.set_mapsize(0)
            return self._env.begin(write=write)

    @contextmanager
    def read(self) -> Iterator[Txn]:
        txn = self._begin(False)
        try:
            yield Txn(self, txn, False)
        finally:
            txn.abort()

    @contextmanager
    def write(self) -> Iterator[Txn]:
        """A write transaction: committed when the block ends, aborted on any exception."""
        if self.readonly:
            raise StoreError(f"{self.path}: store opened read-only")
        self._grow_if_needed()
        txn = self._begin(True)
        try:
            yield Txn(self, txn, True)
            self._unseal()
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except lmdb.MapFullError:
            self._grow()
            raise StoreError(f"{self.path}: store map was full; it has been grown, retry the operation") from None

    def update(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a write transaction, growing the map and retrying when it is full."""
        while True:
            try:
                with self.write() as tx:
                    return fn(tx)
            except lmdb.MapFullError:
                self._grow()

    def _grow_if_needed(self) -> None:
        info = self._env.info()
        used = (info["last_pgno"] + 1) * self._env.stat()["psize"]
        if used * 2 > info["map_size"]:
            self._grow()

    def _grow(self) -> None:
        size = self._env.info()["map_size"]
        if size >= MAX_MAP_SIZE:
            raise StoreError(f"{self.path}: store is at its maximum size ({MAX_MAP_SIZE} bytes)")
        self._env.set_mapsize(min(size * 2, MAX_MAP_SIZE))

    def copy_to(self, dest: Path, compact: bool = True) -> None:
        """A consistent copy of the whole environment, taken in one read transaction."""
        private_dir(dest)
        # Our own new file (0600 whatever the umask, never through a planted symlink);
        # LMDB's copy-to-path would create it with the umask's mode.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | osdep.O_NOFOLLOW | osdep.O_CLOEXEC | osdep.O_BINARY
        fd = os.open(dest / "data.mdb", flags, 0o600)
        try:
            self._env.copyfd(fd, compact=compact)
        finally:
            os.close(fd)

    def check_pages(self) -> list[str] | None:
        """Problems of the data file's page structure, as of one read transaction (None: the
        store changed too fast to check; see :func:`datafile.check_pages`)."""
        from moxcli.store.datafile import check_pages

        names = frozenset(t.name.encode() for t in TABLES)
        for _ in range(3):
            with self.read() as tx:
                got = check_pages(self.path / "data.mdb", names, tx._txn.id())
            if got is not None:
                return got[0]
        return None

    def stat(self) -> dict[str, int]:
        """Entries per table, and the environment's size figures."""
        out: dict[str, int] = {}
        with self.read() as tx:
            for t in TABLES:
                out[t.name] = tx.count(t)
        info = self._env.info()
        out["map_size"] = info["map_size"]
        out["last_pgno"] = info["last_pgno"]
        return out

    def used_bytes(self) -> int:
        """Bytes of the data file in use (up to its last page): what its map can make resident."""
        return (int(self._env.info()["last_pgno"]) + 1) * int(self._env.stat()["psize"])

    def mapped_ranges(self) -> list[tuple[int, int]]:
        """(address, length) of this process's memory maps of the store file (Linux; elsewhere
        none). The map does not move while a read transaction is open: find it once, drop often."""
        target = str(Path(self.path) / "data.mdb")
        try:
            text = Path("/proc/self/maps").read_text()
        except OSError:
            return []
        ranges = []
        for line in text.splitlines():
            if line.endswith(target):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                ranges.append((start, end - start))
        return ranges

    def drop_read_pages(self, ranges: list[tuple[int, int]] | None = None) -> None:
        """Let go of the store pages this process has read (Linux; elsewhere a no-op).

        LMDB reads through a shared, read-only memory map of the store file: every page read stays
        in the process's resident set until the map is unmapped, so a job that reads a whole large
        table looks as big as the table. MADV_DONTNEED drops those pages from the resident set;
        they stay in the page cache and are mapped again when read (the map is never written
        through, and pages visible to an open transaction are never reused, so this is safe).
        ``ranges``: from mapped_ranges(), to skip reading /proc/self/maps on every call.
        """
        ranges = self.mapped_ranges() if ranges is None else ranges
        if not ranges:
            return
        try:
            libc = _libc()
        except OSError:
            return
        import ctypes

        for start, length in ranges:
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_DONTNEED)

    def _unseal(self) -> None:
        """Before a commit (under the writer lock): the seal no longer applies once LMDB
        writes a page, which it does before the meta page with the new transaction id."""
        remove_seal(self.path.parent)
        self._committed = True

    def seal(self) -> bool:
        """Record the data file's digest for verifydata, unless it is over ``seal_max_size``
        (then the seal stays removed). Holds LMDB's writer lock meanwhile: no commit can change
        the file while it is hashed. True when sealed. An error (disk full, read-only file
        system) leaves the store unsealed: a seal is a check, never a reason for a command to fail.
        """
        data_file = self.path / "data.mdb"
        txn = self._begin(True)
        try:
            if not 0 < data_file.stat().st_size <= self.seal_max_size:
                remove_seal(self.path.parent)
                discard_leftovers(self.path.parent)
                return False
            write_seal(self.path.parent)
            return True
        except OSError:
            return False
        finally:
            txn.abort()

    def close(self) -> None:
        """Close the environment; seal the store first if this process committed to it."""
        try:
            if self._committed and not self.readonly:
                self._committed = False
                self.seal()
        finally:
            self._env.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

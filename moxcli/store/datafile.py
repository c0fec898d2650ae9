"""The LMDB data file's own header: how long the file must be, read before LMDB maps it.

LMDB maps ``data.mdb`` into memory, so a page past the end of a truncated file kills the
reading process with SIGBUS instead of raising; every open checks the length first.
"""

from __future__ import annotations

import struct
from pathlib import Path

# LMDB's meta pages (lmdb.h MDB_meta after the 16-byte page header; 64-bit build): magic,
# version, address, mapsize, two 48-byte MDB_db (the first's md_pad is the page size),
# last_pg, txnid.
_MDB_MAGIC = 0xBEEFC0DE
_META_HEAD = struct.Struct("<II")
_META_PSIZE = struct.Struct("<I")
_META_TAIL = struct.Struct("<QQ")


def data_file_problem(path: Path) -> str | None:
    """Why data.mdb cannot be read safely, or None.

    LMDB maps the file into memory, so a page past the end of a truncated file kills the
    reading process with SIGBUS; the meta pages say how long the file must be.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(160)
            if len(head) < 160 or _META_HEAD.unpack_from(head, 16) != (_MDB_MAGIC, 1):
                return f"not an LMDB data file ({size} bytes)"
            psize = _META_PSIZE.unpack_from(head, 40)[0]
            if psize < 512 or psize & (psize - 1):
                return f"meta page has an invalid page size {psize}"
            f.seek(psize)
            second = f.read(160)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    metas = []
    for page in (head, second):
        if len(page) == 160 and _META_HEAD.unpack_from(page, 16) == (_MDB_MAGIC, 1):
            last_pg, txnid = _META_TAIL.unpack_from(page, 136)
            metas.append((txnid, last_pg))
    if not metas:
        return f"truncated: {size} bytes, shorter than its two meta pages"
    _txnid, last_pg = max(metas)
    need = (last_pg + 1) * psize
    if size < need:
        return f"truncated: {size} bytes, but its last page ends at byte {need}"
    return None


def newest_txnid(path: Path) -> int | None:
    """The transaction id of data.mdb's newest meta page (None: not readable as LMDB's)."""
    try:
        with open(path, "rb") as f:
            head = f.read(160)
            if len(head) < 160:
                return None
            f.seek(_META_PSIZE.unpack_from(head, 40)[0])
            second = f.read(160)
    except (OSError, ValueError, OverflowError):
        return None
    ids = [
        _U64.unpack_from(page, 144)[0]
        for page in (head, second)
        if len(page) == 160 and _META_HEAD.unpack_from(page, 16) == (_MDB_MAGIC, 1)
    ]
    return max(ids) if ids else None


# Page layout (lmdb.h, 64-bit build): header mp_pgno u64, mp_pad u16, mp_flags u16, then
# mp_lower/mp_upper u16 (tree pages) or mp_pages u32 (overflow pages); node pointers follow.
# A node: lo u16, hi u16, flags u16, ksize u16, key, data. MDB_db: pad u32, flags u16,
# depth u16, branch/leaf/overflow page counts, entries, root (u64 each).
_PAGE = struct.Struct("<QHHHH")
_NODE = struct.Struct("<HHHH")
_DB = struct.Struct("<IHHQQQQQ")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
P_BRANCH, P_LEAF, P_OVERFLOW = 0x01, 0x02, 0x04
F_BIGDATA, F_SUBDATA = 0x01, 0x02
P_INVALID = (1 << 64) - 1
MAX_DEPTH = 32
MAX_PROBLEMS = 20


class _Walk:
    """One pass over every page reachable from the newest meta page, and the free list."""

    def __init__(self, data: bytes | memoryview, psize: int, last_pg: int, table_names: frozenset[bytes]) -> None:
        self.data = data
        self.psize = psize
        self.last_pg = last_pg
        self.tables = table_names
        self.seen = bytearray(last_pg + 1)
        self.problems: list[str] = []
        self.free: list[int] = []
        self.used: list[tuple[int, int]] = []  # byte ranges holding data (for bench/bitflip.py)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def page(self, pgno: int, what: str) -> tuple[int, int, int] | None:
        """(flags, lower, upper) of a tree page not visited before, or None (a problem)."""
        if not 2 <= pgno <= self.last_pg:
            self.problem(f"{what}: page number {pgno} is outside the file")
            return None
        if self.seen[pgno]:
            self.problem(f"{what}: page {pgno} is referenced twice")
            return None
        self.seen[pgno] = 1
        off = pgno * self.psize
        got, pad, flags, lower, upper = _PAGE.unpack_from(self.data, off)
        if got != pgno:
            self.problem(f"{what}: page {pgno} says it is page {got}")
            return None
        if pad != 0 or flags not in (P_BRANCH, P_LEAF):
            self.problem(f"{what}: page {pgno} has an invalid header (flags {flags:#x}, pad {pad})")
            return None
        if not (16 <= lower <= upper <= self.psize) or lower % 2:
            self.problem(f"{what}: page {pgno} has invalid bounds {lower}/{upper}")
            return None
        self.used.append((off, off + lower))
        self.used.append((off + upper, off + self.psize))
        return flags, lower, upper

    def tree(self, root: int, what: str, intkey: bool = False) -> dict[str, int]:
        """Walk one B-tree; returns its counts as MDB_db keeps them."""
        counts = {"depth": 0, "branch": 0, "leaf": 0, "overflow": 0, "entries": 0}
        if root != P_INVALID:
            self._node_page(root, what, 1, counts, None, None, intkey)
        return counts

    def _key(self, key: bytes, intkey: bool) -> bytes | int:
        return _U64.unpack(key)[0] if intkey and len(key) == 8 else key

    def _node_page(
        self,
        pgno: int,
        what: str,
        depth: int,
        counts: dict[str, int],
        low: bytes | int | None,
        high: bytes | int | None,
        intkey: bool,
    ) -> None:
        if depth > MAX_DEPTH:
            self.problem(f"{what}: tree deeper than {MAX_DEPTH}")
            return
        head = self.page(pgno, what)
        if head is None:
            return
        flags, lower, upper = head
        counts["depth"] = max(counts["depth"], depth)
        counts["branch" if flags == P_BRANCH else "leaf"] += 1
        off = pgno * self.psize
        n = (lower - 16) // 2
        if n == 0:
            self.problem(f"{what}: page {pgno} has no nodes")
            return
        ptrs = [_U16.unpack_from(self.data, off + 16 + 2 * i)[0] for i in range(n)]
        nodes = []
        total = 0
        for p in ptrs:
            if p < upper or p % 2 or p + 8 > self.psize:
                self.problem(f"{what}: page {pgno} has a node pointer {p} outside its node area")
                return
            lo, hi, nflags, ksize = _NODE.unpack_from(self.data, off + p)
            key = bytes(self.data[off + p + 8 : off + p + 8 + ksize])
            if flags == P_BRANCH:
                size = 8 + ksize
            else:
                dsize = lo | hi << 16
                size = 8 + ksize + (8 if nflags & F_BIGDATA else dsize)
                if nflags & ~(F_BIGDATA | F_SUBDATA):
                    self.problem(f"{what}: page {pgno} has a node with invalid flags {nflags:#x}")
                    return
            size += size & 1
            if p + size > self.psize:
                self.problem(f"{what}: page {pgno} has a node that runs past the page end")
                return
            total += size
            nodes.append((p, lo, hi, nflags, ksize, key))
        if total != self.psize - upper:
            self.problem(f"{what}: page {pgno}: its nodes fill {total} bytes, its header says {self.psize - upper}")
            return
        keys = [self._key(k, intkey) for *_, k in nodes]
        first = 1 if flags == P_BRANCH else 0  # a branch page's first key is not used
        for a, b in zip(keys[first:], keys[first + 1 :], strict=False):
            if not a < b:  # type: ignore[operator]
                self.problem(f"{what}: page {pgno} has keys out of order")
                return
        if (low is not None and keys[first:] and keys[first] < low) or (  # type: ignore[operator]
            high is not None and keys[-1] >= high  # type: ignore[operator]
        ):
            self.problem(f"{what}: page {pgno} has keys outside the range its parent gives it")
            return
        for i, (p, lo, hi, nflags, ksize, _key) in enumerate(nodes):
            if flags == P_BRANCH:
                child = lo | hi << 16 | nflags << 32
                child_low = keys[i] if i else low
                child_high = keys[i + 1] if i + 1 < len(keys) else high
                self._node_page(child, what, depth + 1, counts, child_low, child_high, intkey)
                continue
            counts["entries"] += 1
            data_at = off + p + 8 + ksize
            if nflags & F_BIGDATA:
                big = _U64.unpack_from(self.data, data_at)[0]
                if not self._overflow(big, lo | hi << 16, what, counts):
                    continue
                data_at = big * self.psize + 16
            if nflags & F_SUBDATA:
                self._named_table(_key, data_at, what)
            elif what == "free list":
                self._free_ids(data_at, lo | hi << 16)

    def _overflow(self, pgno: int, dsize: int, what: str, counts: dict[str, int]) -> bool:
        need = (16 + dsize + self.psize - 1) // self.psize
        if not 2 <= pgno <= self.last_pg:
            self.problem(f"{what}: overflow page {pgno} is outside the file")
            return False
        got, _pad, flags, pages = struct.unpack_from("<QHHI", self.data, pgno * self.psize)
        # An updated value may keep a longer run than it needs (LMDB reuses the pages).
        if got != pgno or flags != P_OVERFLOW or not need <= pages <= self.last_pg - pgno + 1:
            self.problem(f"{what}: overflow page {pgno} has an invalid header")
            return False
        if any(self.seen[pgno : pgno + pages]):
            self.problem(f"{what}: overflow page {pgno} is referenced twice")
            return False
        self.seen[pgno : pgno + pages] = b"\x01" * pages
        self.used.append((pgno * self.psize, pgno * self.psize + 16 + dsize))
        counts["overflow"] += pages
        return True

    def _named_table(self, name: bytes, at: int, what: str) -> None:
        if what != "main" or name not in self.tables:
            self.problem(f"{what}: a table named {name[:40]!r} that the schema does not know")
            return
        self.check_db(_DB.unpack_from(self.data, at), name.decode(), False)

    def _free_ids(self, at: int, dsize: int) -> None:
        if dsize < 8 or dsize % 8:
            self.problem(f"free list: an entry of {dsize} bytes")
            return
        n = _U64.unpack_from(self.data, at)[0]
        if n * 8 + 8 != dsize:
            self.problem("free list: an entry whose count does not match its size")
            return
        self.free.extend(struct.unpack_from(f"<{n}Q", self.data, at + 8))

    def check_db(self, db: tuple[int, ...], what: str, intkey: bool) -> None:
        _pad, _flags, depth, branch, leaf, overflow, entries, root = db
        got = self.tree(root, what, intkey)
        want = {"depth": depth, "branch": branch, "leaf": leaf, "overflow": overflow, "entries": entries}
        if got != want and not self.problems:
            diff = ", ".join(f"{k} {want[k]} (found {got[k]})" for k in want if got[k] != want[k])
            self.problem(f"{what}: its statistics do not match its pages: {diff}")


def check_pages(
    path: Path, table_names: frozenset[bytes], txnid: int | None = None
) -> tuple[list[str], list[tuple[int, int]]] | None:
    """Problems of data.mdb's page structure (the file must have passed data_file_problem).

    Every page reachable from the newest meta page is checked (page number, header, node
    bounds, key order, table statistics), and every page must be reachable or free exactly
    once. LMDB checks little of this itself, and record checksums cannot see a flipped page
    count or a misrouted branch key. Returns the problems and the byte ranges that hold data.

    On a live store, pass the id of an open read transaction: its pages cannot be reused
    while it is open, and the meta page of that transaction is the one walked (None is
    returned when a writer has overwritten that meta page meanwhile).
    """
    import mmap

    with open(path, "rb") as f:
        size = f.seek(0, 2)
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
            view = memoryview(m)
            try:
                return _check(view, table_names, txnid)
            finally:
                view.release()


_META_END = 16 + 136  # page header + MDB_meta (64-bit build)
P_META = 0x08


def _check_metas(data: memoryview, psize: int, walk: _Walk) -> None:
    """Both meta pages as LMDB writes them: a flipped bit in the older one, or in the
    bytes after MDB_meta, is otherwise invisible (nothing reads them until the next commit).

    LMDB creates the two meta pages from zeroed memory and later writes only the MDB_meta
    fields (mdb_env_init_meta, mdb_env_write_meta), so the rest of each page stays zero;
    commit N writes meta page N % 2, so the two transaction ids are consecutive (or both 0
    in a store never written).
    """
    txnids = []
    for n in (0, 1):
        off = n * psize
        pgno, pad, flags = struct.unpack_from("<QHH", data, off)
        magic = _META_HEAD.unpack_from(data, off + 16)
        if (pgno, pad, flags) != (n, 0, P_META) or magic != (_MDB_MAGIC, 1):
            walk.problem(f"meta page {n}: invalid header or magic")
            return
        address = _U64.unpack_from(data, off + 24)[0]
        page_size = _META_PSIZE.unpack_from(data, off + 40)[0]
        if address != 0 or page_size != psize:
            walk.problem(f"meta page {n}: fixed map address {address:#x} or page size {page_size} (not {psize})")
        txnids.append(_U64.unpack_from(data, off + 144)[0])
        if any(data[off + _META_END : off + psize]):
            walk.problem(f"meta page {n}: the bytes after its fields are not zero, as LMDB writes them")
        walk.used.append((off, off + 40))
        walk.used.append((off + 144, off + psize))
    newest = max(txnids)
    if newest and (txnids[newest & 1] != newest or txnids[1 - (newest & 1)] != newest - 1):
        walk.problem(f"meta pages: transaction ids {txnids[0]} and {txnids[1]} are not consecutive")


def _check(
    data: memoryview, table_names: frozenset[bytes], txnid: int | None
) -> tuple[list[str], list[tuple[int, int]]] | None:
    psize = _META_PSIZE.unpack_from(data, 40)[0]
    metas = []
    for n in (0, 1):
        off = n * psize
        if _META_HEAD.unpack_from(data, off + 16) == (_MDB_MAGIC, 1):
            meta_last_pg, meta_txnid = _META_TAIL.unpack_from(data, off + 136)
            metas.append((meta_txnid, n, meta_last_pg))
    if txnid is not None:
        metas = [m for m in metas if m[0] == txnid]
        if not metas:
            return None
    _txnid, newest, last_pg = max(metas)
    off = newest * psize
    walk = _Walk(data, psize, last_pg, table_names)
    walk.used.append((off, off + _META_END))
    _check_metas(data, psize, walk)
    address, _mapsize = struct.unpack_from("<QQ", data, off + 24)
    free_db = _DB.unpack_from(data, off + 40)
    main_db = _DB.unpack_from(data, off + 88)
    if address != 0:
        walk.problem(f"meta page {newest}: a fixed map address {address:#x}, never written by moxcli")
    if free_db[0] != psize:
        walk.problem(f"meta page {newest}: the free list's page size {free_db[0]} differs from {psize}")
    walk.check_db(free_db, "free list", True)
    walk.check_db(main_db, "main", False)
    for pgno in walk.free:
        if not 2 <= pgno <= last_pg or walk.seen[pgno]:
            walk.problem(f"free list: page {pgno} is outside the file or also in use")
            break
        walk.seen[pgno] = 1
    if not walk.problems:
        missing = walk.seen.find(0, 2)
        if missing >= 0:
            walk.problem(f"page {missing} is neither in use nor free")
    if txnid is not None and txnid not in (_U64.unpack_from(data, n * psize + 144)[0] for n in (0, 1)):
        return None  # two commits meanwhile: the meta pages were read while being rewritten
    return walk.problems, walk.used

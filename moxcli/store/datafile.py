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

#!/usr/bin/env python3
"""How many random bit flips in `store/data.mdb` does `moxcli verifydata` detect?

    .venv/bin/python bench/bitflip.py                  # 200 flips in a gentestdata store
    .venv/bin/python bench/bitflip.py --trials 1000 --messages 200 --seed 7
    .venv/bin/python bench/bitflip.py --used-only --trials 500   # only bytes that hold data
    .venv/bin/python bench/bitflip.py --compact --messages 2000  # a backup's compacted store

A data dir is made with `gentestdata` (and `--messages N` extra messages); each trial copies it,
flips one random bit of data.mdb, runs `verify_data` and counts a problem as a detection (an
exception counts as a crash: there must be none). Every flip is classed by where it landed,
from LMDB's page layout (lmdb.h): the used fields of the meta page, a page header, the node
pointer array, node data (keys and values), overflow pages, or unused bytes: the gap
between a page's pointers and its nodes, the rest of the meta pages, the older meta page,
and free pages (the byte ranges in use come from the page walk of moxcli.store.datafile).
LMDB never reads unused bytes and leaves stale data in them (so they cannot be required to
be zero): a flip there changes nothing any reader sees and cannot be detected by any reader. The figure that
matters is the detection rate over flips in used bytes; the overall rate is printed too.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moxcli.datatools.gentest import generate
from moxcli.datatools.verify import verify_data
from moxcli.store.datafile import check_pages
from moxcli.store.schema import TABLES

_PAGE_HEAD = struct.Struct("<QHHHH")  # mp_pgno, mp_pad, mp_flags, mp_lower, mp_upper
P_BRANCH, P_LEAF, P_OVERFLOW, P_META = 0x01, 0x02, 0x04, 0x08
META_USED = 16 + 136  # page header + MDB_meta up to mm_txnid (64-bit build)


def region(data: bytes, offset: int, psize: int) -> str:
    """Where a byte of data.mdb lies in LMDB's layout (see the module docstring)."""
    page, within = divmod(offset, psize)
    if page < 2:
        return "meta" if within < META_USED else "unused"
    pgno, _pad, flags, lower, upper = _PAGE_HEAD.unpack_from(data, page * psize)
    if pgno != page:
        return "overflow"  # a continuation page of an overflow run (no header of its own)
    if within < 16:
        return "page header"
    if flags & P_OVERFLOW:
        return "overflow"
    if flags & (P_BRANCH | P_LEAF):
        if within < lower:
            return "node pointers"
        if within < upper:
            return "unused"
        return "nodes"
    return "unused"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--messages", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compact", action="store_true", help="flip bits in a backup of the data dir (compacted store)")
    ap.add_argument("--used-only", action="store_true", help="flip bits only in used bytes (a tighter figure for them)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="moxcli-bitflip-") as tmp:
        template = Path(tmp) / "template"
        generate(template, messages=args.messages)
        if args.compact:
            from moxcli.datatools.backup import backup

            backup(template, Path(tmp) / "compacted")
            template = Path(tmp) / "compacted"
        data = (template / "store" / "data.mdb").read_bytes()
        psize = struct.unpack_from("<I", data, 40)[0]
        checked = check_pages(template / "store" / "data.mdb", frozenset(t.name.encode() for t in TABLES))
        assert checked is not None and not checked[0], checked
        used = bytearray(len(data))  # 1 where a byte holds data a reader uses
        for a, b in checked[1]:
            used[a:b] = b"\x01" * (b - a)
        seen: Counter[str] = Counter()
        found: Counter[str] = Counter()
        crashes = []
        used_offsets = [i for i, u in enumerate(used) if u] if args.used_only else []
        for i in range(args.trials):
            byte = rng.choice(used_offsets) if args.used_only else rng.randrange(len(data))
            bit = byte * 8 + rng.randrange(8)
            where = region(data, bit // 8, psize) if used[bit // 8] else "unused"
            seen[where] += 1
            if where == "unused":
                continue  # nothing reads these bytes: no reader can tell (counted as missed)
            d = Path(tmp) / f"t{i}"
            shutil.copytree(template, d, copy_function=os.link)  # message files are only read
            damaged = bytearray(data)
            damaged[bit // 8] ^= 1 << (bit % 8)
            (d / "store" / "data.mdb").unlink()
            (d / "store" / "data.mdb").write_bytes(damaged)
            try:
                if not verify_data(d).ok:
                    found[where] += 1
            except Exception as exc:  # a crash of the verifier is a bug to report
                crashes.append(f"bit {bit} ({where}): {type(exc).__name__}: {exc}")
            shutil.rmtree(d)
    used = sum(n for w, n in seen.items() if w != "unused")
    used_found = sum(found.values())
    print(f"data.mdb: {len(data)} bytes, {args.trials} flips, seed {args.seed}")
    for where in sorted(seen):
        print(f"  {where:14} {found[where]:5} of {seen[where]:5} detected")
    print(f"used bytes: {used_found} of {used} detected ({100 * used_found / max(used, 1):.1f}%)")
    print(f"all bytes: {used_found} of {args.trials} detected ({100 * used_found / args.trials:.1f}%)")
    print(f"verifier crashes: {len(crashes)}")
    for c in crashes:
        print("  " + c)


if __name__ == "__main__":
    main()

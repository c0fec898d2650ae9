#!/usr/bin/env python3
"""How many random bit flips in `store/data.mdb` does `moxcli verifydata` detect?

    .venv/bin/python bench/bitflip.py                  # 200 flips in a (sealed) gentestdata store
    .venv/bin/python bench/bitflip.py --no-seal        # the same store without its seal
    .venv/bin/python bench/bitflip.py --trials 1000 --messages 200 --seed 7
    .venv/bin/python bench/bitflip.py --used-only --trials 500   # only bytes verifydata checks
    .venv/bin/python bench/bitflip.py --compact --messages 2000  # a backup of it
    .venv/bin/python bench/bitflip.py --compact --no-sum         # a backup without store.sha256

A data dir is made with `gentestdata` (and `--messages N` extra messages); each trial copies it,
flips one random bit of data.mdb, runs `verify_data` and counts a problem as a detection (an
exception counts as a crash: there must be none). Every flip is classed by where it landed,
from LMDB's page layout (lmdb.h) and the page walk of moxcli.store.datafile: the newest meta
page's fields, the older meta page's fields, the rest of both meta pages (zero), a page header,
the node pointer array, node data (keys and values), overflow pages, and the bytes LMDB never
reads: the gap between a page's pointers and its nodes, the slack after an overflow value,
and free pages. LMDB leaves stale data in those (so they cannot be required to hold any
value): in a live store a flip there changes nothing any reader sees and no reader can
detect it, except by the seal: every writer records the whole file's SHA-256 in
`store.sha256` (moxcli/store/seal.py), which verifydata compares. A gentestdata store is
sealed as any store written by moxcli (`--no-seal` removes it: the page checks alone).
`--compact` flips bits in a backup, which carries the same digest.
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
from moxcli.store.seal import check_seal

_PAGE_HEAD = struct.Struct("<QHHHH")  # mp_pgno, mp_pad, mp_flags, mp_lower, mp_upper
P_BRANCH, P_LEAF, P_OVERFLOW, P_META = 0x01, 0x02, 0x04, 0x08
META_USED = 16 + 136  # page header + MDB_meta up to mm_txnid (64-bit build)
UNREAD = ("page gap", "overflow slack", "free page")  # no LMDB reader reads these bytes


def region(data: bytes, offset: int, psize: int, used: bytearray, in_use: bytearray) -> str:
    """Where a byte of data.mdb lies in LMDB's layout (see the module docstring)."""
    page, within = divmod(offset, psize)
    if page < 2:
        if within >= META_USED:
            return "meta unused"
        txnids = [struct.unpack_from("<Q", data, n * psize + 144)[0] for n in (0, 1)]
        return "meta (newest)" if txnids[page] == max(txnids) else "meta (older)"
    if not in_use[page]:
        return "free page"
    pgno, _pad, flags, lower, _upper = _PAGE_HEAD.unpack_from(data, page * psize)
    if not used[offset]:
        return "page gap" if pgno == page and flags & (P_BRANCH | P_LEAF) else "overflow slack"
    if pgno != page:
        return "overflow"  # a continuation page of an overflow run (no header of its own)
    if within < 16:
        return "page header"
    if flags & P_OVERFLOW:
        return "overflow"
    if within < lower:
        return "node pointers"
    return "nodes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--messages", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compact", action="store_true", help="flip bits in a backup of the data dir (compacted store)")
    ap.add_argument("--no-sum", action="store_true", help="--compact without store.sha256 (page checks alone)")
    ap.add_argument("--no-seal", action="store_true", help="without the live store's seal (page checks alone)")
    ap.add_argument("--used-only", action="store_true", help="flip bits only in bytes verifydata checks")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="moxcli-bitflip-") as tmp:
        template = Path(tmp) / "template"
        generate(template, messages=args.messages)
        if args.compact:
            from moxcli.datatools.backup import backup

            backup(template, Path(tmp) / "compacted")
            template = Path(tmp) / "compacted"
            if args.no_sum:
                (template / "store.sha256").unlink()
        elif args.no_seal:
            (template / "store.sha256").unlink()
        if not (args.no_seal or args.no_sum):
            sealed = check_seal(template)
            assert sealed is not None and not (sealed.problem or sealed.note or sealed.warning), sealed
        data = (template / "store" / "data.mdb").read_bytes()
        psize = struct.unpack_from("<I", data, 40)[0]
        checked = check_pages(template / "store" / "data.mdb", frozenset(t.name.encode() for t in TABLES))
        assert checked is not None and not checked[0], checked
        used = bytearray(len(data))  # 1 where verifydata checks a byte's value
        in_use = bytearray(len(data) // psize)  # 1 for a page in use (not free)
        for a, b in checked[1]:
            used[a:b] = b"\x01" * (b - a)
            in_use[a // psize : (b - 1) // psize + 1] = b"\x01" * ((b - 1) // psize + 1 - a // psize)
        seen: Counter[str] = Counter()
        found: Counter[str] = Counter()
        crashes = []
        used_offsets = [i for i, u in enumerate(used) if u] if args.used_only else []
        for i in range(args.trials):
            byte = rng.choice(used_offsets) if args.used_only else rng.randrange(len(data))
            bit = byte * 8 + rng.randrange(8)
            where = region(data, byte, psize, used, in_use)
            seen[where] += 1
            d = Path(tmp) / f"t{i}"
            shutil.copytree(template, d, copy_function=os.link)  # message files are only read
            damaged = bytearray(data)
            damaged[byte] ^= 1 << (bit % 8)
            (d / "store" / "data.mdb").unlink()
            (d / "store" / "data.mdb").write_bytes(damaged)
            try:
                if not verify_data(d).ok:
                    found[where] += 1
            except Exception as exc:  # a crash of the verifier is a bug to report
                crashes.append(f"bit {bit} ({where}): {type(exc).__name__}: {exc}")
            shutil.rmtree(d)
        checked_seen = sum(n for w, n in seen.items() if w not in UNREAD)
        checked_found = sum(n for w, n in found.items() if w not in UNREAD)
    total = sum(found.values())
    kind = "backup" if args.compact else "live store"
    sealed = "without store.sha256" if args.no_seal or args.no_sum else "with store.sha256"
    print(f"data.mdb ({kind}, {sealed}): {len(data)} bytes, {args.trials} flips, seed {args.seed}")
    for where in sorted(seen):
        print(f"  {where:15} {found[where]:5} of {seen[where]:5} detected")
    rate = 100 * checked_found / max(checked_seen, 1)
    print(f"bytes LMDB reads: {checked_found} of {checked_seen} detected ({rate:.1f}%)")
    print(f"all bytes: {total} of {args.trials} detected ({100 * total / args.trials:.1f}%)")
    print(f"verifier crashes: {len(crashes)}")
    for c in crashes:
        print("  " + c)


if __name__ == "__main__":
    main()

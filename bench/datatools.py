#!/usr/bin/env python3
"""Data tools benchmark: backup against `cp -a` / `cp -al`, verifydata time, memory.

    .venv/bin/python bench/datatools.py              # 20,000 messages (~130 MB), ~1 min
    .venv/bin/python bench/datatools.py --full       # 100,000 messages (~1 GB, the issue's size)
    .venv/bin/python bench/datatools.py --messages N [--keep DIR]

A data dir is made with `moxcli gentestdata --messages N`. Each command runs as its own
process (`moxcli ...`, so start-up counts) with a warm page cache; the figures are wall time
and the child's peak RSS (ru_maxrss from wait4, bench/measure.py: every resident page,
including store pages mapped by LMDB, so an upper bound). The message counts printed are
the ones verifydata and backup report in their --json output. Memory is measured at N/4 and
N messages: flat means the two peaks are close.
Targets (issue 7): backup <= 0.15x `cp -a`, verifydata <= 3 s, memory flat in N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure

MOXCLI = str(Path(sys.executable).parent / "moxcli")


def run(cmd: list[str]) -> dict:
    """Wall time and peak RSS of one command (its own child), and its stdout."""
    m = measure.run(cmd).check(" ".join(cmd))
    return {"seconds": m.wall, "rss_mb": m.maxrss_mb, "stdout": m.stdout}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def one_size(work: Path, messages: int, with_cp: bool) -> dict:
    data = work / f"data-{messages}"
    gen = run([MOXCLI, "gentestdata", "--messages", str(messages), str(data)])
    size = du(data)
    print(f"  gentestdata --messages {messages}: {gen['seconds']:.1f} s, {size / 1e6:.0f} MB")
    out = {"messages": messages, "bytes": size, "gentestdata": gen}
    out["backup"] = run([MOXCLI, "--data", str(data), "backup", "--json", str(work / f"backup-{messages}")])
    out["backup_copy"] = run(
        [MOXCLI, "--data", str(data), "backup", "--copy", "--json", str(work / f"backup-copy-{messages}")]
    )
    out["verifydata"] = run([MOXCLI, "verifydata", "--json", str(data)])
    out["verifydata_backup"] = run([MOXCLI, "verifydata", "--json", str(work / f"backup-{messages}")])
    checked = json.loads(out["verifydata"]["stdout"])["counts"]
    copied = json.loads(out["backup"]["stdout"])
    print(
        f"  verifydata counted {checked.get('message', 0):,} messages, {checked.get('message_files', 0):,} files; "
        f"backup linked {copied['files_linked']:,} and copied {copied['files_copied']:,} files"
    )
    if with_cp:
        out["cp_a"] = run(["cp", "-a", str(data), str(work / f"cp-a-{messages}")])
        out["cp_al"] = run(["cp", "-al", str(data), str(work / f"cp-al-{messages}")])
        # backup ends with one sync of DEST's file system (durable); cp does not sync.
        out["cp_a_sync"] = run(
            ["sh", "-c", 'cp -a "$0" "$1" && sync -f "$1"', str(data), str(work / f"cp-a-sync-{messages}")]
        )
    for name in ("backup", "backup_copy", "verifydata", "verifydata_backup", "cp_a", "cp_a_sync", "cp_al"):
        if name in out:
            print(f"  {name:18} {out[name]['seconds']:7.2f} s   peak RSS {out[name]['rss_mb']:6.1f} MB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--full", action="store_true", help="100,000 messages (~1 GB; a few minutes)")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args()
    n = 100_000 if args.full else args.messages
    work = args.keep or Path(tempfile.mkdtemp(prefix="moxcli-bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"small size ({n // 4} messages), for memory:")
        small = one_size(work, n // 4, with_cp=False)
        print(f"full size ({n} messages):")
        big = one_size(work, n, with_cp=True)
        ratio = big["backup"]["seconds"] / big["cp_a"]["seconds"]
        print()
        print(
            f"backup {big['backup']['seconds']:.2f} s = {ratio:.3f}x cp -a "
            f"({big['cp_a']['seconds']:.2f} s; target <= 0.15x); "
            f"cp -al {big['cp_al']['seconds']:.2f} s"
        )
        print(
            f"backup --copy {big['backup_copy']['seconds']:.2f} s against cp -a + sync -f "
            f"{big['cp_a_sync']['seconds']:.2f} s"
        )
        print(f"verifydata {big['verifydata']['seconds']:.2f} s for {n} messages (target <= 3 s)")
        print(measure.load_note())
        for name in ("backup", "verifydata"):
            print(
                f"{name} peak RSS {small[name]['rss_mb']:.1f} MB at {n // 4} messages, "
                f"{big[name]['rss_mb']:.1f} MB at {n}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

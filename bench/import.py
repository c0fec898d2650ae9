#!/usr/bin/env python3
"""Import throughput: generated mbox and maildir -> moxcli.mail.importer, in a child process.

Prints messages/s, MB/s and the child's peak RSS (os.wait4 rusage) for each size, so you can
see memory stays flat as the input grows, plus user/sys CPU seconds and the load average (on
a shared machine the wall time says more about the neighbours than about the import). Files
are generated under a temporary directory (default: the system's, --tmp to choose) and
removed at the end; disk needed: about 2.5 times the largest mbox.

ext4 without a journal (this machine's root filesystem) skips inodes deleted in the last 60 s,
360 s when their inode table block is dirty, when it allocates new ones, checking them one by
one (fs/ext4/ialloc.c recently_deleted). New files dirty those blocks again, so for about six
minutes after a big tree was deleted, creating files costs up to ~1 ms each and the bench
would measure the deletes, not the import (sys time 2-5 times higher). So the bench keeps its
files until the end, and a run started within six minutes of that waits (--no-wait to skip).

    .venv/bin/python bench/import.py                  # mbox 50k + 200k (~1 GB), maildir 20k
    .venv/bin/python bench/import.py --full           # maildir also 200k
    .venv/bin/python bench/import.py --mbox 20000 --maildir 5000 --sizes 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_DELETED_MARK = ".moxcli-bench-import-deleted"  # in the temp directory: when the last run deleted its files
_RECENTLY_DELETED = 365  # seconds ext4 may keep skipping deleted inodes (60 + 300 when dirty), and a margin

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "mail",
    "server",
    "import",
    "transport",
    "security",
    "report",
    "delivery",
    "queue",
    "policy",
    "message",
    "header",
    "body",
    "line",
    "text",
    "from",
    "to",
    "subject",
    "date",
]

CHILD = r"""
import sys, json
from pathlib import Path
from moxcli.mail.importer import import_mbox, import_maildir
kind, data, src = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "mbox":
    r = import_mbox(data, "bench", "Inbox", [src])
else:
    r = import_maildir(data, "bench", "Inbox", Path(src))
print(json.dumps({
    "messages": r.messages, "bytes": r.size, "input": r.input_bytes, "seconds": r.seconds, "warnings": r.warnings_total
}))
"""


def _body(rng: random.Random, size: int) -> bytes:
    lines = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        if rng.random() < 0.01:
            line = "From " + line  # must be quoted in mbox
        lines.append(line)
        n += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


class _Messages:
    """Generated messages: varying headers and flags over a pool of bodies (fast to make)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Sizes log-normal: median ~3.6 KB, mean ~4.5 KB, a long tail to ~60 KB.
        self.bodies = [_body(self.rng, int(self.rng.lognormvariate(8.2, 0.6))) for _ in range(512)]

    def message(self, i: int, t: int) -> bytes:
        rng = self.rng
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))
        hdr = [
            f"Return-Path: <sender{i % 977}@example.org>",
            f"Received: from mx{i % 13}.example.org by mail.example.com; {date}",
            f"From: Sender {i % 977} <sender{i % 977}@example.org>",
            "To: mjl@example.com",
            f"Subject: bench message {i}",
            f"Date: {date}",
            f"Message-ID: <{i}.{t}@example.org>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ]
        status = rng.choice(["", "R", "RO", "O"])
        if status:
            hdr.append(f"Status: {status}")
        xstatus = rng.choice(["", "", "A", "F"])
        if xstatus:
            hdr.append(f"X-Status: {xstatus}")
        kw = rng.choice(["", "", "", "$Forwarded", "work, $Junk", "project-x"])
        if kw:
            hdr.append(f"X-Keywords: {kw}")
        return ("\n".join(hdr) + "\n\n").encode() + self.bodies[i % len(self.bodies)]


def gen_mbox(path: Path, count: int, seed: int = 1) -> int:
    gen = _Messages(seed)
    t0 = 1_600_000_000
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(count):
            t = t0 + i * 60
            f.write(
                f"From sender{i % 977}@example.org {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(t))}\n".encode()
            )
            f.write(gen.message(i, t).replace(b"\nFrom ", b"\n>From "))
            f.write(b"\n")
    return path.stat().st_size


def gen_maildir(path: Path, count: int, seed: int = 2) -> int:
    gen = _Messages(seed)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    (path / "dovecot-keywords").write_text("0 $Forwarded\n1 work\n2 $Junk\n")
    t0 = 1_600_000_000
    total = 0
    infos = ["", "S", "RS", "FS", "Sa", "Sb", "c"]
    for i in range(count):
        t = t0 + i * 60
        msg = gen.message(i, t)
        sub = "new" if i % 10 == 0 else "cur"
        name = f"{t}.M{i}P1.bench" + ("" if sub == "new" else f":2,{infos[i % len(infos)]}")
        fd = os.open(path / sub / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, msg)
        os.close(fd)
        total += len(msg)
    return total


def run_child(kind: str, src: Path, work: Path) -> dict:
    # A fresh data dir per run, removed only at the end: on ext4, creating files right after
    # many were deleted makes the kernel skip "recently deleted" inodes one by one
    # (find_inode_bit -> recently_deleted), which can cost ~1 ms per file and measures the
    # deletes, not the import.
    data = Path(tempfile.mkdtemp(prefix=f"data-{kind}-", dir=work))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(data), str(src)], stdout=subprocess.PIPE, env=env)
    out = p.stdout.read()
    _, status, rusage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{kind} import failed with exit {p.returncode}")
    res = json.loads(out)
    res["maxrss_mb"] = rusage.ru_maxrss / 1024
    res["user"], res["sys"] = rusage.ru_utime, rusage.ru_stime
    return res


def report(kind: str, n: int, res: dict) -> None:
    s = res["seconds"]
    print(
        f"{kind:8} {n:>8} msgs  {res['input'] / 1e6:8.1f} MB in  {s:7.2f} s  "
        f"{res['messages'] / s:9.0f} msg/s  {res['input'] / 1e6 / s:7.1f} MB/s  "
        f"peak RSS {res['maxrss_mb']:6.1f} MB  cpu user {res['user']:.1f} s sys {res['sys']:.1f} s  "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def wait_for_old_deletes(tmp: Path) -> None:
    """Sleep until ext4 no longer treats a previous run's deleted inodes as recently deleted."""
    try:
        wait = float((tmp / _DELETED_MARK).read_text()) + _RECENTLY_DELETED - time.time()
    except (OSError, ValueError):
        return
    if wait > 0:
        print(
            f"waiting {wait:.0f} s: the previous run deleted its files {_RECENTLY_DELETED - wait:.0f} s ago", flush=True
        )
        time.sleep(wait)


def remove(work: Path, tmp: Path) -> None:
    """Delete the run's files and note when, for the next run's wait_for_old_deletes."""
    shutil.rmtree(work, ignore_errors=True)
    (tmp / _DELETED_MARK).write_text(f"{time.time():.0f}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbox", type=int, default=200_000, help="largest mbox size in messages (default 200000, ~1 GB)")
    ap.add_argument("--maildir", type=int, default=20_000, help="largest maildir size in messages (default 20000)")
    ap.add_argument("--full", action="store_true", help="maildir of 200,000 messages too")
    ap.add_argument("--sizes", type=int, default=2, help="run each at this many sizes (N/4, N) to show RSS stays flat")
    ap.add_argument("--tmp", default=None, help="directory for generated files (default: system temp)")
    ap.add_argument("--no-wait", action="store_true", help="measure even right after a previous run deleted its files")
    args = ap.parse_args()
    if args.full:
        args.maildir = 200_000
    tmp = Path(args.tmp or tempfile.gettempdir())
    if not args.no_wait:
        wait_for_old_deletes(tmp)
    work = Path(tempfile.mkdtemp(prefix="moxcli-bench-import-", dir=tmp))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; files in {work}", flush=True)
    try:
        for kind, top in (("mbox", args.mbox), ("maildir", args.maildir)):
            sizes = [top // 4, top] if args.sizes > 1 else [top]
            for n in sizes:
                if n <= 0:
                    continue
                src = work / f"src-{n}.{kind}"
                t = time.monotonic()
                size = gen_mbox(src, n) if kind == "mbox" else gen_maildir(src, n)
                print(
                    f"generated {kind} of {n} messages, {size / 1e6:.0f} MB in {time.monotonic() - t:.1f} s", flush=True
                )
                # Let the generator's writeback (and earlier deletes' discards) finish first:
                # we measure the import, not the page cache of what came before.
                os.sync()
                report(kind, n, run_child(kind, src, work))
    finally:
        remove(work, tmp)


if __name__ == "__main__":
    main()

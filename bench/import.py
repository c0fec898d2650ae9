#!/usr/bin/env python3
"""Import throughput: generated mbox and maildir -> moxcli.mail.importer, in a child process.

Prints messages/s, MB/s and the child's peak RSS (os.wait4 rusage) for each size, so you can
see memory stays flat as the input grows. Files are generated under a temporary directory
(default /tmp) and removed afterwards.

    .venv/bin/python bench/import.py                  # mbox 50k + 200k (~1 GB), maildir 20k
    .venv/bin/python bench/import.py --full           # maildir also 200k
    .venv/bin/python bench/import.py --mbox 20000 --maildir 5000 --sizes 1
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORDS = (
    "the quick brown fox jumps over lazy dog mail server import transport security report "
    "delivery queue policy message header body line text from to subject date"
).split()

CHILD = r"""
import sys, json
from pathlib import Path
from moxcli.mail.importer import import_mbox, import_maildir
kind, data, src = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "mbox":
    r = import_mbox(data, "bench", "Inbox", [src])
else:
    r = import_maildir(data, "bench", "Inbox", Path(src))
print(json.dumps({"messages": r.messages, "bytes": r.size, "input": r.input_bytes, "seconds": r.seconds, "warnings": r.warnings_total}))
"""


def _body(rng: random.Random, size: int) -> bytes:
    lines = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        if rng.random() < 0.002:
            line = "From " + line  # must be quoted in mbox
        lines.append(line)
        n += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def _message(rng: random.Random, i: int, t: int) -> tuple[bytes, str]:
    flags = rng.choice(["", "R", "RO", "O"])
    xstatus = rng.choice(["", "A", "F", "AF"])
    kw = rng.choice(["", "", "$Forwarded", "work, $Junk", "project-x"])
    hdr = [
        f"Return-Path: <sender{i % 977}@example.org>",
        f"Received: from mx{i % 13}.example.org by mail.example.com; {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(t))}",
        f"From: Sender {i % 977} <sender{i % 977}@example.org>",
        "To: mjl@example.com",
        f"Subject: bench message {i} " + " ".join(rng.choice(WORDS) for _ in range(5)),
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(t))}",
        f"Message-ID: <{i}.{t}@example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if flags:
        hdr.append(f"Status: {flags}")
    if xstatus:
        hdr.append(f"X-Status: {xstatus}")
    if kw:
        hdr.append(f"X-Keywords: {kw}")
    size = int(rng.lognormvariate(8.2, 0.6))  # median ~3.6 KB, mean ~4.5 KB
    return ("\n".join(hdr) + "\n\n").encode() + _body(rng, size), flags + xstatus


def gen_mbox(path: Path, count: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    t0 = 1_600_000_000
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(count):
            t = t0 + i * 60
            msg, _ = _message(rng, i, t)
            msg = msg.replace(b"\nFrom ", b"\n>From ")
            f.write(f"From sender{i % 977}@example.org {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(t))}\n".encode())
            f.write(msg)
            f.write(b"\n")
    return path.stat().st_size


def gen_maildir(path: Path, count: int, seed: int = 2) -> int:
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    (path / "dovecot-keywords").write_text("0 $Forwarded\n1 work\n2 $Junk\n")
    t0 = 1_600_000_000
    total = 0
    for i in range(count):
        t = t0 + i * 60
        msg, _ = _message(rng, i, t)
        info = "".join(sorted(rng.choice(["", "S", "RS", "FS", "Sa", "Sb", "c"])))
        sub = "new" if i % 10 == 0 else "cur"
        name = f"{t}.M{i}P1.bench" + ("" if sub == "new" else f":2,{info}")
        (path / sub / name).write_bytes(msg)
        total += len(msg)
    return total


def run_child(kind: str, src: Path, work: Path) -> dict:
    data = work / f"data-{kind}"
    shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(data), str(src)], stdout=subprocess.PIPE, env=env)
    out = p.stdout.read()
    _, status, rusage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{kind} import failed with exit {p.returncode}")
    import json

    res = json.loads(out)
    res["maxrss_mb"] = rusage.ru_maxrss / 1024
    res["cpu"] = rusage.ru_utime + rusage.ru_stime
    shutil.rmtree(data, ignore_errors=True)
    return res


def report(kind: str, n: int, res: dict) -> None:
    s = res["seconds"]
    print(
        f"{kind:8} {n:>8} msgs  {res['input'] / 1e6:8.1f} MB in  {s:7.2f} s  "
        f"{res['messages'] / s:9.0f} msg/s  {res['input'] / 1e6 / s:7.1f} MB/s  "
        f"peak RSS {res['maxrss_mb']:6.1f} MB  cpu {res['cpu']:.1f} s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbox", type=int, default=200_000, help="largest mbox size in messages (default 200000, ~1 GB)")
    ap.add_argument("--maildir", type=int, default=20_000, help="largest maildir size in messages (default 20000)")
    ap.add_argument("--full", action="store_true", help="maildir of 200,000 messages too")
    ap.add_argument("--sizes", type=int, default=2, help="run each at this many sizes (N/4, N) to show RSS stays flat")
    ap.add_argument("--tmp", default=None, help="directory for generated files (default: system temp)")
    args = ap.parse_args()
    if args.full:
        args.maildir = 200_000
    work = Path(tempfile.mkdtemp(prefix="moxcli-bench-import-", dir=args.tmp))
    try:
        for kind, top in (("mbox", args.mbox), ("maildir", args.maildir)):
            sizes = [top // 4, top] if args.sizes > 1 else [top]
            for n in sizes:
                if n <= 0:
                    continue
                src = work / f"src.{kind}"
                t = time.monotonic()
                size = gen_mbox(src, n) if kind == "mbox" else gen_maildir(src, n)
                print(f"generated {kind} of {n} messages, {size / 1e6:.0f} MB in {time.monotonic() - t:.1f} s", flush=True)
                # Let the generator's writeback (and earlier deletes' discards) finish first:
                # we measure the import, not the page cache of what came before.
                os.sync()
                report(kind, n, run_child(kind, src, work))
                if kind == "mbox":
                    src.unlink()
                else:
                    shutil.rmtree(src)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

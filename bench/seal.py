#!/usr/bin/env python3
"""What the seal of a live store costs (moxcli/store/seal.py): every process that committed
hashes the whole data.mdb when it closes the store.

    .venv/bin/python bench/seal.py                     # stores of 1, 16 and 64 MiB
    .venv/bin/python bench/seal.py --sizes 1,16 --runs 7

For each size a gentestdata store is padded with filler records to the size, then:
- ``Store.seal()`` alone (hash, temp file, fsync, rename, directory fsync), CPU and wall time;
- the commands called once per message, ``queue add`` and ``dmarc record`` (one evaluation),
  and ``import mbox`` of 200 messages, each as a child process, sealed (``[store]
  seal_max_size`` = 2^40, so that a store a little over 64 MiB is sealed too) and not
  (``seal_max_size = 0``). The child reports its own
  CPU time as it exits (the kernel's rusage of a child counts 10 ms ticks here).
Figures are the minimum CPU time (user + system) of ``--runs`` runs: the machine is shared,
and the minimum is the least disturbed run. Wall time includes the fsyncs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure

from moxcli.datatools.gentest import generate
from moxcli.store import Store

MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 20


def _evaluation() -> str:
    d = "sender.example"
    return json.dumps(
        {
            "policy_domain": d,
            "evaluated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
            "interval_hours": 1,
            "addresses": [f"mailto:dmarc@{d}"],
            "policy_published": {"domain": d, "p": "reject", "adkim": "r", "aspf": "r"},
            "source_ip": "10.0.0.1",
            "disposition": "none",
            "aligned_dkim_pass": True,
            "aligned_spf_pass": True,
            "envelope_to": "moxcli.example",
            "envelope_from": d,
            "header_from": d,
            "dkim_results": [{"domain": d, "selector": "s1", "result": "pass"}],
            "spf_results": [{"domain": d, "scope": "mfrom", "result": "pass"}],
        }
    )


def make_store(d: Path, mib: int) -> int:
    """A gentestdata data dir whose data.mdb is about ``mib`` MiB; its size in bytes."""
    generate(d)
    f = d / "store" / "data.mdb"
    i = 0
    with Store.open(d) as st:  # one seal at the end
        while f.stat().st_size < mib << 20:
            with st.write() as tx:
                for _ in range(500):
                    tx.set_meta(f"filler:{i}", os.urandom(250).hex())
                    i += 1
    return f.stat().st_size


# The child reports its own CPU time (CLOCK_PROCESS_CPUTIME_ID, precise) as it exits: the
# kernel's rusage of a child (wait4, GNU time) counts in ticks of 10 ms here.
_WRAP = (
    "import atexit, os, sys, time\n"
    "atexit.register(lambda: os.write(int(os.environ['BENCH_CPU_FD']), str(time.process_time()).encode()))\n"
    "sys.argv = ['moxcli', *sys.argv[1:]]\n"
    "from moxcli.entry import main\n"
    "main()\n"
)


def run(args: list[str]) -> tuple[float, float]:
    """CPU (user + system) and wall seconds of one ``moxcli ARGS`` in a child process."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-c", _WRAP, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(w,),
        env=dict(os.environ, BENCH_CPU_FD=str(w)),
    )
    os.close(w)
    err = p.communicate()[1]
    wall = time.perf_counter() - t0
    with os.fdopen(r, "rb") as f:
        cpu = f.read()
    if p.returncode != 0 or not cpu:
        raise SystemExit(f"moxcli {' '.join(args)} failed: {err.decode(errors='replace')[-500:]}")
    return float(cpu), wall


def best(args: list[str], runs: int) -> tuple[float, float]:
    """The run with the least CPU time of ``runs``."""
    return min((run(args) for _ in range(runs)), key=lambda r: r[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,16,64", help="store sizes in MiB")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(measure.load_note())
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        msg = Path(tmp) / "msg.eml"
        msg.write_bytes(MESSAGE)
        ev = Path(tmp) / "ev.jsonl"
        ev.write_text(_evaluation() + "\n")
        mbox = Path(tmp) / "in.mbox"
        mbox.write_bytes(
            b"".join(
                b"From a@example.org Thu Jan  1 00:00:00 2026\n" + MESSAGE.replace(b"\r\n", b"\n") for _ in range(200)
            )
        )
        for mib in (int(x) for x in args.sizes.split(",")):
            d = Path(tmp) / f"d{mib}"
            size = make_store(d, mib)
            cpu, wall = [], []
            with Store.open(d, seal_max_size=1 << 40) as st:
                for _ in range(args.runs):
                    t0, w0 = time.process_time(), time.perf_counter()
                    assert st.seal()
                    cpu.append(time.process_time() - t0)
                    wall.append(time.perf_counter() - w0)
            print(
                f"data.mdb {size / (1 << 20):.1f} MiB: Store.seal() {min(cpu) * 1000:.1f} ms CPU, "
                f"{min(wall) * 1000:.1f} ms wall"
            )
            config = (d / "moxcli.toml").read_text()
            base = ["--data", str(d)]
            commands = {
                "queue add": [*base, "queue", "add", "--from", "a@example.org", "--to", "b@example.net", str(msg)],
                "dmarc record": [*base, "dmarc", "record", str(ev)],
                "import mbox (200)": [*base, "import", "mbox", "bench", "Inbox", str(mbox)],
            }
            for name, cmd in commands.items():
                out = {}
                for label, extra in (
                    ("sealed", "\n[store]\nseal_max_size = 1099511627776\n"),
                    ("no seal", "\n[store]\nseal_max_size = 0\n"),
                ):
                    (d / "moxcli.toml").write_text(config + extra)
                    out[label] = best(cmd, args.runs)
                (d / "moxcli.toml").write_text(config)
                (on, on_wall), (off, off_wall) = out["sealed"], out["no seal"]
                print(
                    f"  {name:18} sealed {on * 1000:6.1f} ms CPU ({on_wall * 1000:6.1f} ms wall), "
                    f"no seal {off * 1000:6.1f} ms CPU ({off_wall * 1000:6.1f} ms wall): "
                    f"{(on - off) * 1000:+.1f} ms CPU"
                )
    print(measure.load_note())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Foundation benchmarks: CLI start-up time and store insert/scan rates.

    .venv/bin/python bench/foundation.py [--records 1000000] [--runs 20] [--venv DIR] [--mox PATH] [--startup-only]

Start-up: median wall and CPU time of the commands issue 13 names against bare
`python -c pass` in the same run (--venv: another install, e.g. non-editable), and with
--mox (a mox binary; else `mox` on PATH) against `mox version`, `mox gentestdata` and
`mox verifydata` on its own data. Store: insert N small records in batched write
transactions, then scan them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _run_ms(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU (user+sys of the child) milliseconds: CPU is what load skews least."""
    wall, cpu = [], []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def _editable(python: Path) -> bool:
    """Whether moxcli is an editable install in python's environment (its import finder costs start-up)."""
    code = "import sys; print(any('__editable__' in m and 'moxcli' in m for m in sys.modules))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip() == "True"


def startup(runs: int, venv: Path | None = None, mox: str | None = None) -> None:
    """Start-up of the commands issue 13 names, against bare Python (and mox when installed).

    Targets: --version <= 1.2x `mox version`; --help and `check tlsrpt --record` <= 2x bare
    Python; small verifydata/gentestdata <= 1.5x mox. The machine is shared: the load is
    printed, and ratios to `python -c pass` measured in the same run are what to compare.
    """
    bindir = venv / "bin" if venv else Path(sys.executable).parent
    python = bindir / "python"
    moxcli = shutil.which("moxcli", path=str(bindir)) or "moxcli"
    install = "editable" if _editable(python) else "non-editable"
    print(f"startup: {moxcli} ({install} install); load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    bare = _run_ms([str(python), "-c", "pass"], runs)
    rows = [("python -c pass", bare)]
    mox = mox or shutil.which("mox")
    versus: dict[str, str] = {}  # row -> the mox row it is compared with
    if mox:
        rows.append(("mox version", _run_ms([mox, "version"], runs)))
        versus["moxcli --version"] = "mox version"
    rows.append(("moxcli --version", _run_ms([moxcli, "--version"], runs)))
    rows.append(("moxcli --help", _run_ms([moxcli, "--help"], runs)))
    rows.append(("moxcli check --help", _run_ms([moxcli, "check", "--help"], runs)))
    record = ["check", "tlsrpt", "--record", "v=TLSRPTv1; rua=mailto:tls@example.org"]
    rows.append(("moxcli check tlsrpt --record", _run_ms([moxcli, *record], runs)))
    d = Path(tempfile.mkdtemp(prefix="moxcli-bench-start-"))
    try:
        n = max(3, runs // 4)
        if mox:
            rows.append(("mox gentestdata", _median_of([[mox, "gentestdata", str(d / f"m{i}")] for i in range(n)])))
            rows.append(("mox verifydata", _run_ms([mox, "verifydata", str(d / "m0")], runs)))
            versus["moxcli gentestdata (small)"] = "mox gentestdata"
            versus["moxcli verifydata (small)"] = "mox verifydata"
        rows.append(
            ("moxcli gentestdata (small)", _median_of([[moxcli, "gentestdata", str(d / f"g{i}")] for i in range(n)]))
        )
        rows.append(("moxcli verifydata (small)", _run_ms([moxcli, "verifydata", str(d / "g0")], runs)))
    finally:
        shutil.rmtree(d)
    measured = dict(rows)
    for name, (wall, cpu) in rows:
        line = f"startup: {name:30} wall {wall:7.1f} ms {wall / bare[0]:4.1f}x  cpu {cpu:7.1f} ms {cpu / bare[1]:4.1f}x"
        if name in versus:
            mwall, mcpu = measured[versus[name]]
            line += f"  | of {versus[name]}: wall {wall / mwall:4.1f}x cpu {cpu / mcpu:4.1f}x"
        print(line)
    print(f"startup: x = ratio to python -c pass (and to the mox call named), medians of {runs}")


def _median_of(cmds: list[list[str]]) -> tuple[float, float]:
    """Each command once (gentestdata needs a new directory per run)."""
    runs = [_run_ms(c, 1) for c in cmds]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def store(records: int) -> None:
    from moxcli.store import Store, schema

    d = Path(tempfile.mkdtemp(prefix="moxcli-bench-store-"))
    try:
        with Store.open(d) as st:
            batch = 10_000
            t = time.perf_counter()
            for start in range(0, records, batch):

                def fill(tx, start=start):
                    for i in range(start, min(start + batch, records)):
                        tx.put(
                            schema.TLS_RESULT,
                            schema.text_key("20260101", f"d{i % 10000}.example", f"r{i}.example"),
                            {"n": i, "send": True},
                        )

                st.update(fill)
            ins = time.perf_counter() - t
            t = time.perf_counter()
            n = 0
            with st.read() as tx:
                for _k, _rec in tx.scan(schema.TLS_RESULT):
                    n += 1
            scan = time.perf_counter() - t
            assert n == records
        size = (d / "store" / "data.mdb").stat().st_size
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"store: {records} records inserted in {ins:.2f} s ({records / ins:,.0f}/s, batches of {batch}); "
            f"scanned+decoded in {scan:.2f} s ({records / scan:,.0f}/s); file {size / 1e6:.0f} MB; "
            f"peak RSS {rss:.0f} MB"
        )
    finally:
        shutil.rmtree(d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--venv", type=Path, help="Measure the moxcli of this venv (e.g. a non-editable `pip install .`).")
    p.add_argument("--mox", help="A mox binary to compare with (default: mox on PATH, if any).")
    p.add_argument("--startup-only", action="store_true", help="Skip the store benchmark.")
    a = p.parse_args()
    startup(a.runs, a.venv, a.mox)
    if not a.startup_only:
        store(a.records)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Foundation benchmarks: CLI start-up time and store insert/scan rates.

    .venv/bin/python bench/foundation.py [--records 1000000] [--runs 20]

Start-up: median wall time of `moxcli --help` against bare `python3 -c pass` (target
<= 80 ms). Store: insert N small records in batched write transactions, then scan them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_ms(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def startup(runs: int) -> None:
    """Start-up of the commands issue 13 names, against bare Python (and mox when installed).

    Targets: --version <= 1.2x `mox version`; --help and `check tlsrpt --record` <= 2x bare
    Python; small verifydata/gentestdata <= 1.5x mox. Run on an idle machine: load skews all.
    """
    moxcli = shutil.which("moxcli", path=str(Path(sys.executable).parent)) or "moxcli"
    bare = _median_ms([sys.executable, "-c", "pass"], runs)
    rows = [("python3 -c pass", bare)]
    mox = shutil.which("mox")
    if mox:
        rows.append(("mox version", _median_ms([mox, "version"], runs)))
    rows.append(("moxcli --version", _median_ms([moxcli, "--version"], runs)))
    rows.append(("moxcli --help", _median_ms([moxcli, "--help"], runs)))
    rows.append(("moxcli check --help", _median_ms([moxcli, "check", "--help"], runs)))
    record = ["check", "tlsrpt", "--record", "v=TLSRPTv1; rua=mailto:tls@example.org"]
    rows.append(("moxcli check tlsrpt --record", _median_ms([moxcli, *record], runs)))
    d = Path(tempfile.mkdtemp(prefix="moxcli-bench-start-"))
    try:
        gen = []
        for i in range(max(3, runs // 4)):
            t = time.perf_counter()
            subprocess.run([moxcli, "gentestdata", str(d / f"g{i}")], stdout=subprocess.DEVNULL, check=True)
            gen.append((time.perf_counter() - t) * 1000)
        rows.append(("moxcli gentestdata (small)", statistics.median(gen)))
        rows.append(("moxcli verifydata (small)", _median_ms([moxcli, "verifydata", str(d / "g0")], runs)))
    finally:
        shutil.rmtree(d)
    for name, ms in rows:
        print(f"startup: {name:30} {ms:7.1f} ms  {ms / bare:4.1f}x python  (median of {runs})")


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
    a = p.parse_args()
    startup(a.runs)
    store(a.records)


if __name__ == "__main__":
    main()

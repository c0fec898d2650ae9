#!/usr/bin/env python3
"""Table rendering: 1,000 (or --rows) rows in each format, target <= 50 ms (issue 13).

    .venv/bin/python bench/output.py [--rows 1000] [--runs 20]

Measures moxcli.cli.output.format_table on rows shaped like `tlsresults list` (9 columns,
some long and non-ASCII cells), median of --runs, in this process (no start-up).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from moxcli.cli.output import format_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args()
    cols = ["day", "policy domain", "recipient domain", "kind", "report", "policy", "ok", "failed", "failure details"]
    rows = [
        (
            "2026-12-02",
            f"mx{i}.recipient-domain-{i}.example",
            f"recipient-domain-{i}.example" if i % 7 else f"☺{i}.example",
            "host" if i % 2 else "domain",
            "yes",
            "sts",
            i * 3,
            i % 5,
            "certificate-expired x1, starttls-not-supported x2" if i % 5 else "",
        )
        for i in range(a.rows)
    ]
    load = os.getloadavg()[0]
    for fmt in ("table", "tsv", "csv"):
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            text = format_table(cols, rows, fmt)
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"output: {a.rows} rows as {fmt}: {statistics.median(times):.1f} ms median of {a.runs} "
            f"({len(text) / 1e3:.0f} kB; target <= 50 ms; load {load:.1f})"
        )


if __name__ == "__main__":
    main()

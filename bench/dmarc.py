#!/usr/bin/env python3
"""DMARC reports benchmark: recording evaluations, the hourly job, parsing incoming reports.

    .venv/bin/python bench/dmarc.py                      # 50,000 evaluations over 500 domains, ~30 s
    .venv/bin/python bench/dmarc.py --evaluations 500000 --domains 5000

Figures: `dmarc record` rate (one batch of JSON lines, one transaction), the hourly
`send-dmarcreports` job (dry run, then the real run that composes, queues and removes), and
the parse rate of a large aggregate report. DNS answers come from an in-process table after a
simulated latency (`--dns-ms`, one TXT lookup per domain). Peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moxcli.config import parse_config
from moxcli.dmarc.db import record_evaluations
from moxcli.dmarc.parse import parse_report_xml
from moxcli.dmarc.report import Feedback, Metadata, Published, Record, build_xml
from moxcli.dns import Answer, NotFound
from moxcli.reports.dmarc import send_dmarc_reports
from moxcli.store import Store


class TableResolver:
    """`_dmarc.<d>` answers `v=DMARC1; rua=mailto:dmarc@<d>`, after ``latency`` seconds."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    def txt(self, name: str) -> Answer:
        time.sleep(self.latency)
        if not name.startswith("_dmarc."):
            raise NotFound(name, "TXT", True, False)
        dom = name[len("_dmarc.") :]
        rec = type("R", (), {"strings": [f"v=DMARC1; p=reject; rua=mailto:dmarc@{dom}; ri=3600".encode()]})()
        return Answer(name, "TXT", [rec], False, name)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lines(n: int, domains: int, end: float):
    for i in range(n):
        d = f"sender{i % domains}.example"
        yield json.dumps(
            {
                "policy_domain": d,
                "evaluated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 1 - (i % 3500))),
                "interval_hours": 1,
                "addresses": [f"mailto:dmarc@{d}"],
                "policy_published": {"domain": d, "p": "reject", "adkim": "r", "aspf": "r"},
                "source_ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                "disposition": "none" if i % 7 else "reject",
                "aligned_dkim_pass": bool(i % 7),
                "aligned_spf_pass": bool(i % 5),
                "envelope_to": "moxcli.example",
                "envelope_from": d,
                "header_from": d,
                "dkim_results": [{"domain": d, "selector": "s1", "result": "pass" if i % 7 else "fail"}],
                "spf_results": [{"domain": d, "scope": "mfrom", "result": "pass" if i % 5 else "fail"}],
            }
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evaluations", type=int, default=50_000)
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--records", type=int, default=20_000, help="records in the incoming report parsed")
    ap.add_argument("--dns-ms", type=float, default=20.0, help="simulated DNS latency per TXT lookup")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="moxcli-bench-dmarc-") as tmp:
        data = Path(tmp)
        cfg = parse_config('hostname = "mail.moxcli.example"\n', data / "moxcli.toml")
        end = time.time() // 3600 * 3600
        with Store.open(data) as store:
            batch = list(lines(args.evaluations, args.domains, end))
            t = time.perf_counter()
            record_evaluations(store, cfg, batch)
            s = time.perf_counter() - t
            print(
                f"dmarc record: {args.evaluations} evaluations in {s:.2f} s "
                f"({args.evaluations / s:,.0f}/s), one transaction"
            )
            del batch
            for dry in (True, False):
                t = time.perf_counter()
                run = send_dmarc_reports(
                    store, data, cfg, now=end + 60, dry_run=dry, resolver=TableResolver(args.dns_ms / 1000)
                )
                s = time.perf_counter() - t
                queued = sum(len(d.queued_to) for d in run.domains)
                print(
                    f"send-dmarcreports{' --dry-run' if dry else ''}: {len(run.domains)} domains, {queued} reports, "
                    f"{s:.2f} s ({args.evaluations / s:,.0f} evaluations/s), peak RSS {rss_mb():.0f} MB"
                )

    recs = [
        Record(f"10.0.{i >> 8 & 255}.{i & 255}", i % 9 + 1, "none", "pass", "fail", "example.org", "example.org")
        for i in range(args.records)
    ]
    xml = build_xml(
        Feedback(Metadata("bench", "b@bench.example", "1", 0, 1), Published("example.org", "none", "none", "100"), recs)
    )
    t = time.perf_counter()
    fb = parse_report_xml(xml)
    s = time.perf_counter() - t
    print(
        f"parse: report of {len(fb.records)} records ({len(xml) / 1e6:.1f} MB XML) in {s:.2f} s "
        f"({len(xml) / 1e6 / s:.1f} MB/s), peak RSS {rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()

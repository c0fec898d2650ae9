#!/usr/bin/env python3
"""DMARC reports benchmark: recording evaluations, the hourly job, parsing incoming reports.

    .venv/bin/python bench/dmarc.py                      # 50,000 evaluations over 500 domains, ~30 s
    .venv/bin/python bench/dmarc.py --evaluations 500000 --domains 5000

Figures: `dmarc record` rate (one batch of JSON lines, one transaction), the hourly
`send-dmarcreports` job (dry run, then the real run that composes, queues and removes), and
the parse rate of a large aggregate report. DNS answers come from an in-process table after a
simulated latency (`--dns-ms`, one TXT lookup per domain).

Each phase runs in its own child process (this script with --phase), so each peak RSS is that
phase's own ru_maxrss (bench/measure.py), not the running maximum of one process. The counts
printed come from each phase's result (evaluations stored, reports queued), read back from
the store or the queue directory where they are written.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure

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


def phase(args: argparse.Namespace) -> dict:
    """One phase, in this (child) process; what it did, as JSON for the parent."""
    from moxcli.dmarc import db as evaldb

    data = Path(args.data)
    cfg = parse_config('hostname = "mail.moxcli.example"\n', data / "moxcli.toml")
    end = args.end
    if args.phase == "parse":
        recs = [
            Record(f"10.0.{i >> 8 & 255}.{i & 255}", i % 9 + 1, "none", "pass", "fail", "example.org", "example.org")
            for i in range(args.records)
        ]
        meta = Metadata("bench", "b@bench.example", "1", 0, 1)
        xml = build_xml(Feedback(meta, Published("example.org", "none", "none", "100"), recs))
        t = time.perf_counter()
        fb = parse_report_xml(xml)
        return {"seconds": time.perf_counter() - t, "records": len(fb.records), "bytes": len(xml)}
    with Store.open(data) as store:
        if args.phase == "record":
            batch = list(lines(args.evaluations, args.domains, end))
            t = time.perf_counter()
            ids = record_evaluations(store, cfg, batch)
            seconds = time.perf_counter() - t
            with store.read() as tx:
                stored = evaldb.count_evaluations(tx)
            return {"seconds": seconds, "returned": len(ids), "stored": stored}
        dry = args.phase == "dry"
        t = time.perf_counter()
        run = send_dmarc_reports(
            store, data, cfg, now=end + 60, dry_run=dry, resolver=TableResolver(args.dns_ms / 1000)
        )
        seconds = time.perf_counter() - t
        with store.read() as tx:
            left = evaldb.count_evaluations(tx)
    queue = data / "queue"
    return {
        "seconds": seconds,
        "domains": len(run.domains),
        "reports": sum(len(d.queued_to) for d in run.domains),
        "queue_files": sum(1 for p in queue.rglob("*") if p.is_file()) if queue.is_dir() else 0,
        "evaluations_left": left,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evaluations", type=int, default=50_000)
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--records", type=int, default=20_000, help="records in the incoming report parsed")
    ap.add_argument("--dns-ms", type=float, default=20.0, help="simulated DNS latency per TXT lookup")
    ap.add_argument("--phase", choices=["record", "dry", "real", "parse"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--end", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    end = time.time() // 3600 * 3600
    with tempfile.TemporaryDirectory(prefix="moxcli-bench-dmarc-") as tmp:

        def child(name: str) -> tuple[dict, measure.Measured]:
            cmd = [sys.executable, __file__, "--phase", name, "--data", tmp, "--end", str(end)]
            cmd += ["--evaluations", str(args.evaluations), "--domains", str(args.domains)]
            cmd += ["--records", str(args.records), "--dns-ms", str(args.dns_ms)]
            m = measure.run(cmd).check(f"phase {name}")
            return json.loads(m.stdout), m

        r, m = child("record")
        print(
            f"dmarc record: {r['stored']:,} evaluations stored ({r['returned']:,} ids returned) in "
            f"{r['seconds']:.2f} s ({r['stored'] / r['seconds']:,.0f}/s), one transaction; "
            f"process peak RSS {m.maxrss_mb:.0f} MB"
        )
        for name, flag in (("dry", " --dry-run"), ("real", "")):
            r, m = child(name)
            extra = "" if name == "dry" else f", {r['queue_files']:,} files under queue/"
            print(
                f"send-dmarcreports{flag}: {r['domains']:,} domains, {r['reports']:,} reports{extra}, "
                f"{r['evaluations_left']:,} evaluations left; {r['seconds']:.2f} s "
                f"({args.evaluations / r['seconds']:,.0f} evaluations/s); process peak RSS {m.maxrss_mb:.0f} MB"
            )
    r, m = child_parse(args)
    print(
        f"parse: report of {r['records']:,} records ({r['bytes'] / 1e6:.1f} MB XML) in {r['seconds']:.2f} s "
        f"({r['bytes'] / 1e6 / r['seconds']:.1f} MB/s); process peak RSS {m.maxrss_mb:.0f} MB"
    )
    print(measure.load_note())


def child_parse(args: argparse.Namespace) -> tuple[dict, measure.Measured]:
    with tempfile.TemporaryDirectory(prefix="moxcli-bench-dmarc-") as tmp:
        cmd = [
            sys.executable,
            __file__,
            "--phase",
            "parse",
            "--data",
            tmp,
            "--end",
            "0",
            "--records",
            str(args.records),
        ]
        m = measure.run(cmd).check("phase parse")
        return json.loads(m.stdout), m


if __name__ == "__main__":
    main()

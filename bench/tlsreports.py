"""Benchmark: `moxcli send-tlsreports`, dry run and real run, over a large TLS results table.

Builds a data directory with N TLS results (rows) over P policy domains (MX hosts, each
serving N/P recipient domains, every row asking for a report), then runs, each phase in its
own child process (TLSRPT lookups answered by an in-process fake resolver):

1. `send-tlsreports --dry-run --json`: composes every report, writes nothing;
2. `send-tlsreports --json`: the real run: composes, DKIM-signs (ed25519) and queues every
   report (message files and queue records), and removes the reported rows.

The counts printed are read from each run's own output (NDJSON: report lines, queue ids)
and, for the real run, from the queue directory; peak RSS is each child's ru_maxrss.
Default: 20,000 results over 10,000 policy domains (10,000 reports per run); --full:
1,000,000 results over 10,000 policy domains.

    .venv/bin/python bench/tlsreports.py [--full | --results N --domains P] [--keep DIR]

With --keep DIR naming a data directory an earlier run built (and no real run emptied), the
build is skipped and that store is measured again (its results must be of yesterday, UTC).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import measure  # noqa: E402 (bench/ on the path first)

CONFIG = """hostname = "mail.bench.example"
[domains."bench.example".dkim]
sign = ["s1"]
[domains."bench.example".dkim.selectors.s1]
algorithm = "ed25519"
private_key_file = "ed.pem"
"""

CHILD = """
import sys
from types import SimpleNamespace
from moxcli.dns import Answer, Resolver

class Fake:
    def txt(self, name):
        fq = name if name.endswith(".") else name + "."
        rec = SimpleNamespace(strings=[b"v=TLSRPTv1; rua=mailto:tlsrpt@" + fq[len("_smtp._tls."):-1].encode()])
        return Answer(fq, "TXT", [rec], True, fq)

Resolver.from_config = classmethod(lambda cls, cfg: Fake())
from moxcli.cli import cli
cli.main(args=sys.argv[1:], prog_name="moxcli")
"""


def build(data: Path, results: int, domains: int, day: str) -> float:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from moxcli.store import Store
    from moxcli.tlsrpt import report as rp
    from moxcli.tlsrpt import resultsdb as tstore

    data.mkdir(parents=True)
    key = ed25519.Ed25519PrivateKey.generate()
    (data / "ed.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (data / "moxcli.toml").write_text(CONFIG)
    per = max(1, results // domains)
    t0 = time.monotonic()
    with Store.open(data) as store:
        batch: list[tuple[str, str]] = []

        def flush() -> None:
            def fn(tx):
                for host, rcpt in batch:
                    res = rp.Result(rp.Policy("tlsa", ["3 1 1 " + "ab" * 32], host, []), 10, 1)
                    res.add(
                        0,
                        0,
                        rp.FailureDetails(
                            "validation-failure",
                            "192.0.2.1",
                            host,
                            f"{host} ESMTP",
                            "198.51.100.7",
                            1,
                            "",
                            "tls-remote-alert-70-protocol-version-not-supported",
                        ),
                    )
                    tstore.add_results(
                        tx, day, rcpt, [{"policy_domain": host, "is_host": True, "send_report": True, "results": [res]}]
                    )

            store.update(fn)
            batch.clear()

        for i in range(domains):
            host = f"mx{i}.hosting{i % 97}.example"
            for j in range(per):
                batch.append((host, f"c{i}-{j}.example"))
            if len(batch) >= 20000:
                flush()
        flush()
    return time.monotonic() - t0


def _counts(ndjson: Path) -> tuple[int, int, dict]:
    """Reports and queued messages as the run printed them (one line per report), and its summary."""
    reports = queued = 0
    summary: dict = {}
    with open(ndjson, "rb") as f:
        for line in f:
            obj = json.loads(line)
            if obj.get("type") == "report":
                reports += 1
                queued += len(obj.get("queue_ids") or [])
            elif obj.get("type") == "summary":
                summary = obj
    return reports, queued, summary


def _queue_files(data: Path) -> int:
    q = data / "queue"
    return sum(1 for p in q.rglob("*") if p.is_file()) if q.is_dir() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="1,000,000 results over 10,000 policy domains")
    ap.add_argument("--results", type=int, default=20_000)
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="build the data directory here and keep it (reused if it exists)")
    ap.add_argument("--dry-run-only", action="store_true", help="skip the real run (keeps a --keep store reusable)")
    args = ap.parse_args()
    if args.full:
        args.results, args.domains = 1_000_000, 10_000
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
    tmp = Path(tempfile.mkdtemp(prefix="bench-tlsreports-"))
    data = args.keep or tmp / "data"
    try:
        if (data / "store").is_dir():
            print(f"reusing {data}")
        else:
            print(f"building {args.results:,} TLS results over {args.domains:,} policy domains ...", flush=True)
            secs = build(data, args.results, args.domains, day)
            size = sum(p.stat().st_size for p in (data / "store").iterdir())
            print(f"  built in {secs:.1f} s, store {size / 1e6:.0f} MB")
        phases = [("dry run", ["--dry-run", "--json"])]
        if not args.dry_run_only:
            phases.append(("real run (DKIM + queue)", ["--json"]))
        for name, extra in phases:
            out = tmp / "out.ndjson"
            m = measure.run([sys.executable, "-c", CHILD, "--data", str(data), "send-tlsreports", *extra], out)
            m.check(f"send-tlsreports {' '.join(extra)}")
            reports, queued, summary = _counts(out)
            line = f"{name}: {reports:,} reports"
            if "--dry-run" not in extra:
                line += f", {queued:,} messages queued ({_queue_files(data):,} files under queue/)"
            print(
                f"{line}; {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, peak RSS {m.maxrss_mb:.0f} MB; {measure.load_note()}"
            )
            if summary.get("errors"):
                print(f"  {len(summary['errors'])} errors, first: {summary['errors'][0]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

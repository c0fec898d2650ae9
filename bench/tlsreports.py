"""Benchmark: `moxcli send-tlsreports --dry-run` over a large TLS results table.

Builds a data directory with N TLS results (rows) over P policy domains (MX hosts, each
serving N/P recipient domains, every row asking for a report), then runs
`moxcli send-tlsreports --dry-run --json` in a child process (stdout to /dev/null, TLSRPT
lookups answered by an in-process fake resolver) and prints wall time and the child's peak
RSS. Default: 100,000 results over 1,000 policy domains; --full: 1,000,000 over 10,000
(the issue's target: <= 15 s and <= 250 MB, memory not growing with the results).

    .venv/bin/python bench/tlsreports.py [--full | --results N --domains P] [--keep DIR]

With --keep DIR naming a data directory an earlier run built, the build is skipped and that
store is measured again (its results must be of yesterday, UTC).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
    from moxcli.store import tlsresults as tstore
    from moxcli.tlsrpt import report as rp

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


def _rss_anon(pid: int) -> int:
    """RssAnon of a process in KiB (its own memory, without file pages mapped from the store)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="1,000,000 results over 10,000 policy domains")
    ap.add_argument("--results", type=int, default=100_000)
    ap.add_argument("--domains", type=int, default=1_000)
    ap.add_argument("--keep", type=Path, help="build the data directory here and keep it (reused if it exists)")
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
        cmd = [sys.executable, "-c", CHILD, "--data", str(data), "send-tlsreports", "--dry-run", "--json"]
        t0 = time.monotonic()
        peak_anon = 0
        with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
            p = subprocess.Popen(cmd, stdout=devnull, stderr=err, cwd=ROOT)
            while p.poll() is None:
                peak_anon = max(peak_anon, _rss_anon(p.pid))
                time.sleep(0.05)
            wall = time.monotonic() - t0
            if p.returncode != 0:
                err.seek(0)
                print(err.read().decode(errors="replace"), file=sys.stderr)
                sys.exit(p.returncode)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        print(
            f"send-tlsreports --dry-run: {wall:.1f} s wall, {cpu:.1f} s CPU, {args.domains:,} "
            f"reports, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  peak RSS {peak:.0f} MB (includes store pages mapped by LMDB), peak anonymous memory "
            f"{peak_anon / 1024:.0f} MB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: importing incoming report mail, and summarising many stored reports.

1. Import: N report mails (Google-shaped TLS reports: multipart/report with a gzip JSON part,
   made by tests/helpers/reportmail.py) as files in a directory and as a maildir, by
   `moxcli tlsreports import DIR` and `moxcli tlsreports import --maildir DIR` in a child
   process each; the same for N DMARC report mails with `dmarcreports import`.
2. Summary: a store holding R TLS and R DMARC reports (filled in-process through the import
   library in batches), then `moxcli tlsreports summary --json` and `moxcli dmarcreports
   summary --json` in a child each.

Printed per run: the count taken from the command's own NDJSON/JSON output, wall time, the
child's CPU time (user+sys, from its rusage, so a loaded machine shows in wall time only),
CPU per report, and the child's peak RSS (ru_maxrss). `tlsreports import` of an empty directory
gives the start-up cost; "net" is CPU per report without it. Each import is run --repeat times
(a new store each time) and the run with the least CPU is printed: on a shared machine the
others are slowed by their neighbours, not by moxcli.

The children run with Python's bytecode cache (in a temporary PYTHONPYCACHEPREFIX, warmed by
a first run), as an installed moxcli has it: with PYTHONDONTWRITEBYTECODE set and no
__pycache__, every run would compile moxcli's modules again (50 ms). PYTHONUNBUFFERED is
dropped for them too (with it, every NDJSON line is a write of its own).

With --mox PATH (a mox binary), `mox tlsrpt parsereportmsg` and `mox dmarc parsereportmsg` run
on the same files, --repeat times each, and the ratio of the CPU times is printed: the
issue's yardstick (import, storing included, at most 1.0x mox's parse).

    .venv/bin/python bench/reports.py                  # 1,000 mails; summary over 10,000 reports
    .venv/bin/python bench/reports.py --mails 1000 --stored 10000 100000 --mox /path/to/mox

Last measured (--mails 1000 --stored 0 --repeat 3 --mox, mox built from source, 2-core machine
shared with other jobs, load average 7.8): TLS import of the files 0.17 s CPU (start-up 0.06 s,
0.111 ms per report after it) against mox's 0.15 s: 1.14x; DMARC 0.22 s (0.167 ms per report)
against 0.15 s: 1.52x. At the start of that session (load about 1): 1.61x and 2.02x, start-up
0.09 s. docs/tls-reports.md, "Performance of incoming reports", says what is left.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

MOXCLI = [sys.executable, "-m", "moxcli"]


PYCACHE = Path(tempfile.mkdtemp(prefix="bench-reports-pycache-"))


def run(args: list[str], command: list[str] = MOXCLI) -> tuple[float, float, int, str]:
    """(wall s, child CPU s, child peak RSS KiB, stdout) of one child (rusage via wait4)."""
    env = {**os.environ, "MOXCLI_QUIET_PERMISSIONS": "1", "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONUNBUFFERED", None)  # a write per NDJSON line; people's shells do not set it
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([*command, *args], stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode()
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command[-1:])} {' '.join(args[:6])} ... failed: exit {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, text


def least_cpu(runs: list[tuple[float, float, int, str]]) -> tuple[float, float, int, str]:
    return min(runs, key=lambda r: r[1])


BASE_CPU = 0.0  # CPU of the same command on no input: start-up (imports, store open)


def line(what: str, count: int, wall: float, cpu: float, rss: int) -> None:
    per = cpu / count * 1000 if count else 0.0
    net = (cpu - BASE_CPU) / count * 1000 if count else 0.0
    print(f"{what:<50} {count:>7} {wall:>8.2f} s {cpu:>7.2f} s {per:>8.3f} ms {net:>8.3f} ms {rss / 1024:>7.1f} MB")


def imported(text: str) -> int:
    summary = json.loads(text.strip().splitlines()[-1])
    return summary["imported"] + summary["duplicate"]


def bench_import(tmp: Path, mails: int, repeat: int, mox: str | None) -> None:
    from helpers import reportmail as rm

    global BASE_CPU
    (tmp / "empty").mkdir()
    warm = tmp / "warm"
    warm.mkdir()
    (warm / "t.eml").write_bytes(rm.tls_mail("google", 0))
    (warm / "d.eml").write_bytes(rm.dmarc_mail("google", 0))
    run(["--data", str(tmp / "data-warm"), "reports", "import", "--json", str(warm)])  # fills the bytecode cache
    runs = [
        run(["--data", str(tmp / f"data-empty-{i}"), "tlsreports", "import", "--json", str(tmp / "empty")])
        for i in range(repeat)
    ]
    wall, cpu, rss, out = least_cpu(runs)
    line("tlsreports import of an empty directory", 0, wall, cpu, rss)
    BASE_CPU = cpu

    for kind, make in (
        ("tls", lambda i: rm.tls_mail("google", i, day=i % 300)),
        ("dmarc", lambda i: rm.dmarc_mail("google", i, day=i % 300)),
    ):
        files = tmp / f"{kind}-files"
        md = tmp / f"{kind}-maildir"
        files.mkdir()
        for sub in ("new", "cur", "tmp"):
            (md / sub).mkdir(parents=True)
        for i in range(mails):
            m = make(i)
            (files / f"{i:06}.eml").write_bytes(m)
            (md / "new" / f"{1700000000 + i}.M{i}P1.bench").write_bytes(m)
        cmd = f"{kind}reports"
        ours = 0.0
        for label, src in (("files", [str(files)]), ("maildir", ["--maildir", str(md)])):
            plain = [tmp / f"data-{kind}-{label}-plain-{i}" for i in range(repeat)]
            wall, cpu, rss, out = least_cpu([run(["--data", str(d), cmd, "import", *src]) for d in plain])
            line(f"{cmd} import ({label}), new", mails, wall, cpu, rss)
            ours = ours or cpu
            data = [tmp / f"data-{kind}-{label}-{i}" for i in range(repeat)]
            wall, cpu, rss, out = least_cpu([run(["--data", str(d), cmd, "import", "--json", *src]) for d in data])
            line(f"{cmd} import ({label}), new, --json", imported(out), wall, cpu, rss)
            wall, cpu, rss, out = least_cpu([run(["--data", str(d), cmd, "import", "--json", *src]) for d in data])
            line(f"{cmd} import ({label}), all duplicates, --json", imported(out), wall, cpu, rss)
        if mox:
            names = sorted(str(f) for f in files.iterdir())
            mox_args = ["tlsrpt" if kind == "tls" else "dmarc", "parsereportmsg", *names]
            wall, cpu, rss, out = least_cpu([run(mox_args, [mox]) for _ in range(repeat)])
            line(f"mox {' '.join(mox_args[:2])} (files)", mails, wall, cpu, rss)
            print(f"  {cmd} import (files), new, without --json: {ours / cpu:.2f}x mox's CPU")


def fill(data: Path, reports: int) -> float:
    """R TLS and R DMARC reports into a fresh store, through the import library."""
    from helpers import reportmail as rm

    from moxcli.config import Config
    from moxcli.reports.incoming import Message, import_messages
    from moxcli.store import Store

    t0 = time.perf_counter()
    domains = [f"d{i}.example" for i in range(20)]

    def messages():
        for i in range(reports):
            d = domains[i % len(domains)]
            yield Message(
                f"t{i}", rm.tls_json("google", i // len(domains) % 365, d).replace(b"_example.org-", f"-{i}-".encode())
            )
            yield Message(
                f"d{i}",
                rm.dmarc_xml("google", i // len(domains) % 365, d).replace(b"<report_id>", f"<report_id>{i}-".encode()),
            )

    with Store.open(data) as store:
        s = import_messages(store, Config(), messages(), now=rm.BASE + 400 * rm.DAY, batch_size=2000)
    assert s.counts["imported"] == 2 * reports, s.counts
    return time.perf_counter() - t0


def bench_summary(tmp: Path, stored: list[int]) -> None:
    for r in stored:
        data = tmp / f"data-summary-{r}"
        secs = fill(data, r)
        print(f"(filled {r} TLS + {r} DMARC reports in {secs:.1f} s)")
        for cmd in ("tlsreports", "dmarcreports"):
            wall, cpu, rss, out = run(["--data", str(data), cmd, "summary", "--json"])
            line(f"{cmd} summary over {r}", json.loads(out)["reports"], wall, cpu, rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mails", type=int, default=1000, help="report mails to import per kind (default 1000)")
    ap.add_argument("--stored", type=int, nargs="*", default=[10000], help="stored reports per kind for summaries")
    ap.add_argument("--repeat", type=int, default=3, help="runs per import measurement; the least CPU is shown")
    ap.add_argument("--mox", metavar="PATH", help="a mox binary: time its parsereportmsg on the same mails")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'what':<50} {'reports':>7} {'wall':>10} {'CPU':>9} {'CPU/report':>11} {'net':>11} {'peak RSS':>10}")
    print("(net: CPU/report after subtracting the start-up of `tlsreports import` on an empty directory)")
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as d:
        tmp = Path(d)
        if args.mails:
            bench_import(tmp, args.mails, args.repeat, args.mox)
        bench_summary(tmp, args.stored)


if __name__ == "__main__":
    main()

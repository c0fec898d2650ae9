#!/usr/bin/env python3
"""Batch posture check: domains/s of `check domain` concurrently vs one domain at a time.

Generates N domains in a private DNSSEC-signed zone `bench.` (nsd + a validating unbound of
its own, on free loopback ports), every domain with an MX host pointing at the lab's Postfix
(STARTTLS, lab CA), a TLSRPT record, and on every other MX host a matching DANE-EE TLSA
record. Each domain gets the same checks: MX (+CNAME) with DNSSEC, MTA-STS record, TLSRPT of
domain and MX host, MX host addresses, TLSA, one STARTTLS session with PKIX + DANE verdicts.

The sequential run ("peers": one domain at a time, no sharing) and the concurrent run use
different but identically shaped domains, so both see a cold resolver cache. A third run
measures the CLI end to end on another such set: `moxcli check domain --file F --json
--concurrency N` in a subprocess (start-up, config, NDJSON output included).

    .venv/bin/python bench/posture.py                  # 1000 concurrent, 100 sequential, RTT 0 and 20 ms
    .venv/bin/python bench/posture.py --rtt 0          # loopback only
    .venv/bin/python bench/posture.py --domains 5000 --sequential 500 --concurrency 128

Uses the lab in $LAB_DIR if it runs, else starts one in a temporary directory (and stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
LAB = ROOT / "tests" / "lab" / "lab"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("export "):
            k, _, v = line[7:].partition("=")
            out[k] = shlex.split(v)[0] if v else ""
    return out


def _lab() -> tuple[dict[str, str], str | None]:
    d = os.environ.get("LAB_DIR")
    if d and subprocess.run([LAB, "status", d], capture_output=True).returncode == 0:
        return _env(subprocess.run([LAB, "env", d], check=True, capture_output=True, text=True).stdout), None
    d = tempfile.mkdtemp(prefix="moxcli-bench-lab-")
    r = subprocess.run([LAB, "start", d], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        sys.exit(f"lab start failed:\n{r.stderr}")
    return _env(r.stdout), d


def _zone(n: int, tlsa_ee: str) -> str:
    lines = [
        "$ORIGIN bench.",
        "$TTL 300",
        "@ SOA ns1.bench. hostmaster.bench. 1 300 60 86400 60",
        "@ NS ns1",
        "ns1 A 127.0.0.1",
    ]
    for i in range(n):
        d = f"d{i:05d}"
        lines += [
            f"{d} MX 10 mx.{d}",
            f"mx.{d} A 127.0.0.1",
            f'_smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{d}.bench"',
        ]
        if i % 2 == 0:
            lines.append(f"_25._tcp.mx.{d} TLSA 3 1 1 {tlsa_ee}")
    return "\n".join(lines) + "\n"


class DNS:
    """nsd serving the signed `bench.` zone and unbound validating it with its own anchor."""

    def __init__(self, n: int, tlsa_ee: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="moxcli-bench-dns-"))
        os.chmod(self.dir, 0o755)
        self.auth_port, self.port = _free_port(), _free_port()
        d = self.dir
        (d / "bench.zone").write_text(_zone(n, tlsa_ee))
        key = subprocess.run(
            ["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "bench."], cwd=d, check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(
            ["ldns-signzone", "-o", "bench.", "-f", "bench.zone.signed", "bench.zone", key],
            cwd=d,
            check=True,
            capture_output=True,
        )
        ds = subprocess.run(
            ["ldns-key2ds", "-n", "-2", f"{key}.key"], cwd=d, check=True, capture_output=True, text=True
        ).stdout
        (d / "anchor.ds").write_text(ds)
        (d / "nsd.conf").write_text(
            f"""server:
    ip-address: 127.0.0.1
    port: {self.auth_port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    server-count: 1
    reuseport: no
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "bench."
    zonefile: "bench.zone.signed"
"""
        )
        (d / "unbound.conf").write_text(
            f"""server:
    interface: 127.0.0.1
    port: {self.port}
    outgoing-interface: 127.0.0.1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    logfile: "{d}/unbound.log"
    use-syslog: no
    num-threads: 1
    so-reuseport: no
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-file: "{d}/anchor.ds"
    ede: yes
    msg-cache-size: 64m
    rrset-cache-size: 64m
stub-zone:
    name: "bench."
    stub-addr: 127.0.0.1@{self.auth_port}
remote-control:
    control-enable: no
"""
        )
        subprocess.run(["nsd", "-c", str(d / "nsd.conf")], check=True, capture_output=True)
        subprocess.run(["unbound", "-c", str(d / "unbound.conf")], check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all((d / p).exists() for p in ("nsd.pid", "unbound.pid")):
            time.sleep(0.05)

    def stop(self) -> None:
        for name in ("unbound.pid", "nsd.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.dir / name).read_text().split()[0]), signal.SIGTERM)
        time.sleep(0.3)
        shutil.rmtree(self.dir, ignore_errors=True)


def _delay_proxy(listen: int, upstream: int, delay: float) -> None:
    """A UDP relay to the resolver that answers ``delay`` seconds late (simulated network RTT)."""
    import asyncio

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", listen))
        sock.setblocking(False)

        async def relay(data: bytes, client: tuple[str, int]) -> None:
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.setblocking(False)
            try:
                await loop.sock_sendto(up, data, ("127.0.0.1", upstream))
                answer = await asyncio.wait_for(loop.sock_recv(up, 65535), 10)
                await asyncio.sleep(delay)
                await loop.sock_sendto(sock, answer, client)
            except (TimeoutError, OSError):
                pass
            finally:
                up.close()

        tasks: set[asyncio.Task] = set()  # keep a reference: the loop holds tasks only weakly
        while True:
            data, client = await loop.sock_recvfrom(sock, 65535)
            task = loop.create_task(relay(data, client))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    asyncio.run(serve())


def _run(resolver, domains, opts, concurrency: int, share: bool) -> tuple[float, dict[str, int], float]:
    """(wall seconds, outcome counts, CPU seconds of this process): on a shared machine the
    CPU time per domain is the steadier figure."""
    from moxcli.posture import check_domains

    t, cpu = time.monotonic(), time.process_time()
    counts: dict[str, int] = {}
    for p in check_domains(resolver, domains, opts, concurrency, share_hosts=share):
        key = f"dane={p.indicators['dane']} status={p.status}"
        counts[key] = counts.get(key, 0) + 1
    return time.monotonic() - t, counts, time.process_time() - cpu


def _run_cli(
    lab: dict[str, str], dns_port: int, names: list[str], concurrency: int
) -> tuple[float, dict[str, int], float, float]:
    """`moxcli check domain --file` in its own child, timed from start to exit: wall time,
    verdicts counted from its NDJSON output, its CPU time and peak RSS (bench/measure.py)."""
    import json

    import measure

    work = Path(tempfile.mkdtemp(prefix="moxcli-bench-cli-"))
    try:
        (work / "domains.txt").write_text("\n".join(names) + "\n")
        (work / "moxcli.toml").write_text(
            f'hostname = "bench.moxcli.test"\n[dns]\nresolvers = ["127.0.0.1:{dns_port}"]\ntimeout = 10\n'
            f'[tls]\nca_files = ["{lab["LAB_CA"]}"]\n'
            f"[network]\nsmtp_port = {lab['LAB_SMTP_PORT']}\nhttps_port = {lab['LAB_HTTPS_PORT']}\n"
        )
        cmd = [str(ROOT / ".venv" / "bin" / "moxcli"), "--data", str(work), "--config", str(work / "moxcli.toml")]
        cmd += ["check", "domain", "--file", str(work / "domains.txt"), "--json", "--concurrency", str(concurrency)]
        m = measure.run(cmd, work / "out.ndjson")
        if m.returncode not in (0, 1):  # 1: some domain has a finding; the run itself worked
            m.check("moxcli check domain")
        counts: dict[str, int] = {}
        with open(work / "out.ndjson") as f:
            for line in f:
                p = json.loads(line)
                key = f"dane={p['indicators']['dane']} status={p['status']}"
                counts[key] = counts.get(key, 0) + 1
        return m.wall, counts, m.cpu, m.maxrss_mb
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=1000, help="domains in the concurrent run")
    ap.add_argument("--sequential", type=int, default=100, help="domains in the one-at-a-time run (rate is per domain)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument(
        "--rtt",
        type=float,
        default=20.0,
        metavar="MS",
        help="second round with this simulated resolver round-trip time (0: skip)",
    )
    ap.add_argument(
        "--cli", type=int, default=1000, help="domains in the CLI run (moxcli check domain --file); 0: skip"
    )
    ap.add_argument("--proxy", nargs=3, type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.proxy:
        _delay_proxy(int(args.proxy[0]), int(args.proxy[1]), args.proxy[2])
        return

    from moxcli.dns import Resolver
    from moxcli.posture import PostureOptions

    lab, own_lab = _lab()
    rounds = [0.0] + ([args.rtt] if args.rtt > 0 else [])
    per_round = args.domains + args.sequential + args.cli
    dns = DNS(per_round * len(rounds), lab["LAB_TLSA_EE"])
    proxy = None
    try:
        opts = PostureOptions(
            int(lab["LAB_SMTP_PORT"]), int(lab["LAB_HTTPS_PORT"]), (Path(lab["LAB_CA"]),), "bench.moxcli.test", 10
        )
        print(f"cpus: {os.cpu_count()}  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for k, rtt in enumerate(rounds):
            port = dns.port
            if rtt:
                port = _free_port()
                proxy = subprocess.Popen(
                    [sys.executable, __file__, "--proxy", str(port), str(dns.port), str(rtt / 1000)]
                )
                time.sleep(0.5)
            resolver = Resolver([("127.0.0.1", port)], timeout=10)
            names = [f"d{i:05d}.bench" for i in range(k * per_round, (k + 1) * per_round)]
            seq_names = names[: args.sequential]
            par_names = names[args.sequential : args.sequential + args.domains]
            cli_names = names[args.sequential + args.domains :]
            resolver.query("bench", "SOA")  # trust anchor / DNSKEY primed outside the timings
            t_seq, c_seq, cpu_seq = _run(resolver, seq_names, opts, 1, False)
            t_par, c_par, cpu_par = _run(resolver, par_names, opts, args.concurrency, True)
            rate_seq, rate_par = len(seq_names) / t_seq, len(par_names) / t_par
            print(f"resolver RTT {rtt:g} ms:")
            print(
                f"  sequential (1 at a time): {len(seq_names)} domains in {t_seq:.2f} s = "
                f"{rate_seq:.1f} domains/s, CPU {cpu_seq / len(seq_names) * 1000:.1f} ms/domain  {c_seq}"
            )
            print(
                f"  concurrent ({args.concurrency}): {len(par_names)} domains in {t_par:.2f} s = "
                f"{rate_par:.1f} domains/s, CPU {cpu_par / len(par_names) * 1000:.1f} ms/domain  {c_par}"
            )
            print(f"  speed-up: {rate_par / rate_seq:.1f}x")
            if cli_names:
                t_cli, c_cli, cpu_cli, rss_cli = _run_cli(lab, port, cli_names, args.concurrency)
                done = sum(c_cli.values())  # domains the CLI printed a verdict for
                print(
                    f"  CLI check domain --file ({args.concurrency}): {done} of {len(cli_names)} domains in "
                    f"{t_cli:.2f} s = {done / t_cli:.1f} domains/s, CPU {cpu_cli / max(done, 1) * 1000:.1f} ms/domain, "
                    f"peak RSS {rss_cli:.0f} MB  {c_cli}"
                )
            if proxy is not None:
                proxy.terminate()
                proxy.wait(5)
                proxy = None
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(5)
        dns.stop()
        if own_lab:
            subprocess.run([LAB, "stop", own_lab], capture_output=True, timeout=60)


if __name__ == "__main__":
    main()

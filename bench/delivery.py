#!/usr/bin/env python3
"""Delivery benchmark: queue N messages, deliver them to a local SMTP server, time the parts.

    .venv/bin/python bench/delivery.py [--count 1000] [--lab DIR] [--domain reports.test] [--plaintext]
                                       [--no-dns-cache] [--per-message K] [--cli 1000,5000,10000]
                                       [--no-pipelining] [--seal-max-size BYTES]

DNS goes through the lab's validating resolver (a running lab from --lab or $LAB_DIR, else a
private lab is started and stopped); the recipient domain (default reports.test) has a
DNSSEC-signed MX, so every attempt does the full lookups of docs/behaviour-notes.md §3.2-§3.4 (CNAME, MX,
MTA-STS TXT, host CNAME/A/AAAA, TLSA). The server is aiosmtpd in a subprocess on loopback
(a sink, bench/smtpsink.py, that announces PIPELINING as Postfix and mox do; --no-pipelining:
aiosmtpd's own sink, which does not) with STARTTLS and a self-signed certificate, listening
on the configured SMTP port for the MX address 127.0.0.1. Prints messages/s, the share of
wall time spent in DNS, TLS (handshake and verification), the store (the grouped commits)
and SMTP, and the CPU time per message of moxcli and of the server (on a shared machine the
wall-clock rate mostly measures the load of others; the CPU time does not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moxcli import tlsconn  # noqa: E402
from moxcli.config import parse_config  # noqa: E402
from moxcli.dane import verify as dane_verify  # noqa: E402
from moxcli.delivery import deliver  # noqa: E402
from moxcli.delivery import queue as dq  # noqa: E402
from moxcli.delivery.deliver import CachingResolver  # noqa: E402
from moxcli.dns import Resolver  # noqa: E402
from moxcli.store import Store  # noqa: E402

LAB = ROOT / "tests" / "lab" / "lab"
TIMES = {"dns": 0.0, "tls": 0.0, "store": 0.0}
READS = {"count": 0}  # read transactions the run opened (each is an LMDB reader slot and snapshot)


def _timed(kind: str, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            TIMES[kind] += time.perf_counter() - t

    return wrapper


def _counted(fn):
    def wrapper(*a, **k):
        READS["count"] += 1
        return fn(*a, **k)

    return wrapper


class TimedResolver(CachingResolver):
    """The engine's resolver (with its per-run cache), timed; --no-dns-cache times raw lookups."""

    cache = True

    def query(self, name, rdtype):  # every lookup (cname, ips, txt) goes through query
        t = time.perf_counter()
        try:
            return super().query(name, rdtype) if self.cache else Resolver.query(self, name, rdtype)
        finally:
            TIMES["dns"] += time.perf_counter() - t


def _lab_env(lab_dir: str) -> dict[str, str]:
    out = subprocess.run([str(LAB), "env", lab_dir], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[7:].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


def _self_signed(dirpath: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.invalid")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.invalid")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    c, k = dirpath / "cert.pem", dirpath / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return c, k


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"aiosmtpd did not start on port {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="messages to deliver (default 1000)")
    ap.add_argument(
        "--lab", default=os.environ.get("LAB_DIR"), help="running lab directory (default $LAB_DIR; else a private lab)"
    )
    ap.add_argument("--domain", default="reports.test", help="recipient domain in the lab (its MX must be 127.0.0.1)")
    ap.add_argument("--plaintext", action="store_true", help="server without STARTTLS")
    ap.add_argument("--no-pipelining", action="store_true", help="server without PIPELINING (aiosmtpd's sink)")
    ap.add_argument("--no-dns-cache", action="store_true", help="do every DNS lookup (no per-run cache)")
    ap.add_argument(
        "--per-message",
        type=int,
        default=1,
        help="recipients per queued submission (delivered in one transaction; default 1)",
    )
    ap.add_argument(
        "--cli",
        metavar="SIZES",
        help="run `moxcli queue run` as a child process for each queue size (e.g. 1000,5000,10000): "
        "wall time, messages/s and peak RSS (ru_maxrss of the child)",
    )
    ap.add_argument(
        "--seal-max-size",
        type=int,
        help="[store] seal_max_size of the data dir (0: no seal; the store is sealed at the end of queue run)",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    own_lab = None
    if args.lab and subprocess.run([str(LAB), "status", args.lab], capture_output=True).returncode == 0:
        lab = _lab_env(args.lab)
    else:
        own_lab = str(tmp / "lab")
        subprocess.run([str(LAB), "start", own_lab], check=True, capture_output=True, timeout=180)
        lab = _lab_env(own_lab)
    port = _free_port()
    sink = "aiosmtpd.handlers.Sink" if args.no_pipelining else "smtpsink.PipeliningSink"
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", sink]
    if not args.plaintext:
        cert, key = _self_signed(tmp)
        cmd += ["--tlscert", str(cert), "--tlskey", str(key), "--no-requiretls"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]))
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_port(port)
        data = tmp / "data"
        data.mkdir()
        text = (
            f'hostname = "mail.moxcli.test"\n[dns]\nresolvers = ["{lab["LAB_DNS"]}"]\n'
            f'[tls]\nca_files = ["{lab["LAB_CA"]}"]\n'
            f"[network]\nsmtp_port = {port}\nhttps_port = {lab['LAB_HTTPS_PORT']}\n"
        )
        if args.seal_max_size is not None:
            text += f"[store]\nseal_max_size = {args.seal_max_size}\n"
        (data / "moxcli.toml").write_text(text)
        cfg = parse_config(text, data / "moxcli.toml")
        if args.cli:
            _cli_runs(tmp, text, args, port, server.pid)
            return
        body = b"From: <bench@moxcli.test>\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26
        with Store.open(data) as st:
            t = time.perf_counter()
            with st.write() as tx:
                for i in range(0, args.count, args.per_message):
                    rcpts = [f"r{j}@{args.domain}" for j in range(i, min(i + args.per_message, args.count))]
                    dq.enqueue_in(tx, data, mail_from="bench@moxcli.test", recipients=rcpts, data=body)
            t_enqueue = time.perf_counter() - t

            tlsconn.handshake = _timed("tls", tlsconn.handshake)
            tlsconn.pkix_verify = _timed("tls", tlsconn.pkix_verify)
            dane_verify.verify = _timed("tls", dane_verify.verify)
            st.update = _timed("store", st.update)
            st.read = _counted(st.read)
            resolver = TimedResolver.from_config(cfg.dns)
            resolver.cache = not args.no_dns_cache
            engine = deliver.Engine(cfg, resolver, st, data)
            t, cpu, server_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(server.pid)
            res = deliver.run_queue(st, data, cfg, engine=engine)
            total = time.perf_counter() - t
            cpu = time.process_time() - cpu
            server_cpu = _cpu_seconds(server.pid) - server_cpu
        delivered = sum(1 for r in res if r.outcome == "delivered")
        smtp = total - sum(TIMES.values())
        print(f"queued {args.count} messages in one transaction: {t_enqueue:.2f} s ({args.count / t_enqueue:.0f}/s)")
        print(
            f"delivered {delivered}/{len(res)} to {args.domain} (MX 127.0.0.1:{port}, "
            f"{_server_kind(args)}) in {total:.2f} s"
        )
        print(f"throughput: {delivered / total:.1f} messages/s, {1000 * total / max(len(res), 1):.1f} ms per message")
        print(_cpu_line(delivered, cpu, server_cpu))
        for k, v in (("dns", TIMES["dns"]), ("tls", TIMES["tls"]), ("store", TIMES["store"]), ("smtp+other", smtp)):
            print(f"  {k:<11} {v:7.2f} s  {100 * v / total:5.1f} %")
        reads = READS["count"]
        print(f"  store read transactions: {reads} ({reads / max(len(res), 1):.2f} per message)")
        if delivered != len(res):
            errs = {r.error for r in res if r.outcome != "delivered"}
            print(f"not delivered: {sorted(errs)[:3]}")
    finally:
        server.terminate()
        server.wait(10)
        if own_lab:
            subprocess.run([str(LAB), "stop", own_lab], capture_output=True, timeout=60)
        # The queues of a --cli run take hundreds of MB (one file per message, 10,000 of them).
        shutil.rmtree(tmp, ignore_errors=True)


def _server_kind(args: argparse.Namespace) -> str:
    return f"{'plaintext' if args.plaintext else 'STARTTLS'}, {'no ' if args.no_pipelining else ''}PIPELINING"


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_line(delivered: int, client: float, server: float) -> str:
    """CPU per message of both sides, and the rate they allow when nothing else wants the CPU:
    on a shared machine the wall-clock rate mostly says how busy the others are."""
    n = max(delivered, 1)
    return (
        f"  CPU per message: moxcli {1000 * client / n:.2f} ms, server {1000 * server / n:.2f} ms;"
        f" unloaded at most about {n / max(client + server, 1e-9):.0f} msg/s (one after the other)"
    )


def _cli_runs(tmp: Path, config_text: str, args: argparse.Namespace, port: int, server_pid: int) -> None:
    """Queue N messages, then time `moxcli queue run` in a child; its peak RSS and CPU time
    from wait4(), the server's CPU time from /proc."""
    body = b"From: <bench@moxcli.test>\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    for n in (int(x) for x in args.cli.split(",")):
        data = tmp / f"data-{n}"
        data.mkdir()
        (data / "moxcli.toml").write_text(config_text)
        with Store.open(data) as st, st.write() as tx:
            for i in range(0, n, args.per_message):
                rcpts = [f"r{j}@{args.domain}" for j in range(i, min(i + args.per_message, n))]
                dq.enqueue_in(tx, data, mail_from="bench@moxcli.test", recipients=rcpts, data=body)
        out = tmp / f"run-{n}.ndjson"
        cmd = [sys.executable, "-m", "moxcli", "--data", str(data), "queue", "run", "--json"]
        t, server_cpu = time.perf_counter(), _cpu_seconds(server_pid)
        with out.open("wb") as f:
            child = subprocess.Popen(cmd, stdout=f, stderr=subprocess.DEVNULL, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - t
        server_cpu = _cpu_seconds(server_pid) - server_cpu
        child.returncode = os.waitstatus_to_exitcode(status)
        lines = out.read_bytes().splitlines()
        delivered = sum(1 for line in lines if b'"outcome": "delivered"' in line)
        print(
            f"{n:>6} queued: delivered {delivered} in {took:.2f} s ({delivered / took:.0f} msg/s),"
            f" peak RSS {usage.ru_maxrss / 1024:.1f} MB, exit {child.returncode}"
            f" ({_server_kind(args)}, MX 127.0.0.1:{port}), load {os.getloadavg()[0]:.1f}"
        )
        print(_cpu_line(delivered, usage.ru_utime + usage.ru_stime, server_cpu) + " (moxcli: with its start-up)")


if __name__ == "__main__":
    main()

"""A clean stop of the report senders (real processes, lab DNS): SIGTERM while
`send-tlsreports --deliver-now` or `send-dmarcreports --deliver-now` is mid-DATA at a stalling
server, and while `send-reports` waits for a DNS server that never answers. Each exits 3, the
store passes verifydata, and the next run delivers (or runs the job) exactly once."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import lab_config_text
from helpers.dkim import make_dkim_config
from helpers.dmarc import hour, vector_eval
from helpers.proc import WIDE_QUIT_GRACE, spawn_moxcli
from smtpstub import NORMAL, STALL_AFTER_DOT, STALL_MAIL, stub

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.dmarc.db import record_evaluations
from moxcli.store import Store
from moxcli.tlsrpt import report as rp
from moxcli.tlsrpt import resultsdb as tstore

pytestmark = pytest.mark.lab


def _config(lab, tmp_path, port: int, extra: str = ""):
    text = re.sub(r"smtp_port = \d+", f"smtp_port = {port}", lab_config_text(lab)).split("\n", 1)[1]
    cfg, _ = make_dkim_config(tmp_path, hostname="mail.moxcli.test", domain="moxcli.test", extra=text + extra)
    data = tmp_path / "data"
    data.mkdir()
    return data, cfg


def _interrupt_mid_data(srv, p, sig: signal.Signals = signal.SIGTERM) -> tuple[str, str]:
    try:
        assert srv.reached["after-dot"].wait(90), "the run never got to the stall"
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    srv.modes = [NORMAL]  # from now on the server behaves
    return out, err


def _queue(runner, data, cfg):
    r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "queue", "list", "--json"])
    return json.loads(r.stdout)


def _after(runner, data, cfg, srv, n, sig: signal.Signals = signal.SIGTERM):
    r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "verifydata"])
    assert r.exit_code == 0, r.output
    queued = _queue(runner, data, cfg)
    assert len(queued) == n and {m["attempts"] for m in queued} == {0}
    assert any(m["last_error"] == f"interrupted by {sig.name}" for m in queued)
    assert srv.messages == []
    r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "queue", "run", "--json"])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["outcome"] for x in r.stdout.splitlines()] == ["delivered"] * n
    assert (
        r.stderr == f"{n} message(s) attempted: {n} delivered, 0 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored\n"
    )
    assert len(srv.messages) == n
    assert _queue(runner, data, cfg) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_send_tlsreports_deliver_now_stopped_mid_data(lab, runner, tmp_path, sig):
    with stub([STALL_AFTER_DOT]) as srv:
        data, cfg = _config(lab, tmp_path, srv.port)
        day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
        res = rp.make_result("no-policy-found", "sts.test")
        res.add(0, 1, rp.FailureDetails("starttls-not-supported", "", "mx.sts.test", "", "127.0.0.1", 1))
        with Store.open(data) as store, store.write() as tx:
            tstore.add_results(
                tx,
                day,
                "sts.test",
                [{"policy_domain": "sts.test", "is_host": False, "send_report": True, "results": [res]}],
            )
        p = spawn_moxcli(data, "--config", str(cfg.path), "send-tlsreports", "--day", day, "--deliver-now")
        _, err = _interrupt_mid_data(srv, p, sig)
        assert p.returncode == 3, err
        assert err.strip().splitlines()[-1].startswith(f"moxcli: interrupted by {sig.name}: 1 message(s) recorded")
        _after(runner, data, cfg, srv, 1, sig)
        assert b"TLS-Report-Domain: sts.test" in srv.messages[0]


def test_send_dmarcreports_deliver_now_stopped_mid_data(lab, runner, tmp_path):
    with stub([STALL_AFTER_DOT]) as srv:
        data, cfg = _config(lab, tmp_path, srv.port)
        end = hour()
        ev = vector_eval(
            end,
            policy_domain="reports.test",
            addresses=["mailto:dmarc@reports.test"],
            policy_published={"domain": "reports.test", "p": "reject", "adkim": "r", "aspf": "r"},
            header_from="reports.test",
            envelope_from="reports.test",
        )
        with Store.open(data) as store:
            record_evaluations(store, parse_config(cfg.path.read_text(), cfg.path), [json.dumps(ev)])
        iso = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        p = spawn_moxcli(data, "--config", str(cfg.path), "send-dmarcreports", "--end", iso, "--deliver-now")
        _, err = _interrupt_mid_data(srv, p)
        assert p.returncode == 3, err
        assert err.strip().splitlines()[-1].startswith("moxcli: interrupted by SIGTERM: 1 message(s) recorded")
        _after(runner, data, cfg, srv, 1)
        assert b"Subject: Report Domain: reports.test" in srv.messages[0]


def test_send_dmarcreports_second_signal_exits_at_once(lab, runner, tmp_path):
    """The first SIGTERM waits for the MAIL reply the server never sends (1 s, here widened by
    MOXCLI_TEST_QUIT_GRACE so that a loaded machine cannot make the test miss it); a second
    one exits at once, as after a crash: the attempt counted, the report stays queued, the
    store passes verifydata and the next queue run delivers it exactly once."""
    with stub([STALL_MAIL, NORMAL]) as srv:
        data, cfg = _config(lab, tmp_path, srv.port)
        end = hour()
        ev = vector_eval(
            end,
            policy_domain="reports.test",
            addresses=["mailto:dmarc@reports.test"],
            policy_published={"domain": "reports.test", "p": "reject", "adkim": "r", "aspf": "r"},
            header_from="reports.test",
            envelope_from="reports.test",
        )
        with Store.open(data) as store:
            record_evaluations(store, parse_config(cfg.path.read_text(), cfg.path), [json.dumps(ev)])
        iso = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        p = spawn_moxcli(
            data,
            "--config",
            str(cfg.path),
            "--log-level",
            "info",
            "send-dmarcreports",
            "--end",
            iso,
            "--deliver-now",
            env=WIDE_QUIT_GRACE,
        )
        try:
            assert srv.reached["mail"].wait(90), "the run never got to MAIL"
            p.send_signal(signal.SIGTERM)
            before = []
            for line in p.stderr:
                before.append(line)
                if "stop requested: ending the session" in line:
                    break
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
            err = "".join(before) + p.stderr.read()
        finally:
            p.kill()
            p.wait()
        assert p.returncode == 3, err
        assert err.strip().splitlines()[-1] == "moxcli: SIGTERM again: exiting at once", err
        r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "verifydata"])
        assert r.exit_code == 0, r.output
        (m,) = _queue(runner, data, cfg)
        assert (m["recipient"], m["attempts"]) == ("dmarc@reports.test", 1), (m, err)
        r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "queue", "run", "--id", "1", "--json"])
        assert [json.loads(x)["outcome"] for x in r.stdout.splitlines()] == ["delivered"]
        assert len(srv.messages) == 1 and b"Subject: Report Domain: reports.test" in srv.messages[0]
        assert _queue(runner, data, cfg) == []


class BlackHoleDNS:
    """A UDP "resolver" that takes queries and never answers; ``asked`` is set on the first."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = threading.Event()
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.closing.is_set():
            try:
                if self.sock.recv(4096):
                    self.asked.set()
            except TimeoutError:
                continue

    def close(self) -> None:
        self.closing.set()
        self.thread.join(10)
        self.sock.close()


def test_send_reports_stopped_while_dns_stalls(lab, runner, tmp_path):
    dns = BlackHoleDNS()
    try:
        data, cfg = _config(lab, tmp_path, 25)
        lab_text = cfg.path.read_text()
        text = re.sub(r'resolvers = \["[^"]*"\]', f'resolvers = ["127.0.0.1:{dns.port}"]', lab_text)
        cfg.path.write_text(re.sub(r"timeout = 5\n", "timeout = 60\n", text, count=1))
        ev = vector_eval(
            hour(),
            policy_domain="reports.test",
            addresses=["mailto:dmarc@reports.test"],
            policy_published={"domain": "reports.test", "p": "reject", "adkim": "r", "aspf": "r"},
            header_from="reports.test",
            envelope_from="reports.test",
        )
        with Store.open(data) as store:
            record_evaluations(store, parse_config(cfg.path.read_text(), cfg.path), [json.dumps(ev)])
        p = spawn_moxcli(data, "--config", str(cfg.path), "send-reports")
        try:
            assert dns.asked.wait(60), "send-reports never asked the DNS server"
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
        finally:
            p.kill()
            p.wait()
        assert p.returncode == 3, err
        assert err.strip().splitlines()[-1] == "moxcli: interrupted by SIGTERM"
        r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "verifydata"])
        assert r.exit_code == 0, r.output
        # Nothing was marked done: the next run (with a working resolver) does the DMARC hour
        # again and queues its report exactly once; the run after it has nothing left to do.
        cfg.path.write_text(lab_text)
        r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "send-reports", "--dry-run", "--json"])
        jobs = json.loads(r.stdout)["jobs"]
        assert [(j["name"], j["ran"]) for j in jobs if j["name"] == "dmarc"] == [("dmarc", True)]
        for _ in range(2):
            r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg.path), "send-reports", "--json"])
            assert r.exit_code == 0, r.output
        assert [m["recipient"] for m in _queue(runner, data, cfg)] == ["dmarc@reports.test"]
    finally:
        dns.close()

"""A clean stop: SIGTERM/SIGINT to `moxcli queue run` (a real process) while a server stalls.

The session is ended (QUIT when the server waits for a command, else the connection is
closed), the attempt is recorded as interrupted (no attempt counted, no TLS results), the
lock is released, the exit code is 3; a second signal exits at once. Afterwards the store
passes verifydata and the next run delivers the message exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers.dns import example_org_mx
from helpers.proc import BIG, BODY, WIDE_QUIT_GRACE, spawn_moxcli
from smtpstub import NORMAL, STALL_AFTER_DOT, STALL_BANNER, STALL_MAIL, STALL_MID_DATA, stub

from moxcli import stop
from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store
from moxcli.store.lock import job_lock
from moxcli.tlsrpt import resultsdb as tlsresults

ROOT = Path(__file__).resolve().parent.parent


def _data_dir(tmp_path: Path, port: int, extra: str = "") -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n{extra}')
    return data


def _cli(runner, data, *args, input=None):
    return runner.invoke(cli, ["--data", str(data), *args], input=input, env={"COLUMNS": "300"})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(
    "mode,event,body",
    [
        (STALL_AFTER_DOT, "after-dot", BODY),
        (STALL_MID_DATA, "mid-data", BIG),
        (STALL_BANNER, "connected", BODY),
        (STALL_MAIL, "mail", BODY),
    ],
    ids=["after-dot", "mid-data", "banner", "mail"],
)
def test_signal_during_stalled_session(runner, tmp_path, sig, mode, event, body):
    with stub([mode, NORMAL]) as srv:
        data = _data_dir(tmp_path, srv.port)
        r = _cli(runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", input=body)
        assert r.exit_code == 0, r.output
        p = spawn_moxcli(data, "queue", "run")
        try:
            assert srv.reached[event].wait(60), "the run never got to the stall"
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
            p.wait()
        assert p.returncode == 3, err
        summary, error = err.strip().splitlines()[-2:]
        assert summary == "1 message(s) attempted: 0 delivered, 0 deferred, 0 failed, 1 interrupted, 0 DSN(s) stored"
        assert error.startswith(f"moxcli: interrupted by {sig.name}: 1 message(s) recorded")
        assert out.startswith("1 r@[127.0.0.1] interrupted attempt=0 ")
        m = json.loads(_cli(runner, data, "queue", "show", "1", "--json").stdout)
        assert (m["attempts"], m["in_progress"], m["last_error"]) == (0, None, f"interrupted by {sig.name}")
        assert srv.messages == []
        assert _cli(runner, data, "verifydata").exit_code == 0
        with job_lock(data, "queue"):  # the killed run released its lock
            pass
        r = _cli(runner, data, "queue", "run", "--json")
        assert r.exit_code == 0, r.output
        assert [json.loads(x)["outcome"] for x in r.stdout.splitlines()] == ["delivered"]
        assert len(srv.messages) == 1 and srv.messages[0].endswith(b"\r\n\r\n" + body.split(b"\r\n\r\n", 1)[1])
        assert json.loads(_cli(runner, data, "queue", "list", "--json").stdout) == []


def test_second_signal_exits_at_once(runner, tmp_path):
    with stub([STALL_MAIL, NORMAL]) as srv:
        data = _data_dir(tmp_path, srv.port)
        _cli(runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", input=BODY)
        p = spawn_moxcli(data, "--log-level", "info", "queue", "run", env=WIDE_QUIT_GRACE)
        try:
            assert srv.reached["mail"].wait(60)
            p.send_signal(signal.SIGTERM)
            # The first signal makes the run end the session: it waits for the replies still
            # due (the stub never sends them) before it closes; the wide grace keeps it waiting
            # there until the second signal, however slow this test is to send it.
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
        assert _cli(runner, data, "verifydata").exit_code == 0
        # Killed mid-attempt, as after a crash: the attempt counted, the message stays queued.
        m = json.loads(_cli(runner, data, "queue", "show", "1", "--json").stdout)
        assert (m["attempts"], m["in_progress"] is not None) == (1, True), err
        r = _cli(runner, data, "queue", "run", "--id", "1", "--json")
        assert [json.loads(x)["outcome"] for x in r.stdout.splitlines()] == ["delivered"]
        assert len(srv.messages) == 1


def test_interrupted_attempt_records_no_tls_results_and_later_messages_wait(tmp_path):
    """In-process: the stop stops the run before the next message; nothing about the
    interrupted session goes into the TLS results."""
    with stub([STALL_AFTER_DOT, NORMAL]) as srv:
        data = _data_dir(tmp_path, srv.port)
        cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
        with Store.open(data) as st:
            a = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=BODY)
            b = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["y@example.org"], data=BODY)
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            seen = []

            def kill_when_stalled() -> None:
                if srv.reached["after-dot"].wait(60):
                    os.kill(os.getpid(), signal.SIGTERM)

            t = threading.Thread(target=kill_when_stalled)
            t.start()
            try:
                with stop.handling(), pytest.raises(stop.Interrupted) as exc:
                    deliver.run_queue(st, data, cfg, engine=eng, on_attempt=seen.append)
            finally:
                t.join()
            assert str(exc.value) == (
                "interrupted by SIGTERM: 1 message(s) recorded as interrupted, 1 not attempted; run the queue again"
            )
            assert [(r.id, r.outcome, r.attempt) for r in seen] == [(a[0], "interrupted", 0)]
            with st.read() as tx:
                assert list(tlsresults.iter_rows(tx)) == []
            now = time.time()
            assert [m.id for m in q.list_messages(st) if q.is_due(m, now)] == [a[0], b[0]]
            res = deliver.run_queue(st, data, cfg, engine=eng)
            assert [(r.id, r.outcome, r.attempt) for r in res] == [(a[0], "delivered", 1), (b[0], "delivered", 1)]
            assert len(srv.messages) == 2


@pytest.mark.parametrize(
    "value,grace",
    [
        (None, 1.0),
        ("300", 300.0),
        ("0.5", 0.5),
        ("600", 600.0),
        ("0", 1.0),
        ("-3", 1.0),
        ("601", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        ("x", 1.0),
        ("", 1.0),
    ],
)
def test_quit_grace_test_knob(monkeypatch, value, grace):
    """MOXCLI_TEST_QUIT_GRACE widens the stop's wait for the server; nonsense is ignored."""
    from moxcli.smtp import client

    if value is None:
        monkeypatch.delenv("MOXCLI_TEST_QUIT_GRACE", raising=False)
    else:
        monkeypatch.setenv("MOXCLI_TEST_QUIT_GRACE", value)
    assert client._quit_grace() == grace

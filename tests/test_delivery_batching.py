"""Throughput without giving up crash safety: consecutive attempts share their synced commits
(deliver._Book), files of removed records are unlinked after the commit and noted until then,
RSET is pipelined with the next MAIL on a kept session. A kill at any point leaves a store that
verifydata passes, loses no message, and duplicates at most one chunk of deliveries."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smtpstub import NORMAL, REFUSE_RSET, stub

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store
from moxcli.store import queue as qstore
from moxcli.store.files import queue_file

ROOT = Path(__file__).resolve().parent.parent
BODY = b"From: <a@moxcli.test>\r\nSubject: batch\r\n\r\nhello %d\r\n"


def _config(data: Path, port: int) -> str:
    text = f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n'
    (data / "moxcli.toml").write_text(text)
    return text


def _body_number(message: bytes) -> int:
    return int(message.rsplit(b"hello ", 1)[1].strip())


def test_refused_rset_on_kept_session_connects_again(tmp_path):
    """RSET goes in one write with MAIL, RCPT and DATA (RFC 2920 §3.1). A kept session that
    refuses it is closed before any message data, and the message goes over a new connection:
    delivered once."""
    with stub([REFUSE_RSET, NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        cfg = parse_config(_config(data, srv.port), data / "moxcli.toml")
        with Store.open(data) as st:
            for i in range(3):
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[f"r{i}@[127.0.0.1]"], data=BODY % i)
            res = deliver.run_queue(st, data, cfg)
            assert [(r.outcome, r.attempt) for r in res] == [("delivered", 1)] * 3
            assert q.list_messages(st) == []
        assert srv.connections == 2
        assert [_body_number(m) for m in srv.messages] == [0, 1, 2]
        # The refused group was taken up to DATA; the client closed instead of sending data.
        assert srv.commands.count(b"RSET") == 2 and srv.commands.count(b"MAIL") == 4


def test_exception_mid_run_records_outcomes_and_undoes_unattempted(tmp_path, monkeypatch):
    """A failure in the middle of a run (a KeyboardInterrupt standing in for a crash): the
    attempts done are recorded, the one in flight keeps its counted attempt (as after a kill),
    and messages begun with it but never attempted are as they were."""
    with stub([NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        cfg = parse_config(_config(data, srv.port), data / "moxcli.toml")
        real = deliver.deliver_message
        calls = []

        def dies_third(*a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(deliver, "deliver_message", dies_third)
        with Store.open(data) as st:
            ids = [
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[f"r{i}@[127.0.0.1]"], data=BODY % i)[0]
                for i in range(8)
            ]
            t0 = time.time()
            with pytest.raises(KeyboardInterrupt):
                deliver.run_queue(st, data, cfg, now=t0)
            left = {m.id: m for m in q.list_messages(st)}
            assert sorted(left) == ids[2:]
            crashed = left[ids[2]]
            assert (crashed.attempts, crashed.in_progress) == (1, t0)
            assert crashed.next_attempt == pytest.approx(t0 + q.backoff(1))
            for i in ids[3:]:
                assert (left[i].attempts, left[i].in_progress, left[i].last_attempt) == (0, None, None)
                assert queue_file(data, i).exists()
            for i in ids[:2]:
                assert not queue_file(data, i).exists()
            with st.read() as tx:
                assert qstore.unlinking(tx) == []
            monkeypatch.undo()
            # Not yet due: the crashed one waits for its backoff, the others go now.
            res = deliver.run_queue(st, data, cfg, now=t0 + 1)
            assert [(r.id, r.outcome, r.attempt) for r in res] == [(i, "delivered", 1) for i in ids[3:]]
        assert sorted(_body_number(m) for m in srv.messages) == [0, 1, 3, 4, 5, 6, 7]


def test_file_of_removed_record_left_by_a_kill_is_known_and_deleted(runner, tmp_path):
    """Killed between the commit that removes a record and the unlink of its file: the id is
    noted in the same commit, so verifydata warns instead of reporting a lost record, and the
    next queue run deletes the file."""
    data = tmp_path / "data"
    data.mkdir()
    _config(data, 9)
    with Store.open(data) as st:
        (mid,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=BODY % 1)
        path = st.update(lambda tx: q.remove_in(tx, data, mid))  # the commit, then "kill -9"
    assert path.exists()
    r = runner.invoke(cli, ["--data", str(data), "verifydata"])
    assert r.exit_code == 0, r.output
    assert f"queue/{path.parent.name}/{path.name}: not referenced, its record was removed" in r.stdout
    r = runner.invoke(cli, ["--data", str(data), "queue", "run"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "nothing to do\n")
    assert not path.exists()
    with Store.open(data) as st, st.read() as tx:
        assert qstore.unlinking(tx) == [] and tx.meta(qstore.UNLINK) is None
    r = runner.invoke(cli, ["--data", str(data), "verifydata"])
    assert r.exit_code == 0 and "not referenced" not in r.stdout


def _kill_trial(runner, tmp_path: Path, count: int, kill_after: int) -> None:
    with stub([NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir(parents=True)
        _config(data, srv.port)
        with Store.open(data) as st:
            for i in range(count):
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[f"r{i}@[127.0.0.1]"], data=BODY % i)
        proc = subprocess.Popen(
            [sys.executable, "-m", "moxcli", "--data", str(data), "queue", "run", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        try:
            deadline = time.monotonic() + 120
            while len(srv.messages) < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            out = proc.communicate(timeout=60)[0]
        finally:
            proc.kill()
            proc.wait()
        before = [_body_number(m) for m in srv.messages]
        reported = {json.loads(line)["id"] for line in out.splitlines() if line.strip()}

        r = runner.invoke(cli, ["--data", str(data), "verifydata"])
        assert r.exit_code == 0, r.output
        queued = json.loads(runner.invoke(cli, ["--data", str(data), "queue", "list", "--json"]).stdout)
        left = {m["id"] for m in queued}
        # Nothing lost: whatever the server did not get is still queued; what was reported
        # delivered (its outcome committed) is not.
        assert set(range(1, count + 1)) - {n + 1 for n in before} <= left
        assert not (reported & left)
        if left:
            r = runner.invoke(cli, ["--data", str(data), "queue", "retry", *map(str, sorted(left))])
            assert r.exit_code == 0, r.output
            r = runner.invoke(cli, ["--data", str(data), "queue", "run", "--json"])
            assert r.exit_code == 0, r.output
            assert {json.loads(x)["outcome"] for x in r.stdout.splitlines()} == {"delivered"}
            assert r.stderr.startswith(f"{len(left)} message(s) attempted: {len(left)} delivered, 0 deferred,")
        assert json.loads(runner.invoke(cli, ["--data", str(data), "queue", "list", "--json"]).stdout) == []
        got = [_body_number(m) for m in srv.messages]
        assert sorted(set(got)) == list(range(count))
        # Duplicates only of messages the server took before the kill, at most one chunk.
        dups = [n for n in set(got) if got.count(n) > 1]
        assert all(got.count(n) == 2 and n in before for n in dups)
        assert len(dups) <= deliver.MAX_CHUNK
        assert not list((data / "queue").glob("*/*"))
        r = runner.invoke(cli, ["--data", str(data), "verifydata"])
        assert r.exit_code == 0 and "not referenced" not in r.stdout


@pytest.mark.parametrize("kill_after", [1, 12])
def test_kill_during_run_loses_nothing(runner, tmp_path, kill_after):
    _kill_trial(runner, tmp_path, 40, kill_after)


@pytest.mark.slow
def test_kill_during_run_loses_nothing_trials(runner, tmp_path):
    rnd = random.Random(11)
    for trial in range(25):
        _kill_trial(runner, tmp_path / str(trial), 120, rnd.randrange(0, 120))


def test_tls_rows_merged_per_commit_store_what_one_by_one_stores(tmp_path):
    """One commit records many attempts: their TLS result rows are merged first and each
    stored row written once; the table ends up as when every attempt adds its rows itself."""
    from moxcli.delivery.tlsresults import detail
    from moxcli.tlsrpt import resultsdb
    from moxcli.tlsrpt.report import make_result

    def attempt_rows(i: int) -> list[dict]:
        domain = make_result("no-policy-found", "example.org")
        host = make_result("no-policy-found", "mx.example.org")
        if i % 2:
            domain.add(0, 1, detail("starttls-not-supported", "", mx_host="mx.example.org"))
            host.add(0, 1, detail("starttls-not-supported", "", mx_host="mx.example.org"))
        else:
            domain.add(1, 0)
            host.add(1, 0)
        return [
            {"policy_domain": "example.org", "is_host": False, "send_report": i == 2, "results": [domain]},
            {"policy_domain": "mx.example.org", "is_host": True, "send_report": False, "results": [host]},
        ]

    def table(st: Store) -> list[tuple]:
        with st.read() as tx:
            return sorted(
                (r.policy_domain, r.is_host, r.send_report, [x.to_json() for x in r.results])
                for r in resultsdb.iter_rows(tx)
            )

    with Store.open(tmp_path / "a") as one, Store.open(tmp_path / "b") as merged:
        with one.write() as tx:
            for i in range(5):
                resultsdb.add_results(tx, "20261203", "example.org", attempt_rows(i))
        gathered: deliver._TLSRows = {}
        for i in range(5):
            deliver._gather_tls_rows(gathered, "20261203", "example.org", attempt_rows(i))
        with merged.write() as tx:
            for (day, rcpt), rows in gathered.items():
                resultsdb.add_results(tx, day, rcpt, rows.values())
        assert table(merged) == table(one)
        (domain_row,) = [r for r in table(one) if r[0] == "example.org"]
        summary = domain_row[3][0]["summary"]
        assert (summary["total-successful-session-count"], summary["total-failure-session-count"]) == (3, 2)
        assert domain_row[2] is True

"""CLI: moxcli queue add/list/show/drop/hold/release/retry/run and tlsresults list."""

from __future__ import annotations

import json
import re

import pytest

from moxcli.cli import cli
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tlsresults
from moxcli.tlsrpt.report import make_result

MSG = b"From: <a@moxcli.test>\nSubject: cli test\nTLS-Required: No\n\nhello\n"


def run(runner, data, *args, input=None):
    return runner.invoke(cli, ["--data", str(data), *args], input=input, env={"COLUMNS": "300"})


def test_add_list_show_hold_release_retry_drop(runner, data_dir):
    r = run(
        runner,
        data_dir,
        "queue",
        "add",
        "--from",
        "a@moxcli.test",
        "--to",
        "b@example.org",
        "--to",
        "c@example.net",
        "--json",
        input=MSG,
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "ids": [1, 2],
        "require_tls": False,
        "converted_lf": True,
        "added_headers": ["Received", "Date", "Message-ID"],
        "size": (data_dir / "queue" / "a" / "1").stat().st_size,
    }
    r = run(runner, data_dir, "queue", "list", "--json")
    msgs = json.loads(r.stdout)
    assert [m["recipient"] for m in msgs] == ["b@example.org", "c@example.net"]
    assert set(msgs[0]) == {
        "id",
        "base_id",
        "mail_from",
        "recipient",
        "recipient_domain",
        "subject",
        "size",
        "created",
        "require_tls",
        "is_tls_report",
        "is_dmarc_report",
        "sender_account",
        "max_attempts",
        "attempts",
        "next_attempt",
        "last_attempt",
        "last_error",
        "last_code",
        "last_enhanced",
        "hold",
        "in_progress",
        "dialed_ips",
        "delayed_dsn",
        "recipient_domain_tls",
    }
    assert msgs[0]["subject"] == "cli test" and msgs[0]["require_tls"] is False and msgs[0]["created"].endswith("Z")
    r = run(runner, data_dir, "queue", "list")
    assert r.exit_code == 0 and "b@example.org" in r.stdout and "tls-required-no" in r.stdout
    assert run(runner, data_dir, "queue", "hold", "1").stdout == "1\thold\n"
    assert json.loads(run(runner, data_dir, "queue", "show", "1", "--json").stdout)["hold"] is True
    assert run(runner, data_dir, "queue", "release", "1").exit_code == 0
    assert run(runner, data_dir, "queue", "retry", "1", "2").stdout == "1\tretry\n2\tretry\n"
    r = run(runner, data_dir, "queue", "show", "2")
    assert r.exit_code == 0 and "c@example.net" in r.stdout
    assert run(runner, data_dir, "queue", "drop", "1", "2").stdout == "1\tdropped\n2\tdropped\n"
    assert json.loads(run(runner, data_dir, "queue", "list", "--json").stdout) == []
    r = run(runner, data_dir, "queue", "list")
    assert (r.stdout, r.stderr) == ("", "queue is empty\n")


def test_add_requiretls_and_errors(runner, data_dir, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(MSG)
    r = run(runner, data_dir, "queue", "add", "--from", "", "--to", "b@example.org", "--requiretls", "--json", str(f))
    assert r.exit_code == 0 and json.loads(r.stdout)["require_tls"] is True
    r = run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "not-an-address", input=MSG)
    assert (
        r.exit_code == 2 and r.stderr.strip() == "moxcli: invalid address 'not-an-address': expected localpart@domain"
    )
    r = run(runner, data_dir, "queue", "show", "99")
    assert r.exit_code == 2 and "queue message 99: no such message" in r.stderr
    r = run(runner, data_dir, "queue", "drop", "99")
    assert r.exit_code == 2
    r = run(runner, data_dir, "queue", "add", "--to", "b@example.org", input=MSG)
    assert r.exit_code == 2  # --from is required


def test_run_ndjson_and_lines(runner, data_dir, smtpd):
    (data_dir / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {smtpd.port}\n')
    smtpd.script["later@[127.0.0.1]"] = ["451 4.7.1 later"]
    run(
        runner,
        data_dir,
        "queue",
        "add",
        "--from",
        "a@moxcli.test",
        "--to",
        "ok@[127.0.0.1]",
        "--to",
        "later@[127.0.0.1]",
        input=MSG,
    )
    r = run(runner, data_dir, "queue", "run", "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.stderr == "2 message(s) attempted: 1 delivered, 1 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored\n"
    assert [(x["id"], x["outcome"], x["code"]) for x in lines] == [(1, "delivered", 250), (2, "deferred", 451)]
    assert lines[1]["remote_reply"].startswith("451 ")
    assert set(lines[0]) == {
        "id",
        "recipient",
        "outcome",
        "attempt",
        "host",
        "ip",
        "tls",
        "code",
        "enhanced",
        "error",
        "remote_reply",
        "next_attempt",
        "dsn",
        "duration",
    }
    r = run(runner, data_dir, "queue", "run")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "nothing to do\n")
    r = run(runner, data_dir, "queue", "run", "--id", "2")
    assert r.exit_code == 0
    assert r.stdout.startswith(
        "2 later@[127.0.0.1] delivered attempt=2 host=127.0.0.1 ip=127.0.0.1 tls=none code=250 2.0.0"
    )
    r = run(runner, data_dir, "queue", "run", "--id", "7")
    assert r.exit_code == 2 and "queue message 7: no such message" in r.stderr


def test_run_summary_counts_failures_and_dsns(runner, data_dir, smtpd):
    """The summary line (stderr) counts each outcome and the DSNs queued; stdout holds the data only."""
    (data_dir / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {smtpd.port}\n')
    smtpd.script["gone@[127.0.0.1]"] = ["550 5.1.1 no such user"]
    smtpd.script["later@[127.0.0.1]"] = ["451 4.7.1 later"]
    for rcpt in ("gone@[127.0.0.1]", "ok@[127.0.0.1]", "later@[127.0.0.1]"):
        run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", rcpt, input=MSG)
    r = run(runner, data_dir, "queue", "run", "--format", "tsv")
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [(x[0], x[2], x[10]) for x in rows] == [
        ("id", "outcome", "dsn"),
        ("1", "failed", "yes"),
        ("2", "delivered", "no"),
        ("3", "deferred", "no"),
    ]
    assert r.stderr == "3 message(s) attempted: 1 delivered, 1 deferred, 1 failed, 0 interrupted, 1 DSN(s) stored\n"
    # The DSN went to the local sender's mailbox; only the deferred message waits in the queue.
    listed = json.loads(run(runner, data_dir, "queue", "list", "--json").stdout)
    assert [m["recipient"] for m in listed] == ["later@[127.0.0.1]"]


def test_run_lock_held_exit_3(runner, data_dir):
    from moxcli.store.lock import job_lock

    with job_lock(data_dir, "queue"):
        r = run(runner, data_dir, "queue", "run")
    assert r.exit_code == 3 and "another moxcli process" in r.stderr


def test_tlsresults_list(runner, data_dir):
    with Store.open(data_dir) as st, st.write() as tx:
        res = make_result("no-policy-found", "example.org")
        res.add(1, 0)
        tlsresults.add_results(
            tx,
            "20260301",
            "example.org",
            [{"policy_domain": "example.org", "is_host": False, "send_report": True, "results": [res]}],
        )
    r = run(runner, data_dir, "tlsresults", "list", "--json")
    assert r.exit_code == 0
    (row,) = json.loads(r.stdout)
    assert (row["day"], row["policy_domain"], row["is_host"], row["send_report"]) == (
        "2026-03-01",
        "example.org",
        False,
        True,
    )
    assert row["results"][0]["summary"]["total-successful-session-count"] == 1
    r = run(runner, data_dir, "tlsresults", "list", "--day", "20260301")
    assert r.exit_code == 0 and "example.org" in r.stdout and "no-policy-found" in r.stdout
    assert json.loads(run(runner, data_dir, "tlsresults", "list", "--day", "20260302", "--json").stdout) == []
    assert json.loads(run(runner, data_dir, "tlsresults", "list", "--day", "2026-03-01", "--json").stdout) == [row]
    r = run(runner, data_dir, "tlsresults", "list", "--day", "2026-02-30")
    assert r.exit_code == 2
    assert r.stderr == "moxcli: --day '2026-02-30': expected a day as YYYY-MM-DD\n"


def test_killed_run_leaves_queue_that_next_run_continues(runner, data_dir, smtpd):
    """kill -9 during the SMTP session: the message stays queued, the next run delivers it."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(1)  # accepts connections but never greets: the client waits for its 220
    stall.settimeout(30)
    (data_dir / "moxcli.toml").write_text(
        f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {stall.getsockname()[1]}\n'
    )
    run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "k@[127.0.0.1]", input=MSG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moxcli", "--data", str(data_dir), "queue", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        conn, _ = stall.accept()  # the attempt is under way (recorded before connecting)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        stall.close()
    conn.close()
    (m,) = json.loads(run(runner, data_dir, "queue", "list", "--json").stdout)
    assert m["attempts"] == 1 and m["in_progress"] is not None and m["next_attempt"] > m["last_attempt"]
    (data_dir / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {smtpd.port}\n')
    r = run(runner, data_dir, "queue", "run")
    assert (r.stdout, r.stderr) == ("", "nothing to do\n")  # backoff applies
    run(runner, data_dir, "queue", "retry", "1")
    r = run(runner, data_dir, "queue", "run", "--json")
    assert json.loads(r.stdout)["outcome"] == "delivered" and json.loads(r.stdout)["attempt"] == 2
    assert r.stderr == "1 message(s) attempted: 1 delivered, 0 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored\n"
    assert len(smtpd.messages) == 1
    assert json.loads(run(runner, data_dir, "queue", "list", "--json").stdout) == []


def add(runner, data_dir, data: bytes, *extra):
    return run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "b@example.org", *extra, input=data)


def test_add_converts_bare_lf_and_adds_headers(runner, data_dir):
    (data_dir / "moxcli.toml").write_text('hostname = "mail.moxcli.test"\n')
    r = add(runner, data_dir, b"Subject: x\n\n.leading dot\nlast line", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["converted_lf"], out["added_headers"]) == (True, ["Received", "Date", "Message-ID"])
    queued = (data_dir / "queue" / "a" / "1").read_bytes()
    head, _, body = queued.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert re.fullmatch(
        rb"Received: by mail\.moxcli\.test \(moxcli queue add, from userid \d+\); "
        rb"\w{3}, \d\d \w{3} \d{4} [\d:]{8} \+0000",
        lines[0],
    )
    assert lines[1] == b"Subject: x"
    assert lines[2] == b"Date: " + lines[0].split(b"; ")[1]
    assert re.fullmatch(rb"Message-ID: <[A-Za-z0-9_-]{22}@mail\.moxcli\.test>", lines[3])
    assert len(lines) == 4
    assert body == b".leading dot\r\nlast line\r\n"
    assert out["size"] == len(queued)


def test_add_keeps_existing_date_and_message_id(runner, data_dir):
    msg = b"Date: Wed, 31 Dec 2025 10:00:00 +0100\r\nMessage-Id: <given@example>\r\n\r\nhi\r\n"
    r = add(runner, data_dir, msg, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added_headers"] == ["Received"]
    queued = (data_dir / "queue" / "a" / "1").read_bytes()
    assert queued.startswith(b"Received: by localhost (moxcli queue add") and queued.endswith(b"\r\n" + msg)


@pytest.mark.parametrize(
    "data,why",
    [
        (
            b"Subject: x\r\n\r\nA\n.\r\nMAIL FROM:<evil@x.test>\r\n",
            "bare LF (mixed with CRLF line ends) at byte offset 15 (line 3)",
        ),
        (b"Subject: x\r\n\r\nA\r.\r\n", "bare CR at byte offset 15 (line 3)"),
        (b"Subject: x\n\nA\0\n", "NUL octet at byte offset 13 (line 3)"),
        (b"Subject: x\n\n" + b"y" * 999 + b"\n", "line longer than 998 octets (999) at byte offset 12 (line 3)"),
        (b"", "empty message at byte offset 0 (line 1)"),
    ],
)
def test_add_refuses_unsafe_bytes(runner, data_dir, tmp_path, data, why):
    r = add(runner, data_dir, data)
    assert r.exit_code == 2
    assert r.stderr == f"moxcli: stdin: {why}; nothing queued\n"
    f = tmp_path / "m.eml"
    f.write_bytes(data)
    r = run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "b@example.org", str(f))
    assert (r.exit_code, r.stderr) == (2, f"moxcli: {f}: {why}; nothing queued\n")
    # nothing queued, and the store the failed runs created is gone again
    assert not (data_dir / "store").exists()
    assert not any((data_dir / "queue").rglob("*"))  # no files (a missing directory has none)


def test_never_attempted_messages_json_follows_the_schemas(runner, data_dir):
    """A message that was never attempted (null last_attempt, last_error, ...), one with the
    null sender, no subject and no sender account: `queue show --json` and `queue list --json`
    validate against docs/schemas/queue-show.json and queue-list.json and follow the contract
    (no "" values); `recipient_domain_tls` is null, then the domain's record once one exists."""
    from helpers.jsoncontract import contract_problems, schema

    from moxcli.store import domaintls

    r = run(runner, data_dir, "queue", "add", "--from", "", "--to", "b@example.org", input=b"hello\n")
    assert r.exit_code == 0, r.output
    r = run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "c@example.net", input=MSG)
    assert r.exit_code == 0, r.output
    shown = json.loads(run(runner, data_dir, "queue", "show", "1", "--json").stdout)
    assert [e.message for e in schema("queue-show").iter_errors(shown)] == []
    assert contract_problems(shown) == []
    assert (shown["attempts"], shown["last_attempt"], shown["last_error"], shown["last_code"]) == (0, None, None, None)
    assert (shown["mail_from"], shown["subject"], shown["sender_account"]) == (None, None, None)
    assert shown["recipient_domain_tls"] is None
    r = run(runner, data_dir, "queue", "show", "1")
    assert r.exit_code == 0 and re.search(r"^\s*mail_from: <>$", r.stdout, re.M), r.stdout

    with Store.open(data_dir) as st, st.write() as tx:
        domaintls.record(tx, "example.net", True, True, "mx.example.net", 1_000_000.0)
    listed = json.loads(run(runner, data_dir, "queue", "list", "--json").stdout)
    assert [e.message for e in schema("queue-list").iter_errors(listed)] == []
    assert contract_problems(listed) == []
    assert [(m["id"], m["subject"], m["recipient_domain_tls"]) for m in listed] == [
        (1, None, None),
        (
            2,
            "cli test",
            {
                "domain": "example.net",
                "starttls": True,
                "requiretls": True,
                "updated": "1970-01-12T13:46:40Z",
                "host": "mx.example.net",
                "starttls_seen": "1970-01-12T13:46:40Z",
                "requiretls_seen": "1970-01-12T13:46:40Z",
                "downgraded": None,
            },
        ),
    ]
    shown = json.loads(run(runner, data_dir, "queue", "show", "2", "--json").stdout)
    assert [e.message for e in schema("queue-show").iter_errors(shown)] == []
    assert shown["recipient_domain_tls"] == listed[1]["recipient_domain_tls"]


def test_show_prints_lists_as_json_not_python(runner, tmp_path):
    """`queue show` renders list values (dialed_ips) as JSON, as it does objects, never Python's repr."""
    from moxcli.datatools.gentest import generate

    demo = tmp_path / "demo"
    generate(demo)
    res = runner.invoke(cli, ["--data", str(demo), "queue", "show", "4"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith("  dialed_ips: "))
    assert json.loads(line.removeprefix("  dialed_ips: ")) == [{"host": "mx.sts.test", "ips": ["127.0.0.1"]}]


def test_run_summary_before_an_unexpected_error(runner, data_dir, smtpd, monkeypatch):
    """An error mid-run (here disk full while attempting the second message) ends the run with
    the summary of what got done, then the one error line."""
    import errno
    import os

    from moxcli.delivery import deliver

    (data_dir / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {smtpd.port}\n')
    for rcpt in ("one@[127.0.0.1]", "two@[127.0.0.1]", "three@[127.0.0.1]"):
        run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", rcpt, input=MSG)
    real, calls = deliver.attempt, []

    def attempt(engine, msgs):
        calls.append([m.recipient for m in msgs])
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(data_dir / "queue"))
        return real(engine, msgs)

    monkeypatch.setattr(deliver, "attempt", attempt)
    r = run(runner, data_dir, "queue", "run", "--json")
    assert calls == [["one@[127.0.0.1]"], ["two@[127.0.0.1]"]]
    delivered, error = (json.loads(x) for x in r.stdout.splitlines())  # with --json the error is an object too
    assert (delivered["recipient"], delivered["outcome"]) == ("one@[127.0.0.1]", "delivered")
    assert error["error"]["code"] == "io"
    assert r.stderr.splitlines() == [
        "1 message(s) attempted: 1 delivered, 0 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored",
        f"moxcli: {data_dir / 'queue'}: No space left on device",
    ]
    assert r.exit_code == 1


def test_run_error_before_the_first_attempt_is_not_nothing_to_do(runner, data_dir, monkeypatch):
    """Due messages and an error before any attempt: the summary says 0 attempted, not "nothing to do"."""
    from moxcli.delivery import deliver
    from moxcli.errors import StoreError

    def attempt(engine, msgs):
        raise StoreError("mdb_txn_commit: No space left on device")

    monkeypatch.setattr(deliver, "attempt", attempt)
    run(runner, data_dir, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", input=MSG)
    r = run(runner, data_dir, "queue", "run")
    assert r.stderr.splitlines() == [
        "0 message(s) attempted: 0 delivered, 0 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored",
        "moxcli: mdb_txn_commit: No space left on device",
    ]

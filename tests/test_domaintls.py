"""What the engine remembers per recipient domain (spec §3.7): STARTTLS used and REQUIRETLS
offered at each delivery, with the time; a plaintext delivery after STARTTLS is noted as a
downgrade; shown by `domains list`, `queue show` and the `check domain` bar."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
from helpers.dns import example_org_mx
from helpers.proc import log_since
from smtpstub import DRIP_TLS, NORMAL, STARTTLS_454, STARTTLS_GARBAGE, stub

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store, domaintls
from moxcli.tlsrpt import resultsdb as tlsresults

BODY = b"From: <a@moxcli.test>\r\nSubject: memory\r\n\r\nhello\r\n"


def _invoke(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), *args], env={"COLUMNS": "300"})


def _config(data, port):
    (data / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n')
    return parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")


def _recipient_domain_result(st, domain):
    with st.read() as tx:
        (row,) = [r for r in tlsresults.iter_rows(tx) if r.policy_domain == domain and not r.is_host]
    (res,) = row.results
    return res.to_json()


def test_no_plaintext_to_domain_that_did_starttls(runner, tmp_path):
    """A domain whose last delivery used STARTTLS does not get mail in plaintext from a server
    that stops announcing STARTTLS: temporary failure (4.7.10, our finding, no MAIL FROM), a
    starttls-not-supported failure in the TLS results; `TLS-Required: No` allows plaintext and is
    noted as a downgrade; `domains forget` lets plaintext delivery go on."""
    with stub([NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        cfg = _config(data, srv.port)
        with Store.open(data) as st:
            with st.write() as tx:  # an earlier delivery to example.org went over STARTTLS
                domaintls.record(tx, "example.org", True, True, "mx.example.org", 1_000_000.0)
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=BODY)
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            (r,) = deliver.run_queue(st, data, cfg, engine=eng)
            assert (r.outcome, r.code, r.enhanced, r.remote_reply) == ("deferred", 0, "4.7.10", "")
            assert r.error == (
                "mx.example.org does not announce STARTTLS; not delivering in plaintext: the domain did "
                "STARTTLS before (last 1970-01-12T13:46:40Z; TLS-Required: No in a message allows "
                "plaintext, `moxcli domains forget` clears the record)"
            )
            assert srv.messages == [] and b"MAIL" not in srv.commands
            assert srv.commands == [b"EHLO", b"QUIT"]
            res = _recipient_domain_result(st, "example.org")
            assert res["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 1}
            assert [d["result-type"] for d in res["failure-details"]] == ["starttls-not-supported"]
            with st.read() as tx:
                d = domaintls.get(tx, "example.org")
            assert d is not None and (d.starttls, d.updated, d.downgraded) == (True, 1_000_000.0, None)

            # TLS-Required: No (RFC 8689 §4.2.2) delivers in plaintext, and it is noted.
            q.enqueue(
                st,
                data,
                mail_from="a@moxcli.test",
                recipients=["y@example.org"],
                data=b"TLS-Required: No\r\n" + BODY,
                require_tls=False,
            )
            (r,) = deliver.run_queue(st, data, cfg, engine=eng, ids=[2])
            assert (r.outcome, r.tls) == ("delivered", "")
            assert len(srv.messages) == 1
            with st.read() as tx:
                d = domaintls.get(tx, "example.org")
            assert d is not None
            assert (d.starttls, d.requiretls, d.host) == (False, False, "mx.example.org")
            assert (d.starttls_seen, d.requiretls_seen) == (1_000_000.0, 1_000_000.0)
            assert d.downgraded == d.updated and d.updated > 1_000_000.0
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["z@example.org"], data=BODY)
        r = _invoke(runner, data, "domains", "list", "--format", "json")
        assert r.exit_code == 0, r.output
        (row,) = json.loads(r.stdout)
        assert set(row) == {
            "domain",
            "starttls",
            "requiretls",
            "updated",
            "host",
            "starttls_seen",
            "requiretls_seen",
            "downgraded",
        }
        assert (row["domain"], row["starttls"], row["requiretls"]) == ("example.org", False, False)
        assert row["starttls_seen"] == "1970-01-12T13:46:40Z"
        shown = json.loads(_invoke(runner, data, "queue", "show", "3", "--json").stdout)
        assert shown["recipient_domain_tls"] == row
        listed = json.loads(_invoke(runner, data, "queue", "list", "--json").stdout)
        assert [(m["id"], m["recipient_domain_tls"]) for m in listed] == [(1, row), (3, row)]
        r = _invoke(runner, data, "domains", "list")
        assert r.exit_code == 0 and "example.org" in r.stdout and "1970-01-12 13:46:40" in r.stdout
        assert json.loads(_invoke(runner, data, "domains", "list", "example.net", "--format", "json").stdout) == []
        assert _invoke(runner, data, "verifydata").exit_code == 0
        r = _invoke(runner, data, "backup", str(tmp_path / "backup"))
        assert r.exit_code == 0, r.output
        r = runner.invoke(
            cli, ["--data", str(tmp_path / "backup"), "domains", "list", "--format", "json"], env={"COLUMNS": "300"}
        )
        assert json.loads(r.stdout) == [row]

        # The plaintext delivery of a TLS-Required: No message changes nothing for the others:
        # message 1 stays refused until the domain is forgotten.
        with Store.open(data) as st:
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            (r,) = deliver.run_queue(st, data, cfg, engine=eng, ids=[1])
            assert (r.outcome, r.enhanced, len(srv.messages)) == ("deferred", "4.7.10", 1)
        r = _invoke(runner, data, "domains", "forget", "EXAMPLE.org")
        assert (r.exit_code, r.stdout) == (0, "example.org\tforgotten\n")
        assert json.loads(_invoke(runner, data, "domains", "list", "--format", "json").stdout) == []
        r = _invoke(runner, data, "domains", "forget", "example.org")
        assert (r.exit_code, r.stderr) == (2, "moxcli: domain example.org: nothing recorded\n")
        with Store.open(data) as st:
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            (r,) = deliver.run_queue(st, data, cfg, engine=eng, ids=[1])
            assert (r.outcome, r.tls, len(srv.messages)) == ("delivered", "", 2)


@pytest.mark.parametrize(
    ("mode", "want"),
    [
        (STARTTLS_454, "starttls with mx.example.org: starttls: 454 4.7.0 TLS not available now; "),
        (STARTTLS_GARBAGE, "tls handshake with mx.example.org: [SSL: WRONG_VERSION_NUMBER]"),
    ],
)
def test_no_plaintext_fallback_after_tls_failure_to_domain_that_did_starttls(tmp_path, mode, want):
    """Opportunistic TLS retries a failed STARTTLS in plaintext (behaviour notes §3.7); for a
    domain whose last delivery used STARTTLS it does not: one connection, deferred."""
    with stub([mode, NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        cfg = _config(data, srv.port)
        with Store.open(data) as st:
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=BODY)
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            (r,) = deliver.run_queue(st, data, cfg, engine=eng)
            # Nothing known: the same server gets the message in plaintext on a second connection.
            assert (r.outcome, r.tls, srv.connections, len(srv.messages)) == ("delivered", "", 2, 1)
        with stub([mode, NORMAL]) as srv:
            cfg = _config(data, srv.port)
            with Store.open(data) as st:
                with st.write() as tx:
                    domaintls.record(tx, "example.org", True, False, "mx.example.org", 1_000_000.0)
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["y@example.org"], data=BODY)
                eng = deliver.Engine(cfg, example_org_mx(), st, data)
                (r,) = deliver.run_queue(st, data, cfg, engine=eng)
                assert (r.outcome, r.enhanced, srv.connections, srv.messages) == ("deferred", "4.7.10", 1, [])
                assert r.error.startswith(want)
                assert (
                    "; not delivering in plaintext: the domain did STARTTLS before (last 1970-01-12T13:46:40Z; "
                    in r.error
                )


def test_queue_show_unknown_domain_is_null(runner, data_dir):
    r = runner.invoke(
        cli, ["--data", str(data_dir), "queue", "add", "--from", "a@moxcli.test", "--to", "b@example.net"], input=BODY
    )
    assert r.exit_code == 0, r.output
    assert json.loads(_invoke(runner, data_dir, "queue", "show", "1", "--json").stdout)["recipient_domain_tls"] is None
    r = _invoke(runner, data_dir, "domains", "list")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "no deliveries recorded\n")


@pytest.mark.lab
def test_starttls_delivery_to_lab_shown_in_check_domain_bar(runner, lab_data):
    # Nothing delivered yet: both indicators unknown, shown as "?" (every indicator is shown).
    r = _invoke(runner, lab_data, "check", "domain", "reports.test", "--json")
    ind = json.loads(r.stdout.splitlines()[0])["indicators"]
    assert (ind["starttls_seen"], ind["requiretls_seen"]) == ("unknown", "unknown")
    (bar,) = [
        ln for ln in _invoke(runner, lab_data, "check", "domain", "reports.test").stdout.splitlines() if "seen" in ln
    ]
    assert " ".join(bar.split()) == (
        "✗ MTA-STS enforced ✓ MX DNSSEC-signed ✗ DANE on first MX ✗ TLSRPT ✗ REQUIRETLS "
        "? STARTTLS seen ? REQUIRETLS seen"
    )
    r = runner.invoke(
        cli,
        ["--data", str(lab_data), "queue", "add", "--from", "a@moxcli.test", "--to", "tlsrpt@reports.test"],
        input=BODY,
    )
    assert r.exit_code == 0, r.output
    r = _invoke(runner, lab_data, "queue", "run", "--json")
    assert json.loads(r.stdout)["outcome"] == "delivered", r.output
    (row,) = json.loads(_invoke(runner, lab_data, "domains", "list", "--format", "json").stdout)
    # The lab Postfix does STARTTLS and does not offer REQUIRETLS (Postfix has no RFC 8689).
    assert (row["domain"], row["starttls"], row["requiretls"], row["downgraded"]) == (
        "reports.test",
        True,
        False,
        None,
    )
    assert row["starttls_seen"] == row["updated"]
    r = _invoke(runner, lab_data, "check", "domain", "reports.test", "--json")
    ind = json.loads(r.stdout.splitlines()[0])["indicators"]
    assert (ind["starttls_seen"], ind["requiretls_seen"]) == ("implemented", "not-implemented")
    (bar,) = [
        ln for ln in _invoke(runner, lab_data, "check", "domain", "reports.test").stdout.splitlines() if "seen" in ln
    ]
    assert " ".join(bar.split()).endswith(" ✓ STARTTLS seen ✗ REQUIRETLS seen")


@pytest.mark.lab
def test_lab_postfix_without_starttls_gets_nothing_in_plaintext_after_starttls(runner, lab, lab_data):
    """The lab Postfix for notls.test announces no STARTTLS. With the domain's last delivery
    recorded as STARTTLS, `queue run` defers (exit 0: a deferral is the run working), Postfix
    sees EHLO and QUIT only and stores nothing; a `TLS-Required: No` message is delivered in
    plaintext; after `domains forget` the first one is too."""
    maildir = Path(lab["LAB_MAILDIR"]) / "new"
    before = set(maildir.iterdir())
    log = lab["LAB_POSTFIX_LOG"]
    log_start = os.path.getsize(log)
    with Store.open(lab_data) as st, st.write() as tx:
        domaintls.record(tx, "notls.test", True, False, "mx.notls.test", 1_000_000.0)
    tag = uuid.uuid4().hex
    body = f"From: <a@moxcli.test>\r\nSubject: no downgrade {tag}\r\n\r\nhello\r\n".encode()
    r = runner.invoke(
        cli, ["--data", str(lab_data), "queue", "add", "--from", "a@moxcli.test", "--to", "x@notls.test"], input=body
    )
    assert r.exit_code == 0, r.output
    r = _invoke(runner, lab_data, "queue", "run", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["outcome"], res["host"], res["ip"], res["enhanced"]) == (
        "deferred",
        "mx.notls.test",
        "127.0.0.2",
        "4.7.10",
    )
    assert res["error"].startswith("mx.notls.test does not announce STARTTLS; not delivering in plaintext")
    r = _invoke(runner, lab_data, "tlsresults", "list", "--json")
    (row,) = [x for x in json.loads(r.stdout) if x["policy_domain"] == "notls.test"]
    (result,) = row["results"]
    assert result["summary"]["total-failure-session-count"] == 1
    assert [d["result-type"] for d in result["failure-details"]] == ["starttls-not-supported"]

    r = runner.invoke(
        cli,
        ["--data", str(lab_data), "queue", "add", "--from", "a@moxcli.test", "--to", "y@notls.test"],
        input=body.replace(b"\r\n\r\n", b"\r\nTLS-Required: No\r\n\r\n", 1),
    )
    assert r.exit_code == 0, r.output
    r = _invoke(runner, lab_data, "queue", "run", "--json")
    assert (json.loads(r.stdout)["outcome"], json.loads(r.stdout)["tls"]) == ("delivered", None)
    assert _invoke(runner, lab_data, "domains", "forget", "notls.test").exit_code == 0
    r = _invoke(runner, lab_data, "queue", "retry", "1")
    assert r.exit_code == 0, r.output
    r = _invoke(runner, lab_data, "queue", "run", "--json")
    assert json.loads(r.stdout)["outcome"] == "delivered", r.output
    (row,) = json.loads(_invoke(runner, lab_data, "domains", "list", "--format", "json").stdout)
    assert (row["domain"], row["starttls"], row["downgraded"]) == ("notls.test", False, None)

    got = []
    for _ in range(100):  # Postfix's local delivery finishes after the 250
        got = [f.read_bytes() for f in set(maildir.iterdir()) - before if tag.encode() in f.read_bytes()]
        if len(got) == 2:
            break
        time.sleep(0.1)
    assert sorted(re.search(rb"^Delivered-To: (.*)$", g, re.M).group(1) for g in got) == [
        b"x@notls.test",
        b"y@notls.test",
    ]
    # Postfix's session summaries, in order: the refused session had EHLO and QUIT only. Postfix
    # logs a session's "disconnect" after its QUIT, which can come after the local delivery.
    summaries: list[str] = []
    for _ in range(100):
        summaries = [
            ln.split(" disconnect from ", 1)[1].split(" ", 1)[1]
            for ln in log_since(log, log_start)
            if " disconnect from " in ln
        ]
        if len(summaries) >= 3:
            break
        time.sleep(0.1)
    assert summaries == ["ehlo=1 quit=1 commands=2"] + ["ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"] * 2


def test_stalled_handshake_to_domain_that_did_starttls_is_a_broken_deadline(tmp_path):
    """A TLS handshake that breaks its deadline, for a domain that did STARTTLS before: no
    plaintext retry, deferred with 4.7.10, and still counted as a stalled server (exit 3)."""
    with stub([DRIP_TLS, NORMAL], drip=0.25) as srv:
        data = tmp_path / "data"
        data.mkdir()
        (data / "moxcli.toml").write_text(
            f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n[delivery]\ntls_handshake_timeout = 1\n'
        )
        cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
        with Store.open(data) as st:
            with st.write() as tx:
                domaintls.record(tx, "example.org", True, False, "mx.example.org", 1_000_000.0)
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=BODY)
            (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, example_org_mx(), st, data))
        assert (r.outcome, r.enhanced, r.stalled, srv.connections, srv.messages) == ("deferred", "4.7.10", True, 1, [])
        assert "; not delivering in plaintext: the domain did STARTTLS before" in r.error


def test_requiretls_offer_recorded_and_shown(runner, tmp_path, mini):
    """A server that offers REQUIRETLS (RFC 8689) in its EHLO: recorded with its time, shown by
    `domains list` and as the "REQUIRETLS seen" indicator; a later server without it says no
    for the last delivery and keeps `requiretls_seen` (and the indicator)."""
    from moxcli.posture.check import DomainPosture, apply_delivery_memory

    offers, plain = mini(["8BITMIME", "REQUIRETLS"]), mini(["8BITMIME"])
    data = tmp_path / "data"
    data.mkdir()
    for n, srv in enumerate((offers, plain)):
        cfg = _config(data, srv.port)
        with Store.open(data) as st:
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[f"r{n}@example.org"], data=BODY)
            (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, example_org_mx(), st, data))
            assert r.outcome == "delivered"
            with st.read() as tx:
                known = domaintls.get(tx, "example.org")
        assert known is not None
        (row,) = json.loads(_invoke(runner, data, "domains", "list", "--format", "json").stdout)
        p = DomainPosture("example.org")
        apply_delivery_memory(p, known)
        if n == 0:
            assert (row["starttls"], row["requiretls"], row["starttls_seen"]) == (False, True, None)
            assert row["requiretls_seen"] == row["updated"]
            first_seen = row["requiretls_seen"]
            assert (p.indicators["starttls_seen"], p.indicators["requiretls_seen"]) == (
                "not-implemented",
                "implemented",
            )
        else:
            assert (row["requiretls"], row["requiretls_seen"]) == (False, first_seen)
            assert p.indicators["requiretls_seen"] == "implemented"  # seen before


def test_starttls_seen_earlier_in_the_same_run_protects_later_messages(tmp_path, mini, monkeypatch):
    """The run reads a domain's record once, and what the run itself learns counts at once: after
    a delivery over STARTTLS, a later message of the same run to a server of the domain that
    does not announce STARTTLS is deferred (4.7.10), not sent in plaintext, also while that
    delivery's outcome is not committed yet (outcomes are committed in chunks: here the
    flush interval is made long, so the chunk's outcomes wait for the end of the run)."""
    from helpers.smtpd import RequireTLSServer, self_signed_cert

    monkeypatch.setattr(deliver, "FLUSH_INTERVAL", 3600.0)
    c, k = self_signed_cert(tmp_path)
    tls_srv, plain = RequireTLSServer(c, k), mini(["8BITMIME"])
    ports = [plain.port, tls_srv.port]  # x: plaintext (nothing known yet), y: STARTTLS, z: plaintext again

    def run(data, rcpts):
        data.mkdir()
        (data / "moxcli.toml").write_text(
            'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = 25\n[delivery]\nmax_messages_per_connection = 1\n'
        )
        cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
        with Store.open(data) as st:
            for rcpt in rcpts:  # one submission each: one attempt each
                q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[rcpt], data=BODY)
            eng = deliver.Engine(cfg, example_org_mx(), st, data)
            eng.connect = lambda ip, port, timeout: socket.create_connection(
                (ip, ports.pop(0) if ports else plain.port), timeout=timeout
            )
            reads = []
            real_read = st.read
            st.read = lambda *a, **kw: reads.append(1) or real_read(*a, **kw)
            results = deliver.run_queue(st, data, cfg, engine=eng)
            st.read = real_read
            with st.read() as tx:
                known = domaintls.get(tx, "example.org")
        return results, known, len(reads)

    try:
        results, known, reads = run(tmp_path / "data", ["x@example.org", "y@example.org", "z@example.org"])
    finally:
        tls_srv.sock.close()
    assert [(r.recipient, r.outcome, r.tls, r.enhanced) for r in results] == [
        ("x@example.org", "delivered", "", "2.0.0"),
        ("y@example.org", "delivered", "unverified", "2.0.0"),
        ("z@example.org", "deferred", "", "4.7.10"),
    ]
    assert len(plain.messages) == 1
    assert known is not None and known.starttls and known.starttls_seen is not None
    seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(known.starttls_seen))
    assert f"the domain did STARTTLS before (last {seen}; " in results[2].error
    # Read once per domain per run: a run of one message to the domain opens as many read
    # transactions as this run of three.
    _, _, reads_one = run(tmp_path / "one", ["w@example.org"])
    assert reads_one == reads

"""Delivery engine without the lab: an aiosmtpd server on loopback, address-literal recipients."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("aiosmtpd")
from helpers.datadir import mailbox_messages
from helpers.dns import example_org_mx, loopback_dns
from helpers.smtpd import free_port

from moxcli.config import parse_config
from moxcli.delivery import deliver, dsn
from moxcli.delivery import queue as q
from moxcli.delivery.tlsresults import AttemptTLS, detail, rows
from moxcli.errors import LockHeld
from moxcli.store import Store, suppress
from moxcli.store.files import queue_file
from moxcli.store.lock import job_lock
from moxcli.tlsrpt import resultsdb as tlsresults
from moxcli.tlsrpt.report import make_result


@pytest.fixture
def env(tmp_path, smtpd):
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(
        f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {smtpd.port}\n[dns]\nresolvers = '
        '["127.0.0.1:9"]\ntimeout = 1\n',
        data / "moxcli.toml",
    )
    st = Store.open(data)
    yield st, data, cfg, smtpd
    st.close()


MSG = b"From: <a@moxcli.test>\r\nSubject: test\r\nMessage-Id: <%s@moxcli.test>\r\n\r\nhello\r\n"


def test_delivered_to_address_literal(env):
    st, data, cfg, srv = env
    (mid,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"lit1")
    res = deliver.run_queue(st, data, cfg)
    assert [(r.id, r.outcome, r.attempt, r.ip, r.code, r.tls) for r in res] == [
        (mid, "delivered", 1, "127.0.0.1", 250, "")
    ]
    assert srv.messages == [("a@moxcli.test", ["r@[127.0.0.1]"], MSG % b"lit1")]
    assert q.list_messages(st) == []
    assert not queue_file(data, mid).exists()
    assert deliver.run_queue(st, data, cfg) == []


def test_temporary_then_success(env):
    st, data, cfg, srv = env
    srv.script["r@[127.0.0.1]"] = ["451 4.7.1 greylisted"]
    (mid,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"grey")
    t0 = time.time()
    (r,) = deliver.run_queue(st, data, cfg, now=t0)
    assert (r.outcome, r.code, r.enhanced, r.attempt) == ("deferred", 451, "4.7.1", 1)
    assert r.next_attempt == pytest.approx(t0 + 450)
    m = q.get_message(st, mid)
    assert (m.attempts, m.last_code, m.in_progress, m.dialed_ips) == (1, 451, None, {"127.0.0.1": ["127.0.0.1"]})
    assert "451 4.7.1 greylisted" in m.last_error
    assert deliver.run_queue(st, data, cfg, now=t0 + 60) == []  # not due yet
    (r,) = deliver.run_queue(st, data, cfg, now=t0 + 451)
    assert (r.outcome, r.attempt) == ("delivered", 2)
    assert len(srv.messages) == 1


def test_permanent_failure_gives_up_at_once_with_dsn(env):
    st, data, cfg, srv = env
    srv.script["r@[127.0.0.1]"] = ["550 5.1.1 no such user"]
    (mid,) = q.enqueue(
        st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"perm", sender_account="bob"
    )
    (r,) = deliver.run_queue(st, data, cfg)
    assert (r.outcome, r.code, r.enhanced, r.dsn) == ("failed", 550, "5.1.1", True)
    assert q.list_messages(st) == [] and not queue_file(data, mid).exists()
    assert srv.messages == []
    ((rec, text),) = mailbox_messages(st, data, "bob", "Inbox")
    assert "\\Seen" not in rec.flags
    assert b"Status: 5.1.1" in text and b"Final-Recipient: rfc822; r@[127.0.0.1]" in text
    assert b"Message-Id: <perm@moxcli.test>" in text


def test_report_failure_dsn_quiet_and_suppressed(env):
    st, data, cfg, srv = env
    srv.script["rua@example.org"] = ["550 5.1.1 no such user"]
    srv.script["dmarc@example.org"] = ["451 later"]
    q.enqueue(
        st,
        data,
        mail_from="postmaster@moxcli.test",
        recipients=["rua@example.org"],
        data=MSG % b"tlsrpt",
        is_tls_report=True,
        require_tls=False,
        max_attempts=5,
    )
    q.enqueue(
        st,
        data,
        mail_from="postmaster@moxcli.test",
        recipients=["dmarc@example.org"],
        data=MSG % b"dmarc",
        is_dmarc_report=True,
        max_attempts=1,
    )
    before = time.time()
    res = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, loopback_dns(), st, data))
    after = time.time()
    assert [(r.outcome, r.dsn) for r in res] == [("failed", True), ("failed", True)]
    ((rec, text),) = mailbox_messages(st, data, "postmaster", "Postmaster/tlsrpt")
    assert "\\Seen" in rec.flags and b"Message-Id: <tlsrpt@moxcli.test>" in text
    ((rec, text),) = mailbox_messages(st, data, "postmaster", "Postmaster/dmarc")
    assert "\\Seen" in rec.flags and b"Status: 4.0.0" in text
    with st.read() as tx:
        # a permanent refusal suppresses the address for 30 days; the temporary one does not
        assert suppress.is_suppressed(tx, "tls", "rua@example.org")
        (entry,) = suppress.entries(tx, "tls")
        assert before + 30 * 86400 <= entry.until <= after + 30 * 86400
        assert suppress.entries(tx, "dmarc") == []


def test_max_attempts_then_failed(env):
    st, data, cfg, srv = env
    srv.script["r@[127.0.0.1]"] = ["451 busy", "452 busy"]
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"max", max_attempts=2)
    t0 = time.time()
    assert deliver.run_queue(st, data, cfg, now=t0)[0].outcome == "deferred"
    (r,) = deliver.run_queue(st, data, cfg, now=t0 + 1000)
    assert (r.outcome, r.attempt, r.code) == ("failed", 2, 452)
    assert q.list_messages(st) == []


def test_connection_refused_is_deferred(env, tmp_path):
    st, data, _cfg, _srv = env
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {free_port()}\n', tmp_path / "x.toml")
    (mid,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"refused")
    (r,) = deliver.run_queue(st, data, cfg)
    assert r.outcome == "deferred" and "connecting to 127.0.0.1" in r.error
    assert q.get_message(st, mid).attempts == 1


def test_selection_by_id_domain_and_hold(env):
    st, data, cfg, _srv = env
    a, b = q.enqueue(
        st,
        data,
        mail_from="a@moxcli.test",
        recipients=["x@[127.0.0.1]", "y@[127.0.0.2]"],
        data=MSG % b"sel",
        next_attempt=time.time() + 3600,
    )
    assert deliver.run_queue(st, data, cfg) == []  # nothing due
    q.hold(st, a)
    assert deliver.run_queue(st, data, cfg, ids=[a]) == []  # held: skipped even by id
    q.release(st, a)
    assert [r.id for r in deliver.run_queue(st, data, cfg, ids=[a])] == [a]  # by id: due or not
    q.retry(st, b)
    assert deliver.run_queue(st, data, cfg, domain="[127.0.0.9]") == []
    assert [r.id for r in deliver.run_queue(st, data, cfg, domain="[127.0.0.2]")] == [b]


def test_crash_during_attempt_keeps_message(env, monkeypatch):
    st, data, cfg, _srv = env
    (mid,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@[127.0.0.1]"], data=MSG % b"crash")

    def killed(*a, **k):
        raise KeyboardInterrupt  # stands in for the process dying mid-session

    monkeypatch.setattr(deliver, "deliver_message", killed)
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        deliver.run_queue(st, data, cfg, now=t0)
    m = q.get_message(st, mid)
    assert m.attempts == 1 and m.in_progress == t0 and m.next_attempt == pytest.approx(t0 + 450)
    assert queue_file(data, mid).exists()
    monkeypatch.undo()
    assert deliver.run_queue(st, data, cfg, now=t0 + 10) == []  # the crashed attempt counts: backoff applies
    (r,) = deliver.run_queue(st, data, cfg, now=t0 + 451)
    assert (r.outcome, r.attempt) == ("delivered", 2)


def test_concurrent_run_refused(env):
    st, data, cfg, _ = env
    with job_lock(data, "queue"), pytest.raises(LockHeld):
        deliver.run_queue(st, data, cfg)


def test_order_ips():
    assert deliver.order_ips(["10.0.0.1", "10.0.0.2", "2001:db8::1"], []) == ["10.0.0.1", "10.0.0.2", "2001:db8::1"]
    # after a v4 attempt: the other family first; the single dialed v4 IP first within v4
    assert deliver.order_ips(["10.0.0.1", "10.0.0.2", "2001:db8::1"], ["10.0.0.2"]) == [
        "2001:db8::1",
        "10.0.0.2",
        "10.0.0.1",
    ]
    # family dialed twice: resolver order kept within it
    assert deliver.order_ips(["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.2"]) == ["10.0.0.1", "10.0.0.2"]


def test_rows_send_report_rules():
    t = AttemptTLS()
    t.recipient = make_result("no-policy-found", "example.org")
    h = make_result("tlsa", "mx.example.org")
    t.hosts.append(h)
    t.both(h, 1, 0)
    assert [(r["policy_domain"], r["is_host"], r["send_report"]) for r in rows(t, "example.org", False, False)] == [
        ("example.org", False, True),
        ("mx.example.org", True, True),
    ]
    assert {r["send_report"] for r in rows(t, "example.org", True, False)} == {False}  # TLS report delivery
    assert {r["send_report"] for r in rows(t, "example.org", False, True)} == {False}  # DMARC report, no failure
    t.both(h, 0, 1, detail("validation-failure", "x"))
    assert {r["send_report"] for r in rows(t, "example.org", False, True)} == {True}  # DMARC report with a failure
    # no MX, DANE on the domain itself: no second "no policy" result for the same domain (docs/behaviour-notes.md §2.2)
    t2 = AttemptTLS(make_result("no-policy-found", "example.org"), [make_result("tlsa", "example.org")])
    assert [(r["policy_domain"], r["is_host"]) for r in rows(t2, "example.org", False, False)] == [
        ("example.org", True)
    ]
    # empty policy types are never recorded
    assert rows(AttemptTLS(), "example.org", False, False) == []


def test_dsn_destination_and_format(env):
    st, data, cfg, _ = env
    (mid,) = q.enqueue(
        st, data, mail_from="a@moxcli.test", recipients=["r@example.org"], data=MSG % b"dsn", sender_account="alice"
    )
    m = q.get_message(st, mid)
    assert dsn.destination(cfg, m) == dsn.Destination("alice", "Inbox", False)
    m.is_tls_report = True
    assert dsn.destination(cfg, m) == dsn.Destination("postmaster", "Postmaster/tlsrpt", True)
    m.is_tls_report, m.is_dmarc_report = False, True
    assert dsn.destination(cfg, m) == dsn.Destination("postmaster", "Postmaster/dmarc", True)
    m.is_dmarc_report, m.mail_from = False, ""
    assert dsn.destination(cfg, m) is None  # null sender: no DSN (RFC 5321 4.5.5)
    m.mail_from = "a@moxcli.test"
    m.attempts = 3
    text = dsn.compose(
        cfg,
        m,
        MSG % b"dsn",
        "recipient r@example.org: 550 5.1.1 no such user",
        "mx.example.org",
        550,
        "5.1.1",
        True,
        remote_reply="550 5.1.1 no such user",
    )
    import email

    parsed = email.message_from_bytes(text)
    assert parsed.get_content_type() == "multipart/report" and parsed.get_param("report-type") == "delivery-status"
    parts = parsed.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].get_payload()
    fields = {k: v for blk in status for k, v in blk.items()}
    assert fields["Final-Recipient"] == "rfc822; r@example.org"
    assert (fields["Action"], fields["Status"], fields["Remote-MTA"]) == ("failed", "5.1.1", "dns; mx.example.org")
    assert fields["Reporting-MTA"] == "dns; mail.moxcli.test"
    assert b"Message-Id: <dsn@moxcli.test>" in text
    assert b"\n" not in text.replace(b"\r\n", b"")


def test_results_recorded_per_attempt_and_off_switch(env, tmp_path):
    st, data, cfg, srv = env
    eng = deliver.Engine(cfg, loopback_dns(), st, data)
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=MSG % b"rec")
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["y@example.org"], data=MSG % b"rec2")
    assert [r.outcome for r in deliver.run_queue(st, data, cfg, engine=eng)] == ["delivered", "delivered"]
    with st.read() as tx:
        rows_ = {r.policy_domain: r for r in tlsresults.iter_rows(tx)}
    assert set(rows_) == {"example.org"}  # the MX host is the domain itself (implicit MX)
    (res,) = rows_["example.org"].results
    # no STARTTLS offered is a detail without counts (docs/behaviour-notes.md §3.5); two attempts in
    # one session (kept open for the second message, so one session's detail), and the host's
    # no-policy-found result has the same key as the recipient domain's, so both merge (as in mox)
    assert (res.policy.type, res.success, res.failure) == ("no-policy-found", 0, 0)
    assert [(d.result_type, d.failed_session_count, d.receiving_ip) for d in res.details] == [
        ("starttls-not-supported", 2, "127.0.0.1")
    ]
    off = parse_config(
        f'hostname = "mail.moxcli.test"\nno_outgoing_tls_reports = true\n[network]\nsmtp_port = {srv.port}\n',
        tmp_path / "off.toml",
    )
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["z@example.net"], data=MSG % b"off")
    assert [
        r.outcome for r in deliver.run_queue(st, data, off, engine=deliver.Engine(off, loopback_dns(), st, data))
    ] == ["delivered"]
    with st.read() as tx:
        assert {r.recipient_domain for r in tlsresults.iter_rows(tx)} == {"example.org"}


def test_delayed_dsn_after_fifth_failure(env):
    st, data, cfg, srv = env
    srv.script["slow@[127.0.0.1]"] = ["451 4.3.0 later"] * 6
    q.enqueue(
        st, data, mail_from="a@moxcli.test", recipients=["slow@[127.0.0.1]"], data=MSG % b"slow", sender_account="carol"
    )
    t = time.time()
    for n in range(1, 7):
        (r,) = deliver.run_queue(st, data, cfg, now=t)
        assert (r.outcome, r.attempt, r.dsn) == ("deferred", n, n == 5)
        t = r.next_attempt + 1
    ((_rec, text),) = mailbox_messages(st, data, "carol", "Inbox")
    assert b"Action: delayed" in text and b"Status: 4.3.0" in text and b"Will-Retry-Until:" in text
    assert b"Diagnostic-Code: smtp; 451 4.3.0 later" in text


def test_policy_rejection_on_first_attempt_to_dual_stack_host_is_retried(env):
    st, data, cfg, srv = env

    srv.script["p@example.org"] = ["550 5.7.1 policy", "550 5.7.1 policy"]
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["p@example.org"], data=MSG % b"dual")
    eng = deliver.Engine(cfg, loopback_dns(any_address=["127.0.0.1", "::1"]), st, data)
    t = time.time()
    (r,) = deliver.run_queue(st, data, cfg, engine=eng, now=t)
    assert (r.outcome, r.enhanced) == ("deferred", "5.7.1")
    (r,) = deliver.run_queue(st, data, cfg, engine=eng, now=t + 1000)
    assert (r.outcome, r.enhanced) == ("failed", "5.7.1")


def _rows(st):
    with st.read() as tx:
        return {
            r.policy_domain: (r.is_host, r.send_report, [x.to_json() for x in r.results])
            for r in tlsresults.iter_rows(tx)
        }


def test_greylisted_then_delivered_via_mx_with_tls_results(env):
    st, data, cfg, srv = env
    srv.script["g@example.org"] = ["451 4.7.1 greylisted"]
    body = MSG % b"grey-mx"
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["g@example.org"], data=body)
    eng = deliver.Engine(cfg, example_org_mx(), st, data)
    t0 = time.time()
    (r,) = deliver.run_queue(st, data, cfg, engine=eng, now=t0)
    assert (r.outcome, r.host, r.ip, r.code, r.enhanced) == ("deferred", "mx.example.org", "127.0.0.1", 451, "4.7.1")
    assert srv.messages == []
    (r,) = deliver.run_queue(st, data, cfg, engine=eng, now=t0 + 451)
    assert (r.outcome, r.attempt, r.host) == ("delivered", 2, "mx.example.org")
    assert srv.messages == [("a@moxcli.test", ["g@example.org"], body)]
    detail_ = {
        "result-type": "starttls-not-supported",
        "sending-mta-ip": "127.0.0.1",
        "receiving-mx-hostname": "mx.example.org",
        "receiving-mx-helo": srv.greeting,
        "receiving-ip": "127.0.0.1",
        "failed-session-count": 2,
    }
    summary = {"total-successful-session-count": 0, "total-failure-session-count": 0}
    assert _rows(st) == {
        "example.org": (
            False,
            True,
            [
                {
                    "policy": {
                        "policy-type": "no-policy-found",
                        "policy-string": [],
                        "policy-domain": "example.org",
                        "mx-host": [],
                    },
                    "summary": summary,
                    "failure-details": [detail_],
                }
            ],
        ),
        "mx.example.org": (
            True,
            True,
            [
                {
                    "policy": {
                        "policy-type": "no-policy-found",
                        "policy-string": [],
                        "policy-domain": "mx.example.org",
                        "mx-host": [],
                    },
                    "summary": summary,
                    "failure-details": [detail_],
                }
            ],
        ),
    }


def test_rejected_5xx_via_mx_with_tls_results(env):
    st, data, cfg, srv = env
    srv.script["nobody@example.org"] = ["550 5.1.1 no such user"]
    q.enqueue(
        st,
        data,
        mail_from="a@moxcli.test",
        recipients=["nobody@example.org"],
        data=MSG % b"rej-mx",
        sender_account="dave",
    )
    (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, example_org_mx(), st, data))
    assert (r.outcome, r.code, r.enhanced, r.dsn, r.host) == ("failed", 550, "5.1.1", True, "mx.example.org")
    assert srv.messages == []
    rows_ = _rows(st)
    assert set(rows_) == {"example.org", "mx.example.org"}
    # a refused recipient is not a TLS failure: no counts, only the STARTTLS detail
    for _, _, (res,) in rows_.values():
        assert res["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 0}
        assert [d["result-type"] for d in res["failure-details"]] == ["starttls-not-supported"]
    ((_, text),) = mailbox_messages(st, data, "dave", "Inbox")
    assert b"Remote-MTA: dns; mx.example.org" in text and b"Diagnostic-Code: smtp; 550 5.1.1 no such user" in text


def test_unexpected_error_defers_and_queue_continues(env, monkeypatch):
    st, data, cfg, _srv = env
    (a,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@[127.0.0.1]"], data=MSG % b"bug")
    (b,) = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["y@[127.0.0.1]"], data=MSG % b"bug2")
    real = deliver.deliver_message

    def buggy(engine, msgs, data_, tls):
        if msgs[0].id == a:
            raise KeyError("oops")
        return real(engine, msgs, data_, tls)

    monkeypatch.setattr(deliver, "deliver_message", buggy)
    res = deliver.run_queue(st, data, cfg)
    assert [(r.id, r.outcome) for r in res] == [(a, "deferred"), (b, "delivered")]
    assert res[0].error == "internal error: KeyError: 'oops'"
    assert q.get_message(st, a).in_progress is None


def test_unreachable_address_not_dialed_again_in_the_same_run(env, tmp_path):
    st, data, _cfg, _srv = env
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {free_port()}\n', tmp_path / "x.toml")
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["a@[127.0.0.1]"], data=MSG % b"dead")
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["b@[127.0.0.1]"], data=MSG % b"dead2")
    dials = []
    eng = deliver.Engine(cfg, loopback_dns(), st, data)
    real = eng.connect
    eng.connect = lambda ip, port, timeout: (dials.append(ip), real(ip, port, timeout))[1]
    res = deliver.run_queue(st, data, cfg, engine=eng)
    assert [r.outcome for r in res] == ["deferred", "deferred"]
    assert dials == ["127.0.0.1"]
    assert "(earlier in this run)" in res[1].error


def test_recipients_of_one_submission_share_a_transaction(env):
    st, data, cfg, srv = env
    srv.script["no@example.org"] = ["550 5.1.1 no such user"]
    srv.script["later@example.org"] = ["451 4.2.1 mailbox busy"]
    body = MSG % b"batch"
    ids = q.enqueue(
        st,
        data,
        mail_from="a@moxcli.test",
        recipients=["ok@example.org", "no@example.org", "later@example.org", "x@example.net"],
        data=body,
        sender_account="erin",
    )
    res = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, loopback_dns(), st, data))
    assert [(r.id, r.outcome, r.code, r.enhanced) for r in res] == [
        (ids[0], "delivered", 250, "2.0.0"),
        (ids[1], "failed", 550, "5.1.1"),
        (ids[2], "deferred", 451, "4.2.1"),
        (ids[3], "delivered", 250, "2.0.0"),  # other domain: its own transaction
    ]
    assert srv.messages == [("a@moxcli.test", ["ok@example.org"], body), ("a@moxcli.test", ["x@example.net"], body)]
    assert [m.id for m in q.list_messages(st)] == [ids[2]]
    assert len(mailbox_messages(st, data, "erin", "Inbox")) == 1  # the DSN for no@
    with st.read() as tx:
        (row,) = [r for r in tlsresults.iter_rows(tx) if r.recipient_domain == "example.org"]
    assert row.results[0].details[0].failed_session_count == 2  # one session (rcpt + host result)


def test_rcptmax_chunks_and_452_retried_in_next_transaction(env):
    from helpers.smtpd import Scripted

    st, data, cfg, _ = env
    srv = Scripted(
        b"220 mx.example.org\r\n",
        {
            "EHLO": [b"250-mx.example.org\r\n250 LIMITS RCPTMAX=2\r\n"],
            "RCPT r2@example.org": [b"452 4.5.3 too many recipients\r\n", b"250 ok\r\n"],
            "DATA": [b"354 go\r\n"] * 3,
            ".": [b"250 2.0.0 ok\r\n"] * 3,
        },
    )
    eng = deliver.Engine(cfg, loopback_dns(), st, data, connect=lambda ip, port, timeout: srv.client_sock)
    q.enqueue(
        st,
        data,
        mail_from="a@moxcli.test",
        recipients=["r1@example.org", "r2@example.org", "r3@example.org"],
        data=MSG % b"chunks",
    )
    res = deliver.run_queue(st, data, cfg, engine=eng)
    srv.thread.join(5)
    assert [r.outcome for r in res] == ["delivered"] * 3
    rcpts = [c for c in srv.received if c.startswith(("MAIL", "RCPT"))]
    assert rcpts == [
        "MAIL FROM:<a@moxcli.test>",
        "RCPT TO:<r1@example.org>",
        "RCPT TO:<r2@example.org>",
        "MAIL FROM:<a@moxcli.test>",
        "RCPT TO:<r2@example.org>",
        "RCPT TO:<r3@example.org>",
    ]

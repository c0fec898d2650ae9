"""Delivery against the loopback lab: DANE, PKIX, MTA-STS, DNSSEC, STARTTLS cases.

Each test queues a message with a unique Message-ID, runs the queue for it, looks for it in
the lab's maildir, and checks the recorded TLS results field by field (docs/behaviour-notes.md §3.8).
"""

from __future__ import annotations

import mailbox
import time
import uuid

import pytest
from conftest import lab_config_text
from rfc8460_form import rfc8460_form

from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.dns import BogusDNSError, Resolver
from moxcli.store import Store
from moxcli.store import mail as store_mail
from moxcli.tlsrpt import resultsdb as tlsresults

pytestmark = pytest.mark.lab


@pytest.fixture
def env(lab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    text = lab_config_text(lab)
    (data / "moxcli.toml").write_text(text)
    cfg = parse_config(text, data / "moxcli.toml")
    st = Store.open(data)
    yield st, data, cfg, lab
    st.close()


def send(env, rcpt: str, headers: str = "", **kw):
    st, data, cfg, _ = env
    msgid = f"{uuid.uuid4().hex}@moxcli.test"
    body = (
        f"From: <a@moxcli.test>\r\nTo: <{rcpt}>\r\nSubject: lab\r\nMessage-Id: <{msgid}>\r\n{headers}\r\nhello\r\n"
    ).encode()
    kw.setdefault("require_tls", q.require_tls_for(body, False))
    ids = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=[rcpt], data=body, **kw)
    (res,) = deliver.run_queue(st, data, cfg, ids=ids)
    return res, msgid


def arrived(lab, msgid: str, wait: float = 5.0):
    """The message with this Message-ID in the lab maildir (Postfix delivers asynchronously)."""
    deadline = time.time() + wait
    while True:
        box = mailbox.Maildir(lab["LAB_MAILDIR"], create=False)
        for key in box.iterkeys():
            try:
                m = box.get_message(key)
            except FileNotFoundError:
                continue
            if m.get("Message-Id", "").strip("<>") == msgid:
                return m
        if time.time() > deadline:
            return None
        time.sleep(0.05)


def results(env, rcpt_domain: str) -> dict[str, dict]:
    """policy domain -> {is_host, send_report, result JSON} of the rows for a recipient domain."""
    st = env[0]
    with st.read() as tx:
        rows = [r for r in tlsresults.iter_rows(tx) if r.recipient_domain == rcpt_domain]
    out = {}
    for r in rows:
        assert len(r.results) == 1
        out[r.policy_domain] = {"is_host": r.is_host, "send_report": r.send_report, **r.results[0].to_json()}
    return out


def policy(ptype, domain, strings=(), mx=()):
    return {"policy-type": ptype, "policy-string": list(strings), "policy-domain": domain, "mx-host": list(mx)}


def summary(ok, failed):
    return {"total-successful-session-count": ok, "total-failure-session-count": failed}


def fd(rtype, reason, mx, ip, helo_host=None, count=1):
    d = {"result-type": rtype, "sending-mta-ip": "127.0.0.1", "receiving-mx-hostname": mx}
    d["receiving-mx-helo"] = f"{helo_host or mx} ESMTP Postfix (mail lab)"
    d.update(
        {"receiving-ip": ip, "failed-session-count": count, "additional-information": "", "failure-reason-code": reason}
    )
    return rfc8460_form(d)


def test_dane_ee_verified(env):
    res, msgid = send(env, "dane@dane-ok.test")
    assert (res.outcome, res.tls, res.host, res.ip, res.code) == (
        "delivered",
        "dane",
        "mx.dane-ok.test",
        "127.0.0.1",
        250,
    )
    m = arrived(env[3], msgid)
    assert m is not None and "TLS" in " ".join(m.get_all("Received", []))
    r = results(env, "dane-ok.test")
    assert r["dane-ok.test"] == {
        "is_host": False,
        "send_report": True,
        "policy": policy("no-policy-found", "dane-ok.test"),
        "summary": summary(1, 0),
        "failure-details": [],
    }
    assert r["mx.dane-ok.test"] == {
        "is_host": True,
        "send_report": True,
        "policy": policy("tlsa", "mx.dane-ok.test", [f"3 1 1 {env[3]['LAB_TLSA_EE']}"]),
        "summary": summary(1, 0),
        "failure-details": [],
    }


def test_dane_ta_verified(env):
    res, msgid = send(env, "ta@dane-ta.test")
    assert (res.outcome, res.tls) == ("delivered", "dane")
    assert arrived(env[3], msgid) is not None
    r = results(env, "dane-ta.test")
    assert r["mx.dane-ta.test"]["policy"] == policy("tlsa", "mx.dane-ta.test", [f"2 1 1 {env[3]['LAB_TLSA_TA']}"])
    assert r["mx.dane-ta.test"]["summary"] == summary(1, 0)
    assert r["dane-ta.test"]["summary"] == summary(1, 0) and r["dane-ta.test"]["failure-details"] == []


def test_dane_ee_ignores_name_but_pkix_failure_reported(env):
    res, msgid = send(env, "x@dane-ee-wrongname.test")
    assert (res.outcome, res.tls, res.ip) == ("delivered", "dane", "127.0.0.3")
    assert arrived(env[3], msgid) is not None
    r = results(env, "dane-ee-wrongname.test")
    assert r["mx.dane-ee-wrongname.test"]["summary"] == summary(1, 0)
    assert r["mx.dane-ee-wrongname.test"]["failure-details"] == []
    # docs/behaviour-notes.md §3.6: PKIX is always checked; its failure goes to the recipient-domain result only
    assert r["dane-ee-wrongname.test"]["failure-details"] == [
        fd("certificate-host-mismatch", "", "mx.dane-ee-wrongname.test", "127.0.0.3", helo_host="mx.wrongname.test")
    ]


def test_dane_mismatch_fails_without_fallback(env):
    res, msgid = send(env, "bad@dane-bad.test")
    assert res.outcome == "deferred" and "dane-no-match" in res.error and res.tls == ""
    assert arrived(env[3], msgid, wait=1.0) is None
    r = results(env, "dane-bad.test")
    host = r["mx.dane-bad.test"]
    assert host["policy"]["policy-type"] == "tlsa" and len(host["policy"]["policy-string"]) == 1
    assert host["summary"] == summary(0, 1)
    assert host["failure-details"] == [
        fd("validation-failure", "dane-no-match", "mx.dane-bad.test", "127.0.0.1", helo_host="mx.dane-ok.test")
    ]
    assert r["dane-bad.test"]["summary"] == summary(0, 1)
    assert r["dane-bad.test"]["failure-details"] == []


def test_dane_mismatch_with_tls_required_no_delivers(env):
    res, msgid = send(env, "bad2@dane-bad.test", headers="TLS-Required: No\r\n")
    assert (res.outcome, res.tls) == ("delivered", "pkix")
    assert arrived(env[3], msgid) is not None
    host = results(env, "dane-bad.test")["mx.dane-bad.test"]
    assert host["summary"] == summary(1, 0)
    assert [d["failure-reason-code"] for d in host["failure-details"]] == ["dane-no-match"]


def test_tlsa_bogus_defers(env):
    res, msgid = send(env, "x@dane-bogus.test")
    assert res.outcome == "deferred" and "tlsa" in res.error
    assert arrived(env[3], msgid, wait=0.5) is None
    r = results(env, "dane-bogus.test")
    assert r["mx.dane-bogus.test"]["policy"] == policy("tlsa", "mx.dane-bogus.test")
    assert r["mx.dane-bogus.test"]["summary"] == summary(0, 1)
    (d,) = r["mx.dane-bogus.test"]["failure-details"]
    assert (d["result-type"], d["failure-reason-code"], d["receiving-mx-hostname"]) == (
        "dnssec-invalid",
        "extended-dns-error-6-dnssec-bogus",
        "mx.dane-bogus.test",
    )
    assert r["dane-bogus.test"]["summary"] == summary(0, 1)


def test_no_starttls_plaintext_with_detail(env):
    res, msgid = send(env, "x@notls.test")
    assert (res.outcome, res.tls, res.ip) == ("delivered", "", "127.0.0.2")
    assert arrived(env[3], msgid) is not None
    r = results(env, "notls.test")
    want = [fd("starttls-not-supported", "", "mx.notls.test", "127.0.0.2")]
    assert r["notls.test"]["summary"] == summary(0, 0) and r["notls.test"]["failure-details"] == want
    assert r["mx.notls.test"]["policy"] == policy("no-policy-found", "mx.notls.test")
    assert r["mx.notls.test"]["summary"] == summary(0, 0) and r["mx.notls.test"]["failure-details"] == want


@pytest.mark.parametrize(
    "domain,ip,rtype",
    [
        ("wrongname.test", "127.0.0.3", "certificate-host-mismatch"),
        ("expired.test", "127.0.0.4", "certificate-expired"),
    ],
)
def test_pkix_failure_opportunistic(env, domain, ip, rtype):
    res, msgid = send(env, f"x@{domain}")
    assert (res.outcome, res.tls, res.ip) == ("delivered", "unverified", ip)
    assert arrived(env[3], msgid) is not None
    r = results(env, domain)
    assert r[domain]["summary"] == summary(1, 0)
    assert r[domain]["failure-details"] == [fd(rtype, "", f"mx.{domain}", ip)]
    assert r[f"mx.{domain}"] == {
        "is_host": True,
        "send_report": True,
        "policy": policy("no-policy-found", f"mx.{domain}"),
        "summary": summary(1, 0),
        "failure-details": [],
    }


def test_insecure_domain_ignores_tlsa(env):
    res, msgid = send(env, "x@insecure.test")
    assert (res.outcome, res.tls) == ("delivered", "pkix")
    assert arrived(env[3], msgid) is not None
    r = results(env, "insecure.test")
    assert r["mx.insecure.test"]["policy"] == policy("no-policy-found", "mx.insecure.test")
    assert r["insecure.test"]["summary"] == summary(1, 0) and r["insecure.test"]["failure-details"] == []


def test_bogus_domain_deferred(env, lab):
    # unbound says 7 (signature expired) when it first validates an answer from the zone and 6
    # (DNSSEC bogus) while it keeps that answer as bogus (60 s): asking first makes it 6.
    host, port = lab["LAB_DNS"].rsplit(":", 1)
    for rdtype in ("CNAME", "MX", "A", "AAAA"):
        with pytest.raises(BogusDNSError):
            Resolver([(host, int(port))], timeout=5).query("bogus.test", rdtype)
    before = time.time()
    res, _msgid = send(env, "x@bogus.test")
    after = time.time()
    assert res.outcome == "deferred" and "bogus" in res.error
    m = q.get_message(env[0], res.id)
    assert m.attempts == 1
    assert before + 450 <= m.next_attempt <= after + 450  # the first retry after 7.5 minutes
    r = results(env, "bogus.test")
    assert set(r) == {"bogus.test"}
    assert r["bogus.test"]["policy"] == policy("no-policy-found", "bogus.test")
    assert r["bogus.test"]["summary"] == summary(0, 1)
    (d,) = r["bogus.test"]["failure-details"]
    assert d["result-type"] == "validation-failure" and "receiving-mx-hostname" not in d
    assert d["failure-reason-code"] == "dns-extended-error-6-dnssec-bogus"


def test_mtasts_enforce_verified(env):
    res, msgid = send(env, "x@sts.test")
    assert (res.outcome, res.tls) == ("delivered", "pkix")
    assert arrived(env[3], msgid) is not None
    r = results(env, "sts.test")
    p = r["sts.test"]["policy"]
    assert (p["policy-type"], p["policy-domain"], p["mx-host"]) == ("sts", "sts.test", ["mx.sts.test"])
    assert "mode: enforce" in p["policy-string"]
    assert r["sts.test"]["summary"] == summary(1, 0)
    assert r["mx.sts.test"]["policy"] == policy("no-policy-found", "mx.sts.test")


def _cache_policy(env, mode: str) -> None:
    """A cached sts.test policy (same id as in DNS) whose mx pattern excludes mx.sts.test."""
    from moxcli.dns import Resolver
    from moxcli.domain import parse_domain
    from moxcli.mtasts import db as mdb
    from moxcli.mtasts.db import PolicyRow
    from moxcli.mtasts.lookup import lookup_record
    from moxcli.mtasts.policy import parse_policy

    st, _, cfg, _ = env
    record = lookup_record(Resolver.from_config(cfg.dns), parse_domain("sts.test"))[0]
    text = f"version: STSv1\nmode: {mode}\nmx: *.elsewhere.test\nmax_age: 86400\n"
    now = time.time()
    with st.write() as tx:
        mdb.put(tx, PolicyRow("sts.test", now, now + 86400, now, now, False, record.id, parse_policy(text), text))


def test_mtasts_enforce_mx_mismatch_skips_host(env):
    _cache_policy(env, "enforce")
    res, msgid = send(env, "mismatch@sts.test")
    assert res.outcome == "deferred" and "does not match enforced mta-sts policy" in res.error
    assert res.host == "" and arrived(env[3], msgid, wait=0.5) is None
    r = results(env, "sts.test")
    assert set(r) == {"sts.test"}  # the host was never tried
    assert r["sts.test"]["policy"]["mx-host"] == ["*.elsewhere.test"]
    assert r["sts.test"]["summary"] == summary(0, 1)
    mismatch = rfc8460_form(
        {
            "result-type": "validation-failure",
            "sending-mta-ip": "",
            "receiving-mx-hostname": "mx.sts.test",
            "receiving-ip": "",
            "failed-session-count": 1,
            "additional-information": "",
            "failure-reason-code": "mtasts-policy-mx-mismatch",
        }
    )
    assert r["sts.test"]["failure-details"] == [mismatch]
    # TLS-Required: No: reported, not enforced (RFC 8689 §4.2.2)
    res, msgid = send(env, "mismatch2@sts.test", headers="TLS-Required: No\r\n")
    assert res.outcome == "delivered" and arrived(env[3], msgid) is not None
    r = results(env, "sts.test")
    assert r["sts.test"]["summary"] == summary(1, 1)
    assert r["sts.test"]["failure-details"] == [dict(mismatch, **{"failed-session-count": 2})]


def test_mtasts_testing_mismatch_reported_only(env):
    _cache_policy(env, "testing")
    res, msgid = send(env, "testing@sts.test")
    assert (res.outcome, res.tls) == ("delivered", "pkix")
    assert arrived(env[3], msgid) is not None
    r = results(env, "sts.test")
    assert r["sts.test"]["summary"] == summary(1, 0)
    assert [d["failure-reason-code"] for d in r["sts.test"]["failure-details"]] == ["mtasts-policy-mx-mismatch"]


def test_tls_report_delivery_does_not_trigger_reports(env):
    res, msgid = send(env, "tlsrpt@reports.test", is_tls_report=True, require_tls=False, max_attempts=5)
    assert res.outcome == "delivered" and arrived(env[3], msgid) is not None
    r = results(env, "reports.test")
    assert {v["send_report"] for v in r.values()} == {False}


def test_requiretls_without_policy_fails_with_dsn(env):
    st, _data, _cfg, _ = env
    res, msgid = send(env, "x@insecure.test", sender_account="alice", require_tls=True)
    # mox: REQUIRETLS needs DANE or MTA-STS enforce; every host failing so is permanent (docs/behaviour-notes.md §3.7)
    assert (res.outcome, res.code, res.enhanced, res.dsn) == ("failed", 554, "5.7.30", True)
    assert arrived(env[3], msgid, wait=0.3) is None
    with st.read() as tx:
        assert store_mail.get_mailbox(tx, "alice", "Inbox").messages == 1


def test_requiretls_server_lacks_extension(env):
    res, msgid = send(env, "x@dane-ok.test", require_tls=True)
    assert (res.outcome, res.enhanced) == ("failed", "5.7.30") and "requiretls" in res.error
    assert arrived(env[3], msgid, wait=0.3) is None


def _cache_enforce(env, domain: str) -> None:
    """A cached enforce policy for a domain that publishes none (the cache keeps applying it)."""
    from moxcli.mtasts import db as mdb
    from moxcli.mtasts.db import PolicyRow
    from moxcli.mtasts.policy import parse_policy

    text = f"version: STSv1\nmode: enforce\nmx: mx.{domain}\nmax_age: 86400\n"
    now = time.time()
    with env[0].write() as tx:
        mdb.put(tx, PolicyRow(domain, now, now + 86400, now, now, False, "x1", parse_policy(text), text))


def test_mtasts_enforce_pkix_failure_is_fatal(env):
    _cache_enforce(env, "wrongname.test")
    res, msgid = send(env, "x@wrongname.test")
    assert res.outcome == "deferred" and "pkix verification" in res.error and res.tls == ""
    assert arrived(env[3], msgid, wait=0.5) is None  # no plaintext fallback under enforce
    r = results(env, "wrongname.test")
    rd = r["wrongname.test"]
    assert rd["policy"]["policy-type"] == "sts" and rd["summary"] == summary(0, 1)
    assert [(d["result-type"], d.get("failure-reason-code", "")) for d in rd["failure-details"]] == [
        ("sts-policy-fetch-error", "no-mta-sts-dns-txt-record+fallback-to-cached-policy"),
        ("certificate-host-mismatch", ""),
    ]
    assert r["mx.wrongname.test"]["summary"] == summary(0, 1) and r["mx.wrongname.test"]["failure-details"] == []


def test_mtasts_enforce_starttls_required_even_if_not_offered(env):
    _cache_enforce(env, "notls.test")
    res, msgid = send(env, "x@notls.test")
    # STARTTLS is sent though not announced; the 5xx reply is permanent (docs/behaviour-notes.md §3.5, §12.17)
    assert (res.outcome, res.dsn) == ("failed", True) and "starttls" in res.error
    assert arrived(env[3], msgid, wait=0.3) is None
    host = results(env, "notls.test")["mx.notls.test"]
    assert host["summary"] == summary(0, 1)
    (d,) = host["failure-details"]
    assert d["result-type"] == "starttls-not-supported" and d["failure-reason-code"].startswith(
        "smtp-starttls-reply-code-5"
    )

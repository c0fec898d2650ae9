"""The hourly DMARC report job: the send scenarios of docs/behaviour-notes.md §6.4 / dmarc_reports.json and more."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time

import pytest
from helpers.dmarc import hour, queued, report_xml, vector_eval, vectors
from helpers.dns import FakeResolver

from moxcli.config import parse_config
from moxcli.dmarc.db import list_evaluations, record_evaluations
from moxcli.dmarc.parse import parse_report_xml
from moxcli.dmarc.schema import validate
from moxcli.errors import LockHeld, UsageError
from moxcli.reports.dmarc import send_dmarc_reports
from moxcli.store import Store, job_lock, suppress

TYPICAL = "v=DMARC1; rua=mailto:dmarcrpt@sender.example; ri=3600"


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config('hostname = "mail.mox.example"\n', data / "moxcli.toml")
    store = Store.open(data)
    yield data, cfg, store
    store.close()


def _record(store, cfg, *evals):
    return record_evaluations(store, cfg, [json.dumps(e) for e in evals])


def _scenario(name):
    return next(s for s in vectors()["send_scenarios"]["scenarios"] if s["name"] == name)


def _run(env, txt, now, **kw):
    data, cfg, store = env
    return send_dmarc_reports(store, data, cfg, now=now, resolver=FakeResolver(txt), **kw)


def _recipients(env, kind="aggregate"):
    data, _, store = env
    out = []
    for m, raw in queued(store, data):
        subject = email.message_from_bytes(raw, policy=email.policy.compat32)["Subject"]
        is_error = subject.startswith("DMARC aggregate reporting error report")
        if (kind == "error") == is_error:
            out.append(m.recipient)
    return sorted(out)


SCENARIOS = [
    # name, evaluation changes, DMARC TXT (None: the scenario's or the typical one), extra TXT,
    # suppress (address, until offset)
    ("typical", {}, None, {}, None),
    ("only-optional", {"optional": True}, TYPICAL, {}, None),
    ("suppressed", {}, TYPICAL, {}, ("dmarcrpt@sender.example", 60)),
    ("suppression-expired", {}, TYPICAL, {}, ("dmarcrpt@sender.example", -60)),
    ("size-limits", {}, None, {}, None),
    ("external-unauthorized", {}, None, {}, None),
    ("external-authorized", {}, None, None, None),
    ("no-rua", {}, None, {}, None),
    ("too-large-for-all", {}, None, {}, None),
]


@pytest.mark.parametrize("name,changes,txt,extra,supp", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_send_scenarios(env, name, changes, txt, extra, supp):
    data, cfg, store = env
    sc = _scenario(name)
    end = hour()
    now = end + 60
    _record(store, cfg, vector_eval(end, **changes))
    if supp:
        store.update(lambda tx: suppress.add(tx, "dmarc", supp[0], until=now + supp[1], now=now))
    records = {"_dmarc.sender.example": [txt or sc.get("dmarc_txt", TYPICAL)]}
    records.update(sc.get("extra_txt", {}) if extra is None else extra)
    run = _run(env, records, now)
    assert _recipients(env) == sorted(sc["aggregate_to"])
    assert _recipients(env, "error") == sorted(sc["error_report_to"])
    # Evaluations are gone (no temporary error in any scenario): a second run sends nothing.
    assert list_evaluations(store) == []
    before = len(queued(store, data))
    run2 = _run(env, records, now)
    assert run2.domains == [] and len(queued(store, data)) == before
    assert run.domains[0].domain == "sender.example"


def test_typical_feedback_matches_vector(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    [(msg, raw)] = queued(store, data)
    xml = report_xml(raw).decode()
    d = run.domains[0]
    want = vectors()["expected_feedback_xml_typical"]["xml"]
    want = (
        want.replace("YYYYMMDD.HH.RECEIVEDID", d.report_id)
        .replace("END-3600", str(end - 3600))
        .replace("END-1", str(end - 1))
    )
    assert xml == want
    # RFC 7489 §7.2.1.1: a msg-id, unlike mox's (no "@")
    assert re.fullmatch(
        time.strftime("%Y%m%d.%H", time.gmtime(end)) + r"\.[A-Za-z0-9_-]{22}@mail\.mox\.example", d.report_id
    )
    assert validate(xml.encode(), "rfc7489") == []
    fb = parse_report_xml(xml.encode())
    assert fb.metadata.report_id == d.report_id and fb.records[0].count == 1
    # Queue record: DMARC report flags, sender, attempts (docs/behaviour-notes.md §6.4 step 10).
    assert msg.is_dmarc_report and not msg.is_tls_report
    assert msg.mail_from == "postmaster@mail.mox.example" and msg.max_attempts == 5
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert " ".join(m["Subject"].split()) == (
        f"Report Domain: sender.example Submitter: mail.mox.example Report-ID: <{d.report_id}>"
    )
    att = next(p for p in m.walk() if p.get_content_type() == "application/gzip")
    assert att.get_filename() == f"mail.mox.example!sender.example!{end - 3600}!{end - 1}.xml.gz"
    assert m.get_content_type() == "multipart/mixed"
    text = next(p for p in m.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert f"Report-ID: {d.report_id}" in text and "Period: " in text


def test_replacements_follow_rfc_not_mox(env):
    """RFC 7489 §7.1: an override URI with another host means no report to either (mox: sends to same-host ones)."""
    _data, cfg, store = env
    sc = _scenario("external-authorized-with-replacements")
    end = hour()
    _record(store, cfg, vector_eval(end))
    records = {"_dmarc.sender.example": [sc["dmarc_txt"]], **sc["extra_txt"]}
    run = _run(env, records, end + 60)
    assert _recipients(env) == [] and _recipients(env, "error") == []
    assert any("different host" in e for e in run.domains[0].errors)


def test_replacements_same_host(env):
    """The vector's replacements without the other-host URI: good1 and good2; badsize is too small."""
    _data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    records = {
        "_dmarc.sender.example": ["v=DMARC1; rua=mailto:authorized@other.example"],
        "sender.example._report._dmarc.other.example": [
            "v=DMARC1; rua=mailto:good1@other.example,mailto:good2@other.example,mailto:badsize@other.example!1"
        ],
    }
    run = _run(env, records, end + 60)
    assert _recipients(env) == ["good1@other.example", "good2@other.example"]
    assert run.domains[0].too_large == ["badsize@other.example"]


def test_verification_uses_domain_where_record_was_found(env):
    """RFC 7489 §7.1 step 3 prepends the domain where the record was found (mox: its org domain)."""
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end, policy_domain="sub.sender.example"))
    r = FakeResolver(
        {
            "_dmarc.sub.sender.example": ["v=DMARC1; rua=mailto:x@other.example"],
            "sub.sender.example._report._dmarc.other.example": ["v=DMARC1"],
        }
    )
    send_dmarc_reports(store, data, cfg, now=end + 60, resolver=r)
    assert "sub.sender.example._report._dmarc.other.example" in r.queries
    assert _recipients(env) == ["x@other.example"]


def test_record_found_at_organizational_domain(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end, policy_domain="a.b.sender.example"))
    r = FakeResolver({"_dmarc.sender.example": [TYPICAL]})
    send_dmarc_reports(store, data, cfg, now=end + 60, resolver=r)
    assert r.queries[:2] == ["_dmarc.a.b.sender.example", "_dmarc.sender.example"]
    assert _recipients(env) == ["dmarcrpt@sender.example"]


def test_temporary_dns_error_keeps_evaluations(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    run = _run(env, {"_dmarc.sender.example": "TEMP"}, end + 60)
    assert run.domains[0].status == "temporary-error" and run.domains[0].kept
    assert len(list_evaluations(store)) == 1 and queued(store, data) == []
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    assert _recipients(env) == ["dmarcrpt@sender.example"]


def test_temporary_error_verifying_external_keeps_rows_but_sends_to_others(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    records = {
        "_dmarc.sender.example": ["v=DMARC1; rua=mailto:dmarcrpt@sender.example,mailto:x@other.example"],
        "sender.example._report._dmarc.other.example": "TEMP",
    }
    run = _run(env, records, end + 60)
    d = run.domains[0]
    assert d.queued_to == ["dmarcrpt@sender.example"] and d.kept
    assert "temporary error checking authorization for report delegation to external address" in d.errors
    assert len(list_evaluations(store)) == 1
    xml = report_xml(queued(store, data)[0][1])
    assert validate(xml, "rfc7489") == []
    assert parse_report_xml(xml).metadata.errors == d.errors


def test_no_dmarc_record_removes_evaluations(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    run = _run(env, {}, end + 60)
    assert run.domains[0].status == "no-record"
    assert list_evaluations(store) == [] and queued(store, data) == []


def test_interval_not_ending_this_hour_waits(env):
    _data, cfg, store = env
    end = hour()
    while time.gmtime(end).tm_hour % 24 == 0:
        end -= 3600
    _record(store, cfg, vector_eval(end, interval_hours=24))
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60, end=end)
    assert run.domains == [] and len(list_evaluations(store)) == 1
    midnight = end // 86400 * 86400 + 86400
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, midnight + 60)
    assert run.intervals == [24, 12, 8, 6, 4, 3, 2, 1]
    d = run.domains[0]
    assert d.queued_to == ["dmarcrpt@sender.example"]
    assert (d.begin, d.end) == (midnight - 86400, midnight - 1)


def test_begin_moves_back_by_whole_intervals(env):
    _data, cfg, store = env
    end = hour()
    ev = vector_eval(end, evaluated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 3 * 3600 - 10)))
    _record(store, cfg, ev)
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    assert (run.domains[0].begin, run.domains[0].end) == (end - 4 * 3600, end - 1)


def test_stale_evaluations_removed(env):
    _data, cfg, store = env
    end = hour()
    old = vector_eval(end, evaluated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 49 * 3600)), optional=False)
    _record(store, cfg, old)
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    assert run.stale_removed == 1 and run.domains == [] and list_evaluations(store) == []


def test_identical_rows_counted_and_optional_rows_included(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end), vector_eval(end), vector_eval(end, optional=True, source_ip="10.3.2.1"))
    _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    fb = parse_report_xml(report_xml(queued(store, data)[0][1]))
    assert sorted((r.source_ip, r.count) for r in fb.records) == [("10.1.2.3", 2), ("10.3.2.1", 1)]


def test_staggered_due_times(env):
    data, cfg, store = env
    end = hour()
    now = end + 60
    evals = [
        vector_eval(end, policy_domain=f"d{i}.example", policy_published={"domain": f"d{i}.example", "p": "none"})
        for i in range(3)
    ]
    _record(store, cfg, *evals)
    txt = {f"_dmarc.d{i}.example": [f"v=DMARC1; rua=mailto:r@d{i}.example"] for i in range(3)}
    run = _run(env, txt, now)
    dues = sorted(d.due for d in run.domains)
    assert dues == [now, now + 300, now + 600]  # 45 min / 3 capped at 5 min
    assert sorted(m.next_attempt for m, _ in queued(store, data)) == dues


def test_dry_run_changes_nothing(env):
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60, dry_run=True)
    d = run.domains[0]
    assert d.queued_to == ["dmarcrpt@sender.example"] and d.xml.startswith("<?xml")
    assert validate(d.xml.encode(), "rfc7489") == []
    assert queued(store, data) == [] and len(list_evaluations(store)) == 1
    assert not (data / "receivedid.key").exists()


def test_queue_error_keeps_evaluations(env, monkeypatch):
    """Crash safety: a failing enqueue aborts nothing else, the evaluations stay for the next run."""
    import moxcli.delivery.queue as dq

    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))

    def broken(*a, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(dq, "enqueue_in", broken)
    run = _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    assert run.domains[0].status == "temporary-error" and run.domains[0].kept and len(list_evaluations(store)) == 1
    assert "disk full" in run.domains[0].errors[-1]
    assert queued(store, data) == []


def test_crash_between_queue_and_delete_is_atomic(env, monkeypatch):
    """An exception after enqueue, inside the transaction, rolls back the queue records too."""
    from moxcli.dmarc import db as evaldb

    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))

    def crash(*a, **kw):
        raise RuntimeError("crash")

    monkeypatch.setattr(evaldb, "delete_evaluations", crash)
    with pytest.raises(RuntimeError):
        _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    assert queued(store, data) == [] and len(list_evaluations(store)) == 1


def test_lock_held(env):
    data, _cfg, _store = env
    with job_lock(data, "dmarcreports"), pytest.raises(LockHeld):
        _run(env, {}, time.time())


def test_no_outgoing_dmarc_reports(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    cfg = parse_config("no_outgoing_dmarc_reports = true\n", data / "moxcli.toml")
    with Store.open(data) as store:
        with pytest.raises(UsageError, match="no_outgoing_dmarc_reports"):
            send_dmarc_reports(store, data, cfg, resolver=FakeResolver({}))
        with pytest.raises(UsageError, match="no_outgoing_dmarc_reports"):
            record_evaluations(store, cfg, [json.dumps(vector_eval(hour()))])


def test_rfc9990_format(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    cfg = parse_config('hostname = "mail.mox.example"\ndmarc_report_format = "rfc9990"\n', data / "moxcli.toml")
    end = hour()
    ev = vector_eval(
        end,
        override_reasons=[{"type": "sampled_out", "comment": "pct"}],
        spf_results=[{"domain": "sender.example", "scope": "helo", "result": "pass"}],
    )
    with Store.open(data) as store:
        record_evaluations(store, cfg, [json.dumps(ev)])
        send_dmarc_reports(store, data, cfg, now=end + 60, resolver=FakeResolver({"_dmarc.sender.example": [TYPICAL]}))
        [(_, raw)] = queued(store, data)
    xml = report_xml(raw)
    assert validate(xml, "rfc9990") == []
    assert validate(xml, "rfc7489") != []
    fb = parse_report_xml(xml)
    assert fb.schema == "rfc9990" and fb.metadata.generator.startswith("moxcli")
    assert fb.policy.pct == "" and fb.policy.discovery_method == "psl"
    assert fb.records[0].reasons[0].type == "other" and "sampled_out" in fb.records[0].reasons[0].comment
    assert fb.records[0].spf_auth[0].scope == ""


def test_dkim_signed_when_hostname_domain_has_key(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    data = tmp_path / "d"
    data.mkdir()
    key = tmp_path / "k.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cfg = parse_config(
        f'hostname = "mail.mox.example"\n[domains."mox.example".dkim.selectors.s1]\nprivate_key_file = "{key}"\n',
        data / "moxcli.toml",
    )
    end = hour()
    with Store.open(data) as store:
        record_evaluations(store, cfg, [json.dumps(vector_eval(end))])
        send_dmarc_reports(store, data, cfg, now=end + 60, resolver=FakeResolver({"_dmarc.sender.example": [TYPICAL]}))
        [(m, _raw)] = queued(store, data)
    assert m.prefix.startswith(b"DKIM-Signature:") and b"d=mox.example" in m.prefix.replace(b"\r\n", b"").replace(
        b" ", b""
    )


def test_message_header_order(env):
    """Spec §6.6: From, To, Subject, Message-Id, Date, User-Agent, MIME-Version, Content-Type."""
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    _run(env, {"_dmarc.sender.example": [TYPICAL]}, end + 60)
    [(_, raw)] = queued(store, data)
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.keys() == ["From", "To", "Subject", "Message-Id", "Date", "User-Agent", "MIME-Version", "Content-Type"]
    assert m["From"] == "<postmaster@mail.mox.example>" and m["To"] == "<dmarcrpt@sender.example>"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_error_report_format(env):
    """RFC 7489 §7.2.2: text/plain with the six fields; Report-Size is the size attempted."""
    data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    run = _run(
        env,
        {"_dmarc.sender.example": ["v=DMARC1; rua=mailto:dmarcrpt@sender.example!1,mailto:other@sender.example!2"]},
        end + 60,
    )
    d = run.domains[0]
    assert d.status == "error-report" and d.too_large == ["dmarcrpt@sender.example", "other@sender.example"]
    msgs = queued(store, data)
    assert sorted(m.recipient for m, _ in msgs) == ["dmarcrpt@sender.example", "other@sender.example"]
    assert all(m.is_dmarc_report and m.max_attempts == 5 for m, _ in msgs)
    m = email.message_from_bytes(msgs[0][1], policy=email.policy.compat32)
    assert m["Subject"] == "DMARC aggregate reporting error report for sender.example"
    assert m.get_content_type() == "text/plain" and not m.is_multipart()
    fields = dict(line.split(": ", 1) for line in m.get_payload(decode=True).decode().splitlines())
    assert set(fields) == {"Report-Date", "Report-Domain", "Report-ID", "Report-Size", "Submitter", "Submitting-URI"}
    assert fields["Report-Domain"] == "sender.example" and fields["Report-ID"] == d.report_id
    assert int(fields["Report-Size"]) == d.size and fields["Submitter"] == "mail.mox.example"
    assert fields["Submitting-URI"] == "mailto:dmarcrpt@sender.example, mailto:other@sender.example"


def test_non_mailto_and_duplicate_rua(env):
    _data, cfg, store = env
    end = hour()
    _record(store, cfg, vector_eval(end))
    txt = "v=DMARC1; rua=https://sender.example/dmarc,mailto:dmarcrpt@sender.example,MAILTO:DMARCRPT@SENDER.EXAMPLE"
    _run(env, {"_dmarc.sender.example": [txt]}, end + 60)
    assert _recipients(env) == ["dmarcrpt@sender.example"]


def test_idna_policy_domain(env):
    """Domains are stored as Unicode names (docs/behaviour-notes.md §0.1); DNS, subject and file name use A-labels."""
    data, cfg, store = env
    end = hour()
    _record(
        store,
        cfg,
        vector_eval(
            end,
            policy_domain="xn--74h.example",
            header_from="☺.example",
            policy_published={"domain": "☺.example", "p": "none"},
        ),
    )
    r = FakeResolver({"_dmarc.xn--74h.example": ["v=DMARC1; rua=mailto:r@xn--74h.example"]})
    run = send_dmarc_reports(store, data, cfg, now=end + 60, resolver=r)
    assert run.domains[0].domain == "☺.example" and run.domains[0].queued_to == ["r@xn--74h.example"]
    [(_, raw)] = queued(store, data)
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert "Report Domain: xn--74h.example " in " ".join(m["Subject"].split())
    att = next(p for p in m.walk() if p.get_content_type() == "application/gzip")
    assert att.get_filename().startswith("mail.mox.example!xn--74h.example!")
    text = next(p for p in m.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "Report domain: ☺.example/xn--74h.example" in text
    fb = parse_report_xml(report_xml(raw))
    assert fb.policy.domain == "☺.example" and fb.records[0].header_from == "☺.example"

"""DMARC report output that independent readers need (issue 15): each test failed on the old output.

- RFC 7489 Appendix C: every ``auth_results`` has at least one ``<spf>``; when nothing was
  evaluated, result ``none`` for the MAIL FROM domain, or the HELO domain for a null reverse-path.
- RFC 9990 Appendix A: ``report_metadata`` has at most one ``<error>``.
- RFC 7489 §7.2.1.1: the subject's ``Report-ID:`` is a msg-id (``<id-left@id-right>``).
- RFC 7489 §7.2.1.1 / §7.2.2: error reports are DKIM-signed like aggregate reports, so they
  pass DMARC at the receiver with the records ``moxcli dns records`` suggests.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re

import pytest
from helpers.dkim import make_dkim_config, verify_all
from helpers.dmarc import hour, queued, report_xml, vector_eval
from helpers.dns import FakeResolver

from moxcli.config import parse_config
from moxcli.dmarc.db import record_evaluations
from moxcli.dmarc.parse import parse_report_xml
from moxcli.dmarc.report import source_ip_text
from moxcli.dmarc.schema import validate
from moxcli.reports.dmarc import send_dmarc_reports
from moxcli.store import Store

RUA = "mailto:dmarcrpt@sender.example"
TXT = {"_dmarc.sender.example": [f"v=DMARC1; rua={RUA}; ri=3600"]}


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # mail.mox.example's configured parent mox.example has DKIM keys: reports are signed.
    cfg, dns = make_dkim_config(tmp_path)
    store = Store.open(data)
    yield data, cfg, store, dns
    store.close()


def _send(env, evals, txt=TXT, **kw):
    data, cfg, store, _ = env
    end = hour()
    record_evaluations(store, cfg, [json.dumps(e) for e in evals])
    run = send_dmarc_reports(store, data, cfg, now=end + 60, resolver=FakeResolver(txt), **kw)
    return run, queued(store, data)


def _auth_spf(fb):
    return [[(s.domain, s.scope, s.result) for s in r.spf_auth] for r in fb.records]


@pytest.mark.parametrize(
    "changes,want",
    [
        ({}, ("sender.example", "mfrom", "none")),
        # null reverse-path: SPF checks postmaster@<HELO domain> (RFC 7208 §2.4)
        ({"envelope_from": "", "helo_domain": "mail.sender.example"}, ("mail.sender.example", "helo", "none")),
    ],
    ids=["mail-from", "helo"],
)
def test_every_auth_results_has_spf(env, changes, want):
    ev = vector_eval(hour(), spf_results=[], **changes)
    _, [(_, raw)] = _send(env, [ev])
    xml = report_xml(raw)
    assert validate(xml, "rfc7489") == []
    assert _auth_spf(parse_report_xml(xml)) == [[want]]


def test_rfc9990_has_at_most_one_error(env):
    data, cfg, store, dns = env
    text = cfg.path.read_text().replace('hostname = "mail.mox.example"\n', "")
    cfg9990 = parse_config(f'hostname = "mail.mox.example"\ndmarc_report_format = "rfc9990"\n{text}', cfg.path)
    # two rua URIs to external domains that do not authorize us: two error texts
    txt = {"_dmarc.sender.example": ["v=DMARC1; rua=mailto:a@one.example,mailto:b@two.example,mailto:r@sender.example"]}
    run, [(_, raw)] = _send((data, cfg9990, store, dns), [vector_eval(hour())], txt=txt)
    assert len(run.domains[0].errors) == 2
    xml = report_xml(raw)
    assert xml.count(b"<error>") == 1
    assert validate(xml, "rfc9990") == []
    fb = parse_report_xml(xml)
    assert all(e in fb.metadata.errors[0] for e in run.domains[0].errors)


# RFC 5322 §3.6.4 msg-id = "<" id-left "@" id-right ">", both dot-atom-text here
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
MSG_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")


def test_subject_report_id_is_a_msg_id(env):
    run, [(_, raw)] = _send(env, [vector_eval(hour())])
    m = email.message_from_bytes(raw, policy=email.policy.default)
    subject = " ".join(str(m["Subject"]).split())
    rid = subject.split("Report-ID: ", 1)[1]
    assert MSG_ID.fullmatch(rid), rid
    assert rid == f"<{run.domains[0].report_id}>"
    # the same identifier in the XML and the text part (RFC 9990 §3.1.4: identical when used)
    assert parse_report_xml(report_xml(raw)).metadata.report_id == run.domains[0].report_id


def test_error_report_is_dkim_signed(env):
    _data, _cfg, _store, dns = env
    txt = {"_dmarc.sender.example": [f"v=DMARC1; rua={RUA}!1"]}  # 1 byte: nothing fits
    run, msgs = _send(env, [vector_eval(hour())], txt=txt)
    assert run.domains[0].status == "error-report"
    [(qm, raw)] = msgs
    prefix = qm.prefix  # raw is prefix + file, as it goes after DATA
    assert raw.startswith(prefix) and prefix.startswith(b"DKIM-Signature:")
    signed = verify_all(b"", raw, dns)
    assert len(signed) == 2  # both selectors of mox.example, as for aggregate reports
    assert all(b"from" in [name.lower() for name, _ in hs] for hs in signed)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Subject"] == "DMARC aggregate reporting error report for sender.example"
    # DMARC alignment at the receiver: d= is the organizational domain of the From address
    assert {
        re.search(rb"\bd=([^;\s]+)", s).group(1) for s in re.findall(rb"(?s)DKIM-Signature:.*?(?=\r\n\S)", prefix)
    } == {b"mox.example"}
    assert email.utils.parseaddr(m["From"])[1] == "postmaster@mail.mox.example"


@pytest.mark.parametrize(
    "ip,rfc7489,rfc9990",
    [
        ("2001:db8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("2a02:2770:3:0:21a:4aff:fea1:8a7b", "2a02:2770:3:0:21a:4aff:fea1:8a7b", "2a02:2770:3:0:21a:4aff:fea1:8a7b"),
        ("::ffff:192.0.2.7", "192.0.2.7", "192.0.2.7"),
        ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
    ],
)
def test_ipv6_source_ip_in_the_form_each_schema_takes(ip, rfc7489, rfc9990):
    """RFC 7489 Appendix C's IPAddress pattern: IPv6 only as eight groups; RFC 9990: RFC 3986 IPv6address."""
    assert source_ip_text(ip, "rfc7489") == rfc7489
    assert source_ip_text(ip, "rfc9990") == rfc9990


def test_ipv6_source_in_report(env):
    _, [(_, raw)] = _send(env, [vector_eval(hour(), source_ip="2001:db8::25")])
    xml = report_xml(raw)
    assert b"<source_ip>2001:db8:0:0:0:0:0:25</source_ip>" in xml
    assert validate(xml, "rfc7489") == []

"""Independent validators on real report mail (issue 15; docs/tls-reports.md, docs/dmarc-reports.md).

The messages are made once per session through the real path (tests/lab_reports.py: deliveries
to every lab domain kind, then the report jobs, then the message as the lab's Postfix stored
it) and checked with software nobody here wrote, against schemas written from the RFC texts
(testdata/schemas/):

- RFC 8460 report JSON: ``jsonschema`` (Draft 2020-12, format checking on) with
  rfc8460-report.schema.json, plus the session-count consistency the schema cannot express;
- RFC 7489 and RFC 9990 aggregate XML: ``xmlschema`` with the Appendix C / Appendix A XSDs;
- ``parsedmarc`` (offline) parses both kinds of report mail;
- DKIM: ``dkimpy`` verifies every signature (ed25519 and rsa) with the keys `moxcli dns records`
  prints, and ``opendkim-testmsg`` verifies them too (a DNS stub serves those records);
- the stdlib email parser reads every message without a defect; file names and subjects
  follow the RFC ABNFs.
"""

from __future__ import annotations

import copy
import email.utils
import gzip
import ipaddress
import json
import re
import shutil
import xml.etree.ElementTree as ET
from typing import Any

import dkim
import pytest
from conftest import ROOT
from lab_reports import generate, parse

pytestmark = pytest.mark.lab

SCHEMAS = ROOT / "testdata" / "schemas"
NS_7489 = "http://dmarc.org/dmarc-xml/0.1"


@pytest.fixture(scope="session")
def gen(lab, tmp_path_factory):
    return generate(lab, tmp_path_factory.mktemp("validators"))


def _tls_reports(gen) -> list[tuple[Any, dict]]:
    out = []
    for raw in gen.tls_messages:
        m = parse(raw)
        (att,) = list(m.iter_attachments())
        out.append((m, json.loads(gzip.decompress(att.get_content()))))
    return out


def _dmarc_xml(raw: bytes) -> bytes:
    m = parse(raw)
    (att,) = [p for p in m.iter_attachments() if p.get_content_type() == "application/gzip"]
    return gzip.decompress(att.get_content())


def _all_messages(gen) -> list[tuple[str, bytes]]:
    return (
        [("tls", r) for r in gen.tls_messages]
        + [(fmt, r) for fmt, msgs in gen.dmarc_messages.items() for r in msgs]
        + [("error", r) for r in gen.error_reports]
    )


# --- what was generated ------------------------------------------------------------------


def test_every_lab_domain_kind_reported(gen):
    """The reports cover every policy type and the failure kinds of the lab's domains."""
    outcomes = {q["recipient"].split("@")[1]: (q["outcome"], q["tls"]) for q in gen.queue_run}
    assert outcomes["dane-ok.test"] == ("delivered", "dane")
    assert outcomes["dane-bad.test"][0] == outcomes["dane-bogus.test"][0] == "failed"
    assert outcomes["notls.test"] == ("delivered", None)
    assert outcomes["wrongname.test"] == outcomes["expired.test"] == ("delivered", "unverified")
    reports = _tls_reports(gen)
    summary = gen.tls_run[-1]
    # bogus.test: even its TLSRPT record is bogus (SERVFAIL), a temporary error
    assert [(e["policy_domain"], e["code"]) for e in summary["errors"]] == [("bogus.test", "dns-temporary")]
    assert summary["reports"] == len(reports) >= 12
    seen = {
        (p["policy"]["policy-type"], d["result-type"])
        for _, r in reports
        for p in r["policies"]
        for d in p["failure-details"]
    }
    assert seen >= {
        ("tlsa", "validation-failure"),  # DANE mismatch (dane-no-match)
        ("tlsa", "dnssec-invalid"),  # bogus TLSA
        ("sts", "sts-policy-fetch-error"),  # 404, redirect
        ("sts", "sts-policy-invalid"),  # oversized policy
        ("sts", "sts-webpki-invalid"),  # policy host with a wrong-name certificate
        ("no-policy-found", "starttls-not-supported"),
        ("no-policy-found", "certificate-host-mismatch"),
        ("no-policy-found", "certificate-expired"),
    }, seen
    types = {p["policy"]["policy-type"] for _, r in reports for p in r["policies"]}
    assert types == {"sts", "tlsa", "no-policy-found"}
    # one report per format for reports.test, and sts.test's !10k limit gave error reports
    assert [len(gen.dmarc_messages[f]) for f in ("rfc7489", "rfc9990")] == [1, 1]
    assert len(gen.error_reports) == 2


# --- RFC 8460 JSON Schema ----------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / "rfc8460-report.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator.FORMAT_CHECKER
    # Format checking silently passes formats whose checker library is missing: insist on them.
    assert {"date-time", "email", "hostname", "ipv4", "ipv6", "uri"} <= set(checker.checkers)
    return Draft202012Validator(schema, format_checker=checker)


def _errors(validator, report: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]


def test_tls_reports_match_rfc8460_schema(gen, tls_validator):
    problems = {m["TLS-Report-Domain"]: _errors(tls_validator, r) for m, r in _tls_reports(gen)}
    assert {d: p for d, p in problems.items() if p} == {}


@pytest.mark.parametrize(
    "path,value,why",
    [
        # IP addresses are anyOf ipv4/ipv6
        (("sending-mta-ip",), "", "is not valid under any of the given schemas"),  # mox's "" for unknown
        (("receiving-ip",), "mx.example", "is not valid under any of the given schemas"),
        (("receiving-mx-hostname",), "", "is not a 'hostname'"),
        (("additional-information",), "", "is not a 'uri'"),
        (("result-type",), "tls-failed", "is not one of"),
        (("failed-session-count",), "1", "is not of type 'integer'"),
    ],
)
def test_tls_schema_rejects_bad_failure_details(gen, tls_validator, path, value, why):
    """The schema has teeth: one real report, one field spoiled, the error names it."""
    _, report = next((m, r) for m, r in _tls_reports(gen) if m["TLS-Report-Domain"] == "dane-bad.test")
    spoiled = copy.deepcopy(report)
    detail = spoiled["policies"][1]["failure-details"][0]
    detail[path[0]] = value
    errs = _errors(tls_validator, spoiled)
    assert len(errs) == 1 and errs[0].startswith(f"policies/1/failure-details/0/{path[0]}: ") and why in errs[0], errs


def test_tls_schema_rejects_u_labels_and_unknown_policy_type(gen, tls_validator):
    _, report = _tls_reports(gen)[0]
    spoiled = copy.deepcopy(report)
    spoiled["policies"][0]["policy"]["policy-domain"] = "☺.example"
    spoiled["policies"][0]["policy"]["policy-type"] = "dane"
    errs = _errors(tls_validator, spoiled)
    assert any("policy-domain" in e for e in errs) and any("policy-type" in e for e in errs), errs


# --- consistency the schema cannot express -------------------------------------------------

# The rules of docs/tls-reports.md, "Session counts":
# 1. The failure details of a policy never count more sessions than its summary does
#    (successful + failed), except starttls-not-supported without a reason code: opportunistic
#    delivery to a server that did not announce STARTTLS goes on in plaintext, and mox counts
#    that session in neither total (0/0).
# 2. Stricter: they never count more sessions than the summary's failures, except in addition
#    PKIX certificate failures on a no-policy-found result: nothing required a valid
#    certificate, TLS went on unverified and the summary counts the session as successful.
PKIX_TYPES = ("certificate-host-mismatch", "certificate-expired", "certificate-not-trusted")


def session_count_problems(report: dict) -> list[str]:
    """Policies whose failure details count more sessions than their summary does."""
    out = []
    for p in report["policies"]:
        pol, s = p["policy"], p["summary"]
        ok, failed = s["total-successful-session-count"], s["total-failure-session-count"]
        counted = unverified = 0
        for d in p["failure-details"]:
            if d["result-type"] == "starttls-not-supported" and "failure-reason-code" not in d:
                continue
            counted += d["failed-session-count"]
            if pol["policy-type"] == "no-policy-found" and d["result-type"] in PKIX_TYPES:
                unverified += d["failed-session-count"]
        name = f"{pol['policy-type']} {pol['policy-domain']}"
        if counted > ok + failed:
            out.append(f"{name}: details count {counted} sessions, summary {ok + failed}")
        elif counted - unverified > failed:
            out.append(f"{name}: details count {counted - unverified} failed sessions, summary {failed}")
    return out


def test_tls_failure_details_within_summary(gen):
    problems = {m["TLS-Report-Domain"]: session_count_problems(r) for m, r in _tls_reports(gen)}
    assert {d: p for d, p in problems.items() if p} == {}
    # both exceptions occur in these reports, so the rules are exercised, not vacuous
    by_domain = {m["TLS-Report-Domain"]: r["policies"][0] for m, r in _tls_reports(gen)}
    notls, wrongname = by_domain["notls.test"], by_domain["wrongname.test"]
    assert notls["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 0}
    assert [(d["result-type"], d["failed-session-count"]) for d in notls["failure-details"]] == [
        ("starttls-not-supported", 1)
    ]
    assert wrongname["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    assert [(d["result-type"], d["failed-session-count"]) for d in wrongname["failure-details"]] == [
        ("certificate-host-mismatch", 1)
    ]


def test_consistency_check_finds_overcounting(gen):
    _, report = next((m, r) for m, r in _tls_reports(gen) if m["TLS-Report-Domain"] == "dane-bad.test")
    spoiled = copy.deepcopy(report)
    spoiled["policies"][1]["failure-details"][0]["failed-session-count"] = 2
    assert session_count_problems(spoiled) == ["tlsa mx.dane-bad.test: details count 2 sessions, summary 1"]
    spoiled["policies"][1]["summary"]["total-successful-session-count"] = 1
    assert session_count_problems(spoiled) == ["tlsa mx.dane-bad.test: details count 2 failed sessions, summary 1"]


# --- DMARC XML schemas ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def xsd():
    import xmlschema

    return {
        "rfc7489": xmlschema.XMLSchema10(str(SCHEMAS / "rfc7489-appendix-c.xsd")),
        "rfc9990": xmlschema.XMLSchema10(str(SCHEMAS / "rfc9990-appendix-a.xsd")),
    }


def as_rfc7489_document(xml: bytes) -> ET.Element:
    """The report with its root in the Appendix C target namespace (elementFormDefault is
    unqualified: the children stay unqualified). Reports in the wild carry no namespace."""
    root = ET.fromstring(xml)
    assert root.tag == "feedback", "an RFC 7489 report from moxcli has no namespace"
    root.tag = f"{{{NS_7489}}}feedback"
    return root


def xsd_problems(schemas, fmt: str, xml: bytes) -> list[str]:
    doc = as_rfc7489_document(xml) if fmt == "rfc7489" else ET.fromstring(xml)
    return [f"{e.path}: {e.reason}" for e in schemas[fmt].iter_errors(doc)]


@pytest.mark.parametrize("fmt", ["rfc7489", "rfc9990"])
def test_dmarc_reports_match_rfc_xsd(gen, xsd, fmt):
    [raw] = gen.dmarc_messages[fmt]
    xml = _dmarc_xml(raw)
    assert xsd_problems(xsd, fmt, xml) == []
    root = ET.fromstring(xml)
    ns = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"} if fmt == "rfc9990" else {"d": ""}
    q = "d:" if fmt == "rfc9990" else ""
    ips = [e.text for e in root.iterfind(f".//{q}source_ip", ns)]
    # RFC 9990 types source_ip as a string; §3.1.1.8 wants an RFC 3986 IPv4address/IPv6address
    assert all(ipaddress.ip_address(ip) for ip in ips)
    assert any(":" in ip for ip in ips) and len(ips) >= 7  # IPv6 sources and every combination
    # several DKIM results in one row, override reasons, an spf for the HELO domain
    assert max(len(r.findall(f"{q}auth_results/{q}dkim", ns)) for r in root.iterfind(f"{q}record", ns)) == 4
    assert root.findall(f".//{q}reason", ns)
    assert "mail.reports.test" in [e.text for e in root.iterfind(f".//{q}auth_results/{q}spf/{q}domain", ns)]


@pytest.mark.parametrize(
    "fmt,spoil,why",
    [
        # RFC 7489 Appendix C: at least one spf per auth_results (what the old writer left out)
        ("rfc7489", lambda x: re.sub(rb"(?s)<spf>\s*<domain>.*?</spf>", b"", x), "spf"),
        # the eight-group IPv6 form is the only one Appendix C's IPAddress pattern takes
        ("rfc7489", lambda x: x.replace(b"2001:db8:0:0:0:0:0:25", b"2001:db8::25"), "source_ip"),
        ("rfc7489", lambda x: x.replace(b"<p>reject</p>", b"<p>block</p>"), "policy_published/p"),
        # RFC 9990 Appendix A: at most one error
        ("rfc9990", lambda x: x.replace(b"</date_range>", b"</date_range><error>a</error><error>b</error>"), "error"),
        ("rfc9990", lambda x: x.replace(b"<type>other</type>", b"<type>forwarded</type>", 1), "reason"),
    ],
)
def test_dmarc_xsd_rejects_violations(gen, xsd, fmt, spoil, why):
    [raw] = gen.dmarc_messages[fmt]
    xml = _dmarc_xml(raw)
    spoiled = spoil(xml)
    assert spoiled != xml
    problems = xsd_problems(xsd, fmt, spoiled)
    assert problems and any(why in p for p in problems), problems


# --- parsedmarc ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def parsedmarc():
    import parsedmarc

    return parsedmarc


def test_parsedmarc_reads_tls_reports(gen, parsedmarc):
    for m, report in _tls_reports(gen):
        raw = next(r for r in gen.tls_messages if parse(r)["Message-Id"] == m["Message-Id"])
        got = parsedmarc.parse_report_email(raw, offline=True, always_use_local_files=True)
        assert got["report_type"] == "smtp_tls"
        r = got["report"]
        assert (r["report_id"], r["contact_info"]) == (report["report-id"], report["contact-info"])
        assert [p["policy_domain"] for p in r["policies"]] == [p["policy"]["policy-domain"] for p in report["policies"]]


@pytest.mark.parametrize("fmt", ["rfc7489", "rfc9990"])
def test_parsedmarc_reads_dmarc_reports(gen, parsedmarc, fmt):
    [raw] = gen.dmarc_messages[fmt]
    got = parsedmarc.parse_report_email(raw, offline=True, always_use_local_files=True)
    assert got["report_type"] == "aggregate"
    r = got["report"]
    [run] = [d for d in gen.dmarc_runs[fmt]["domains"] if d["status"] == "queued"]
    # parsedmarc keeps the id-left of a msg-id form Report-ID
    assert r["report_metadata"]["report_id"] == run["report_id"].split("@")[0]
    assert r["policy_published"]["domain"] == "reports.test"
    # every evaluation of reports.test is counted (two identical rows made one record with count 2)
    assert sum(rec["count"] for rec in r["records"]) == run["evaluations"]
    ips = {rec["source"]["ip_address"] for rec in r["records"]}
    assert {str(ipaddress.ip_address(ip)) for ip in ips} >= {"2001:db8::25", "192.0.2.10", "203.0.113.9"}


# --- DKIM ------------------------------------------------------------------------------------


def _dnsfunc(gen):
    keys = gen.dkim_txt()

    def lookup(name: bytes | str, timeout: int = 5) -> bytes:
        return keys[name.decode() if isinstance(name, bytes) else name]

    return lookup


def test_dkimpy_verifies_every_signature(gen):
    lookup = _dnsfunc(gen)
    selectors = {n.split("._domainkey.")[0] for n in gen.dkim_txt()}
    assert len(selectors) == 2  # ed25519 and rsa from `moxcli init`
    for kind, raw in _all_messages(gen):
        n = len(re.findall(rb"(?im)^DKIM-Signature:", raw))
        assert n == 2, (kind, n)
        d = dkim.DKIM(raw)
        for i in range(n):
            assert d.verify(idx=i, dnsfunc=lookup), (kind, i, parse(raw)["Subject"])
            signed = {name.lower() for name, _ in d.signed_headers}
            assert {b"from", b"to", b"subject", b"date", b"message-id"} <= signed, (kind, signed)
            if kind == "tls":  # RFC 8460 §5.3: these SHOULD be covered
                assert {b"tls-report-domain", b"tls-report-submitter"} <= signed
        sigs = [re.sub(r"\s+", "", str(v)) for v in parse(raw).get_all("DKIM-Signature")]
        assert {re.search(r"(?:^|;)a=([a-z0-9-]+)", s).group(1) for s in sigs} == {"ed25519-sha256", "rsa-sha256"}
        # DMARC alignment (RFC 7489 §7.2.1.1): the signing domain is the From domain's organization
        from_domain = email.utils.parseaddr(str(parse(raw)["From"]))[1].split("@")[1]
        assert from_domain.endswith(gen.domain)
        assert {re.search(r"(?:^|;)d=([^;]+)", s).group(1) for s in sigs} == {gen.domain}


def test_dkimpy_notices_tampering(gen):
    raw = gen.tls_messages[0]
    tampered = raw.replace(b"TLS-Report-Domain: ", b"TLS-Report-Domain: x", 1)
    d = dkim.DKIM(tampered)
    assert not d.verify(idx=0, dnsfunc=_dnsfunc(gen))


# --- the stdlib email parser -----------------------------------------------------------------

# RFC 8460 §5.1 and RFC 7489 §7.2.1.1 file names: sender!policy-domain!begin!end[!unique-id].ext
_FILENAME = r"[A-Za-z0-9.-]+![A-Za-z0-9.-]+![0-9]+![0-9]+(![A-Za-z0-9]+)?\.{ext}"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(\.{_ATEXT})*"
_SUBJECT = rf"Report Domain: [A-Za-z0-9.-]+ Submitter: [A-Za-z0-9.-]+ Report-ID: <{_DOT_ATOM}@{_DOT_ATOM}>"


def _defects(m) -> list[str]:
    return [f"{p.get_content_type()}: {d!r}" for p in m.walk() for d in p.defects]


def test_stdlib_parser_reads_every_message(gen):
    kinds = {r["policy_domain"]: r["kind"] for r in gen.tls_run if r["type"] == "report"}
    for kind, raw in _all_messages(gen):
        m = parse(raw)
        assert _defects(m) == [], kind
        assert email.utils.parsedate_to_datetime(str(m["Date"])) is not None
        assert re.fullmatch(rf"<{_DOT_ATOM}@{_DOT_ATOM}>", str(m["Message-Id"]).strip()), m["Message-Id"]
        assert m["MIME-Version"] == "1.0"
        subject = " ".join(str(m["Subject"]).split())
        text = m.get_body(("plain",)).get_content()
        if kind == "error":
            # RFC 7489 §7.2.2: a text/plain part with the six fields
            assert m.get_content_type() == "text/plain"
            fields = dict(line.split(": ", 1) for line in text.splitlines() if line)
            assert set(fields) == {
                "Report-Date",
                "Report-Domain",
                "Report-ID",
                "Report-Size",
                "Submitter",
                "Submitting-URI",
            }
            assert email.utils.parsedate_to_datetime(fields["Report-Date"]) is not None
            assert int(fields["Report-Size"]) > 10 * 1024
            continue
        assert re.fullmatch(_SUBJECT, subject), subject  # RFC 8460 §5.3, RFC 7489 §7.2.1.1
        (att,) = list(m.iter_attachments())
        if kind == "tls":
            assert m.get_content_type() == "multipart/report" and m.get_param("report-type") == "tlsrpt"
            assert att.get_content_type() == "application/tlsrpt+gzip"
            assert re.fullmatch(_FILENAME.format(ext=r"json\.gz"), att.get_filename())
            report = json.loads(gzip.decompress(att.get_content()))
            # RFC 8460 §5.3: the submitter header equals the domain of contact-info
            assert m["TLS-Report-Submitter"] == report["contact-info"].split("@")[1]
            # recipient-domain report: about that domain; host report: about the MX host (§3)
            if kinds[m["TLS-Report-Domain"]] == "host":
                assert {p["policy"]["mx-host"][0] for p in report["policies"]} == {m["TLS-Report-Domain"]}
            else:
                assert report["policies"][0]["policy"]["policy-domain"] == m["TLS-Report-Domain"]
            assert subject.endswith(f"Report-ID: <{report['report-id']}>")
        else:
            assert att.get_content_type() == "application/gzip"
            assert re.fullmatch(_FILENAME.format(ext=r"xml\.gz"), att.get_filename())
            rid = ET.fromstring(gzip.decompress(att.get_content())).find(".//{*}report_id")
            assert subject.endswith(f"Report-ID: <{rid.text}>") and f"Report-ID: {rid.text}" in text


# --- opendkim-testmsg ------------------------------------------------------------------------


def test_opendkim_testmsg_verifies(gen, opendkim_dns):
    for kind, raw in _all_messages(gen):
        r = opendkim_dns(raw)
        assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", (kind, r)
    # the keys came from the stub, i.e. from `moxcli dns records`
    assert set(opendkim_dns.stub.queries) == set(gen.dkim_txt())


def test_opendkim_testmsg_notices_tampering(gen, opendkim_dns):
    raw = gen.dmarc_messages["rfc7489"][0].replace(b"Subject: Report", b"Subject: Rep0rt", 1)
    r = opendkim_dns(raw)
    assert (r.returncode, r.stderr) == (70, b"opendkim-testmsg: dkim_eom(): Bad signature\n"), r


@pytest.fixture(scope="session")
def opendkim_dns(gen, tmp_path_factory):
    """Run opendkim-testmsg with the DKIM keys of `moxcli dns records` in its DNS: in a private
    mount namespace whose /etc/resolv.conf names a stub server on port 53 of a free 127/8
    address (the system resolver takes no port; several test sessions may run at once)."""
    import os

    from dns_stub import DNSStub

    if shutil.which("opendkim-testmsg") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("opendkim-testmsg missing (scripts/test.sh installs opendkim-tools)")
        pytest.skip("opendkim-testmsg not installed (Debian package opendkim-tools)")
    d = tmp_path_factory.mktemp("opendkim")
    with DNSStub.on_free_loopback(53, gen.dkim_txt()) as stub:
        resolv = d / "resolv.conf"
        resolv.write_text(f"nameserver {stub.host}\noptions attempts:1 timeout:2\n")

        def run(raw: bytes):
            import subprocess

            script = f"mount --bind {resolv} /etc/resolv.conf && exec opendkim-testmsg"
            return subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                input=raw.replace(b"\r\n", b"\n"),
                capture_output=True,
                timeout=30,
            )

        run.stub = stub  # type: ignore[attr-defined]
        yield run

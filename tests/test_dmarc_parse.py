"""Pure DMARC parts: intervals, records and rua URIs, the evaluation contract, report XML in and out."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import pytest
from helpers.dmarc import expected_summary, report_summary, vector_eval, vectors
from helpers.samples import SAMPLES, need_sample
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.dmarc.evaluation import EvaluationError, parse_lines
from moxcli.dmarc.interval import interval_hours, intervals_ending_at
from moxcli.dmarc.orgdomain import organizational_domain
from moxcli.dmarc.parse import MAX_XML, NoReport, ReportError, parse_file, parse_message, parse_report_xml, parse_xml
from moxcli.dmarc.record import NotDMARCRecord, RecordError, parse_mailto, parse_record, parse_report_uri
from moxcli.dmarc.report import DKIMAuth, Feedback, Metadata, Published, Reason, Record, SPFAuth, build_xml
from moxcli.dmarc.schema import validate
from moxcli.domain import parse_domain

V = vectors()


@pytest.mark.parametrize("case", V["interval_hours"], ids=lambda c: str(c["ri_seconds"]))
def test_interval_hours(case):
    assert interval_hours(case["ri_seconds"]) == case["interval_hours"]


@pytest.mark.parametrize("case", V["intervals_processed_per_hour"], ids=lambda c: str(c["end_utc_hour"]))
def test_intervals_ending_at(case):
    assert intervals_ending_at(case["end_utc_hour"]) == case["intervals_processed"]


@pytest.mark.parametrize(
    "text,rua,ri",
    [
        ("v=DMARC1; p=none; rua=mailto:a@x.example", ("mailto:a@x.example",), 86400),
        (
            "v=DMARC1;p=reject;rua=mailto:a@x.example,mailto:b@y.example!10m;ri=3600",
            ("mailto:a@x.example", "mailto:b@y.example!10m"),
            3600,
        ),
        ("v = DMARC1 ; RUA=mailto:a@x.example ; ", ("mailto:a@x.example",), 86400),
        ("v=DMARC1;", (), 86400),
        ("v=DMARC1; p=none; unknown=whatever", (), 86400),
    ],
)
def test_parse_record(text, rua, ri):
    r = parse_record(text)
    assert r.rua == rua and r.ri == ri


@pytest.mark.parametrize("text", ["v=spf1 -all", "", "v=DMARC2; p=none", "p=none; v=DMARC1", "v=dmarc1"])
def test_not_dmarc(text):
    with pytest.raises(NotDMARCRecord):
        parse_record(text)


def test_invalid_values_are_ignored():
    """RFC 7489 §6.6.3: an invalid p with a valid rua is acted on as p=none; reporting goes on."""
    r = parse_record("v=DMARC1; p=maybe; sp=REJECT; pct=101; ri=soon; adkim=x; rua=mailto:a@x.example")
    assert (r.p, r.sp, r.pct, r.ri, r.adkim, r.rua) == ("", "reject", 100, 86400, "", ("mailto:a@x.example",))


@pytest.mark.parametrize("text", ["v=DMARC1; p=none; p=reject", "v=DMARC1; bogus", "v=DMARC1; a b=c"])
def test_bad_record(text):
    with pytest.raises(RecordError):
        parse_record(text)


@pytest.mark.parametrize(
    "text,uri,size",
    [
        ("mailto:a@x.example", "mailto:a@x.example", 0),
        ("mailto:a@x.example!1", "mailto:a@x.example", 1),
        ("mailto:a@x.example!10k", "mailto:a@x.example", 10 * 1024),
        ("mailto:a@x.example!50m", "mailto:a@x.example", 50 << 20),
        ("mailto:a@x.example!2g", "mailto:a@x.example", 2 << 30),
        ("mailto:a@x.example!10t", "mailto:a@x.example", 10 << 40),
        (" MAILTO:a@x.example!10K ", "MAILTO:a@x.example", 10 * 1024),
    ],
)
def test_report_uri(text, uri, size):
    u = parse_report_uri(text)
    assert (u.uri, u.max_size) == (uri, size)


@pytest.mark.parametrize(
    "text", ["a@x.example", "mailto:a@x.example!10x", "mailto:a@x.example!", "mailto:a%zz@x.example"]
)
def test_bad_report_uri(text):
    with pytest.raises(RecordError):
        parse_report_uri(text)


def test_mailto():
    assert parse_mailto("mailto:dmarc%2Breports@EXAMPLE.org?subject=x") == (
        "dmarc+reports",
        parse_domain("example.org"),
    )
    with pytest.raises(RecordError):
        parse_mailto("https://example.org/")
    with pytest.raises(RecordError):
        parse_mailto("mailto:nobody")


@pytest.mark.parametrize(
    "name,org",
    [
        ("mail.sender.example", "sender.example"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("reports.test", "reports.test"),
        ("test", "test"),
    ],
)
def test_organizational_domain(name, org):
    assert organizational_domain(parse_domain(name)).ascii == org


# The JSON-lines contract of `moxcli dmarc record`.


def _line(**changes):
    return json.dumps(vector_eval(1_700_000_000, **changes))


def test_contract_valid_batch():
    evals = parse_lines([_line(), "", _line(optional=True, interval_hours=5)], now=1_700_000_000)
    assert len(evals) == 2
    e = evals[1]
    assert e.optional and e.interval_hours == 4  # rounded like ri
    assert e.policy_published.sp == "reject" and e.evaluated == 1_700_000_000 - 1800


def test_contract_defaults():
    ev = {
        "policy_domain": "Example.ORG",
        "addresses": ["mailto:r@example.org"],
        "policy_published": {"domain": "example.org", "p": "none"},
        "source_ip": "2001:db8::1",
        "disposition": "none",
        "aligned_dkim_pass": False,
        "aligned_spf_pass": True,
        "header_from": "example.org",
    }
    [e] = parse_lines([json.dumps(ev)], now=123.0)
    assert e.evaluated == 123.0 and e.interval_hours == 24 and not e.optional
    assert e.policy_domain == "example.org" and e.policy_published.sp == "none" and e.policy_published.pct == 100


@pytest.mark.parametrize(
    "line,where",
    [
        ("{not json", "line 2: invalid JSON"),
        ("[1]", "line 2: expected a JSON object"),
        (_line(policy_domain=None), "line 2: policy_domain: required field missing"),
        (_line(policy_domain="bad domain"), "line 2: policy_domain: invalid domain"),
        (_line(evaluated="yesterday"), "line 2: evaluated: invalid RFC 3339 time"),
        (_line(evaluated="2024-01-01T00:00:00"), "line 2: evaluated: time '2024-01-01T00:00:00' has no time zone"),
        (_line(addresses=[]), "line 2: addresses: at least one rua URI"),
        (_line(addresses=["nourl"]), "line 2: addresses[0]:"),
        (_line(source_ip="10.1.2"), "line 2: source_ip: invalid IP address"),
        (_line(disposition="pass"), "line 2: disposition: must be one of"),
        (_line(aligned_dkim_pass="yes"), "line 2: aligned_dkim_pass: expected boolean"),
        (_line(interval_hours=0), "line 2: interval_hours: must be at least 1"),
        (_line(interval_hours=True), "line 2: interval_hours: expected integer"),
        (_line(policy_published={"domain": "x.example"}), "line 2: policy_published: p: required field missing"),
        (
            _line(policy_published={"domain": "x.example", "p": "none", "pct": 200}),
            "line 2: policy_published: pct: must be 0-100",
        ),
        (
            _line(policy_published={"domain": "x.example", "p": "none", "fo": "1"}),
            "line 2: policy_published: fo: unknown field",
        ),
        (
            _line(dkim_results=[{"domain": "x.example", "result": "ok"}]),
            "line 2: dkim_results[0]: result: must be one of",
        ),
        (
            _line(spf_results=[{"domain": "x.example", "scope": "rcpt", "result": "pass"}]),
            "line 2: spf_results[0]: scope: must be one of",
        ),
        (_line(override_reasons=[{"type": "because"}]), "line 2: override_reasons[0]: type: must be one of"),
        (_line(extra=1), "line 2: extra: unknown field"),
        (
            _line(evaluated="2999-01-01T00:00:00Z"),
            "line 2: evaluated: 2999-01-01T00:00:00Z is more than an hour in the future",
        ),
    ],
)
def test_contract_errors_name_line_and_field(line, where):
    with pytest.raises(EvaluationError) as exc:
        parse_lines([_line(), line, _line()], now=1_700_000_000, source="in.jsonl")
    assert str(exc.value).startswith("in.jsonl: " + where), str(exc.value)


def test_contract_line_limits():
    with pytest.raises(EvaluationError, match="line 1: not UTF-8"):
        parse_lines([b"\xff{}"], now=0)
    with pytest.raises(EvaluationError, match="longer than"):
        parse_lines([b"{" + b" " * 70000 + b"}"], now=0)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=6),
            max_leaves=20,
        ).map(json.dumps),
    )
)
def test_contract_hostile_input_only_raises_evaluation_error(text):
    try:
        evaluations = parse_lines([text], now=0)
    except EvaluationError:
        return
    assert len(evaluations) == (1 if text.strip() else 0)  # blank lines are skipped


# Report XML out and back in.


def _feedback() -> Feedback:
    return Feedback(
        Metadata("mail.example", "postmaster@mail.example", "20240101.00.abc", 100, 199, errors=["a <b> & c"]),
        Published("example.org", "reject", "none", "50", "s", "r"),
        [
            Record(
                "192.0.2.1",
                3,
                "reject",
                "fail",
                "fail",
                "example.org",
                "bounce.example",
                "rcpt.example",
                [Reason("local_policy", "x"), Reason("forwarded")],
                [DKIMAuth("example.org", "fail", "sel"), DKIMAuth("example.org", "pass")],
                [SPFAuth("bounce.example", "softfail", "mfrom")],
            ),
        ],
    )


@pytest.mark.parametrize("fmt", ["rfc7489", "rfc9990"])
def test_build_validate_parse_round_trip(fmt):
    fb = _feedback()
    xml = build_xml(fb, fmt)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<feedback')
    assert validate(xml, fmt) == []
    back = parse_report_xml(xml)
    assert back.schema == fmt
    assert back.metadata.errors == ["a <b> & c"] and back.metadata.report_id == fb.metadata.report_id
    r = back.records[0]
    assert (r.source_ip, r.count, r.disposition, r.envelope_to, r.header_from) == (
        "192.0.2.1",
        3,
        "reject",
        "rcpt.example",
        "example.org",
    )
    assert [d.result for d in r.dkim_auth] == ["fail", "pass"]
    if fmt == "rfc7489":
        assert back == Feedback(fb.metadata, Published(**{**fb.policy.__dict__, "fo": ""}), fb.records, version="1.0")


_text = st.text(max_size=30)


@settings(max_examples=100, deadline=None)
@given(
    org=_text, rid=_text, comment=_text, human=_text, errors=st.lists(_text, max_size=3), count=st.integers(1, 10**9)
)
def test_any_text_round_trips_through_xml(org, rid, comment, human, errors, count):
    """Whatever text ends up in a report (it comes from MTAs and DNS), the document stays
    well-formed and valid, and reads back the same (surrounding whitespace and characters XML
    cannot carry aside)."""
    fb = _feedback()
    fb.metadata.org_name, fb.metadata.report_id, fb.metadata.errors = org, rid, errors
    fb.records[0].reasons = [Reason("other", comment)]
    fb.records[0].dkim_auth[0].human_result = human
    fb.records[0].count = count
    xml = build_xml(fb)
    assert validate(xml, "rfc7489") == []
    back = parse_report_xml(xml)

    def clean(t: str) -> str:
        t = "".join("\ufffd" if (ord(c) < 32 and c not in "\t\n\r") or ord(c) in (0xFFFE, 0xFFFF) else c for c in t)
        return t.replace("\r\n", "\n").replace("\r", "\n").strip()  # XML 1.0 §2.11 line ends; the reader strips

    assert back.metadata.org_name == clean(org) and back.metadata.report_id == clean(rid)
    assert back.metadata.errors == [clean(e) for e in errors]
    assert back.records[0].reasons[0].comment == clean(comment) and back.records[0].count == count


def test_control_characters_do_not_break_xml():
    fb = _feedback()
    fb.records[0].reasons = [Reason("other", "bad\x00\x1bchars")]
    xml = build_xml(fb)
    assert validate(xml, "rfc7489") == []
    assert parse_report_xml(xml).records[0].reasons[0].comment == "bad\ufffd\ufffdchars"


@pytest.mark.parametrize(
    "mutate,problem",
    [
        (lambda x: x.replace(b"<version>1.0</version>", b""), "missing <version>"),
        (lambda x: x.replace(b"<fo></fo>", b""), "missing <fo>"),
        (lambda x: x.replace(b"<disposition>reject</disposition>", b"<disposition>pass</disposition>"), "value 'pass'"),
        (lambda x: x.replace(b"<count>3</count>", b"<count>three</count>"), "not a non-negative integer"),
        (lambda x: x.replace(b"<source_ip>192.0.2.1</source_ip>", b"<source_ip>nope</source_ip>"), "not an IP address"),
        (lambda x: x.replace(b"<scope>mfrom</scope>", b""), "missing <scope>"),
    ],
)
def test_validator_catches(mutate, problem):
    problems = validate(mutate(build_xml(_feedback())), "rfc7489")
    assert any(problem in p for p in problems), problems


# Incoming reports.


def _sample_cases():
    return V["incoming_report_samples"]["cases"]


@pytest.mark.parametrize("case", _sample_cases(), ids=lambda c: c["file"])
def test_mox_samples(case):
    path = need_sample(SAMPLES / "mox" / "dmarc-reports" / case["file"])
    fb = parse_message(path.read_bytes())
    assert report_summary(fb) == expected_summary(case)


PARSEDMARC_OK = [
    "!example.com!1538204542!1538463818.xml",
    "Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml",
    "addisonfoods.com!example.com!1536105600!1536191999.xml",
    "empty_reason.xml",
    "estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip",
    "example.net!example.com!1529366400!1529452799.xml",
    "fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
    "invalid_utf_8.xml",
    "mimecast-weird-gzip.eml",
    "old_draft_from_wiki.xml",
    "protection.outlook.com!example.com!1711756800!1711843200.xml",
    "rfc9990-example.net!example.com!1700000000!1700086399.xml",
    "rfc9990-sample.xml",
    "twilight.eml",
    "usssa.com!example.com!1538784000!1538870399.xml",
    "veeam.com!example.com!1530133200!1530219600.xml",
]


@pytest.mark.parametrize("name", PARSEDMARC_OK)
def test_parsedmarc_samples(name):
    path = need_sample(SAMPLES / "parsedmarc" / "aggregate" / name)
    fb = parse_file(path.read_bytes(), warn=lambda m: None)
    assert fb.policy.domain and fb.records and fb.metadata.report_id


@pytest.mark.parametrize("name", ["invalid_xml.xml", "ikea.com!example.de!1538690400!1538776800.xml"])
def test_parsedmarc_invalid_samples(name):
    path = need_sample(SAMPLES / "parsedmarc" / "aggregate" / name)
    with pytest.raises(ReportError):
        parse_file(path.read_bytes())


def test_rfc9990_sample_schema():
    path = need_sample(SAMPLES / "parsedmarc" / "aggregate" / "rfc9990-sample.xml")
    fb = parse_file(path.read_bytes())
    assert (
        fb.schema == "rfc9990"
        and fb.metadata.generator.startswith("Example")
        and fb.policy.discovery_method == "treewalk"
    )


def test_rfc_like_example():
    fb = parse_report_xml(V["incoming_report_samples"]["rfc_like_example_xml"]["xml"].encode())
    assert fb.metadata.extra_contact_info == "https://support.google.com/a/answer/2466580"
    assert fb.records[0].dkim_auth == [DKIMAuth("example.org", "pass", "example")]


def test_negative_messages():
    with pytest.raises(NoReport):
        parse_message(V["incoming_report_samples"]["negative"][0]["message"].encode())
    alt = (
        b"From: <a@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n"
    )
    with pytest.raises(NoReport):
        parse_message(alt)


def _msg(ctype: str, body: bytes) -> bytes:
    import base64

    return (
        (
            f"From: <a@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\nreport\r\n--b\r\nContent-Type: "
            f"{ctype}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.encodebytes(body)
        + b"\r\n--b--\r\n"
    )


def test_octet_stream_is_sniffed_and_zip_must_hold_one_file():
    xml = build_xml(_feedback())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("r.xml", xml)
    assert parse_message(_msg("application/octet-stream", buf.getvalue())).metadata.report_id == "20240101.00.abc"
    assert parse_message(_msg("application/octet-stream", gzip.compress(xml))).records[0].count == 3
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.xml", xml)
        z.writestr("b.xml", xml)
    with pytest.raises(ReportError, match="exactly one"):
        parse_message(_msg("application/zip", two.getvalue()))


# Hostile input.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>"""

PARAM = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><feedback/>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL, PARAM, b'<!DOCTYPE feedback SYSTEM "x.dtd"><feedback/>'])
def test_no_dtd_no_entities(doc):
    with pytest.raises(ReportError):
        parse_report_xml(doc)


def test_undefined_entity_and_deep_nesting():
    with pytest.raises(ReportError):
        parse_xml(b"<feedback>&nope;</feedback>")
    with pytest.raises(ReportError, match="nested deeper"):
        parse_xml(b"<a>" * 100 + b"</a>" * 100)
    with pytest.raises(ReportError, match="root element"):
        parse_report_xml(b"<html/>")


def test_gzip_and_zip_bombs():
    bomb = gzip.compress(b"<feedback>" + b" " * (MAX_XML + 10) + b"</feedback>")
    assert len(bomb) < 100_000
    with pytest.raises(ReportError, match="gzip: expands more than 200 times"):
        parse_file(bomb)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("r.xml", b" " * (MAX_XML + 10))
    with pytest.raises(ReportError, match="larger than"):
        parse_file(buf.getvalue())
    with pytest.raises(ReportError, match="gzip"):
        parse_file(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ReportError, match="larger than"):
        parse_message(b"From: x\r\n\r\n" + b"a" * (15 << 20))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_only_raise_report_error(data):
    try:
        fb = parse_file(data)
    except ReportError:
        return
    assert isinstance(fb, Feedback)


def _feedbacks():
    from helpers import reportmail as rm

    out = [parse_report_xml(rm.dmarc_xml("google", 1)), parse_report_xml(rm.dmarc_xml("microsoft", 2))]
    rec = Record(
        "192.0.2.1",
        3,
        "none",
        "pass",
        "fail",
        "example.org",
        "e.example",
        "t.example",
        reasons=[Reason("forwarded", "c"), Reason("other")],
        dkim_auth=[DKIMAuth("example.org", "pass", "s1", "h")],
        spf_auth=[SPFAuth("example.org", "fail", "mfrom"), SPFAuth("x.example", "none")],
    )
    meta = Metadata("org", "a@b.example", "id", 1, 2, "info", ["e1", "e2"], "gen")
    out.append(Feedback(meta, Published("example.org", "reject", pct="50"), [rec, rec], "2.0", "ns"))
    return out


@pytest.mark.parametrize("fb", _feedbacks())
def test_feedback_to_json_is_asdict(fb):
    """to_json builds asdict's dict (plus schema) itself: same keys, order, values, and no
    list shared with the model."""
    from moxcli.values import asdict

    got = fb.to_json()
    assert json.dumps(got) == json.dumps({**asdict(fb), "schema": fb.schema})
    got["metadata"]["errors"].append("x")
    if got["records"]:
        got["records"][0]["reasons"].append("x")
    assert "x" not in fb.metadata.errors and all("x" not in r.reasons for r in fb.records)

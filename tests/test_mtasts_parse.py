"""MTA-STS record and policy parsing, formatting, MX matching and record lookup (docs/behaviour-notes.md §4.1–4.4)."""

import json

import pytest
from conftest import VECTORS
from helpers.dns import FakeResolver, vector_dns
from helpers.samples import SAMPLES, need_sample
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.dns import BogusDNSError, ExtendedError, TemporaryDNSError
from moxcli.domain import parse_domain
from moxcli.mtasts.errors import (
    DNSLookupError,
    MultipleRecords,
    NoPolicy,
    NoRecord,
    PolicyFetch,
    PolicySyntax,
    RecordSyntax,
    failure_reason,
)
from moxcli.mtasts.lookup import lookup_record
from moxcli.mtasts.policy import MX, Policy, PolicyParseError, lint, parse_mx, parse_policy
from moxcli.mtasts.record import Record, RecordParseError, parse_record

REC = json.loads((VECTORS / "mtasts_records.json").read_text())
POL = json.loads((VECTORS / "mtasts_policies.json").read_text())

EXTRA_RECORDS = [
    ("v=STSv1;id=a", True, True, "a"),
    ("v=STSv1 ; id=a", True, True, "a"),
    ("v=STSv1; id=a;", True, True, "a"),
    ("v=STSv1; id=a;;", False, True, None),
    ("v=STSv1;", False, True, None),
    ("v=STSv10; id=a", False, False, None),
    ("v=stsv1; id=a", False, False, None),
    ("v=TLSRPTv1; rua=mailto:a@b", False, False, None),
    ("v=STSv1; id=012345678901234567890123456789012", False, True, None),
    ("v=STSv1; -x=1; id=b", True, True, "b"),
    ("v=STSv1; id=a; _x=1", False, True, None),
    ("v=STSv1; id=a b", False, True, None),
    ("v=STSv1; id=\u00e9", False, True, None),
]


def _record_cases():
    for c in REC["parse"]:
        yield pytest.param(
            c["input"], c["ok"], c["is_mtasts"], c.get("expect", {}).get("id"), c.get("expect"), id=c["input"][:40]
        )
    for inp, ok, is_m, rid in EXTRA_RECORDS:
        yield pytest.param(inp, ok, is_m, rid, None, id="extra " + inp[:40])


@pytest.mark.parametrize("text,ok,is_mtasts,rid,expect", list(_record_cases()))
def test_parse_record(text, ok, is_mtasts, rid, expect):
    if not ok:
        with pytest.raises(RecordParseError) as exc:
            parse_record(text)
        assert exc.value.is_mtasts == is_mtasts
        return
    r = parse_record(text)
    assert r.id == rid and r.version == "STSv1"
    if expect:
        assert [list(e) for e in r.extensions] == expect["extensions"]


@pytest.mark.parametrize("case", REC["format"], ids=lambda c: c["expect"])
def test_format_record(case):
    rec = case["record"]
    r = Record(rec["version"], rec["id"], tuple(tuple(e) for e in rec["extensions"]))
    assert r.format() == case["expect"]
    assert parse_record(r.format()) == r


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_hostile_record(text):
    """Any text: a RecordParseError, or a record that survives its own formatting."""
    try:
        r = parse_record(text)
    except RecordParseError:
        return
    assert parse_record(r.format()) == r


def _policy_cases():
    for c in POL["parse"]:
        yield pytest.param(c["input"], c["ok"], c.get("expect"), id=repr(c["input"])[:50])


EXTRA_POLICIES = [
    (
        "version: STSv1\r\nmode: enforce\r\nmx: A.Example\r\nmax_age: 5\r\n",
        {"mode": "enforce", "mx": ["a.example"], "max_age": 5},
    ),
    (
        "version: STSv1\nmode: none\nmax_age: 5\nnote: hello world  \n",
        {"mode": "none", "mx": [], "max_age": 5, "extensions": [["note", "hello world"]]},
    ),
    (
        "version: STSv1\nmode: none\nmax_age: 5\nnote: caf\u00e9\n",
        {"mode": "none", "extensions": [["note", "caf\u00e9"]]},
    ),
    (
        "version: STSv1\nmode: enforce\nmx: *.example.com\nmx: xn--74h.example\nmax_age: 5",
        {"mx": ["*.example.com", "\u263a.example"]},
    ),
    ("version: STSv1\nmode: enforce\nmx: \u263a.example\nmax_age: 5", None),
    ("version: STSv1\nmode: enforce\nmx: -a.example\nmax_age: 5", None),
    ("version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 5", None),
    ("version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 5", None),
    ("version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 5", None),
    ("version: STSv1\nmode: none\nmax_age: 2147483648", None),
    ("version: STSv1\nmode: none\nmax_age: -1", None),
    ("version: STSv1\nmode: none\nmax_age: \u0661", None),
    ("version: STSv1\nmode: none\nmax_age: 5\n\n", None),
    ("\nversion: STSv1\nmode: none\nmax_age: 5", None),
    ("version: STSv1\nmode: none\nmax_age: 5\nnote:", None),
    ("version: STSv1\nmode: none\nmax_age: 5\nnote: a\tb", None),
    ("version STSv1\nmode: none\nmax_age: 5", None),
    ("version: STSv1 \nmode: enforce x\nmx: a.example\nmax_age: 5", None),
]


@pytest.mark.parametrize(
    "text,ok,expect",
    list(_policy_cases()) + [pytest.param(t, e is not None, e, id="extra " + repr(t)[:40]) for t, e in EXTRA_POLICIES],
)
def test_parse_policy(text, ok, expect):
    if not ok:
        with pytest.raises(PolicyParseError):
            parse_policy(text)
        return
    p = parse_policy(text)
    got = p.to_json()
    got["extensions"] = [[e["key"], e["value"]] for e in got["extensions"]]
    for k, v in expect.items():
        assert got[k] == v, k


@given(st.text(max_size=120))
@settings(max_examples=300, deadline=None)
def test_hostile_policy(text):
    try:
        p = parse_policy(text)
    except PolicyParseError:
        return
    assert p.mode in ("enforce", "testing", "none")


@given(
    st.sampled_from(["enforce", "testing", "none"]),
    st.integers(0, 2**31 - 1),
    st.lists(st.from_regex(r"\A(\*\.)?[a-z][a-z0-9]{0,9}(\.[a-z][a-z0-9]{0,9}){1,3}\Z"), max_size=4),
)
@settings(max_examples=150, deadline=None)
def test_format_parse_roundtrip(mode, max_age, mxs):
    if mode != "none" and not mxs:
        mxs = ["mx.example"]
    p = Policy("STSv1", mode, max_age, tuple(parse_mx(m) for m in mxs))
    assert parse_policy(p.format()) == p


def test_format_policy():
    f = POL["format"]
    pol = f["policy"]
    p = Policy(pol["version"], pol["mode"], pol["max_age"], tuple(parse_mx(m) for m in pol["mx"]), (("ext", "x"),))
    assert p.format() == f["expect"]


MATCH = [
    ("mx.example.com", "mx.example.com", True),
    ("mx.example.com", "MX.Example.COM", True),
    ("mx.example.com", "mx2.example.com", False),
    ("*.example.com", "mail.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", False),
    ("*.example.com", "mail.example.org", False),
    ("*.xn--74h.example", "mx.\u263a.example", True),
    ("xn--74h.example", "\u263a.example", True),
    ("mx.example.com", "not a domain", False),
]


@pytest.mark.parametrize("pattern,host,ok", MATCH)
def test_matches_mx(pattern, host, ok):
    p = Policy("STSv1", "enforce", 86400, (parse_mx(pattern),))
    assert p.matches_mx(host) is ok
    assert p.matches_mx(parse_domain(host.lower())) is ok if " " not in host else True


def test_mx_is_lowercased_and_str_is_unicode():
    m = parse_mx("*.XN--74H.example")
    assert m.ascii == "*.xn--74h.example" and str(m) == "*.\u263a.example"
    assert m == MX(parse_domain("xn--74h.example"), True)


LINT = [
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1209600\n", "text/plain; charset=utf-8", []),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n", "text/plain", ["one day or less"]),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 40000000\n", "text/plain", ["above the RFC 8461"]),
    ("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1209600\n", "text/plain", ["mode testing"]),
    ("version: STSv1\nmode: none\nmax_age: 1209600\n", "text/plain", ["mode none"]),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1209600\n", "text/html", ["not text/plain"]),
]


@pytest.mark.parametrize("text,ctype,needles", LINT)
def test_lint(text, ctype, needles):
    w = lint(parse_policy(text), ctype)
    assert len(w) == len(needles) and all(n in x for n, x in zip(needles, w, strict=True)), w


@pytest.mark.parametrize("case", REC["lookup"]["cases"], ids=lambda c: c["domain"])
def test_lookup(case):
    lk = REC["lookup"]
    r = vector_dns(lk)
    errors = {
        "ErrNoRecord": NoRecord,
        "ErrMultipleRecords": MultipleRecords,
        "ErrRecordSyntax": RecordSyntax,
        "ErrDNS": DNSLookupError,
    }
    if case.get("ok"):
        record, text, cnames = lookup_record(r, parse_domain(case["domain"]))
        assert record.id == case["id"] and parse_record(text) == record
        if "cnames" in case["domain"]:
            assert cnames == ["_mta-sts.b.cnames.example", "_mta-sts.c.cnames.example"]
        return
    with pytest.raises(errors[case["error"]]) as exc:
        lookup_record(r, parse_domain(case["domain"]))
    assert exc.value.exit_code == (3 if case["error"] == "ErrDNS" else 1)


def test_failure_reasons():
    codes = {c["error"]: c["reason"] for c in REC["tlsrpt_failure_reason_codes"]}
    dns_err = TemporaryDNSError("x", "TXT", "fail")
    assert failure_reason(NoRecord("x")) == codes["ErrNoRecord"]
    assert failure_reason(MultipleRecords("x")) == codes["ErrMultipleRecords"]
    assert failure_reason(RecordSyntax("x")) == codes["ErrRecordSyntax"]
    assert failure_reason(DNSLookupError("x", dns_err)) == codes["ErrDNS"]
    assert failure_reason(NoPolicy("x")) == codes["ErrNoPolicy"]
    assert failure_reason(PolicyFetch("x")) == codes["ErrPolicyFetch"]
    assert failure_reason(PolicySyntax("x")) == codes["ErrPolicySyntax"]
    bogus = BogusDNSError("x", "TXT", "bogus", [ExtendedError(6)])
    assert failure_reason(DNSLookupError("x", bogus)) == "dns-extended-error-6-dnssec-bogus"
    assert DNSLookupError("x", bogus).exit_code == 1
    assert failure_reason(ValueError("x")) == ""


def test_bogus_record_lookup():
    r = FakeResolver(bogus=["_mta-sts.b.example"])
    with pytest.raises(DNSLookupError) as exc:
        lookup_record(r, parse_domain("b.example"))
    assert failure_reason(exc.value) == "dns-extended-error-6-dnssec-bogus"


def test_policies_from_real_reports_parse():
    """Policy strings that real senders put in TLS reports are policies we accept."""
    found = 0
    for f in sorted(need_sample(SAMPLES / "parsedmarc" / "smtp_tls").glob("*.json")):
        for p in json.loads(f.read_text()).get("policies", []):
            pol = p["policy"]
            if pol.get("policy-type") != "sts" or not pol.get("policy-string"):
                continue
            parsed = parse_policy("\r\n".join(pol["policy-string"]) + "\r\n")
            assert parsed.mode in ("testing", "enforce"), f
            mx = pol.get("mx-host")
            for pattern in [mx] if isinstance(mx, str) else mx or []:
                assert pattern in [str(m) for m in parsed.mx], f
            found += 1
    assert found >= 2

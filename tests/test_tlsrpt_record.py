"""TLSRPT record parsing, formatting, linting and lookup (docs/behaviour-notes.md §1.1, §1.2)."""

import json

import pytest
from conftest import VECTORS
from helpers.dns import FakeResolver, vector_dns
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.dns import NotFound, TemporaryDNSError
from moxcli.errors import CheckFailed
from moxcli.tlsrpt.lookup import MultipleRecords, RecordSyntax, check_record_text, lookup_tlsrpt
from moxcli.tlsrpt.record import VERSION, NotTLSRPT, ParseError, Record, encode_uri, lint, parse_record

V = json.loads((VECTORS / "tlsrpt_records.json").read_text())

EXTRA_PARSE = [
    # (input, ok, is_tlsrpt, ruas, extensions)
    ("v=TLSRPTv1;rua=mailto:a@b.example", True, True, [["mailto:a@b.example"]], []),
    ("v=TLSRPTv1;\trua=mailto:a@b.example\t;\t", True, True, [["mailto:a@b.example"]], []),
    ("v=TLSRPTv1; rua=mailto:a@b.example;;", False, True, None, None),
    ("v=TLSRPTv1;", False, True, None, None),
    ("v=TLSRPTv10; rua=mailto:a@b.example", False, False, None, None),
    ("v=tlsrptv1; rua=mailto:a@b.example", False, False, None, None),
    (" v=TLSRPTv1; rua=mailto:a@b.example", False, False, None, None),
    ("", False, False, None, None),
    ("v=TLSRPTv1; rua=tlsrpt@b.example", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a@b.example; _x=1", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a@b.example; x_=1", True, True, [["mailto:a@b.example"]], [["x_", "1"]]),
    ("v=TLSRPTv1; rua=mailto:a@b.example; a12345678901234567890123456789012=1", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a%2Cb@b.example", True, True, [["mailto:a%2Cb@b.example"]], []),
    ("v=TLSRPTv1; rua=mailto:a@b.example%", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a@b.example%4", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a\x01@b.example", False, True, None, None),
    ("v=TLSRPTv1; rua=1mailto:a@b.example", False, True, None, None),
    ("v=TLSRPTv1; rua=mailto:a@b.example,", False, True, None, None),
    ("v=TLSRPTv1; rua=a:1 ,b:2,  c:3", True, True, [["a:1", "b:2", "c:3"]], []),
    (
        "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example, https://e.example/",
        True,
        True,
        [["mailto:a@b.example"], ["mailto:c@d.example", "https://e.example/"]],
        [],
    ),
    ("v=TLSRPTv1; rua=mailto:a@b.example; x=1; x=2", True, True, [["mailto:a@b.example"]], [["x", "1"], ["x", "2"]]),
    ("v=TLSRPTv1; rua=mailto:a@b.example; x=\u00e9", False, True, None, None),
    ("v=TLSRPTv1; rua=https://[::1/x", False, True, None, None),
    ("v=TLSRPTv1; rua=https://[::1]:443/x", True, True, [["https://[::1]:443/x"]], []),
    ("v=TLSRPTv1; rua=https://r.example:web/x", False, True, None, None),
    ("v=TLSRPTv1; rua=https://u@r.example:8443/x?a=b#c", True, True, [["https://u@r.example:8443/x?a=b#c"]], []),
]


def _cases():
    for c in V["parse"]:
        yield pytest.param(c["input"], c["ok"], c["is_tlsrpt"], c.get("expect"), id=c["input"][:50])
    for c in V["rfc_examples"]:
        yield pytest.param(c["input"], c["ok"], True, c.get("expect"), id="rfc " + c["input"][:40])
    for inp, ok, is_tlsrpt, ruas, exts in EXTRA_PARSE:
        expect = {"ruas": ruas, "extensions": exts} if ok else None
        yield pytest.param(inp, ok, is_tlsrpt, expect, id="extra " + inp[:45])


@pytest.mark.parametrize("text,ok,is_tlsrpt,expect", list(_cases()))
def test_parse(text, ok, is_tlsrpt, expect):
    if not ok:
        with pytest.raises(ParseError) as exc:
            parse_record(text)
        assert exc.value.is_tlsrpt == is_tlsrpt
        assert isinstance(exc.value, NotTLSRPT) == (not is_tlsrpt)
        return
    r = parse_record(text)
    assert r.version == VERSION
    assert [list(x) for x in r.ruas] == expect["ruas"]
    assert r.rua == [u for lst in expect["ruas"] for u in lst]
    if "extensions" in expect:
        assert [list(x) for x in r.extensions] == expect["extensions"]


@pytest.mark.parametrize("case", V["format"], ids=lambda c: c["expect"][:50])
def test_format(case):
    rec = case["record"]
    r = Record(rec["version"], tuple(tuple(x) for x in rec["ruas"]), tuple(tuple(x) for x in rec["extensions"]))
    assert r.format() == case["expect"]
    # What we publish parses back to the same record.
    assert parse_record(r.format()).rua == [encode_uri(u) for u in r.rua]


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_hostile_text_never_crashes(text):
    try:
        r = parse_record(text)
    except ParseError as exc:
        assert exc.is_tlsrpt == text.startswith("v=TLSRPTv1")
        return
    assert r.rua and text.startswith("v=TLSRPTv1")


_uri = st.from_regex(r"\A(mailto:[a-z0-9.]{1,8}@[a-z0-9.]{1,8}|https://[a-z0-9.]{1,8}/[a-z0-9]{0,6}(%2C)?)\Z")


@given(
    st.lists(st.lists(_uri, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(
        st.tuples(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,31}\Z"), st.from_regex(r"\A[!-:<>-~]{1,10}\Z")), max_size=3
    ),
)
@settings(max_examples=100, deadline=None)
def test_format_parse_roundtrip(ruas, exts):
    exts = [(k, v) for k, v in exts if k != "rua"]
    r = Record(VERSION, tuple(tuple(x) for x in ruas), tuple(exts))
    assert parse_record(r.format()) == r


LINT = [
    ("v=TLSRPTv1; rua=mailto:a@b.example", [], []),
    ("v=TLSRPTv1; rua=https://r.example/x", [], ["only send reports by mailto"]),
    ("v=TLSRPTv1 ; rua=mailto:a@b.example", [], ["does not start with exactly"]),
    ("v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@b.example", [], ["several rua"]),
    ("v=TLSRPTv1; rua=mailto:a@b.example; -x=1", [], ["does not start with a letter"]),
    ("v=TLSRPTv1; rua=mailto:a@b.example; ext=1", [], ["unknown field 'ext'"]),
    ("v=TLSRPTv1; rua=http://r.example/x", ["requires https", "no usable"], []),
    ("v=TLSRPTv1; rua=ftp://r.example/x", ["scheme ftp", "no usable"], []),
    ("v=TLSRPTv1; rua=mailto:nobody", ["not an e-mail address", "no usable"], []),
    ("v=TLSRPTv1; rua=mailto:nobody,mailto:a@b.example", ["not an e-mail address"], []),
]


@pytest.mark.parametrize("text,errors,warnings", LINT, ids=[x[0][:50] for x in LINT])
def test_lint(text, errors, warnings):
    e, w = lint(text, parse_record(text))
    assert len(e) == len(errors) and all(x in y for x, y in zip(errors, e, strict=True)), e
    assert len(w) == len(warnings) and all(x in y for x, y in zip(warnings, w, strict=True)), w


def test_address_without_mailto_is_explained():
    c = check_record_text(None, "v=TLSRPTv1; rua=tlsrpt@example.org")
    assert not c.valid and "mailto:" in c.errors[0]


@pytest.fixture
def fake():
    return vector_dns(V["lookup"])


@pytest.mark.parametrize("case", V["lookup"]["cases"], ids=lambda c: c["domain"])
def test_lookup(fake, case):
    errors = {
        "ErrNoRecord": NotFound,
        "ErrMultipleRecords": MultipleRecords,
        "ErrRecordSyntax": RecordSyntax,
        "ErrDNS": TemporaryDNSError,
    }
    if case["ok"]:
        record, text = lookup_tlsrpt(fake, case["domain"])
        assert [list(x) for x in record.ruas] == case["expect"]["ruas"]
        assert parse_record(text) == record
        return
    with pytest.raises(errors[case["error"]]) as exc:
        lookup_tlsrpt(fake, case["domain"])
    if case["error"] in ("ErrMultipleRecords", "ErrRecordSyntax"):
        assert isinstance(exc.value, CheckFailed)
        assert not isinstance(exc.value, NotFound)


def test_lookup_syntax_error_wins_over_later_valid_record():
    r = FakeResolver({"_smtp._tls.x.example.": ["v=TLSRPTv1; bad", "v=TLSRPTv1; rua=mailto:a@x.example"]})
    with pytest.raises(RecordSyntax):
        lookup_tlsrpt(r, "x.example")


def test_lookup_idna_domain_uses_a_labels():
    r = FakeResolver({"_smtp._tls.xn--74h.example.": ["v=TLSRPTv1; rua=mailto:a@x.example"]})
    record, _ = lookup_tlsrpt(r, "\u263a.example")
    assert record.rua == ["mailto:a@x.example"]


def test_check_shows_cname_chain_and_other_records():
    from moxcli.tlsrpt.lookup import check_tlsrpt

    r = FakeResolver(
        {"_smtp._tls.reports.example": ["spf1 junk", "v=TLSRPTv1; rua=mailto:a@reports.example"]},
        cnames={"_smtp._tls.x.example": "_smtp._tls.reports.example"},
        authentic=True,
    )
    c = check_tlsrpt(r, "x.example")
    j = c.to_json()
    assert c.valid and j["cnames"] == ["_smtp._tls.reports.example"] and j["dnssec"] == "secure"
    assert [x["tlsrpt"] for x in j["records"]] == [False, True]
    assert j["record"] == "v=TLSRPTv1; rua=mailto:a@reports.example"

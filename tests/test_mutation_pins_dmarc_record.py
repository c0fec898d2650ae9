"""DMARC TXT records and report URIs (RFC 7489 §6.3, §6.4): every tag, limit and error pinned.

Written from the survivors of scripts/mutation.sh on moxcli/dmarc/record.py.
"""

from __future__ import annotations

import pytest

from moxcli.dmarc.interval import DEFAULT_RI
from moxcli.dmarc.record import (
    DMARCRecord,
    NotDMARCRecord,
    RecordError,
    ReportURI,
    parse_mailto,
    parse_record,
    parse_report_uri,
)

RECORDS = [
    # (text, fields of DMARCRecord other than tags)
    ("v=DMARC1", {}),
    ("V=DMARC1; p=none", {"p": "none"}),
    ("v\t=\tDMARC1;\tp=none", {"p": "none"}),
    (
        " v = DMARC1 ;P=Quarantine; SP=none; adkim=S; aspf=r; pct=0; ri=3600;"
        " rua=mailto:a@b, ,mailto:c@d ; ruf=mailto:e@f",
        {
            "p": "quarantine",
            "sp": "none",
            "adkim": "s",
            "aspf": "r",
            "pct": 0,
            "ri": 3600,
            "rua": ("mailto:a@b", "mailto:c@d"),
            "ruf": ("mailto:e@f",),
        },
    ),
    (
        "v=DMARC1; p=reject; sp=quarantine; adkim=r; aspf=s",
        {"p": "reject", "sp": "quarantine", "adkim": "r", "aspf": "s"},
    ),
    ("v=DMARC1; p=bogus; sp=x; adkim=q; aspf=; pct=101; ri=2147483649", {}),
    ("v=DMARC1; pct=100; ri=2147483648", {"pct": 100, "ri": 2147483648}),
    ("v=DMARC1; pct=99; ri=0", {"pct": 99, "ri": 0}),
    ("v=DMARC1; pct=-1; ri=1h", {}),
    ("v=DMARC1;;; x_1=2", {}),
    ("v=DMARC1; rua=", {"rua": ()}),
]


# What a tag that is absent or invalid leaves (RFC 7489 6.3: pct 100, ri 86400; p/sp/adkim/aspf
# empty: "not given", the caller applies the RFC's defaults).
DEFAULTS = {"p": "", "sp": "", "adkim": "", "aspf": "", "pct": 100, "ri": 86400, "rua": (), "ruf": ()}


@pytest.mark.parametrize("text,fields", RECORDS, ids=[c[0][:50] for c in RECORDS])
def test_parse_record(text, fields):
    r = parse_record(text)
    for name, default in DEFAULTS.items():
        assert getattr(r, name) == fields.get(name, default), name


def test_defaults_and_raw_tags():
    d = DMARCRecord()
    assert (d.p, d.sp, d.adkim, d.aspf, d.pct, d.ri, d.rua, d.ruf) == ("", "", "", "", 100, DEFAULT_RI, (), ())
    r = parse_record("v=DMARC1; P=Reject; x_1= 2 ")
    assert r.tags == {"v": "DMARC1", "p": "Reject", "x_1": "2"}


ERRORS = [
    ("v=dmarc1", NotDMARCRecord, "not a DMARC record: 'v=dmarc1'"),
    ("v=DMARC1x", NotDMARCRecord, "not a DMARC record: 'v=DMARC1x'"),
    ("v=DMARC2", NotDMARCRecord, "not a DMARC record: 'v=DMARC2'"),
    ("x", NotDMARCRecord, "not a DMARC record: 'x'"),
    ("", NotDMARCRecord, "not a DMARC record: ''"),
    ("p=none; v=DMARC1", NotDMARCRecord, "not a DMARC record: 'p=none; v=DMARC1'"),
    ("v=DMARC1; p", RecordError, "DMARC record: invalid tag 'p'"),
    ("v=DMARC1; p=none; p=reject", RecordError, "DMARC record: duplicate tag 'p'"),
    ("v=DMARC1; p=none; P=reject", RecordError, "DMARC record: duplicate tag 'p'"),
    ("v=DMARC1; v=DMARC1", RecordError, "DMARC record: duplicate tag 'v'"),
    ("v=DMARC1; a-b=1", RecordError, "DMARC record: invalid tag 'a-b=1'"),
    ("v=DMARC1; =1", RecordError, "DMARC record: invalid tag '=1'"),
]


@pytest.mark.parametrize("text,kind,message", ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_parse_record_errors(text, kind, message):
    with pytest.raises(RecordError) as exc:
        parse_record(text)
    assert type(exc.value) is kind
    assert str(exc.value) == message


def test_long_record_is_cut_in_the_error():
    text = "v=DMARC2; " + "x" * 100
    with pytest.raises(NotDMARCRecord) as exc:
        parse_record(text)
    assert str(exc.value) == f"not a DMARC record: {text[:60]!r}"


URIS = [
    ("mailto:a@b.example", "mailto:a@b.example", 0, "mailto"),
    ("mailto:a@b.example!10", "mailto:a@b.example", 10, "mailto"),
    ("mailto:a@b.example!10k", "mailto:a@b.example", 10 << 10, "mailto"),
    ("mailto:a@b.example!1M", "mailto:a@b.example", 1 << 20, "mailto"),
    (" mailto:a@b!2g ", "mailto:a@b", 2 << 30, "mailto"),
    ("mailto:a@b!1t", "mailto:a@b", 1 << 40, "mailto"),
    ("mailto:a@b ! 3 ", "mailto:a@b", 3, "mailto"),
    ("mailto:a%41@b", "mailto:a%41@b", 0, "mailto"),
    ("HTTPS://x!5", "HTTPS://x", 5, "https"),
    ("x+y-z.w:1", "x+y-z.w:1", 0, "x+y-z.w"),
]


@pytest.mark.parametrize("text,uri,size,scheme", URIS, ids=[u[0] for u in URIS])
def test_parse_report_uri(text, uri, size, scheme):
    r = parse_report_uri(text)
    assert r == ReportURI(uri, size)
    assert r.scheme == scheme


URI_ERRORS = [
    ("mailto:a@b!", "report URI 'mailto:a@b!': invalid size limit ''"),
    ("mailto:a@b!x", "report URI 'mailto:a@b!x': invalid size limit 'x'"),
    ("mailto:a@b!10x", "report URI 'mailto:a@b!10x': invalid size limit '10x'"),
    ("mailto:a@b!1kk", "report URI 'mailto:a@b!1kk': invalid size limit '1kk'"),
    ("mailto:a@b!-1", "report URI 'mailto:a@b!-1': invalid size limit '-1'"),
    ("a@b", "report URI 'a@b' has no scheme"),
    ("1a:b", "report URI '1a:b' has no scheme"),
    (":x", "report URI ':x' has no scheme"),
    (" a b ", "report URI 'a b' has no scheme"),
    ("mailto:a%2", "report URI 'mailto:a%2' has an invalid %-escape"),
    ("mailto:a%zz@b", "report URI 'mailto:a%zz@b' has an invalid %-escape"),
]


@pytest.mark.parametrize("text,message", URI_ERRORS, ids=[u[0] for u in URI_ERRORS])
def test_parse_report_uri_errors(text, message):
    with pytest.raises(RecordError) as exc:
        parse_report_uri(text)
    assert str(exc.value) == message


MAILTO = [
    ("mailto:a@b.example", "a", "b.example"),
    ("MAILTO:a%40x@B.Example?subject=x", "a@x", "b.example"),
    ("mailto: a@b ", "a", "b"),
]


@pytest.mark.parametrize("uri,local,domain", MAILTO, ids=[m[0] for m in MAILTO])
def test_parse_mailto(uri, local, domain):
    got_local, got_domain = parse_mailto(uri)
    assert (got_local, got_domain.ascii) == (local, domain)
    assert ReportURI(uri).mailto() == (got_local, got_domain)


MAILTO_ERRORS = [
    ("mailto:@b", "'mailto:@b': invalid address '@b'"),
    ("mailto:a b@c", "'mailto:a b@c': invalid address 'a b@c'"),
    ("mailto:a\x01@b", "'mailto:a\\x01@b': invalid address 'a\\x01@b'"),
    ("mailto:ab", "'mailto:ab': invalid address 'ab'"),
    ("mailto:a@", "'mailto:a@': invalid domain '': empty domain"),
    ("mailto:a@bad..x", "'mailto:a@bad..x': invalid domain 'bad..x': empty label"),
    ("https://x", "'https://x' is not a mailto URI"),
]


@pytest.mark.parametrize("uri,message", MAILTO_ERRORS, ids=[m[0] for m in MAILTO_ERRORS])
def test_parse_mailto_errors(uri, message):
    with pytest.raises(RecordError) as exc:
        parse_mailto(uri)
    assert str(exc.value) == message


def test_records_are_immutable():
    with pytest.raises(AttributeError):
        parse_record("v=DMARC1; p=none").p = "reject"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        parse_report_uri("mailto:a@b").max_size = 1  # type: ignore[misc]

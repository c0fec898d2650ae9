"""Exact outcomes of the `key=value; ...` TXT record parsers (TLSRPT, MTA-STS, the shared scanner).

Written from the survivors of scripts/mutation.sh: each row pins one observable behaviour
(accepted fields, the error message and its position) that a deliberate bug changed without
any other test noticing.
"""

from __future__ import annotations

import pytest

from moxcli.mtasts.record import RecordParseError
from moxcli.mtasts.record import parse_record as parse_sts
from moxcli.tlsrpt.record import NotTLSRPT, ParseError
from moxcli.tlsrpt.record import parse_record as parse_tlsrpt
from moxcli.txtscan import TXTScanner

A = "mailto:a@b.example"
KEY32 = "a" + "1234567890" * 3 + "1"

TLSRPT_OK = [
    # (record, ruas, extensions, invalid_rua)
    (f"v=TLSRPTv1 ; rua={A}", [[A]], [], []),
    (f"v=TLSRPTv1; rua={A}; -x=1", [[A]], [["-x", "1"]], []),
    (f"v=TLSRPTv1; rua={A}; x=a~b", [[A]], [["x", "a~b"]], []),
    (f"v=TLSRPTv1; rua={A}; x=!", [[A]], [["x", "!"]], []),
    (f"v=TLSRPTv1;rua={A};x=1 ;y=2", [[A]], [["x", "1"], ["y", "2"]], []),
    (f"v=TLSRPTv1; rua={A}, bad, https://c/", [[A, "https://c/"]], [], [["bad", "no scheme"]]),
    (f"v=TLSRPTv1; rua={A}; {KEY32}=1", [[A]], [[KEY32, "1"]], []),
]

TLSRPT_ERRORS = [
    # (record, is_tlsrpt, message)
    (f"v=TLSRPTv1; rua={A}; x:1", True, "expected '=' after key 'x' at position 37"),
    (f"v=TLSRPTv1; rua {A}", True, "expected '=' after key 'rua' at position 15"),
    ("v=TLSRPTv1", False, "expected ';' after v=TLSRPTv1 at end"),
    ("x", False, "does not start with v=TLSRPTv1 at position 0"),
    (f"v=TLSRPTv1; rua={A};x=", True, "expected an extension value at end"),
    (f"v=TLSRPTv1; rua={A}; x= 1", True, "expected an extension value at position 38"),
    (f"v=TLSRPTv1; rua={A} x", True, "leftover characters at position 35"),
    (f"v=TLSRPTv1; rua={A}; x=1=2", True, "leftover characters at position 39"),
    ("v=TLSRPTv1; rua=bad", True, "invalid URI 'bad': no scheme at position 16"),
    ("v=TLSRPTv1; x=1", True, "missing rua"),
    (f"v=TLSRPTv1;; rua={A}", True, "expected a key at position 11"),
]


@pytest.mark.parametrize("text,ruas,extensions,invalid", TLSRPT_OK, ids=[c[0] for c in TLSRPT_OK])
def test_tlsrpt_accepts(text, ruas, extensions, invalid):
    r = parse_tlsrpt(text)
    assert [list(x) for x in r.ruas] == ruas
    assert [list(x) for x in r.extensions] == extensions
    assert [list(x) for x in r.invalid_rua] == invalid


@pytest.mark.parametrize("text,is_tlsrpt,message", TLSRPT_ERRORS, ids=[c[0] for c in TLSRPT_ERRORS])
def test_tlsrpt_rejects(text, is_tlsrpt, message):
    with pytest.raises(ParseError) as exc:
        parse_tlsrpt(text)
    assert str(exc.value) == message
    assert exc.value.is_tlsrpt is is_tlsrpt
    assert isinstance(exc.value, NotTLSRPT) is (not is_tlsrpt)


STS_OK = [
    # (record, id, extensions)
    ("v=STSv1 ; id=abc", "abc", []),
    ("v=STSv1; id=abc;", "abc", []),
    ("v=STSv1; id=" + "a" * 32, "a" * 32, []),
    ("v=STSv1; id=abc; -x=1", "abc", [["-x", "1"]]),
    ("v=STSv1;id=abc;x=~!", "abc", [["x", "~!"]]),
    ("v=STSv1; x_=1; id=a", "a", [["x_", "1"]]),
    (f"v=STSv1; id=a; {KEY32}=1", "a", [[KEY32, "1"]]),
]

STS_ERRORS = [
    # (record, is_mtasts, message)
    ("v=STSv1; id=abc; x:1", True, "expected '=' after key 'x' at position 18"),
    ("v=STSv1; id abc", True, "expected '=' after key 'id' at position 11"),
    ("v=STSv1", False, "not an MTA-STS record: does not start with 'v=STSv1;' at end"),
    ("v=STSv10; id=a", False, "not an MTA-STS record: does not start with 'v=STSv1;' at position 7"),
    ("V=STSv1; id=a", False, "not an MTA-STS record: does not start with 'v=STSv1;' at position 0"),
    ("v=STSv1; id=abc; x=", True, "expected an extension value at end"),
    ("v=STSv1; id=abc x", True, "leftover characters at position 15"),
    ("v=STSv1; id=ab-c", True, "leftover characters at position 14"),
    ("v=STSv1; id=abc; x=1=2", True, "leftover characters at position 20"),
    ("v=STSv1; x=1", True, "missing id"),
    ("v=STSv1; id=a; id=b", True, "repeated id field at position 18"),
    ("v=STSv1; id=" + "a" * 33, True, "id longer than 32 characters at position 44"),
    ("v=STSv1; id=", True, "expected an id of letters and digits at end"),
    ("v=STSv1; id=abc;  ;", True, "expected a key at position 18"),
    ("v=STSv1; _x=1; id=a", True, "expected a key at position 9"),
    (f"v=STSv1; id=a; {KEY32}1=1", True, f"expected '=' after key '{KEY32}' at position 47"),
]


@pytest.mark.parametrize("text,rid,extensions", STS_OK, ids=[c[0] for c in STS_OK])
def test_mtasts_record_accepts(text, rid, extensions):
    r = parse_sts(text)
    assert r.id == rid
    assert [list(x) for x in r.extensions] == extensions


@pytest.mark.parametrize("text,is_mtasts,message", STS_ERRORS, ids=[c[0] for c in STS_ERRORS])
def test_mtasts_record_rejects(text, is_mtasts, message):
    with pytest.raises(RecordParseError) as exc:
        parse_sts(text)
    assert str(exc.value) == message
    assert exc.value.is_mtasts is is_mtasts


def test_scanner_primitives():
    s = TXTScanner("ab ;\tc")
    assert s.take("x") is False and s.o == 0
    assert s.take("ab") is True and s.o == 2
    assert s.delim() is True and s.o == 5
    assert s.delim() is False and s.o == 5
    assert s.empty() is False and s.position() == " at position 5"
    assert s.ext_value() == "c" and s.empty() is True and s.position() == " at end"


def test_scanner_has_no_error_type_of_its_own():
    with pytest.raises(NotImplementedError):
        TXTScanner("").error("x")

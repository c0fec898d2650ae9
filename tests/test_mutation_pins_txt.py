"""Exact outcomes of the `key=value; ...` TXT record parsers (TLSRPT, MTA-STS, the shared scanner).

Written from the survivors of scripts/mutation.sh: each row pins one observable behaviour
(accepted fields, the error message and its position) that a deliberate bug changed without
any other test noticing.
"""

from __future__ import annotations

import pytest

from moxcli.mtasts.record import RecordParseError
from moxcli.mtasts.record import parse_record as parse_sts
from moxcli.tlsrpt.record import NotTLSRPT, ParseError, lint, uri_problem, uri_scheme
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
    ("v=STSv1; id=a; x=\x21\x3a\x3c\x3e\x7e", "a", [["x", "!:<>~"]]),
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
    ("v=STSv1; id=a_b", True, "leftover characters at position 13"),
    ("v=STSv1; id=a; x=a\x7f", True, "leftover characters at position 18"),
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


URI_PROBLEMS = [
    # (uri, problem or None): RFC 3986 as Go's url.Parse checks it, plus the scheme mox needs
    ("mailto:a@b", None),
    ("%41:x", "no scheme"),
    ("%zz", "invalid percent-escape"),
    ("a:%4", "invalid percent-escape"),
    ("a:%4g", "invalid percent-escape"),
    ("a:%g4", "invalid percent-escape"),
    ("a:%41%", "invalid percent-escape"),
    ("a:b%", "invalid percent-escape"),
    ("a:%41%42", None),
    ("a:\x00", "control character"),
    ("a:\x1f", "control character"),
    ("a: ", None),
    ("a:~", None),
    ("a:\x7f", "control character"),
    ("a:\x80", None),
    ("https://[::1", "missing ']' in host"),
    ("https://[::1]x", "invalid host"),
    ("https://[::1]", None),
    ("https://[::1]:8", None),
    ("https://h:x", "invalid port 'x'"),
    ("https://h:", None),
    ("https://h:1", None),
    ("https://u:p@h/x:y", None),
    ("https://h/a:b", None),
    ("https://h?x:y", None),
    ("https://h#x:y", None),
    ("https:/h:x", None),
    ("//h:x", "no scheme"),
    ("a@b", "no scheme (an e-mail address needs mailto: in front)"),
    ("a@b:c", "no scheme"),
    ("1a:b", "no scheme"),
    ("x+y-z.w:1", None),
    ("HTTPS:x", None),
]


@pytest.mark.parametrize("uri,problem", URI_PROBLEMS, ids=[repr(c[0]) for c in URI_PROBLEMS])
def test_uri_problem(uri, problem):
    assert uri_problem(uri) == problem


def test_uri_scheme_is_lower_case():
    assert (uri_scheme("HTTPS://x:y"), uri_scheme("mailto:a:b")) == ("https", "mailto")


LINT = [
    # (record, errors, warnings)
    (f"v=TLSRPTv1; rua={A}", [], []),
    (
        f"v=TLSRPTv1 ; rua={A}; -x=1; y=2",
        [],
        [
            "record does not start with exactly 'v=TLSRPTv1;': RFC 8460 §3 has receivers discard such records "
            "when the name has other TXT records (mox accepts it)",
            "key '-x' does not start with a letter or digit (RFC 8460 §3); strict parsers reject the record",
            "unknown field 'y' is ignored by senders",
        ],
    ),
    (
        "v=TLSRPTv1; rua=mailto:@b, mailto:a@, mailto:a, mailto:a@b?subject=x, bad; "
        "rua=https://h/, http://h/, ftp://h/",
        [
            "rua 'bad': invalid URI: no scheme; senders skip it and use the other addresses",
            "rua 'mailto:@b': not an e-mail address",
            "rua 'mailto:a@': not an e-mail address",
            "rua 'mailto:a': not an e-mail address",
            "rua 'http://h/': RFC 8460 §3 requires https:, senders do not post reports over plain http",
            "rua 'ftp://h/': scheme ftp: is not mailto: or https: (RFC 8460 §3), senders ignore it",
        ],
        [
            "several rua= fields: some senders use only the first; list all addresses in one rua= separated by commas",
            "rua 'https://h/': many senders (mox among them) only send reports by mailto:, not https:",
        ],
    ),
    ("v=TLSRPTv1; rua=mailto:a@b?x=@", [], []),
    ("v=TLSRPTv1; rua=mailto:a@b?x=@b", [], []),
    (
        "v=TLSRPTv1; rua=mailto:a",
        [
            "rua 'mailto:a': not an e-mail address",
            "no usable reporting address (mailto: or https:): nobody can send you reports",
        ],
        [],
    ),
]


@pytest.mark.parametrize("text,errors,warnings", LINT, ids=[c[0][:50] for c in LINT])
def test_lint_exact(text, errors, warnings):
    assert lint(text, parse_tlsrpt(text)) == (errors, warnings)


def test_first_invalid_uri_is_named_when_none_is_usable():
    with pytest.raises(ParseError) as exc:
        parse_tlsrpt("v=TLSRPTv1; rua=bad1, bad2")
    assert str(exc.value) == "invalid URI 'bad1': no scheme at position 16"
    with pytest.raises(ParseError) as exc:
        parse_tlsrpt("v=TLSRPTv1; rua=")
    assert str(exc.value) == "expected a URI at end"


def test_tlsrpt_record_json_and_identity():
    r = parse_tlsrpt(f"v=TLSRPTv1; rua={A}, bad; rua=https://h/; x=1")
    assert r.to_json() == {
        "version": "TLSRPTv1",
        "ruas": [[A], ["https://h/"]],
        "extensions": [{"key": "x", "value": "1"}],
        "invalid_rua": [{"uri": "bad", "problem": "no scheme"}],
    }
    # invalid URIs are reported but are not part of what the record means
    assert r == parse_tlsrpt(f"v=TLSRPTv1; rua={A}; rua=https://h/; x=1")
    with pytest.raises(AttributeError):  # a plain immutable class since issue 13 (start-up), no longer a dataclass
        r.version = "x"  # type: ignore[misc]


def test_mtasts_record_json_and_identity():
    r = parse_sts("v=STSv1; id=abc; x=1")
    assert r.to_json() == {"version": "STSv1", "id": "abc", "extensions": [{"key": "x", "value": "1"}]}
    assert r.format() == "v=STSv1; id=abc; x=1"
    with pytest.raises(AttributeError):
        r.id = "x"  # type: ignore[misc]

"""MTA-STS policy files (RFC 8461 §3.2) and MX matching (§4.1): outcomes and messages pinned.

Written from the survivors of scripts/mutation.sh on moxcli/mtasts/policy.py. The rows follow
mox's parser (docs/behaviour-notes.md §4.2): first mode/max_age wins, one line end after the
last field, max_age up to 2^31-1, a TAB ends an extension value.
"""

from __future__ import annotations

import pytest

from moxcli.domain import parse_domain
from moxcli.mtasts.policy import MX, Policy, PolicyParseError, lint, parse_mx, parse_policy

ACCEPTED = [
    # (policy text, mode, max_age, mx, extensions)
    (
        "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mail.example.com\n",
        "enforce",
        86400,
        ["mail.example.com"],
        [],
    ),
    (
        "version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\nmx: mail.example.com\r\n",
        "enforce",
        86400,
        ["mail.example.com"],
        [],
    ),
    ("version: STSv1\nmode: none\nmax_age: 1", "none", 1, [], []),
    (
        "version:STSv1\nmode:\ttesting \nmax_age:  0\nmx: *.example.com\nmx: A-b.example\n",
        "testing",
        0,
        ["*.example.com", "a-b.example"],
        [],
    ),
    (
        "version: STSv1\nmode: enforce\nmode: none\nmax_age: 5\nmax_age: 6\nmx: a.b\nversion: STSv1\n",
        "enforce",
        5,
        ["a.b"],
        [],
    ),
    ("version: STSv1\nmode: none\nmax_age: 2147483647", "none", 2147483647, [], []),
    ("version: STSv1\nmode: none\nmax_age: 0123456789", "none", 123456789, [], []),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: MAIL.Example", "none", 1, ["mail.example"], []),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: a b", "none", 1, [], [["x", "a b"]]),
    ("version: STSv1\nmode: none\nmax_age: 1\nx:  a  ", "none", 1, [], [["x", "a"]]),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: é", "none", 1, [], [["x", "é"]]),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: a\t ", "none", 1, [], [["x", "a"]]),
    ("version: STSv1\nmode: none\nmax_age: 1\nx_: 1", "none", 1, [], [["x_", "1"]]),
    (
        "version: STSv1\nmode: none\nmax_age: 1\nkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 1",
        "none",
        1,
        [],
        [["kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "1"]],
    ),
    ("version: STSv1 \t\nmode: none\nmax_age: 1", "none", 1, [], []),
]

REJECTED = [
    # (policy text, error message)
    ("version: STSv1\n", "missing mode"),
    ("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mail.example.com\n\n", "line 5: expected a key"),
    (
        "version: STSv1\nmode: none\nmax_age: 2147483648",
        "line 3: max_age '2147483648' is not a number of at most 10 digits below 2^31",
    ),
    (
        "version: STSv1\nmode: none\nmax_age: 12345678901",
        "line 3: max_age '12345678901' is not a number of at most 10 digits below 2^31",
    ),
    ("version: STSv1\nmode: none\nmax_age: ", "line 3: max_age '' is not a number of at most 10 digits below 2^31"),
    ("version: STSv1\nmode: none\nmax_age: -1", "line 3: max_age '-1' is not a number of at most 10 digits below 2^31"),
    (
        "version: STSv1\nmode: none\nmax_age: \u0661",
        "line 3: max_age '\u0661' is not a number of at most 10 digits below 2^31",
    ),
    ("version: STSv2\nmode: none\nmax_age: 1", "line 1: version must be STSv1"),
    ("version STSv1", "line 1: expected ':' after key 'version'"),
    ("version: STSv1\nmode: Enforce\nmax_age: 1", "line 2: mode 'Enforce' is not one of enforce, testing, none"),
    ("mode: none\nmax_age: 1", "missing version"),
    ("version: STSv1\nmax_age: 1", "missing mode"),
    ("version: STSv1\nmode: none", "missing max_age"),
    ("version: STSv1\nmode: enforce\nmax_age: 1", "missing mx (required for mode enforce)"),
    ("version: STSv1\nmode: testing\nmax_age: 1", "missing mx (required for mode testing)"),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: ", "line 4: empty mx"),
    (
        "version: STSv1\nmode: none\nmax_age: 1\nmx: é.example",
        "line 4: mx 'é.example': domain must be specified in A labels, not U labels",
    ),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: -a.example", "line 4: mx '-a.example': invalid domain"),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: a..example", "line 4: mx 'a..example': invalid domain"),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: a_b.example", "line 4: mx 'a_b.example': invalid domain"),
    ("version: STSv1\nmode: none\nmax_age: 1\nmx: *.*.example", "line 4: mx '*.*.example': invalid domain"),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: a\tb", "line 4: invalid character '\\t' in extension value"),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: ", "line 4: empty extension value"),
    ("version: STSv1\nmode: none\nmax_age: 1\nx: a\x7f", "line 4: invalid character '\\x7f' in extension value"),
    ("version: STSv1\nmode: none\nmax_age: 1\n_x: 1", "line 4: expected a key"),
    (
        "version: STSv1\nmode: none\nmax_age: 1\nkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 1",
        "line 4: expected ':' after key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'",
    ),
    ("version: STSv1\nmode: none\nmax_age: 1\n\n", "line 4: expected a key"),
    ("", "line 1: expected a key"),
    ("\n", "line 1: expected a key"),
    ("version: STSv1\r\r\nmode: none\nmax_age: 1", "line 1: version must be STSv1"),
]


@pytest.mark.parametrize("text,mode,max_age,mx,extensions", ACCEPTED, ids=[a[0][:60] for a in ACCEPTED])
def test_accepted(text, mode, max_age, mx, extensions):
    p = parse_policy(text)
    assert (p.version, p.mode, p.max_age) == ("STSv1", mode, max_age)
    assert [str(m) for m in p.mx] == mx
    assert [list(e) for e in p.extensions] == extensions


@pytest.mark.parametrize("text,message", REJECTED, ids=[r[0][:60] for r in REJECTED])
def test_rejected(text, message):
    with pytest.raises(PolicyParseError) as exc:
        parse_policy(text)
    assert str(exc.value) == message


MATCHES = [
    # (pattern, host, matches)
    ("mail.example", "mail.example", True),
    ("mail.example", "MAIL.Example", True),
    ("mail.example", "x.mail.example", False),
    ("mail.example", "example", False),
    ("*.example", "mail.example", True),
    ("*.example", "a.b.example", False),
    ("*.example", "example", False),
    ("*.example", "xexample", False),
    ("*.mail.example", "mail.example", False),
    ("*.example", "mx_1.example", True),  # MX targets may carry underscores (lax, behaviour-notes §0.1)
]


@pytest.mark.parametrize("pattern,host,want", MATCHES, ids=[f"{m[0]} {m[1]}" for m in MATCHES])
def test_mx_matching(pattern, host, want):
    mx = parse_mx(pattern)
    assert mx.matches(parse_domain(host, lax=True)) is want
    policy = Policy("STSv1", "enforce", 1, (mx,))
    assert policy.matches_mx(host) is want
    assert policy.matches_mx(parse_domain(host, lax=True)) is want


def test_mx_forms():
    w = parse_mx("*.Example.COM")
    assert (str(w), w.ascii, w.wildcard) == ("*.example.com", "*.example.com", True)
    p = parse_mx("xn--74h.example")
    assert (str(p), p.ascii, p.wildcard) == ("\u263a.example", "xn--74h.example", False)
    assert MX(parse_domain("a.example")).wildcard is False


def test_bad_host_never_matches():
    assert Policy("STSv1", "enforce", 1, (parse_mx("*.example"),)).matches_mx("bad..example") is False


def test_format_and_json():
    p = parse_policy("version: STSv1\nmode: enforce\nmax_age: 60\nmx: *.a.example\nmx: b.example\nx: y z\n")
    assert p.format() == "version: STSv1\nmode: enforce\nmax_age: 60\nmx: *.a.example\nmx: b.example\n"
    assert p.to_json() == {
        "version": "STSv1",
        "mode": "enforce",
        "mx": ["*.a.example", "b.example"],
        "max_age": 60,
        "extensions": [{"key": "x", "value": "y z"}],
    }
    assert Policy("STSv1", "none", 1).mx == () and Policy("STSv1", "none", 1).extensions == ()
    with pytest.raises(AttributeError):
        p.mode = "none"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.mx[0].wildcard = False  # type: ignore[misc]


DAY = 86400
TESTING = "mode testing: failures are reported but mail is delivered anyway; change to enforce when reports are clean"
LINTS = [
    # (mode, max_age, content type, warnings)
    ("enforce", DAY + 1, "text/plain", []),
    ("enforce", 31557600, "Text/Plain; charset=utf-8", []),
    (
        "enforce",
        31557601,
        "text/plain",
        ["max_age 31557601 is above the RFC 8461 §3.2 maximum of 31557600 (mox accepts it)"],
    ),
    (
        "enforce",
        DAY,
        "text/plain",
        ["max_age 86400 is one day or less; the recommended period is in weeks (RFC 8461 §3.2)"],
    ),
    ("testing", DAY + 1, "text/plain", [TESTING]),
    ("none", DAY + 1, "text/plain", ["mode none: the domain does not require TLS"]),
    (
        "enforce",
        DAY + 1,
        "text/html",
        ["served as 'text/html', not text/plain: RFC 8461 §3.2 senders SHOULD check it (mox does not)"],
    ),
    (
        "enforce",
        DAY + 1,
        "",
        ["served as 'no content type', not text/plain: RFC 8461 §3.2 senders SHOULD check it (mox does not)"],
    ),
]


@pytest.mark.parametrize("mode,max_age,ctype,warnings", LINTS, ids=[f"{m[0]}-{m[1]}-{m[2]}" for m in LINTS])
def test_lint(mode, max_age, ctype, warnings):
    assert lint(Policy("STSv1", mode, max_age, (parse_mx("a.example"),)), ctype) == warnings


def test_lint_default_content_type_is_text_plain():
    assert lint(Policy("STSv1", "enforce", DAY + 1)) == []


@pytest.mark.parametrize(
    "value,want",
    [
        ("!", "!"),  # %x21, the lowest visible character
        ("~", "~"),  # %x7E, the highest
        ("\x80", "\x80"),  # UTF-8 (any code point from U+0080) is allowed
        ("a\x80b", "a\x80b"),
        ("\x01", None),
        ("\x7f", None),
    ],
)
def test_extension_value_character_limits(value, want):
    text = "version: STSv1\nmode: none\nmax_age: 1\nx: " + value
    if want is None:
        with pytest.raises(PolicyParseError) as exc:
            parse_policy(text)
        assert str(exc.value) == "line 4: empty extension value"
    else:
        assert parse_policy(text).extensions == (("x", want),)


def test_as_domain_refuses_a_bad_name_as_a_usage_error_with_its_code():
    """A bad recipient domain is exit 2 with the JSON code `bad-domain` (docs/json.md)."""
    from moxcli.domain import Domain
    from moxcli.errors import UsageError
    from moxcli.mtasts.cache import as_domain

    d = Domain("example.org")
    assert as_domain(d) is d
    assert as_domain("Example.ORG") == d
    with pytest.raises(UsageError) as exc:
        as_domain("a..b")
    assert (str(exc.value), exc.value.code) == ("invalid domain 'a..b': empty label", "bad-domain")

"""Message flags and keywords as other mail software writes them: every mapping pinned.

Written from the survivors of scripts/mutation.sh on moxcli/mail/flags.py (docs/behaviour-notes.md
§8.2, §8.3, §8.5: Status/X-Status, X-Mozilla-Status bits, X-Keywords, dovecot-keywords, maildir).
"""

from __future__ import annotations

import pytest

from moxcli.mail.flags import (
    flag_names,
    flags_mask,
    is_keyword,
    maildir_flags,
    map_keyword,
    mbox_header_flags,
    parse_dovecot_keywords,
)

ALL = [
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Draft",
    "$Forwarded",
    "$Junk",
    "$NotJunk",
    "$Phishing",
    "$MDNSent",
]


def test_flag_names_in_canonical_order():
    assert flag_names(1023) == ALL
    assert flag_names(0) == [] and flag_names(1024) == []
    assert [flag_names(1 << i) for i in range(10)] == [[n] for n in ALL]
    assert flags_mask(ALL) == 1023
    assert flags_mask([n.upper() for n in ALL]) == 1023
    assert [flags_mask([n]) for n in ALL] == [1 << i for i in range(10)]


def test_unknown_flag():
    with pytest.raises(ValueError) as exc:
        flags_mask(["\\Seen", "\\Recent"])
    assert str(exc.value) == "unknown flag '\\\\Recent'"


KEYWORDS = [
    ("a", True),
    ("!", True),
    ("~", True),
    ("a b", False),
    ("A", False),
    ("Z", False),
    ("[", True),
    ("@", True),
    ("`", True),
    ("{", False),
    ("(", False),
    (")", False),
    ("%", False),
    ("*", False),
    ('"', False),
    ("\\", False),
    ("]", False),
    ("\x7f", False),
    (" ", False),
    ("é", False),
    ("\\seen", False),
    ("$junk", False),
    ("", False),
    ("x}", True),
]


@pytest.mark.parametrize("word,ok", KEYWORDS, ids=[repr(k[0]) for k in KEYWORDS])
def test_is_keyword(word, ok):
    assert is_keyword(word) is ok


MAPPED = [
    (" Junk ", (64, None)),
    ("NonJunk", (128, None)),
    ("$NonJunk", (128, None)),
    ("$MDNSent", (512, None)),
    ("mdnsent", (512, None)),
    ("\\Seen", (1, None)),
    ("\\answered", (2, None)),
    ("\\Draft", (16, None)),
    ("\\deleted", (8, None)),
    ("Forwarded", (32, None)),
    ("$Forwarded", (32, None)),
    ("$Phishing", (256, None)),
    ("phishing", (256, None)),
    ("NotJunk", (128, None)),
    ("$notjunk", (128, None)),
    ("junk", (64, None)),
    ("A", (0, "a")),
    ("a b", (0, None)),
    ("MDNSENT", (512, None)),
    ("\\Flagged", (4, None)),
    ("\\Recent", (0, None)),
]


@pytest.mark.parametrize("word,want", MAPPED, ids=[repr(m[0]) for m in MAPPED])
def test_map_keyword(word, want):
    assert map_keyword(word) == want


HEADERS = [
    (b"Status: RO\nX-Status: AFTD\n", (31, [], [])),
    (b"Subject: x\nStatus: R\n", (1, [], [])),
    (b"XStatus: R\n", (0, [], [])),
    (b"Status: O\nX-Mozilla-Status: 1007\n", (39, [], [])),
    (b"X-Mozilla-Status: 0008\nStatus: \n", (8, [], [])),
    (b"Status:\nX-Mozilla-Status: zz\n", (0, [], [])),
    (b"Status: O\nX-Mozilla-Status: 0001\n", (1, [], [])),
    (b"Status: O\nX-Mozilla-Status: 0002\n", (2, [], [])),
    (b"Status: O\nX-Mozilla-Status: 0004\n", (4, [], [])),
    (b"X-Keywords: $Junk, foo,Bar baz, ,NonJunk\n", (192, ["foo"], ["Bar baz"])),
    (b"X-Mozilla-Keys: a  $forwarded \n b\n", (32, ["a", "b"], [])),
    (b"X-Keywords: a,\n\tb\nX-Keywords: c\n", (0, ["a", "b"], [])),
    (b"status: R\n", (0, [], [])),
    (b"Status: R", (1, [], [])),
    (b"Status: R\r\n continued F\r\nX: y\n", (1, [], [])),
    (b"X-Keywords: \xff\n", (0, [], ["�"])),
    (b"X-Mozilla-Keys: A\n", (0, ["a"], [])),
    (b"Status: x\nX-Status: a\n", (0, [], [])),
    (b"X-Keywords: x\n y,z\n", (0, ["z"], ["x y"])),
    (b"Subject: X-Keywords: a\n", (0, [], [])),
    (b"X-Status: F\n", (4, [], [])),
    (b"Status: O\nX-Status: F", (4, [], [])),
    (b"X-Mozilla-Keys:\n", (0, [], [])),
    (b"X-Keywords: junk,junk,b,a\n", (64, ["a", "b"], [])),
    # no space after the colon: the value starts right after it, first line or later
    (b"Status:R\n", (1, [], [])),
    (b"X-Keywords:foo\n", (0, ["foo"], [])),
    (b"Subject: x\nX-Keywords:foo\n", (0, ["foo"], [])),
    # a header that starts with an empty line, or with a (bad) continuation line
    (b"\nStatus: R\n", (1, [], [])),
    (b" folded\nStatus: R", (1, [], [])),
    # CRLF inside a folded value is removed, not kept in the word
    (b"X-Keywords: foo\r\n bar\r\n", (0, [], ["foo bar"])),
]


@pytest.mark.parametrize("header,want", HEADERS, ids=[repr(h[0])[:50] for h in HEADERS])
def test_mbox_header_flags(header, want):
    assert mbox_header_flags(header) == want


def test_dovecot_keywords():
    text = "0 Junk\n1 foo\n\n3 bar\n1 dup\n26 x\n-1 y\nx z\n2\n4 A b\n٣ q\n5 $Forwarded\n6 \\\\Seen\n7 a(b\n"
    assert parse_dovecot_keywords(text) == (
        ["junk", "foo", "", "bar", "", "$forwarded"],
        [
            "line 5: duplicate index 1",
            "line 6: index 26 not in 0-25",
            "line 7: expected '<index> <name>', got '-1 y'",
            "line 8: expected '<index> <name>', got 'x z'",
            "line 9: expected '<index> <name>', got '2'",
            "line 10: invalid keyword 'a b'",
            "line 11: expected '<index> <name>', got '٣ q'",
            "line 13: invalid keyword '\\\\\\\\seen'",
            "line 14: invalid keyword 'a(b'",
        ],
    )


@pytest.mark.parametrize(
    "text,want",
    [
        ("", ([], [])),
        ("\n  \n", ([], [])),
        ("25 z", ([""] * 25 + ["z"], [])),
        ("0 a\r\n", (["a"], [])),
    ],
)
def test_dovecot_keywords_edges(text, want):
    assert parse_dovecot_keywords(text) == want


MAILDIR = [
    ("RSTDFPab", ["junk", "foo"], (95, ["foo"])),
    ("R", [], (2, [])),
    ("S", [], (1, [])),
    ("T", [], (8, [])),
    ("D", [], (16, [])),
    ("F", [], (4, [])),
    ("P", [], (0, [])),
    ("cz", ["a", "b", "", "d"], (0, [])),
    ("da", ["a", "b", "", "d"], (0, ["a", "d"])),
    ("a", [], (0, [])),
    ("ab", ["", "x"], (0, ["x"])),
    ("z", ["k"] * 25 + ["last"], (0, ["last"])),
    ("b", ["a", "$Junk"], (64, [])),
    ("A", ["x"], (0, [])),
]


@pytest.mark.parametrize("info,keywords,want", MAILDIR, ids=[m[0] for m in MAILDIR])
def test_maildir_flags(info, keywords, want):
    assert maildir_flags(info, keywords) == want

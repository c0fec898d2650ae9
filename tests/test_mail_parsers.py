"""Pure parsers of moxcli.mail: flags, keywords, mailbox names, modified UTF-7, mbox splitting."""

import calendar
import io
import json
import re

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.mail import flags as fl
from moxcli.mail.maildir import name_info, name_time
from moxcli.mail.mbox import MboxError, from_line_time, iter_mbox, to_crlf, unquote_from
from moxcli.mail.names import MailboxNameError, check_mailbox_name, decode_mutf7, maildirpp_folder

V = json.loads((VECTORS / "import_cases.json").read_text())


def utc(*t):
    return float(calendar.timegm((*t, 0, 0, 0)))


# -- keywords and flags (docs/behaviour-notes.md §8.2, §8.3, §8.5)


@pytest.mark.parametrize("word", V["keyword_validity"]["valid"])
def test_valid_keywords(word):
    assert fl.is_keyword(word)


@pytest.mark.parametrize("case", V["keyword_validity"]["invalid"])
def test_invalid_keywords(case):
    word = {
        "Custom (upper case)": "Custom",
        "$junk (well-known flag)": "$junk",
        "\\seen (well-known flag)": "\\seen",
        "é (non-ASCII)": "é",
    }.get(case, case)
    assert not fl.is_keyword(word)


def test_mbox_vector_flags():
    content = V["mbox_example"]["content"].encode()
    msgs = list(iter_mbox(io.BytesIO(content)))
    assert len(msgs) == V["mbox_example"]["count"]
    for msg, want in zip(msgs, V["mbox_example"]["expect"], strict=True):
        header = msg.data[: msg.data.find(b"\r\n\r\n") + 2]
        mask, keywords, bad = fl.mbox_header_flags(header)
        assert set(fl.flag_names(mask)) == set(want["flags"])
        assert keywords == want["keywords"] and bad == []
    assert from_line_time(msgs[0].from_line) == utc(2022, 1, 23, 20, 41, 55)
    assert from_line_time(msgs[1].from_line) == utc(2022, 1, 23, 21, 2, 16)


def test_zip_variant_keywords_lowercased_deduplicated():
    header = b"X-Keywords: $NotJunk,$Forwarded,Other,Test,test\r\n"
    mask, keywords, bad = fl.mbox_header_flags(header)
    assert keywords == V["mbox_zip_variant"]["expect_mailbox_keywords"]
    assert fl.flag_names(mask) == ["$Forwarded", "$NotJunk"] and bad == []


@pytest.mark.parametrize(
    "header, flags, keywords, bad",
    [
        (b"Status: RO\r\n", ["\\Seen"], [], []),
        (b"Status: O\r\n", [], [], []),
        (b"X-Status: AFTD\r\n", ["\\Answered", "\\Flagged", "\\Deleted", "\\Draft"], [], []),
        (b"status: R\r\n", [], [], []),  # case-sensitive prefix, like mox
        (
            b"X-Keywords: junk, nonjunk , phishing,mdnsent,forwarded\r\n",
            ["$Forwarded", "$Junk", "$NotJunk", "$Phishing", "$MDNSent"],
            [],
            [],
        ),
        (b"X-Keywords: a b, ok,\r\n", [], ["ok"], ["a b"]),
        (b"X-Keywords: one,\r\n two\r\n", [], ["one", "two"], []),
        (b"X-Mozilla-Status: 1005\r\n", ["\\Seen", "\\Flagged", "$Forwarded"], [], []),
        (b"X-Mozilla-Status: zz\r\n", [], [], []),
        (b"X-Mozilla-Keys: $label1 work  \r\n", [], ["$label1", "work"], []),
        (b"Subject: Status: R\r\n", [], [], []),
        (b"Status: R", ["\\Seen"], [], []),
    ],
)
def test_mbox_header_flags(header, flags, keywords, bad):
    mask, kws, errs = fl.mbox_header_flags(header)
    assert fl.flag_names(mask) == flags and kws == keywords and errs == bad


def test_dovecot_keywords_vector():
    ex = V["maildir_flags"]["dovecot_keywords_file_example"]
    names, errors = fl.parse_dovecot_keywords(ex["content"])
    assert names == ex["expect"] and errors == []


def test_dovecot_keywords_bad_lines_skipped():
    names, errors = fl.parse_dovecot_keywords("0 a\nnospace\nx y\n26 big\n0 dup\n3 B(ad\n2 \\Seen\n\n")
    assert names == ["a", "", "\\seen"]
    assert len(errors) == 5


def test_maildir_tgz_vector_flags():
    ex = V["maildir_flags"]["tgz_example"]
    kwfile = ex["files"]["maildir/dovecot-keywords"]
    names, _ = fl.parse_dovecot_keywords(kwfile)
    for want in ex["expect"]["messages"]:
        fname = want["file"].split("/", 1)[1]
        mask, keywords = fl.maildir_flags(name_info(fname), names)
        assert set(fl.flag_names(mask)) == set(want["flags"])
        assert keywords == want["keywords"]
        assert name_time(fname) == want["received_unix"]


@pytest.mark.parametrize(
    "name, when, info",
    [
        ("1642966915.1.mox:2,RSFbcde", 1642966915.0, "RSFbcde"),
        ("1642966915.M1P2.host", 1642966915.0, ""),
        ("1642966915.host", None, ""),
        ("abc.1.host:2,S", None, "S"),
        ("1642966915.1.host.with.dots:2,", 1642966915.0, ""),
    ],
)
def test_maildir_names(name, when, info):
    assert name_time(name) == when and name_info(name) == info


def test_maildir_flag_letters():
    mask, kws = fl.maildir_flags("PRSTDFaz", ["custom"])
    assert fl.flag_names(mask) == ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
    assert kws == ["custom"]


def test_flags_mask_round_trip_and_unknown():
    assert fl.flag_names(fl.flags_mask(["\\seen", "$junk"])) == ["\\Seen", "$Junk"]
    with pytest.raises(ValueError):
        fl.flags_mask(["\\Recent"])


# -- mailbox names


@pytest.mark.parametrize("case", V["mailbox_names"]["cases"], ids=lambda c: c["name"])
def test_mailbox_name_vectors(case):
    name = case["name"]
    if name.endswith("(not NFC)"):
        nfd = "e\u0301"
        assert check_mailbox_name(nfd) == "\u00e9"
        with pytest.raises(MailboxNameError, match="normalized"):
            check_mailbox_name(nfd, normalize=False)
        return
    allow = case.get("allow_inbox", True)
    if "error" in case:
        with pytest.raises(MailboxNameError, match=re.escape(case["error"])):
            check_mailbox_name(name, allow_inbox=allow)
    else:
        assert check_mailbox_name(name, allow_inbox=allow) == case["expect"]


@pytest.mark.parametrize("name", ["a/", "..", "x/\x7f", "a\u2028b", "a\x85b", "", "/"])
def test_mailbox_names_refused(name):
    with pytest.raises(MailboxNameError):
        check_mailbox_name(name)


@pytest.mark.parametrize(
    "text, want",
    [
        ("Sent", "Sent"),
        ("&-", "&"),
        ("Entw&APw-rfe", "Entwürfe"),
        ("&ZeVnLIqe-", "日本語"),
        ("A&-B", "A&B"),
        ("&2D3eAA-", "\U0001f600"),
    ],
)
def test_mutf7(text, want):
    assert decode_mutf7(text) == want


@pytest.mark.parametrize("text", ["&", "&ZeVnLIqe", "&!!-", "café", "&AGE", "&AA-"])
def test_mutf7_bad(text):
    with pytest.raises(MailboxNameError):
        decode_mutf7(text)


@pytest.mark.parametrize(
    "dirname, want",
    [(".Sent", "Sent"), (".A.B", "A/B"), (".Entw&APw-rfe", "Entwürfe"), ("cur", None), (".", None), ("..", None)],
)
def test_maildirpp_folder(dirname, want):
    assert maildirpp_folder(dirname) == want


@pytest.mark.parametrize("dirname", [".A..B", ".A.", ".&AC8-x"])
def test_maildirpp_folder_bad(dirname):
    with pytest.raises(MailboxNameError):
        maildirpp_folder(dirname)


@given(st.text(max_size=30))
def test_hostile_folder_and_mailbox_names_never_crash(text):
    for fn in (decode_mutf7, lambda t: maildirpp_folder("." + t), check_mailbox_name):
        try:
            out = fn(text)
        except MailboxNameError:
            continue
        assert out is None or isinstance(out, str)
    try:
        name = check_mailbox_name(text)
    except MailboxNameError:
        return
    assert all(e not in ("", ".", "..") for e in name.split("/")) and not name.startswith("#")


# -- mbox


@pytest.mark.parametrize(
    "line, want",
    [
        (b"From mox Sun Jan 23 20:41:55 2022", utc(2022, 1, 23, 20, 41, 55)),
        (b"From mox Sun Jan  2 20:41:55 2022", utc(2022, 1, 2, 20, 41, 55)),
        (b"From a@b Sun Jan 23 20:41:55 CET 2022", utc(2022, 1, 23, 20, 41, 55)),
        (b"From a@b Sun Jan 23 20:41:55 +0100 2022", utc(2022, 1, 23, 19, 41, 55)),
        (b"From a@b Sun Jan 23 20:41:55 -0230 2022", utc(2022, 1, 23, 23, 11, 55)),
        (b"From a@b Sun Jan 23 20:41:55 2022\r", utc(2022, 1, 23, 20, 41, 55)),
        (b"From a@b Sun Feb 30 20:41:55 2022", None),
        (b"From a@b yesterday", None),
        (b"From a@b", None),
        (b"From a@b Xyz Jan 23 20:41:55 2022", None),
        (b"From a@b Sun Jan 23 20:41 2022", None),
    ],
)
def test_from_line_time(line, want):
    assert from_line_time(line) == want


def _split(data: bytes, chunk: int = 1 << 20):
    return [m.data for m in iter_mbox(io.BytesIO(data), chunk)]


@pytest.mark.parametrize(
    "mbox, want",
    [
        (b"", []),
        (b"From a\n", [b""]),
        (b"From a", [b""]),
        (b"From a\nx\n", [b"x\r\n"]),
        (b"From a\nx", [b"x\r\n"]),
        (b"From a\nx\n\nFrom b\ny\n", [b"x\r\n\r\n", b"y\r\n"]),
        # "From " only starts a message after an empty line.
        (b"From a\nx\nFrom b\ny\n", [b"x\r\nFrom b\r\ny\r\n"]),
        (b"From a\n\nFrom b\n", [b"\r\n", b""]),
        (b"From a\r\nx\r\n\r\nFrom b\r\ny\r\n", [b"x\r\n\r\n", b"y\r\n"]),
        (b"From a\nx\n \nFrom b\n", [b"x\r\n \r\nFrom b\r\n"]),
        (b"From a\n>From x\n>>From y\n>Fromage\n\n", [b"From x\r\n>From y\r\n>Fromage\r\n\r\n"]),
        (b"From a\nmixed\r\nends\n", [b"mixed\r\nends\r\n"]),
    ],
)
def test_iter_mbox_cases(mbox, want):
    assert _split(mbox) == want
    assert _split(mbox, 1) == want
    assert _split(mbox, 3) == want


def test_iter_mbox_line_numbers_and_sizes():
    data = b"From a\nx\n\nFrom b\ny\nz\n\nFrom c\n"
    msgs = list(iter_mbox(io.BytesIO(data), 2))
    assert [m.line for m in msgs] == [1, 4, 8]
    assert sum(m.raw_size for m in msgs) == len(data)
    assert [m.from_line for m in msgs] == [b"From a", b"From b", b"From c"]


def test_not_an_mbox():
    with pytest.raises(MboxError, match="first line"):
        list(iter_mbox(io.BytesIO(b"Subject: hi\n\nbody\n")))


def test_to_crlf_and_unquote():
    assert to_crlf(b"a\nb\r\nc") == b"a\r\nb\r\nc\r\n"
    assert to_crlf(b"") == b""
    assert unquote_from(b">From x\n>>From y\nx >From z\n") == b"From x\n>From y\nx >From z\n"


_body_line = st.text(alphabet="abF rom>\t", max_size=12).filter(lambda s: "\n" not in s)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_body_line, max_size=6), min_size=1, max_size=6), st.integers(1, 40))
def test_written_mbox_reads_back(bodies, chunk):
    """mboxrd writer -> reader gives back each body (CRLF), plus the separator blank line."""
    out = b""
    for lines in bodies:
        out += b"From sender Sun Jan 23 20:41:55 2022\n"
        for line in lines:
            b = line.encode()
            if b.lstrip(b">").startswith(b"From "):
                b = b">" + b
            out += b + b"\n"
        out += b"\n"
    got = _split(out, chunk)
    assert got == [b"".join(line.encode() + b"\r\n" for line in lines) + b"\r\n" for lines in bodies]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_hostile_mbox_bytes(data, chunk):
    data = b"From x\n" + data
    msgs = list(iter_mbox(io.BytesIO(data), chunk))
    assert msgs and sum(m.raw_size for m in msgs) == len(data)
    assert [m.data for m in msgs] == [m.data for m in iter_mbox(io.BytesIO(data))]
    for m in msgs:
        assert b"\n" not in m.data.replace(b"\r\n", b"")
        fl.mbox_header_flags(m.data)
        from_line_time(m.from_line)


@given(st.text(max_size=200), st.text(alphabet="abcdefghijklmnopqrstuvwxyzPRSTDF:,2!", max_size=30))
def test_hostile_dovecot_keywords_and_maildir_info(text, info):
    names, _errors = fl.parse_dovecot_keywords(text)
    assert len(names) <= 26 and all(n == "" or n == n.lower() for n in names)
    mask, keywords = fl.maildir_flags(info, names)
    assert all(fl.is_keyword(k) for k in keywords) and keywords == sorted(set(keywords))
    assert 0 <= mask < 1024

"""moxcli.smtp.msgdata: canonical message bytes, conversion, dot-stuffing, header completion."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.smtp import msgdata
from moxcli.smtp.msgdata import MessageDataError

LONG_OK = b"x" * 998
LONG_BAD = b"x" * 999


@pytest.mark.parametrize(
    "data,expect",
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),  # canonical: unchanged
        (b"a\nb\n", b"a\r\nb\r\n"),  # all bare LF: converted
        (b"a\nb", b"a\r\nb\r\n"),  # and the last line completed
        (b"a\r\nb", b"a\r\nb\r\n"),  # CRLF file without a final line end
        (b"\n", b"\r\n"),
        (LONG_OK + b"\n", LONG_OK + b"\r\n"),  # 998 octets + CRLF = 1,000 octets: allowed
        (b"8bit \xc3\xa9\n", b"8bit \xc3\xa9\r\n"),
        (b".\n..\n", b".\r\n..\r\n"),  # dots are data here; stuffing happens on the wire
    ],
)
def test_normalize_converts(data, expect):
    assert msgdata.normalize(data) == expect


@pytest.mark.parametrize(
    "data,reason,offset,line",
    [
        (b"", "empty message", 0, 1),
        (b"a\rb\n", "bare CR", 1, 1),
        (b"Subject: x\n\nA\rB\n", "bare CR", 13, 3),
        (b"a\r\nb\r", "bare CR", 4, 2),
        (b"a\r\nb\nc\r\n", "bare LF (mixed with CRLF line ends)", 4, 2),
        (b"Subject: x\r\n\r\nA\n.\r\nMAIL FROM:<e@x.test>\r\n", "bare LF (mixed with CRLF line ends)", 15, 3),
        (b"a\r\n\r\r\n", "bare CR", 3, 2),
        (b"a\n\x00b\n", "NUL octet", 2, 2),  # offsets in the file as given
        (b"ok\n" + LONG_BAD + b"\n", "line longer than 998 octets (999)", 3, 2),
        (b"ok\r\n" + LONG_BAD, "line longer than 998 octets (999)", 4, 2),
    ],
)
def test_normalize_refuses(data, reason, offset, line):
    with pytest.raises(MessageDataError) as ei:
        msgdata.normalize(data)
    assert (ei.value.reason, ei.value.offset, ei.value.line) == (reason, offset, line)
    assert str(ei.value) == f"{reason} at byte offset {offset} (line {line})"


@pytest.mark.parametrize(
    "data,expect",
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".a\r\n.\r\nb\r\n", b"..a\r\n..\r\nb\r\n.\r\n"),
        (b"x\r\n.\r\n", b"x\r\n..\r\n.\r\n"),
        (b"\r\n.\r\n", b"\r\n..\r\n.\r\n"),
    ],
)
def test_dot_stuff(data, expect):
    assert msgdata.dot_stuff(data) == expect


@pytest.mark.parametrize("data", [b"A\n.\r\nMAIL FROM:<e@x>\r\n", b"a\r\n.\r.\r\n", b"a\r\nb"])
def test_dot_stuff_refuses_non_canonical(data):
    with pytest.raises(MessageDataError):
        msgdata.dot_stuff(data)


def unstuff(wire: bytes) -> bytes:
    """What a server reads: lines up to the first lone ".", leading dot removed (RFC 5321 4.5.2)."""
    lines = wire.split(b"\r\n")
    end = lines.index(b".")
    return b"".join(ln[1:] + b"\r\n" if ln.startswith(b".") else ln + b"\r\n" for ln in lines[:end])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_property_accepted_bytes_cannot_end_data_early(raw):
    """Whatever normalize accepts, the stuffed form ends DATA exactly once, at its end, with
    both a strict (CRLF only) and a lenient (bare LF too) end-of-data reading; unstuffing
    gives the canonical bytes back."""
    try:
        canonical = msgdata.normalize(raw)
    except MessageDataError:
        return
    wire = msgdata.dot_stuff(canonical)
    assert wire.endswith(b"\r\n.\r\n")
    body = wire[:-3]
    # lenient servers also end DATA on <LF>.<LF>, <LF>.<CRLF>, <CR>.<CR> ...: none may occur
    assert re.search(rb"[\r\n]\.[\r\n]", body) is None and not body.startswith((b".\r", b".\n"))
    assert unstuff(wire) == canonical


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_streamed_stuffing_equals_whole(raw, cuts):
    """Chunked dot-stuffing gives the same bytes, and refuses the same inputs."""
    data = raw.replace(b"\n", b"\r\n") if b"\r" not in raw else raw
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    try:
        whole = msgdata.dot_stuff(data)
    except MessageDataError as exc:
        with pytest.raises(MessageDataError) as ei:
            b"".join(msgdata.stuff_chunks(chunks))
        assert (ei.value.reason, ei.value.offset, ei.value.line) == (exc.reason, exc.offset, exc.line)
        return
    assert b"".join(msgdata.stuff_chunks(chunks)) == whole


def test_streamed_long_line_refused_without_buffering_it():
    s = msgdata.DotStuffer()
    assert s.feed(b"ok\r\n" + b"y" * 500) == b"ok\r\n"
    with pytest.raises(MessageDataError) as ei:
        s.feed(b"y" * 600)
    assert (ei.value.offset, ei.value.line) == (4, 2)


def complete(data: bytes) -> msgdata.Completed:
    return msgdata.complete_header(
        data,
        hostname="mail.example",
        date="Thu, 1 Jan 2026 00:00:00 +0000",
        message_id="ID",
        received="by mail.example; D",
    )


@pytest.mark.parametrize(
    "data,expect,added,sep",
    [
        (
            b"Subject: x\r\n\r\nbody\r\n",
            b"Received: by mail.example; D\r\nSubject: x\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
            b"Message-ID: <ID@mail.example>\r\n\r\nbody\r\n",
            ("Received", "Date", "Message-ID"),
            False,
        ),
        (
            b"date: Wed, 31 Dec 2025 10:00:00 +0100\r\nMESSAGE-ID: <a@b>\r\n\r\nbody\r\n",
            b"Received: by mail.example; D\r\n"
            b"date: Wed, 31 Dec 2025 10:00:00 +0100\r\nMESSAGE-ID: <a@b>\r\n\r\nbody\r\n",
            ("Received",),
            False,
        ),
        (  # folded field, header only (no body)
            b"Subject: a\r\n b\r\nDate: x\r\n",
            b"Received: by mail.example; D\r\nSubject: a\r\n b\r\nDate: x\r\nMessage-ID: <ID@mail.example>\r\n",
            ("Received", "Message-ID"),
            False,
        ),
        (  # plain text: no header at all, an empty line keeps the text as body
            b"hello: world is not\r\nhi there\r\n",
            b"Received: by mail.example; D\r\nhello: world is not\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
            b"Message-ID: <ID@mail.example>\r\n\r\nhi there\r\n",
            ("Received", "Date", "Message-ID"),
            True,
        ),
        (
            b"just text\r\n",
            b"Received: by mail.example; D\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
            b"Message-ID: <ID@mail.example>\r\n\r\njust text\r\n",
            ("Received", "Date", "Message-ID"),
            True,
        ),
        (
            b"\r\nbody only\r\n",
            b"Received: by mail.example; D\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
            b"Message-ID: <ID@mail.example>\r\n\r\nbody only\r\n",
            ("Received", "Date", "Message-ID"),
            False,
        ),
    ],
)
def test_complete_header(data, expect, added, sep):
    c = complete(data)
    assert (c.data, c.added, c.separator_added) == (expect, added, sep)
    msgdata.check(c.data)


def test_is_8bit():
    assert msgdata.is_8bit(b"Subject: \xc3\xa9\r\n\r\n") and not msgdata.is_8bit(b"Subject: e\r\n\r\n\x7f\r\n")

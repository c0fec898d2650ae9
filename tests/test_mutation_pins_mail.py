"""mbox separator times, line ends, From-quoting and the size limit: every field limit pinned.

Written from the survivors of scripts/mutation.sh on moxcli/mail/mbox.py (hour 23, minute 59,
second 60, day 1 and `+1000` zones were untested).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest

from moxcli.mail.mbox import MboxError, MessageTooLarge, from_line_time, iter_mbox, to_crlf, unquote_from


def at(y: int, mo: int, d: int, h: int, mi: int, s: int, zone_minutes: int = 0) -> float:
    tz = dt.timezone(dt.timedelta(minutes=zone_minutes))
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()


FROM_TIMES = [
    (b"From a Mon Jan  1 00:00:00 2024", at(2024, 1, 1, 0, 0, 0)),
    (b"From a Sun Dec 31 23:59:59 2023", at(2023, 12, 31, 23, 59, 59)),
    (b"From a Thu Feb 29 12:00:00 2024", at(2024, 2, 29, 12, 0, 0)),
    (b"From a Wed Mar 15 10:20:30 2023", at(2023, 3, 15, 10, 20, 30)),
    (b"From a Sat Dec 31 23:59:60 2016", at(2017, 1, 1, 0, 0, 0)),  # leap second: next second
    (b"From a Mon Jan 02 15:04:05 +1000 2006", at(2006, 1, 2, 15, 4, 5, 600)),
    (b"From a Mon Jan 02 15:04:05 -1000 2006", at(2006, 1, 2, 15, 4, 5, -600)),
    (b"From a Mon Jan 02 15:04:05 +0010 2006", at(2006, 1, 2, 15, 4, 5, 10)),
    (b"From a Mon Jan 02 15:04:05 +0530 2006", at(2006, 1, 2, 15, 4, 5, 330)),
    (b"From a Mon Jan 02 15:04:05 -0000 2006", at(2006, 1, 2, 15, 4, 5)),
    (b"From a Mon Jan 02 15:04:05 MST 2006", at(2006, 1, 2, 15, 4, 5)),
    (b"From a Mon Nov 02 15:04:05 2006", at(2006, 11, 2, 15, 4, 5)),
    (b"From a Mon Jun  9 15:04:05 2006", at(2006, 6, 9, 15, 4, 5)),
    (b"From a Mon Jan  0 15:04:05 2006", None),
    (b"From a Mon Jan 32 15:04:05 2006", None),
    (b"From a Tue Feb 29 15:04:05 2023", None),
    (b"From a Mon Apr 31 15:04:05 2006", None),
    (b"From a Mon Jan  2 24:00:00 2006", None),
    (b"From a Mon Jan  2 23:60:00 2006", None),
    (b"From a Mon Jan  2 23:59:61 2006", None),
    (b"From a Mon Jan 123 15:04:05 2006", None),
    (b"From a Mon Foo  2 15:04:05 2006", None),
    (b"From a Mon Jan  2 15:04:05 06", None),
    (b"From a Mon Jan  2 15:04:05 20066", None),
    (b"From a Mon Jan  2 1:04:05 2006", None),
    (b"From a Mon Jan  2 115:04:05 2006", None),
    (b"From a Mon Jan  2 15x04:05 2006", None),
    (b"From a Mon Jan  2 15:04x05 2006", None),
    (b"From a Mon Jan  2 1x:04:05 2006", None),
    (b"From a Mon Jan  2 15:0x:05 2006", None),
    (b"From a Mon Jan  2 15:04:0x 2006", None),
    (b"From a Mon Jan  2 x5:04:05 2006", None),
    (b"From a Mon Jan  2 15:x4:05 2006", None),
    (b"From a Mon Jan  2 15:04:x5 2006", None),
    (b"From a Mon Jan  x 15:04:05 2006", None),
    (b"From a Mon Jan  2 15:04:05 200x", None),
    (b"From a Mon Jan  2 15:04:05 +10000 2006", None),
    (b"From a Mon Jan  2 15:04:05 +10a0 2006", None),
    (b"From a Mon Jan  2 15:04:05 +a000 2006", None),
    (b"From a Mon Jan  2 15:04:05 1000 2006", None),
    (b"From a Mon Jan  2 15:04:05 Z1 2006", None),
    (b"From a Mon Jan  2 15:04:05 UTC x 2006", None),
    (b"From a Jan  2 15:04:05 2006", None),
    (b"From a mon Jan  2 15:04:05 2006", None),
    (b"From a Mon jan  2 15:04:05 2006", None),
]


@pytest.mark.parametrize("line,want", FROM_TIMES, ids=[c[0].decode() for c in FROM_TIMES])
def test_from_line_time_limits(line, want):
    assert from_line_time(line) == want


@pytest.mark.parametrize(
    "data,want",
    [
        (b"", b""),
        (b"a", b"a\r\n"),
        (b"a\n", b"a\r\n"),
        (b"a\r\n", b"a\r\n"),
        (b"a\nb", b"a\r\nb\r\n"),
        (b"a\r\nb\nc\r\n", b"a\r\nb\r\nc\r\n"),
        (b"a\rb\n", b"a\rb\r\n"),
        (b"\n\n", b"\r\n\r\n"),
    ],
)
def test_to_crlf(data, want):
    assert to_crlf(data) == want


@pytest.mark.parametrize(
    "data,want",
    [
        (b"plain\n", b"plain\n"),
        (b">From a\n", b"From a\n"),
        (b">>From a\n", b">From a\n"),
        (b"x\n>From a\n>From b", b"x\nFrom a\nFrom b"),
        (b"x >From a\n", b"x >From a\n"),
        (b"x>>From a\n", b"x>>From a\n"),
        (b">Fromage\n", b">Fromage\n"),
        (b">From a >From b\n", b"From a >From b\n"),
        (b">From a\n>", b"From a\n>"),
        (b">From a\n\n>>", b"From a\n\n>>"),
    ],
)
def test_unquote_from(data, want):
    assert unquote_from(data) == want


def _read(data: bytes, chunk: int, max_size: int | None = None) -> list[tuple[bytes, int, bytes, int]]:
    return [(m.data, m.line, m.from_line, m.raw_size) for m in iter_mbox(io.BytesIO(data), chunk, max_size)]


MBOX = b"From a\r\nx\r\n\r\nFrom b\nline\nFrom not-a-separator\n\nFrom c\n>From q\n"
MBOX_WANT = [
    (b"x\r\n\r\n", 1, b"From a", 13),
    (b"line\r\nFrom not-a-separator\r\n\r\n", 4, b"From b", 34),
    (b"From q\r\n", 8, b"From c", 15),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 6, 7, 11, 64, 1 << 20])
def test_messages_lines_and_sizes_whatever_the_chunk(chunk):
    assert _read(MBOX, chunk) == MBOX_WANT


def test_size_limit_is_checked_while_reading():
    data = b"From a\n" + b"x" * 100 + b"\n\nFrom b\ny\n"
    assert [m[1] for m in _read(data, 8, max_size=200)] == [1, 4]
    with pytest.raises(MessageTooLarge) as exc:
        _read(data, 8, max_size=50)
    assert (exc.value.line, exc.value.limit) == (1, 50)
    assert str(exc.value) == "message at line 1 is larger than 50 bytes"


def test_size_limit_names_the_line_of_the_large_message():
    data = b"From a\ny\n\nFrom b\n" + b"x" * 100 + b"\n"
    with pytest.raises(MessageTooLarge) as exc:
        _read(data, 8, max_size=50)
    assert exc.value.line == 4


@pytest.mark.parametrize("data", [b"From", b"Fro", b"X", b"from a\n", b"\nFrom a\n", b" From a\n"])
def test_not_an_mbox(data):
    with pytest.raises(MboxError) as exc:
        list(iter_mbox(io.BytesIO(data), 2))
    assert str(exc.value) == 'first line does not start with "From "'


def test_first_five_bytes_arrive_in_pieces():
    assert _read(b"From a\nx\n", 1) == [(b"x\r\n", 1, b"From a", 9)]
    assert _read(b"From ", 1) == [(b"", 1, b"From ", 5)]


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@pytest.mark.parametrize("month", range(1, 13), ids=MONTHS)
def test_every_month_name(month):
    stamp = dt.datetime(2024, month, 9, 8, 7, 6, tzinfo=dt.UTC)
    line = f"From a {stamp:%a} {MONTHS[month - 1]}  9 08:07:06 2024".encode()
    assert from_line_time(line) == stamp.timestamp()


@pytest.mark.parametrize("weekday", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
def test_every_weekday_name_is_accepted_as_written(weekday):
    # mox does not check that the weekday fits the date; neither do we
    assert from_line_time(f"From a {weekday} Jan  9 08:07:06 2024".encode()) == at(2024, 1, 9, 8, 7, 6)


@pytest.mark.parametrize(
    "line,want",
    [
        (b"From \xff@b Mon Jan  9 08:07:06 2024", at(2024, 1, 9, 8, 7, 6)),
        (b"From a Mon Jan  9 08:07:06 \xff 2024", None),
        (b"From a Mon Jan  9 08:07:06 A1000 2024", None),
        (b"From a Mon Jan  9 08:07:06 10000 2024", None),
    ],
)
def test_zone_and_sender_bytes(line, want):
    assert from_line_time(line) == want


def test_messages_take_no_new_attributes():
    m = next(iter_mbox(io.BytesIO(b"From a\nx\n")))
    with pytest.raises(AttributeError):
        m.extra = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data,bodies",
    [
        (b"From a\r\n\r\nFrom b\r\n", [b"\r\n", b""]),
        (b"From a\r\nx\r\n\r\nFrom b\r\n", [b"x\r\n\r\n", b""]),
        (b"From a\nx\r\nFrom b\n", [b"x\r\nFrom b\r\n"]),
        (b"From a\n\rFrom b\n", [b"\rFrom b\r\n"]),
    ],
)
def test_empty_line_before_a_separator_with_crlf(data, bodies):
    for chunk in (1, 2, 4, 1 << 20):
        assert [m[0] for m in _read(data, chunk)] == bodies

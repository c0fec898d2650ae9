"""Split an mbox byte stream into messages (RFC 4155, docs/behaviour-notes.md §8.2), streaming, no MIME parse.

Pure: reads from a binary stream it is given, opens nothing. Works on large chunks with
bytes.find rather than line by line, so a 1 GB mbox costs a few C-level scans.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from typing import BinaryIO

from moxcli.values import dataclass

CHUNK = 1 << 20

_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_DAYS = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
_BARE_LF = re.compile(rb"(?<!\r)\n")


class MboxError(ValueError):
    """The stream is not an mbox."""


class MessageTooLarge(ValueError):
    """A message is larger than the caller's limit: found while reading, before it is held."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"message at line {line} is larger than {limit} bytes")
        self.line = line
        self.limit = limit


@dataclass(slots=True)
class MboxMessage:
    data: bytes  # CRLF line ends, one level of ">From " quoting removed
    line: int  # 1-based line number of the "From " separator line
    from_line: bytes  # the separator line without its line end
    raw_size: int  # bytes of the input this message took, separator line included


def from_line_time(line: bytes) -> float | None:
    """Unix time of an mbox "From " separator line, None when it does not parse.

    Split in three on spaces ("From", sender, rest) like mox; rest in one of the layouts
    ``Mon Jan _2 15:04:05 2006`` (ctime, RFC 4155 Appendix A), ``Mon Jan _2 15:04:05 MST 2006``
    (Unix date; a zone name counts as UTC, as Go's parser does for unknown zones) or
    ``Mon Jan 02 15:04:05 -0700 2006`` (Ruby).
    """
    parts = line.split(b" ", 2)
    if len(parts) < 3:
        return None
    tokens = parts[2].decode("ascii", "replace").split()
    if len(tokens) not in (5, 6) or tokens[0] not in _DAYS:
        return None
    mon = _MONTHS.get(tokens[1])
    day, hms, year = tokens[2], tokens[3], tokens[-1]
    if mon is None or len(hms) != 8 or hms[2] != ":" or hms[5] != ":" or len(year) != 4 or len(day) > 2:
        return None
    offset = 0
    if len(tokens) == 6:
        zone = tokens[4]
        if zone[:1] in "+-" and len(zone) == 5 and zone[1:].isdigit():
            offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[0] == "-" else 1)
        elif not zone.isalpha():
            return None
    if not (day.isdigit() and hms[0:2].isdigit() and hms[3:5].isdigit() and hms[6:8].isdigit() and year.isdigit()):
        return None
    d, y, h, m, sec = int(day), int(year), int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
    if not (1 <= d <= calendar.monthrange(y, mon)[1] and h < 24 and m < 60 and sec < 61):
        return None
    return float(calendar.timegm((y, mon, d, h, m, sec, 0, 0, 0)) - offset)


def to_crlf(data: bytes) -> bytes:
    """Every line ends in CRLF: bare LF gets a CR, a last line without line end gets CRLF."""
    data = _BARE_LF.sub(b"\r\n", data) if b"\r" in data else data.replace(b"\n", b"\r\n")
    if data and not data.endswith(b"\n"):
        data += b"\r\n"
    return data


def unquote_from(data: bytes) -> bytes:
    """mboxrd: a line of one or more '>' then "From " loses one '>' (mboxo's single level too)."""
    i = data.find(b">From ")
    if i < 0:
        return data
    out = []
    last = 0
    while i >= 0:
        j = i
        while j > 0 and data[j - 1] == 62:  # '>'
            j -= 1
        if j == 0 or data[j - 1] == 10:  # only '>'s between line start and "From "
            out.append(data[last:j])
            last = j + 1
        i = data.find(b">From ", i + 6)
    out.append(data[last:])
    return b"".join(out)


def iter_mbox(stream: BinaryIO, chunk_size: int = CHUNK, max_size: int | None = None) -> Iterator[MboxMessage]:
    """Messages of an mbox stream, in order. An empty stream has none.

    With ``max_size``, a message whose input exceeds it raises :class:`MessageTooLarge` as soon
    as that much is read, so memory stays bounded by the limit plus one chunk.

    A line starting with "From " begins a new message only when the line before it is empty;
    that empty line stays in the previous message (mox quirk, docs/behaviour-notes.md §8.2: RFC 4155's default
    format treats it as framing; we keep it, as mox does, so imports match mox's).
    """
    buf = bytearray()
    eof = False
    while len(buf) < 5 and not eof:
        more = stream.read(chunk_size)
        eof = not more
        buf += more
    if not buf:
        return
    if not buf.startswith(b"From "):
        raise MboxError('first line does not start with "From "')
    start = 0  # start of the current separator line in buf
    line = 1
    while True:
        nl = buf.find(b"\n", start)
        while nl < 0 and not eof:
            eof = _refill(stream, buf, start, chunk_size)
            start = 0
            nl = buf.find(b"\n")
        content = len(buf) if nl < 0 else nl + 1
        search = content
        end = -1
        while True:
            k = buf.find(b"\nFrom ", search)
            if k >= 0:
                # The line before "From " must be empty: "\n" or "\r\n" right after a line end.
                if buf[k - 1] == 10 or (buf[k - 1] == 13 and k - 1 >= content and buf[k - 2] == 10):
                    end = k + 1
                    break
                search = k + 1
                continue
            if eof:
                break
            if max_size is not None and len(buf) - content > max_size:
                raise MessageTooLarge(line, max_size)
            shift, scanned = start, len(buf)
            eof = _refill(stream, buf, start, chunk_size)
            start = 0
            content -= shift
            search = max(content, scanned - shift - 5)
        last = end < 0
        if last:
            end = len(buf)
        from_line = bytes(buf[start:content]).rstrip(b"\r\n")
        lines = buf.count(b"\n", start, end)
        # One copy of the message out of the buffer (a memoryview slice copies nothing), then
        # the buffer drops it before the consumer gets the message: a big message is held
        # about twice while it is converted, and once while it is written.
        data = to_crlf(unquote_from(bytes(memoryview(buf)[content:end])))
        message = MboxMessage(data, line, from_line, end - start)
        del data
        if last:
            buf = bytearray()
        elif end > _KEEP:
            buf = buf[end:]
            end = 0
        yield message
        del message
        if last:
            return
        line += lines
        start = end


_KEEP = 4 * CHUNK  # a buffer holding a message larger than this is replaced by its rest


def _refill(stream: BinaryIO, buf: bytearray, start: int, size: int) -> bool:
    """Drop what was consumed before ``start``, append the next read; True at end of input.

    A bytearray grows in place (amortized), so a message arriving in many small reads from a
    pipe costs O(n), not O(n^2).
    """
    more = stream.read(size)
    if start:
        del buf[:start]
    buf += more
    return not more

"""Message bytes as they may go into the queue and onto the wire (pure, no I/O).

One rule for every message moxcli queues, whether an operator's file (`queue add`) or one
the engine composes (TLS and DMARC reports, DSNs): the bytes are *canonical*, meaning

- every line ends in CRLF, and CR and LF occur nowhere else (RFC 5321 §2.3.8: a bare CR or
  LF is not a line ending, and sending one is how SMTP smuggling works);
- no line is longer than 998 octets without its CRLF (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6);
- no NUL octet (neither 7bit nor 8bit MIME data may hold one, RFC 2045 §2.7-§2.8, RFC 6152 §3).

:func:`normalize` is the one conversion: a file whose lines *all* end in a bare LF (an
ordinary Unix file) gets CRLF line ends, as sendmail and ``mox sendmail`` do. Anything else
that is not canonical is refused with the byte offset and line number, never guessed at.

:func:`dot_stuff` (RFC 5321 §4.5.2) then only ever sees canonical data, so the sequence
``CRLF . CRLF`` can never occur inside what is sent after DATA.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from moxcli.values import dataclass

MAX_LINE = 998  # RFC 5322 2.1.1: octets per line, excluding the CRLF

_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


class MessageDataError(ValueError):
    """Message bytes that cannot be queued or sent; says where (0-based offset, 1-based line)."""

    def __init__(self, reason: str, offset: int, line: int) -> None:
        super().__init__(f"{reason} at byte offset {offset} (line {line})")
        self.reason = reason
        self.offset = offset
        self.line = line


def _check_lines(data: bytes, base_offset: int = 0, base_line: int = 1) -> None:
    """The line rules of :func:`check` for complete lines, at an offset/line into the message."""

    def fail(reason: str, at: int) -> MessageDataError:
        return MessageDataError(reason, base_offset + at, base_line + data.count(b"\n", 0, at))

    # Fast path in C: every CR starts a CRLF and every LF ends one.
    crlf = data.count(b"\r\n")
    if crlf != data.count(b"\r") or crlf != data.count(b"\n"):
        m = _BARE.search(data)
        assert m is not None
        if m.group() == b"\r":
            raise fail("bare CR", m.start())
        raise fail("bare LF (mixed with CRLF line ends)" if crlf else "bare LF", m.start())
    nul = data.find(b"\0")
    if nul >= 0:
        raise fail("NUL octet", nul)
    # Linear in C: a regex for "999 octets without CR/LF" rescans every line from each position.
    lines = data.split(b"\n")
    if max(map(len, lines)) > MAX_LINE:
        start = 0
        for line in lines:
            length = len(line) - line.endswith(b"\r")
            if length > MAX_LINE:
                raise fail(f"line longer than {MAX_LINE} octets ({length})", start)
            start += len(line) + 1


def check(data: bytes) -> None:
    """Raise :class:`MessageDataError` unless ``data`` is canonical (see module docstring).

    An empty message, or one without a final CRLF, is refused too: the terminating
    ``CRLF . CRLF`` of DATA must follow a complete line (RFC 5321 §4.1.1.4).
    """
    if not data:
        raise MessageDataError("empty message", 0, 1)
    _check_lines(data)
    if not data.endswith(b"\r\n"):
        raise MessageDataError("no CRLF at the end of the last line", len(data), data.count(b"\n") + 1)


def normalize(data: bytes) -> bytes:
    """The canonical form of a message file, or :class:`MessageDataError`.

    Converted: input without any CRLF gets LF -> CRLF, and a last line without any line end
    gets one. Refused: a bare CR, CRLF mixed with bare LF, NUL, over-long lines: there is no safe
    guess at what such bytes were meant to be.
    """
    converted = b"\r\n" not in data  # a bare CR in such a file is then reported as itself
    if converted:
        data = data.replace(b"\n", b"\r\n")
    if data and not data.endswith((b"\r", b"\n")):
        data += b"\r\n"
    try:
        check(data)
    except MessageDataError as exc:
        if converted:
            # Report the offset in the file as given: each line before gained one CR.
            raise MessageDataError(exc.reason, exc.offset - (exc.line - 1), exc.line) from None
        raise
    return data


def is_8bit(data: bytes) -> bool:
    """True if the message has octets above 127 (header or body) and so needs 8BITMIME
    (RFC 6152 §3) or SMTPUTF8."""
    return not data.isascii()


def dot_stuff(data: bytes) -> bytes:
    """Canonical data as sent after DATA, terminator included (RFC 5321 §4.5.2).

    Refuses data that is not canonical: a ``CRLF . CRLF`` could otherwise appear inside it.
    """
    check(data)
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class DotStuffer:
    """:func:`dot_stuff` for data that arrives in chunks (a queue file streamed from disk).

    ``feed`` returns the stuffed complete lines seen so far (a partial last line is kept, at
    most 1,000 octets since longer lines are refused); ``end`` returns the terminator. The
    checks of :func:`check` apply across chunk boundaries.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._offset = 0  # offset of _rest in the message
        self._line = 1  # line number of _rest

    def feed(self, chunk: bytes) -> bytes:
        buf = self._rest + chunk
        cut = buf.rfind(b"\n") + 1
        lines, self._rest = buf[:cut], buf[cut:]
        if len(self._rest) > MAX_LINE + 1:
            _check_lines(self._rest, self._offset + cut, self._line + lines.count(b"\n"))
        if not lines:
            return b""
        _check_lines(lines, self._offset, self._line)
        self._offset += cut
        self._line += lines.count(b"\n")
        if lines.startswith(b"."):
            lines = b"." + lines
        return lines.replace(b"\r\n.", b"\r\n..")

    def end(self) -> bytes:
        if self._rest:
            _check_lines(self._rest, self._offset, self._line)
            raise MessageDataError("no CRLF at the end of the last line", self._offset + len(self._rest), self._line)
        if self._offset == 0:
            raise MessageDataError("empty message", 0, 1)
        return b".\r\n"


def stuff_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Dot-stuffed output of a chunked message, terminator last (see :class:`DotStuffer`)."""
    s = DotStuffer()
    for c in chunks:
        out = s.feed(c)
        if out:
            yield out
    yield s.end()


_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")  # RFC 5322 3.6.8 field-name (obs: WSP before ":")


@dataclass(frozen=True)
class Completed:
    """A message with the header fields a submission agent adds (see :func:`complete_header`)."""

    data: bytes
    added: tuple[str, ...]  # names of the fields added, in order
    separator_added: bool  # an empty line was put between header and body


def complete_header(data: bytes, *, hostname: str, date: str, message_id: str, received: str) -> Completed:
    """Add ``Date:`` and ``Message-ID:`` when the header has none (RFC 6409 §8.2-§8.3) and
    prepend the ``Received:`` line of this hop (RFC 5321 §4.4). ``data`` must be canonical.

    The header is the run of header field lines at the start. When it ends on a line that
    is neither a field nor empty (a file that starts with text), an empty line is inserted
    there, as sendmail does, so that the text stays body and the new fields stay header.
    """
    names: set[bytes] = set()
    pos, end, need_sep = 0, len(data), False
    while pos < len(data):
        eol = data.index(b"\r\n", pos)
        line = data[pos:eol]
        if not line:
            end = pos
            break
        if line[:1] in (b" ", b"\t") and names:
            pos = eol + 2
            continue
        m = _FIELD.match(line)
        if m is None:
            end, need_sep = pos, True
            break
        names.add(m.group(1).lower())
        pos = eol + 2
    add: list[tuple[str, str]] = []
    if b"date" not in names:
        add.append(("Date", date))
    if b"message-id" not in names:
        add.append(("Message-ID", f"<{message_id}@{hostname}>"))
    fields = "".join(f"{n}: {v}\r\n" for n, v in add).encode()
    out = f"Received: {received}\r\n".encode() + data[:end] + fields + (b"\r\n" if need_sep else b"") + data[end:]
    return Completed(out, ("Received", *(n for n, _ in add)), need_sep)

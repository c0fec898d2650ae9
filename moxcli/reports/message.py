"""Report e-mail composition exactly as mox writes it (docs/behaviour-notes.md §0.5, §2.7, §6.6); reused by DMARC.

Pure: no I/O. Everything is bytes with CRLF line endings.

- ``compose_report_message(...) -> bytes``: a two-part multipart message (human-readable
  text, then a base64 attachment), headers in the caller's order.
- ``address_header(name, addresses)``, ``subject_header(text, smtputf8=False)``: folded at
  77 characters as §0.5 describes.
- ``text_part_headers(text) -> (headers, body)``: charset and transfer encoding of §0.5.
- ``quoted_printable(data)``, ``base64_lines(data)``, ``format_date(t)``, ``message_id(host)``,
  ``random_boundary()``, ``media_param(value)`` (quoted only outside the RFC 2045 token set).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence

from moxcli import __version__

USER_AGENT = f"moxcli/{__version__}"
LINE_LIMIT = 77
_TSPECIALS = set('()<>@,;:\\"/[]?=')


def format_date(t: float | None = None) -> str:
    """``D Mon YYYY HH:MM:SS ±hhmm`` in local time (docs/behaviour-notes.md §0.3): day without leading
    zero, no weekday."""
    lt = time.localtime(time.time() if t is None else t)
    off = lt.tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{lt.tm_mday} {time.strftime('%b %Y %H:%M:%S', lt)} {sign}{off // 60:02d}{off % 60:02d}"


def message_id(hostname: str) -> str:
    """``<RANDOM@HOST>``: base64url of 16 random bytes, no padding (docs/behaviour-notes.md §0.4)."""
    return f"<{base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b'=').decode()}@{hostname}>"


def random_boundary() -> str:
    """60 hex characters (docs/behaviour-notes.md §0.5)."""
    return secrets.token_hex(30)


def media_param(value: str) -> str:
    """A media type parameter value: quoted only when it holds non-token characters (RFC 2045 §5.1)."""
    if value and all(33 <= ord(c) < 127 and c not in _TSPECIALS for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def address_header(name: str, addresses: Sequence[str]) -> bytes:
    """``Name: <a>, <b>``; an address that would make the line exceed 77 chars starts a new ``CRLF TAB`` line."""
    line = f"{name}:"
    out = []
    for i, addr in enumerate(addresses):
        word = f"<{addr}>" + ("," if i < len(addresses) - 1 else "")
        if i > 0 and len(line) + 1 + len(word) > LINE_LIMIT:
            out.append(line)
            line = "\t" + word
        else:
            line += " " + word
    out.append(line)
    return ("\r\n".join(out) + "\r\n").encode()


def _q_word(word: str) -> str:
    # RFC 2047 §4.2 "Q" encoding; printable ASCII other than "=?_" stays literal (as Go's mime).
    enc = []
    for b in word.encode("utf-8"):
        if 33 <= b <= 126 and chr(b) not in "=?_":
            enc.append(chr(b))
        elif b == 32:
            enc.append("_")
        else:
            enc.append(f"={b:02X}")
    return "=?utf-8?q?" + "".join(enc) + "?="


def subject_header(text: str, smtputf8: bool = False) -> bytes:
    """``Subject: ...`` split on spaces; non-ASCII words Q-encoded unless SMTPUTF8; folded at 77."""
    line = "Subject:"
    out = []
    for word in text.split(" "):
        if not word.isascii() and not smtputf8:
            word = _q_word(word)
        if len(line) + 1 + len(word) > LINE_LIMIT and line.strip() != "Subject:":
            out.append(line + " ")
            line = "\t" + word
        else:
            line += " " + word
    out.append(line)
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7 quoted-printable of CRLF text; soft line breaks keep lines at 76 chars."""
    out_lines = []
    for line in data.split(b"\r\n"):
        enc: list[str] = []
        for i, b in enumerate(line):
            last = i == len(line) - 1
            if (33 <= b <= 126 and b != 61) or (b in (9, 32) and not last):
                enc.append(chr(b))
            else:
                enc.append(f"={b:02X}")
        cur = ""
        parts = []
        for tok in enc:
            if len(cur) + len(tok) > 75:
                parts.append(cur + "=")
                cur = ""
            cur += tok
        parts.append(cur)
        out_lines.append("\r\n".join(parts))
    return "\r\n".join(out_lines).encode("ascii")


def base64_lines(data: bytes) -> bytes:
    """Standard base64 with padding, 76-char lines, every line (also the last) ending CRLF."""
    enc = base64.b64encode(data)
    return b"".join(enc[i : i + 76] + b"\r\n" for i in range(0, len(enc), 76))


def text_part_headers(text: str) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and encoded body of a text part (docs/behaviour-notes.md §0.5).

    LF becomes CRLF with a final newline; charset us-ascii unless non-ASCII (utf-8);
    quoted-printable when a line exceeds 76 chars, else 8bit for utf-8, else 7bit.
    """
    if not text.endswith("\n"):
        text += "\n"
    raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    charset = "us-ascii" if text.isascii() else "utf-8"
    long_line = any(len(line) > 76 or b"\r" in line or b"\n" in line for line in raw.split(b"\r\n"))
    if long_line:
        cte, body = "quoted-printable", quoted_printable(raw)
    else:
        cte, body = ("8bit" if charset == "utf-8" else "7bit"), raw
    return [("Content-Transfer-Encoding", cte), ("Content-Type", f"text/plain; charset={charset}")], body


def _part(headers: list[tuple[str, str]], body: bytes) -> bytes:
    # Part headers sorted alphabetically by name (docs/behaviour-notes.md §0.5).
    head = "".join(f"{k}: {v}\r\n" for k, v in sorted(headers))
    return head.encode() + b"\r\n" + body


def compose_report_message(
    *,
    from_addr: str,
    to_addrs: Sequence[str],
    subject: str,
    extra_headers: Sequence[tuple[str, str]],
    hostname: str,
    content_type: str,
    text: str,
    attachment: bytes,
    attachment_type: str,
    filename: str,
    date: float | None = None,
    msg_id: str | None = None,
    boundary: str | None = None,
    smtputf8: bool = False,
) -> bytes:
    """A report message: From, To, Subject, ``extra_headers``, Message-Id, Date, User-Agent,
    MIME-Version, Content-Type (``content_type`` + boundary); then the text part and the
    base64 attachment ``filename`` of type ``attachment_type`` (docs/behaviour-notes.md §2.7 / §6.6).

    TLS: content_type ``multipart/report; report-type="tlsrpt"``, attachment_type
    ``application/tlsrpt+gzip``, extra headers TLS-Report-Domain, TLS-Report-Submitter,
    TLS-Required. DMARC: ``multipart/mixed``, ``application/gzip``, no extra headers.
    """
    b = boundary or random_boundary()
    head = (
        address_header("From", [from_addr]) + address_header("To", list(to_addrs)) + subject_header(subject, smtputf8)
    )
    rest = [
        *list(extra_headers),
        ("Message-Id", msg_id or message_id(hostname)),
        ("Date", format_date(date)),
        ("User-Agent", USER_AGENT),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'{content_type}; boundary="{b}"'),
    ]
    head += "".join(f"{k}: {v}\r\n" for k, v in rest).encode("utf-8")
    text_headers, text_body = text_part_headers(text)
    fname = media_param(filename)
    att_headers = [
        ("Content-Disposition", f"attachment; filename={fname}"),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Type", f"{attachment_type}; name={fname}"),
    ]
    delim = f"--{b}\r\n".encode()
    body = (
        delim
        + _part(text_headers, text_body)
        + b"\r\n"
        + delim
        + _part(att_headers, base64_lines(attachment))
        + f"\r\n--{b}--\r\n".encode()
    )
    return head + b"\r\n" + body

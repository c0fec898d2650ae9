"""A quick read of a report message's MIME structure, deciding exactly as the email package.

Importing report mail spends most of its time in the email package: its feed parser runs
every line of every part through its general machinery, and each ``get_param`` re-parses the
header (about 0.2 ms per report message, where mox needs 0.2 ms for the whole report). Report
mail is one MIME level: the message is the report, or a multipart whose parts are leaves. This
module reads such a message with a few byte operations and gives parts that answer the
questions the report parsers ask (``get``, ``get_content_type``, ``get_param``,
``get_payload(decode=True)``, ``is_multipart``) exactly as an ``email.message.Message`` parsed
with ``policy.compat32`` does, including its quirks (first field of a name wins, parameter
values unquoted twice for the boundary, a ``Content-Transfer-Encoding`` with trailing space
not decoded). ``scan`` answers only for messages it can decide that way and returns None for
anything else (lines not ending in CRLF, non-ASCII or unusual header lines, RFC 2231
parameters, backslash escapes, nested multiparts, ``message/*`` parts, uuencode, a multipart
without a plain close delimiter): the caller then parses with the email package.
tests/test_mimescan.py compares the two on generated messages. Pure: no I/O.
"""

from __future__ import annotations

import importlib
import quopri
import re
from collections.abc import Callable
from typing import Any

# Message.get_payload's own base64 decoder (liberal about padding and stray characters); the
# module ships no type stub.
_decode_b: Callable[[bytes], tuple[bytes, list[Any]]] = importlib.import_module("email._encoded_words").decode_b

# email.feedparser.headerRE without "From " (a unix-from line is left to the email package):
# a field is a name of printable ASCII but ":", a ":", and lines that start with space or tab.
_NAME = r"[\x21-\x39\x3b-\x7e]+"
_HEAD = re.compile(rf"{_NAME}:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n{_NAME}:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*)*")
# compat32's value (header_source_parse): after the colon, left-stripped, with its continuation
# lines and their line breaks, without the final line break.
_FIELD = re.compile(rf"^({_NAME}):[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.M)
_UUENCODE = ("x-uuencode", "uuencode", "uue", "x-uue")
MAX_PARTS = 200
# The email package splits a header's parameters in time that grows faster than the field's
# length (a Content-Type of 20,000 quoted parameters takes 0.5 s); a report's header fields are
# short, so a longer field (with its continuation lines) is refused rather than handed to it.
MAX_FIELD = 16384
_LONG_FIELD = re.compile(rf"^({_NAME}):[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.M)


def overlong_field(data: bytes, limit: int = MAX_FIELD) -> str | None:
    """The name of the first header-like field (a name, a colon, continuation lines) in the
    message or any of its parts that is longer than ``limit`` bytes, else None."""
    text = data.decode("latin-1")
    for m in _LONG_FIELD.finditer(text):
        if m.end() - m.start() > limit:
            return m.group(1)
    return None


def _unquote(value: str) -> str:
    """email.utils.unquote for values without backslashes (the only ones scanned)."""
    if len(value) > 1 and ((value[0] == '"' and value[-1] == '"') or (value[0] == "<" and value[-1] == ">")):
        return value[1:-1]
    return value


def _params(value: str) -> list[tuple[str, str]] | None:
    """(name, value) of a Content-Type value as email.message's _parseparam and
    _get_params_preserve split it; the first pair is the type itself. None for what this
    module does not decide (backslashes, RFC 2231 names with "*")."""
    if "\\" in value:
        return None
    segments = value.split(";")
    if any(seg.count('"') % 2 for seg in segments):
        segments = _quoted_split(value)
    out: list[tuple[str, str]] = []
    for i, f in enumerate(segments):
        name, eq, val = f.partition("=")
        if eq:
            name = name.strip().lower()
            if i and "*" in name:
                return None
            out.append((name, val.strip()))
        else:
            out.append((f.strip(), ""))
    return out


_SEMICOLON_OR_QUOTE = re.compile(r'[;"]')


def _quoted_split(value: str) -> list[str]:
    """email.message._parseparam's split at ";" outside quotes (a ";" after an even number of
    quotes), in one pass: _parseparam counts the quotes again for every ";", which takes
    minutes for a hostile value of many quoted semicolons."""
    out = []
    start = quotes = 0
    for m in _SEMICOLON_OR_QUOTE.finditer(value):
        if m.group() == '"':
            quotes += 1
        elif quotes % 2 == 0:
            out.append(value[start : m.start()])
            start = m.end()
    out.append(value[start:])
    return out


class Part:
    """One part (or the message itself) with the email.message.Message methods the report
    parsers use, answering as compat32 does."""

    __slots__ = ("_body", "_fields", "_params", "_parts", "_type")

    def __init__(
        self,
        fields: dict[str, str],
        body: bytes,
        params: list[tuple[str, str]] | None,
        parts: list[Part] | None = None,
    ) -> None:
        self._fields = fields
        self._body = body
        # Of Content-Type ([] without one); None: not split yet (scan made sure _params decides
        # it), split when a parameter is asked for: most parts are never asked.
        self._params = params
        self._parts = parts
        value = fields.get("content-type")
        ctype = "text/plain" if value is None else value.partition(";")[0].strip().lower()
        self._type = ctype if ctype.count("/") == 1 else "text/plain"

    def get(self, name: str, failobj: str | None = None) -> str | None:
        return self._fields.get(name.lower(), failobj)

    def is_multipart(self) -> bool:
        return self._parts is not None

    def get_content_type(self) -> str:
        return self._type

    def get_content_maintype(self) -> str:
        return self._type.partition("/")[0]

    def get_content_subtype(self) -> str:
        return self._type.partition("/")[2]

    def get_param(self, param: str) -> str | None:
        params = self._params
        if params is None:
            value = self._fields.get("content-type")
            params = self._params = [] if value is None else _params(value) or []
        param = param.lower()
        for k, v in params:
            if k.lower() == param:
                # decode_params unquotes and quotes again, get_param unquotes: once in all.
                return _unquote(v)
        return None

    def get_payload(self, decode: bool = False) -> list[Part] | bytes | None:
        """The parts of a multipart; a leaf's body, decoded by its Content-Transfer-Encoding."""
        if self._parts is not None:
            return None if decode else self._parts
        cte = self._fields.get("content-transfer-encoding", "").lower()
        if cte == "quoted-printable":
            return quopri.decodestring(self._body)
        if cte == "base64":
            # The email package joins the body's splitlines(); scan took only messages whose
            # line breaks are all CRLF, so taking those out is the same.
            value, _defects = _decode_b(self._body.replace(b"\r\n", b""))
            return bytes(value)
        return self._body


def _decided(ctype: str | None) -> list[tuple[str, str]] | bool:
    """Whether _params decides a Content-Type value (True, or its parameters when they had to
    be split to tell), or False. Only a backslash or an RFC 2231 "*" can make it decline."""
    if ctype is None or ("\\" not in ctype and "*" not in ctype):
        return True
    params = _params(ctype)
    return False if params is None else params


def _fields(head: bytes) -> dict[str, str] | None:
    """Header fields (RFC 5322 §2.2; first of each name) as compat32 gives their values; None
    when a line is not a plain field or continuation (RFC 5322 §2.2.3 folding), or the block
    is not ASCII. Line breaks are CRLF only (scan checked)."""
    if not head.isascii():
        return None
    text = head.decode("ascii")
    found = _FIELD.findall(text)
    # Every line must be a field's first line (one per field found) or a continuation line
    # (space or tab after a line break): what _HEAD matches, counted instead of matched again.
    lines = text.count("\r\n") + 1
    if len(found) != lines - text.count("\r\n ") - text.count("\r\n\t") or text[:1] in (" ", "\t"):
        return None
    return {name.lower(): value for name, value in reversed(found)}  # the first of a name wins


def _split(data: bytes) -> tuple[dict[str, str], bytes] | None:
    if data[:2] == b"\r\n":
        return {}, data[2:]
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    fields = _fields(head)
    return None if fields is None else (fields, body)


def _multipart_bodies(body: bytes, boundary: str) -> list[bytes] | None:
    """The body parts of a multipart body (RFC 2046 §5.1.1), or None unless every delimiter
    line is plain (optional trailing space) and a close delimiter ends the last part."""
    delim = b"\r\n--" + boundary.encode("ascii")
    segments = (b"\r\n" + body).split(delim)
    parts: list[bytes] = []
    for seg in segments[1:]:
        nl = seg.find(b"\r\n")
        line = seg if nl < 0 else seg[:nl]
        if line[:2] == b"--":
            return parts if parts and not line[2:].strip(b" \t") else None
        if nl < 0 or line.strip(b" \t"):
            return None
        parts.append(seg[nl + 2 :])
    return None


def _leaf(fields: dict[str, str], body: bytes) -> Part | None:
    decided = _decided(fields.get("content-type"))
    if decided is False:
        return None
    leaf = Part(fields, body, None if decided is True else decided)
    if leaf._type.startswith(("multipart/", "message/")):
        return None
    cte = fields.get("content-transfer-encoding")
    if cte is not None and cte.lower() in _UUENCODE:
        return None
    return leaf


def scan(data: bytes, crlf_checked: bool = False) -> Part | None:
    """The message as a Part whose answers are the email package's (compat32), or None when
    this module does not decide it (see the module docstring). ``crlf_checked``: the caller
    has made sure that every CR and LF is part of a CRLF."""
    if not crlf_checked:
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            return None
    split = _split(data)
    if split is None:
        return None
    fields, body = split
    decided = _decided(fields.get("content-type"))
    if decided is False:
        return None
    top = Part(fields, body, None if decided is True else decided)
    if not top._type.startswith("multipart/"):
        return _leaf(fields, body)
    if top.get_content_type() == "multipart/digest":
        return None  # digest parts default to message/rfc822
    boundary = top.get_param("boundary")
    if boundary is None:
        return None
    boundary = _unquote(boundary).rstrip()
    if not boundary or not boundary.isascii():
        return None
    bodies = _multipart_bodies(body, boundary)
    if bodies is None or len(bodies) > MAX_PARTS:
        return None
    parts: list[Part] = []
    for b in bodies:
        psplit = _split(b)
        if psplit is None:
            return None
        leaf = _leaf(*psplit)
        if leaf is None:
            return None
        parts.append(leaf)
    top._parts = parts
    return top

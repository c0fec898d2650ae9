"""The ``_mta-sts`` TXT record (RFC 8461 §3.1): parse and format. Pure: no I/O.

Parsing follows mox (docs/behaviour-notes.md §4.1), liberal where mox is (``v=STSv1 ;`` and keys starting with
``-``/``.`` are accepted) and strict where mox is (a repeated ``id`` is an error). Formatting
follows the RFC.
"""

from __future__ import annotations

from typing import Any

from moxcli.txtscan import TXTScanner
from moxcli.values import dataclass

VERSION = "STSv1"

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class RecordParseError(ValueError):
    """Not a valid MTA-STS record; ``is_mtasts`` is False when the text is another kind of
    TXT record (it does not start with ``v=STSv1`` and a ``;`` delimiter)."""

    def __init__(self, msg: str, is_mtasts: bool) -> None:
        super().__init__(msg)
        self.is_mtasts = is_mtasts


@dataclass(frozen=True)
class Record:
    version: str
    id: str
    extensions: tuple[tuple[str, str], ...] = ()

    def format(self) -> str:
        return "; ".join([f"v={self.version}", f"id={self.id}"] + [f"{k}={v}" for k, v in self.extensions])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "id": self.id,
            "extensions": [{"key": k, "value": v} for k, v in self.extensions],
        }


class _Parser(TXTScanner):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.is_mtasts = False

    def error(self, msg: str) -> RecordParseError:
        where = self.position()
        return RecordParseError(msg + where, self.is_mtasts)

    def run(self, charset: frozenset[str], first_underscore: bool, limit: int, what: str) -> str:
        start = self.o
        while self.o < len(self.s) and self.o - start < limit:
            c = self.s[self.o]
            if c in charset or (first_underscore and c == "_" and self.o > start):
                self.o += 1
            else:
                break
        if self.o == start:
            raise self.error(f"expected {what}")
        return self.s[start : self.o]


def parse_record(text: str) -> Record:
    """Parse an ``_mta-sts`` TXT record; raises RecordParseError."""
    p = _Parser(text)
    if not p.take("v=" + VERSION) or not p.delim():
        raise p.error(f"not an MTA-STS record: does not start with 'v={VERSION};'")
    p.is_mtasts = True
    record_id = ""
    extensions: list[tuple[str, str]] = []
    while True:
        # mox quirk (accepted): keys may start with "-" or "."; RFC 8461 §3.1 wants alphanumeric.
        k = p.run(_KEY_CHARS, True, 32, "a key")
        if not p.take("="):
            raise p.error(f"expected '=' after key {k!r}")
        if k == "id":
            if record_id:
                # mox quirk: the RFC (§3.2 last paragraph) says to ignore a repeated field;
                # mox leaves its value unparsed, which makes the record invalid. We agree
                # with mox so that a policy is never applied where mox would apply none.
                raise p.error("repeated id field")
            # RFC 8461 §3.1 sts-id = 1*32(ALPHA / DIGIT)
            record_id = p.run(_ALNUM, False, 32, "an id of letters and digits")
            if not p.empty() and p.s[p.o] in _ALNUM:
                raise p.error("id longer than 32 characters")
        else:
            extensions.append((k, p.ext_value()))
        if not p.delim() or p.empty():
            break
    if not p.empty():
        raise p.error("leftover characters")
    if not record_id:
        raise RecordParseError("missing id", True)
    return Record(VERSION, record_id, tuple(extensions))

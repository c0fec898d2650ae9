"""A cursor over the text of a `key=value; ...` TXT record. Pure: no I/O.

TLSRPT (RFC 8460 §3) and MTA-STS (RFC 8461 §3.1) records share this lexical shape; each
record parser subclasses the scanner and adds its own grammar and error type.
"""

from __future__ import annotations


class TXTScanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.o = 0

    def empty(self) -> bool:
        return self.o >= len(self.s)

    def peek(self, c: str) -> bool:
        return self.s.startswith(c, self.o)

    def take(self, c: str) -> bool:
        if self.peek(c):
            self.o += len(c)
            return True
        return False

    def wsp(self) -> None:
        while self.o < len(self.s) and self.s[self.o] in " \t":
            self.o += 1

    def delim(self) -> bool:
        """``*WSP ";" *WSP``: field-delim of RFC 8460 §3 and sts-field-delim of RFC 8461 §3.1."""
        start = self.o
        self.wsp()
        if self.take(";"):
            self.wsp()
            return True
        self.o = start
        return False

    def ext_value(self) -> str:
        """An extension value: RFC 8460 §3 tlsrpt-ext-value and RFC 8461 §3.1 sts-ext-value,
        both ``1*(%x21-3A / %x3C / %x3E-7E)``."""
        start = self.o
        while self.o < len(self.s) and 0x21 <= ord(self.s[self.o]) <= 0x7E and self.s[self.o] not in "=;":
            self.o += 1
        if self.o == start:
            raise self.error("expected an extension value")
        return self.s[start : self.o]

    def error(self, msg: str) -> Exception:
        """The parser's own exception for ``msg`` at the current position."""
        raise NotImplementedError

    def position(self) -> str:
        return f" at position {self.o}" if self.o < len(self.s) else " at end"

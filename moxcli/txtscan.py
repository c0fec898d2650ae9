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

    def position(self) -> str:
        return f" at position {self.o}" if self.o < len(self.s) else " at end"

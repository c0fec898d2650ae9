"""TLSRPT DNS records (RFC 8460 §3): parse, format, lint. Pure: no I/O.

Parsing follows mox byte by byte (docs/behaviour-notes.md §1.2), including its quirks: we are liberal in what
we accept from DNS (a space before ``;``, keys starting with ``-`` or ``.``) and the lint
warnings tell the operator where a stricter receiver would disagree. Formatting follows the
RFC (it is what we publish).
"""

from __future__ import annotations

from moxcli.jsonfmt import Finding
from moxcli.txtscan import TXTScanner

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

VERSION = "TLSRPTv1"

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_HEX = frozenset("0123456789abcdefABCDEF")


class ParseError(ValueError):
    """The text is not a valid TLSRPT record.

    ``is_tlsrpt`` is False when the text did not even get past ``v=TLSRPTv1`` and a ``;``
    delimiter: such TXT strings are other records and are skipped by lookups (docs/behaviour-notes.md §1.1).
    """

    def __init__(self, msg: str, is_tlsrpt: bool) -> None:
        super().__init__(msg)
        self.is_tlsrpt = is_tlsrpt


class NotTLSRPT(ParseError):
    """The TXT string is not a TLSRPT record at all."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, False)


class Record:
    """A parsed record. ``ruas`` keeps every ``rua=`` field as its own list (RFC 8460 §3
    allows the field to repeat); ``rua`` is all of them flattened, in order.

    ``invalid_rua`` holds (uri, problem) for each URI that does not parse: it is left out of
    ``ruas`` so that reports still go to the good addresses (as mox sends to every address
    it can parse); the lint reports each one as an error.

    Immutable and hashable like the frozen dataclass it was (``invalid_rua`` does not take
    part in ``==``); written out because importing dataclasses costs more start-up than
    `check tlsrpt --record` may take (docs/development.md, Start-up)."""

    version: str
    ruas: tuple[tuple[str, ...], ...]
    extensions: tuple[tuple[str, str], ...]
    invalid_rua: tuple[tuple[str, str], ...]

    def __init__(
        self,
        version: str = VERSION,
        ruas: tuple[tuple[str, ...], ...] = (),
        extensions: tuple[tuple[str, str], ...] = (),
        invalid_rua: tuple[tuple[str, str], ...] = (),
    ) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "ruas", ruas)
        object.__setattr__(self, "extensions", extensions)
        object.__setattr__(self, "invalid_rua", invalid_rua)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a Record")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a Record")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.version, self.ruas, self.extensions) == (other.version, other.ruas, other.extensions)

    def __hash__(self) -> int:
        return hash((self.version, self.ruas, self.extensions))

    def __repr__(self) -> str:
        return (
            f"Record(version={self.version!r}, ruas={self.ruas!r}, extensions={self.extensions!r}, "
            f"invalid_rua={self.invalid_rua!r})"
        )

    @property
    def rua(self) -> list[str]:
        return [u for lst in self.ruas for u in lst]

    def format(self) -> str:
        """The record text as we publish it: no trailing ``;`` (docs/behaviour-notes.md §1.2)."""
        parts = [f"v={self.version}"]
        parts += ["rua=" + ",".join(encode_uri(u) for u in lst) for lst in self.ruas]
        parts += [f"{k}={v}" for k, v in self.extensions]
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ruas": [list(lst) for lst in self.ruas],
            "extensions": [{"key": k, "value": v} for k, v in self.extensions],
            "invalid_rua": [{"uri": u, "problem": pr} for u, pr in self.invalid_rua],
        }


def encode_uri(uri: str) -> str:
    """RFC 8460 §3: ``,`` ``!`` and ``;`` inside a URI must be percent-encoded in the record."""
    return uri.replace(",", "%2C").replace("!", "%21").replace(";", "%3B")


def uri_scheme(uri: str) -> str:
    """The lower-cased scheme of a URI that parsed (``mailto``, ``https``, ...)."""
    return uri.split(":", 1)[0].lower()


class _Parser(TXTScanner):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.is_tlsrpt = False

    def error(self, msg: str) -> ParseError:
        where = self.position()
        if not self.is_tlsrpt:
            return NotTLSRPT(msg + where)
        return ParseError(msg + where, True)

    def key(self) -> str:
        # RFC 8460 §3 wants an alphanumeric first character. mox quirk (accepted when
        # parsing): "-" and "." may start a key; "_" may not. At most 32 characters.
        start = self.o
        while self.o < len(self.s) and self.o - start < 32:
            c = self.s[self.o]
            if c in _KEY_CHARS or (c == "_" and self.o > start):
                self.o += 1
            else:
                break
        if self.o == start:
            raise self.error("expected a key")
        return self.s[start : self.o]

    def uri(self) -> tuple[str, str | None, int]:
        """The next URI, why it does not parse (None if it does), and where it starts."""
        start = self.o
        while self.o < len(self.s) and self.s[self.o] not in ",! \t;":
            self.o += 1
        text = self.s[start : self.o]
        if not text:
            raise self.error("expected a URI")
        return text, uri_problem(text), start

    def uri_list(self, invalid: list[tuple[str, str, int]]) -> tuple[str, ...]:
        # RFC 8460 §3: tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri). The extent of a URI is known
        # without parsing it, so a bad one is set aside (``invalid``) and the list goes on.
        uris: list[str] = []
        while True:
            text, problem, start = self.uri()
            if problem:
                invalid.append((text, problem, start))
            else:
                uris.append(text)
            mark = self.o
            self.wsp()
            if not self.take(","):
                self.o = mark
                break
            self.wsp()
        self.wsp()
        return tuple(uris)


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a usable URI (None if it is): like Go's url.Parse, which mox uses,
    plus the scheme mox requires."""
    for c in uri:
        if ord(c) < 0x20 or ord(c) == 0x7F:
            return "control character"
    i = uri.find("%")
    while i >= 0:
        if len(uri) < i + 3 or uri[i + 1] not in _HEX or uri[i + 2] not in _HEX:
            return "invalid percent-escape"
        i = uri.find("%", i + 3)
    # RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" (no re: start-up)
    scheme, colon, rest = uri.partition(":")
    if not (colon and scheme[:1].isascii() and scheme[:1].isalpha() and _SCHEME_CHARS.issuperset(scheme)):
        if "@" in uri and ":" not in uri:
            return "no scheme (an e-mail address needs mailto: in front)"
        return "no scheme"
    if rest.startswith("//"):
        import re

        host = re.split(r"[/?#]", rest[2:], maxsplit=1)[0].rpartition("@")[2]
        if host.startswith("["):
            if "]" not in host:
                return "missing ']' in host"
            host = host[host.index("]") + 1 :]
            if host and not host.startswith(":"):
                return "invalid host"
        _, colon, port = host.rpartition(":")
        if colon and not port.isdigit() and port:
            return f"invalid port {port!r}"
    return None


def parse_record(text: str) -> Record:
    """Parse a TLSRPT TXT record (RFC 8460 §3, docs/behaviour-notes.md §1.2).

    Raises NotTLSRPT if the text is not a TLSRPT record at all, ParseError (with
    ``is_tlsrpt`` True) for a TLSRPT record with a syntax error.
    """
    p = _Parser(text)
    # RFC 8460 §3: the version is case-sensitive ("%s" in the ABNF).
    if not p.take("v=" + VERSION):
        raise p.error(f"does not start with v={VERSION}")
    if not p.delim():
        raise p.error(f"expected ';' after v={VERSION}")
    p.is_tlsrpt = True
    ruas: list[tuple[str, ...]] = []
    extensions: list[tuple[str, str]] = []
    invalid: list[tuple[str, str, int]] = []
    seen_rua = False
    while True:
        k = p.key()
        if not p.take("="):
            raise p.error(f"expected '=' after key {k!r}")
        if k == "rua":
            seen_rua = True
            uris = p.uri_list(invalid)
            if uris:
                ruas.append(uris)
        else:
            # RFC 8460 §3: unknown fields SHALL be ignored; we keep them to show them.
            extensions.append((k, p.ext_value()))
        if not p.delim() or p.empty():
            break
    if not p.empty():
        raise p.error("leftover characters")
    if not ruas:
        if seen_rua and invalid:
            # Not one address is usable: the record is as good as broken (mox rejects it too).
            text, problem, start = invalid[0]
            p.o = start
            raise p.error(f"invalid URI {text!r}: {problem}")
        raise ParseError("missing rua", True)
    return Record(VERSION, tuple(ruas), tuple(extensions), tuple((t, pr) for t, pr, _ in invalid))


def lint(text: str, record: Record) -> tuple[list[Finding], list[Finding]]:
    """Findings about a record that parsed: (errors, warnings).

    Errors mean no sender can deliver a report to it; warnings mean some senders or strict
    parsers will disagree with it.
    """
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if not text.startswith(f"v={VERSION};"):
        warnings.append(
            Finding(
                "version-not-first",
                f"record does not start with exactly 'v={VERSION};': RFC 8460 §3 has receivers discard such "
                "records when the name has other TXT records (mox accepts it)",
            )
        )
    for k, _ in record.extensions:
        if not k[0].isalnum():
            warnings.append(
                Finding(
                    "bad-extension-key",
                    f"key {k!r} does not start with a letter or digit (RFC 8460 §3); strict parsers reject the record",
                )
            )
        else:
            warnings.append(Finding("unknown-field", f"unknown field {k!r} is ignored by senders"))
    if len(record.ruas) > 1:
        warnings.append(
            Finding(
                "several-rua-fields",
                "several rua= fields: some senders use only the first; "
                "list all addresses in one rua= separated by commas",
            )
        )
    for uri, problem in record.invalid_rua:
        errors.append(
            Finding(
                "rua-invalid-uri", f"rua {uri!r}: invalid URI: {problem}; senders skip it and use the other addresses"
            )
        )
    usable = 0
    for uri in record.rua:
        scheme = uri_scheme(uri)
        if scheme == "mailto":
            addr = uri[len("mailto:") :].split("?", 1)[0]
            if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
                errors.append(Finding("rua-not-an-address", f"rua {uri!r}: not an e-mail address"))
                continue
            usable += 1
        elif scheme == "https":
            usable += 1
            warnings.append(
                Finding(
                    "rua-https", f"rua {uri!r}: many senders (mox among them) only send reports by mailto:, not https:"
                )
            )
        elif scheme == "http":
            errors.append(
                Finding(
                    "rua-http", f"rua {uri!r}: RFC 8460 §3 requires https:, senders do not post reports over plain http"
                )
            )
        else:
            errors.append(
                Finding(
                    "rua-unknown-scheme",
                    f"rua {uri!r}: scheme {scheme}: is not mailto: or https: (RFC 8460 §3), senders ignore it",
                )
            )
    if not usable:
        errors.append(
            Finding("no-usable-rua", "no usable reporting address (mailto: or https:): nobody can send you reports")
        )
    return errors, warnings

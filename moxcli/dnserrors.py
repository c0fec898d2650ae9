"""DNS answers and errors without dnspython (moxcli.dns re-exports them with the resolver).

Parsers and checks that only catch or raise these (a TLSRPT record given on the command
line) then do not load dnspython (~75 ms).
"""

from __future__ import annotations

from collections.abc import Sequence

from moxcli.errors import EXIT_FAILED, TemporaryError

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

# RFC 8914 4 and the IANA registry; names as mox uses them in TLSRPT reason codes.
EDE_NAMES = {
    0: "other",
    1: "unsupported-dnskey-algorithm",
    2: "unsupported-ds-digest-type",
    3: "stale-answer",
    4: "forged-answer",
    5: "dnssec-indeterminate",
    6: "dnssec-bogus",
    7: "signature-expired",
    8: "signature-not-yet-valid",
    9: "dnskey-missing",
    10: "rrsigs-missing",
    11: "no-zone-key-bit-set",
    12: "nsec-missing",
    13: "cached-error",
    14: "not-ready",
    15: "blocked",
    16: "censored",
    17: "filtered",
    18: "prohibited",
    19: "stale-nxdomain-answer",
    20: "not-authoritative",
    21: "not-supported",
    22: "no-reachable-authority",
    23: "network-error",
    24: "invalid-data",
}
AUTHENTICATION_EDE = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 11, 12})
TEMPORARY_EDE = frozenset({0, 3, 13, 14, 19, 22, 23})


class ExtendedError:
    """One Extended DNS Error (RFC 8914) of a response. Immutable and hashable; a plain class
    because importing dataclasses costs start-up (docs/development.md, Start-up)."""

    code: int
    text: str

    def __init__(self, code: int, text: str = "") -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "text", text)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of an ExtendedError")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.code, self.text) == (other.code, other.text)

    def __hash__(self) -> int:
        return hash((self.code, self.text))

    def __repr__(self) -> str:
        return f"ExtendedError(code={self.code!r}, text={self.text!r})"

    @property
    def name(self) -> str:
        return EDE_NAMES.get(self.code, "unknown")

    @property
    def reason(self) -> str:
        """`<code>-<name>`, the tail of TLSRPT reason codes such as `dns-extended-error-6-dnssec-bogus`."""
        return f"{self.code}-{self.name}"

    @property
    def is_authentication(self) -> bool:
        return self.code in AUTHENTICATION_EDE

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "text": self.text}


class DNSError(TemporaryError):
    """A failed lookup; ``ede`` holds the Extended DNS Errors of the response."""

    def __init__(self, name: str, rdtype: str, msg: str, ede: Sequence[ExtendedError] = ()) -> None:
        super().__init__(f"{rdtype} lookup for {name}: {msg}")
        self.name = name
        self.rdtype = rdtype
        self.ede = tuple(ede)

    @property
    def authentication_ede(self) -> ExtendedError | None:
        return next((e for e in self.ede if e.is_authentication), None)

    @property
    def bogus(self) -> bool:
        """A DNSSEC validation failure (overridden by :class:`BogusDNSError`)."""
        return False

    @property
    def status(self) -> str:
        """Stable machine code of the outcome: ``nxdomain``, ``nodata``, ``dnssec-bogus`` or
        ``dns-error`` (``code``, as for every moxcli error, stays the error-object code)."""
        return "dns-error"

    def bogus_reason(self, prefix: str = "dns-extended-error") -> str:
        """TLSRPT failure reason of a DNSSEC failure: ``<prefix>-<EDE>`` when the resolver sent
        an authentication EDE (as mox reports it), ``dnssec-bogus`` when it was learnt with CD."""
        ede = self.authentication_ede
        if ede is not None:
            return f"{prefix}-{ede.reason}"
        return "dnssec-bogus" if self.bogus else ""


class NotFound(DNSError):
    """NXDOMAIN or no records of the type; ``authentic`` when the denial was DNSSEC-secure."""

    exit_code = EXIT_FAILED

    def __init__(
        self, name: str, rdtype: str, nxdomain: bool, authentic: bool, ede: Sequence[ExtendedError] = ()
    ) -> None:
        super().__init__(name, rdtype, "no such domain" if nxdomain else "no records", ede)
        self.nxdomain = nxdomain
        self.authentic = authentic
        self.cnames: list[str] = []  # the CNAME chain the answer followed before the denial

    @property
    def status(self) -> str:
        return "nxdomain" if self.nxdomain else "nodata"


class TemporaryDNSError(DNSError):
    """SERVFAIL without an authentication EDE, timeout, refused, network error: retry later."""


class BogusDNSError(DNSError):
    """DNSSEC validation failed at the resolver: SERVFAIL with an authentication EDE, or a
    SERVFAIL that an identical query with CD set answers (``via_cd``)."""

    exit_code = EXIT_FAILED

    def __init__(
        self, name: str, rdtype: str, msg: str, ede: Sequence[ExtendedError] = (), via_cd: bool = False
    ) -> None:
        super().__init__(name, rdtype, msg, ede)
        self.via_cd = via_cd

    @property
    def bogus(self) -> bool:
        return True

    @property
    def status(self) -> str:
        return "dnssec-bogus"


class Answer:
    """The records of one lookup, whether DNSSEC authenticated them, the canonical name and the
    CNAME chain followed (a plain class: see ExtendedError)."""

    def __init__(
        self,
        name: str,
        rdtype: str,
        records: list[Any],
        authentic: bool,
        canonical: str,
        cnames: list[str] | None = None,
        ttl: int = 0,
    ) -> None:
        self.name = name
        self.rdtype = rdtype
        self.records = records
        self.authentic = authentic
        self.canonical = canonical
        self.cnames: list[str] = cnames if cnames is not None else []
        self.ttl = ttl

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return f"Answer({self.__dict__!r})"

    def texts(self) -> list[str]:
        """TXT records as strings: character-strings of one record concatenated (RFC 7208 3.3)."""
        return [b"".join(r.strings).decode("utf-8", errors="replace") for r in self.records]

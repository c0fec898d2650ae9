"""Domain names with an ASCII (A-label) and a Unicode (U-label) form (docs/behaviour-notes.md §0.1).

Pure: no I/O. Parsing accepts either form, lower-cases, applies the UTS 46 lookup mapping
(non-transitional, STD3 rules: ``straße`` stays ``straße`` and becomes ``xn--strae-oqa``,
as in mox, Go's x/net/idna and every current resolver library; Python's own "idna" codec is
IDNA 2003 and would map it to ``strasse``), validates each label (IDNA 2008 hyphen, joiner,
combining-mark and bidi rules via the ``idna`` package), and rejects a trailing dot and IP
addresses. Errors name the offending label.
"""

from __future__ import annotations

import unicodedata

# Label separators UTS 46 maps to "." (full stop, ideographic, fullwidth, halfwidth ideographic).
_DOTS = ".\u3002\uff0e\uff61"
_TO_FULL_STOP = str.maketrans(dict.fromkeys(_DOTS[1:], "."))
_LDH_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_ldh_name(name: str) -> bool:
    """Lower-case LDH labels of 1-63 characters, no hyphen at either end (RFC 1123 2.1),
    checked without re: importing it costs start-up (docs/development.md, Start-up)."""
    for label in name.split("."):
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-" or not _LDH_LABEL.issuperset(label):
            return False
    return True


class DomainError(ValueError):
    pass


class Domain:
    """A parsed name: ``ascii`` (A-labels) and ``unicode`` ("" for an all-ASCII name).

    Immutable, hashable, ordered by (ascii, unicode), like the frozen dataclass it was; written
    out by hand because importing dataclasses costs more start-up than `check tlsrpt --record`
    may take (docs/development.md, Start-up)."""

    __match_args__ = ("ascii", "unicode")
    ascii: str
    unicode: str

    def __init__(self, ascii: str, unicode: str = "") -> None:
        object.__setattr__(self, "ascii", ascii)
        object.__setattr__(self, "unicode", unicode)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a Domain")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a Domain")

    def _key(self) -> tuple[str, str]:
        return (self.ascii, self.unicode)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if other.__class__ is self.__class__ else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Domain) -> bool:
        return self._key() < other._key() if other.__class__ is self.__class__ else NotImplemented

    def __le__(self, other: Domain) -> bool:
        return self._key() <= other._key() if other.__class__ is self.__class__ else NotImplemented

    def __gt__(self, other: Domain) -> bool:
        return self._key() > other._key() if other.__class__ is self.__class__ else NotImplemented

    def __ge__(self, other: Domain) -> bool:
        return self._key() >= other._key() if other.__class__ is self.__class__ else NotImplemented

    def __repr__(self) -> str:
        return f"Domain(ascii={self.ascii!r}, unicode={self.unicode!r})"

    @property
    def name(self) -> str:
        """Unicode form if there is one, else ASCII: what people read."""
        return self.unicode or self.ascii

    @property
    def log_name(self) -> str:
        """`unicode/ascii` for IDNA names, plain ASCII otherwise (mox's log form)."""
        return f"{self.unicode}/{self.ascii}" if self.unicode else self.ascii

    def fqdn(self) -> str:
        """ASCII with trailing dot, as every DNS lookup uses it."""
        return self.ascii + "."

    def __str__(self) -> str:
        return self.name


def _show(label: str) -> str:
    return repr(label if len(label) <= 40 else label[:40] + "...")


def _check_ulabel(label: str, shown: str) -> None:
    """IDNA 2008 rules for a U-label that UTS 46 already mapped (RFC 5891 §4.2.3, RFC 5892
    CONTEXTJ, RFC 5893 bidi). Symbols UTS 46 keeps (``☺``) are accepted, as mox does."""
    import idna

    if label[2:4] == "--":
        raise DomainError(f"label {shown}: hyphens in the third and fourth position (RFC 5891 §4.2.3.1)")
    if unicodedata.category(label[0]).startswith("M"):
        raise DomainError(f"label {shown}: starts with a combining mark (RFC 5891 §4.2.3.2)")
    for i, c in enumerate(label):
        if c in "\u200c\u200d" and not idna.valid_contextj(label, i):
            raise DomainError(f"label {shown}: joiner U+{ord(c):04X} not allowed here (RFC 5892 Appendix A)")
    try:
        idna.check_bidi(label)
    except idna.IDNAError as exc:
        raise DomainError(f"label {shown}: {exc} (RFC 5893)") from None


def _label(label: str, lax: bool) -> tuple[str, str]:
    """(A-label or LDH label, U-label or "") of one label as typed."""
    shown = _show(label)
    if not label:
        raise DomainError("empty label")
    if lax and label.isascii() and "_" in label:
        return label.lower(), ""
    import idna  # here, not at the top: an LDH name (the common case) never gets this far

    try:
        mapped = idna.uts46_remap(label, std3_rules=True, transitional=False)
    except idna.IDNAError as exc:
        raise DomainError(f"label {shown}: {exc}") from None
    if not mapped:
        raise DomainError(f"label {shown}: empty after mapping")
    if mapped.startswith("-") or mapped.endswith("-"):
        raise DomainError(f"label {shown} starts or ends with a hyphen")
    if mapped.isascii():
        if not mapped.startswith("xn--"):
            if len(mapped) > 63:
                raise DomainError(f"label {shown} longer than 63 characters")
            return mapped, ""
        try:
            ulabel = mapped[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            raise DomainError(f"label {shown}: invalid A-label (bad punycode)") from None
        try:
            remapped = idna.uts46_remap(ulabel, std3_rules=True, transitional=False)
        except idna.IDNAError as exc:
            raise DomainError(f"label {shown}: invalid A-label: {exc}") from None
        if not ulabel or ulabel.isascii() or remapped != ulabel:
            raise DomainError(f"label {shown}: invalid A-label (not a mapped U-label)")
        _check_ulabel(ulabel, shown)
        if "xn--" + ulabel.encode("punycode").decode("ascii") != mapped or len(mapped) > 63:
            raise DomainError(f"label {shown}: invalid A-label")
        return mapped, ulabel
    _check_ulabel(mapped, shown)
    alabel = "xn--" + mapped.encode("punycode").decode("ascii")
    if len(alabel) > 63:
        raise DomainError(f"label {shown} longer than 63 characters as an A-label")
    return alabel, mapped


def parse_domain(text: str, lax: bool = False) -> Domain:
    """Parse a domain in ASCII or Unicode form (UTS 46 lookup, IDNA 2008 labels).

    ``lax`` accepts ASCII names with underscores (MX targets, docs/behaviour-notes.md §0.1).
    """
    if not text:
        raise DomainError("empty domain")
    if text[-1] in _DOTS:
        raise DomainError("trailing dot")
    if len(text) > 253:
        raise DomainError("domain longer than 253 characters")
    lowered = text.lower()
    if lowered.isascii() and "xn--" not in lowered and _is_ldh_name(lowered):
        if lowered.replace(".", "").isdigit():
            _reject_ip(text)
        return Domain(lowered)  # fast path: plain LDH names need no IDNA work
    _reject_ip(text)
    for c in text:
        if unicodedata.category(c) in ("Cc", "Zs", "Zl", "Zp") or c in "/\\@":
            raise DomainError(f"invalid character {c!r}")
    ascii_labels: list[str] = []
    unicode_labels: list[str] = []
    any_idna = False
    for label in unicodedata.normalize("NFC", text).translate(_TO_FULL_STOP).split("."):
        a, u = _label(label, lax)
        any_idna = any_idna or bool(u)
        ascii_labels.append(a)
        unicode_labels.append(u or a)
    ascii_name = ".".join(ascii_labels)
    if len(ascii_name) > 253:
        raise DomainError("domain longer than 253 characters as A-labels")
    return Domain(ascii_name, ".".join(unicode_labels) if any_idna else "")


def _reject_ip(text: str) -> None:
    if ":" not in text and text.strip("0123456789."):
        return  # neither IPv6 (has ":") nor IPv4 (digits and dots): no need to load ipaddress
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return
    raise DomainError("IP address is not a domain")

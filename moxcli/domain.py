"""Domain names with an ASCII (A-label) and a Unicode (U-label) form (spec §0.1).

Pure: no I/O. Parsing accepts either form, lower-cases, applies IDNA lookup mapping, and
rejects a trailing dot and IP addresses.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass


class DomainError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Domain:
    ascii: str
    unicode: str = ""

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


def _label_ascii(label: str) -> str:
    if not label:
        raise DomainError("empty label")
    if len(label) > 63:
        raise DomainError(f"label {label[:20]!r}... longer than 63 characters")
    if label.isascii():
        if label.startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError as exc:
                raise DomainError(f"invalid A-label {label!r}: {exc}") from None
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise DomainError(f"invalid label {label!r}: {exc}") from None


def parse_domain(text: str, lax: bool = False) -> Domain:
    """Parse a domain in ASCII or Unicode form.

    ``lax`` accepts ASCII names with underscores (MX targets, spec §0.1).
    """
    if not text:
        raise DomainError("empty domain")
    if text.endswith("."):
        raise DomainError("trailing dot")
    if len(text) > 253:
        raise DomainError("domain longer than 253 characters")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise DomainError("IP address is not a domain")
    lowered = unicodedata.normalize("NFC", text.lower())
    for c in lowered:
        if not c.isprintable() or c.isspace() or c in "/\\@":
            raise DomainError(f"invalid character {c!r}")
    labels = lowered.split(".")
    ascii_labels = []
    for label in labels:
        if lax and label.isascii() and "_" in label:
            ascii_labels.append(label)
            continue
        a = _label_ascii(label)
        if a.startswith("-") or a.endswith("-"):
            raise DomainError(f"label {label!r} starts or ends with a hyphen")
        if not all(c.isalnum() or c in "-_" for c in a) and not (lax and a.isascii()):
            raise DomainError(f"invalid characters in label {label!r}")
        ascii_labels.append(a)
    ascii_name = ".".join(ascii_labels)
    if ascii_name.isascii() and "xn--" not in ascii_name:
        return Domain(ascii_name)
    try:
        unicode_name = ".".join(
            lbl.encode("ascii").decode("idna") if lbl.startswith("xn--") else lbl for lbl in ascii_labels
        )
    except UnicodeError as exc:
        raise DomainError(f"invalid IDNA name: {exc}") from None
    return Domain(ascii_name, unicode_name)

"""DMARC TXT records and their reporting URIs (RFC 7489 §6.3, §6.4). Pure: no I/O.

Only what reporting needs is interpreted: `v`, `p`, `sp`, `adkim`, `aspf`, `pct`, `ri`, `rua`,
`ruf`. Unknown tags are ignored (RFC 7489 §6.3). Parsing is liberal (these records come from
others): tag names are case-insensitive, whitespace around tags is allowed, and invalid values
of the tags above are ignored; only a malformed tag list is an error.
"""

from __future__ import annotations

import re
import urllib.parse

from moxcli.dmarc.interval import DEFAULT_RI
from moxcli.domain import Domain, DomainError, parse_domain
from moxcli.values import dataclass, field


class RecordError(ValueError):
    """Text that starts like a DMARC record but is not a valid one."""


class NotDMARCRecord(RecordError):
    """TXT text that is not a DMARC record at all (no leading `v=DMARC1`)."""


# RFC 7489 §6.4: size limit units are powers of two.
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^([0-9]+)([a-zA-Z]?)$")


@dataclass(frozen=True)
class ReportURI:
    """One `rua`/`ruf` element: the URI and its `!size` limit in bytes (0 = none)."""

    uri: str
    max_size: int = 0

    @property
    def scheme(self) -> str:
        return self.uri.partition(":")[0].lower()

    def mailto(self) -> tuple[str, Domain]:
        """(localpart, domain) of a `mailto:` URI; RecordError if it is not one."""
        return parse_mailto(self.uri)


@dataclass(frozen=True)
class DMARCRecord:
    p: str = ""
    sp: str = ""
    adkim: str = ""
    aspf: str = ""
    pct: int = 100
    ri: int = DEFAULT_RI
    rua: tuple[str, ...] = ()  # raw URIs: each is parsed (and skipped if bad) when used
    ruf: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


def parse_report_uri(text: str) -> ReportURI:
    """`URI [ "!" size [unit] ]` (RFC 7489 §6.4); the first `!` ends the URI (mox)."""
    uri, bang, size = text.strip().partition("!")
    uri = uri.strip()
    if ":" not in uri or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        raise RecordError(f"report URI {text.strip()!r} has no scheme")
    if re.search(r"%(?![0-9A-Fa-f]{2})", uri):
        raise RecordError(f"report URI {text.strip()!r} has an invalid %-escape")
    if not bang:
        return ReportURI(uri)
    m = _SIZE.match(size.strip())
    if not m or m.group(2).lower() not in _UNITS:
        raise RecordError(f"report URI {text.strip()!r}: invalid size limit {size!r}")
    return ReportURI(uri, int(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_mailto(uri: str) -> tuple[str, Domain]:
    """Address of a `mailto:` URI (scheme case-insensitive, %-escapes decoded, no headers)."""
    scheme, _, rest = uri.partition(":")
    if scheme.lower() != "mailto":
        raise RecordError(f"{uri!r} is not a mailto URI")
    addr = urllib.parse.unquote(rest.partition("?")[0]).strip()
    local, at, dom = addr.rpartition("@")
    if not at or not local or any(c.isspace() or not c.isprintable() for c in local):
        raise RecordError(f"{uri!r}: invalid address {addr!r}")
    try:
        return local, parse_domain(dom)
    except DomainError as exc:
        raise RecordError(f"{uri!r}: invalid domain {dom!r}: {exc}") from None


def parse_record(text: str) -> DMARCRecord:
    """Parse a DMARC TXT record; NotDMARCRecord when it does not start with `v=DMARC1`."""
    parts = [p.strip() for p in text.split(";")]
    first = parts[0].replace(" ", "").replace("\t", "")
    if first[:2].lower() != "v=" or first[2:] != "DMARC1":
        raise NotDMARCRecord(f"not a DMARC record: {text[:60]!r}")
    tags: dict[str, str] = {"v": "DMARC1"}
    for part in parts[1:]:
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or not re.fullmatch(r"[a-z0-9_]+", name):
            raise RecordError(f"DMARC record: invalid tag {part!r}")
        if name in tags:
            raise RecordError(f"DMARC record: duplicate tag {name!r}")
        tags[name] = value.strip()
    # RFC 7489 §6.6.3: a record with an invalid "p" (or "sp") but a valid rua is acted on as
    # p=none. Reporting only needs rua and ri, so invalid values are ignored (defaults kept)
    # rather than failing the whole record.
    values: dict[str, object] = {}
    for name, allowed in (
        ("p", ("none", "quarantine", "reject")),
        ("sp", ("none", "quarantine", "reject")),
        ("adkim", ("r", "s")),
        ("aspf", ("r", "s")),
    ):
        v = tags.get(name, "").lower()
        if v in allowed:
            values[name] = v
    for name, high in (("pct", 100), ("ri", 1 << 31)):
        v = tags.get(name, "")
        if v.isdigit() and int(v) <= high:
            values[name] = int(v)
    for name in ("rua", "ruf"):
        if name in tags:
            values[name] = tuple(u.strip() for u in tags[name].split(",") if u.strip())
    return DMARCRecord(tags=tags, **values)  # type: ignore[arg-type]

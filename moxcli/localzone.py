"""A local DNS data file (`[dns] local_zone`): answers that take precedence over the resolver.

For testing, demos and split-horizon setups: a zone-file-like text (RFC 1035 §5 master file
lines `name [ttl] [class] type rdata`, `$ORIGIN`, `$TTL`, `;` comments, one record a line).
A name in the file is answered from it (NODATA when it has no record of the type asked);
below an SOA record in the file, every name is answered from it (NXDOMAIN when absent).
Other names go to the resolver. Answers count as DNSSEC-insecure unless the config marks the
file secure (`local_zone_secure = true`): its data is whatever the operator wrote.

Pure parsing here; moxcli.dns consults it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from moxcli.errors import ConfigError
from moxcli.values import dataclass, field

MAX_LOCAL_ZONE = 4 << 20


@dataclass
class LocalZone:
    """Records by (owner, type), the owners with any record, and the SOA apexes."""

    path: Path | None = None
    secure: bool = False
    records: dict[tuple[dns.name.Name, int], list[Any]] = field(default_factory=dict)
    ttls: dict[tuple[dns.name.Name, int], int] = field(default_factory=dict)
    owners: set[dns.name.Name] = field(default_factory=set)
    apexes: set[dns.name.Name] = field(default_factory=set)

    def covers(self, qname: dns.name.Name) -> bool:
        """Whether the file answers for this name (it has records there, or an SOA above)."""
        return qname in self.owners or any(qname.is_subdomain(a) for a in self.apexes)

    def lookup(self, qname: dns.name.Name, qtype: int) -> tuple[list[Any], int] | None:
        """(records, ttl) for a covered name; [] when covered but without records of the type."""
        if not self.covers(qname):
            return None
        key = (qname, qtype)
        return list(self.records.get(key, [])), self.ttls.get(key, 0)

    def cname(self, qname: dns.name.Name) -> dns.name.Name | None:
        recs = self.records.get((qname, dns.rdatatype.CNAME))
        return recs[0].target if recs else None


def parse_local_zone(text: str, path: Path | None = None, secure: bool = False) -> LocalZone:
    """Parse the file's text; ConfigError naming the file and line for anything unusable."""
    zone = LocalZone(path=path, secure=secure)
    origin = dns.name.root
    default_ttl = 3600
    last_owner: dns.name.Name | None = None
    where = str(path) if path else "local zone"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not line.strip():
            continue
        try:
            if line.startswith("$ORIGIN"):
                origin = dns.name.from_text(line.split()[1])
                continue
            if line.startswith("$TTL"):
                default_ttl = int(line.split()[1])
                continue
            if line.startswith("$"):
                raise ValueError(f"unsupported directive {line.split()[0]}")
            fields = line.split()
            if raw[:1] in (" ", "\t"):
                if last_owner is None:
                    raise ValueError("record without owner name")
                owner = last_owner
            else:
                owner = dns.name.from_text(fields.pop(0), origin)
            ttl = default_ttl
            rdclass = dns.rdataclass.IN
            while fields and (fields[0].isdigit() or fields[0].upper() in ("IN", "CH", "HS")):
                tok = fields.pop(0)
                if tok.isdigit():
                    ttl = int(tok)
                elif tok.upper() != "IN":
                    raise ValueError(f"class {tok} (only IN)")
            if not fields:
                raise ValueError("no record type")
            rdtype = dns.rdatatype.from_text(fields.pop(0))
            rdata = dns.rdata.from_text(rdclass, rdtype, " ".join(fields), origin, relativize=False)
        except (ValueError, dns.exception.DNSException) as exc:
            raise ConfigError(f"{where}: line {lineno}: {exc}") from None
        owner = owner.canonicalize()
        last_owner = owner
        zone.records.setdefault((owner, rdtype), []).append(rdata)
        zone.ttls[(owner, rdtype)] = ttl
        zone.owners.add(owner)
        if rdtype == dns.rdatatype.SOA:
            zone.apexes.add(owner)
    return zone


def _strip_comment(line: str) -> str:
    """The line without its `;` comment (a `;` inside a quoted string is data)."""
    quoted = False
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return line[:i]
    return line


def load_local_zone(path: Path, secure: bool = False) -> LocalZone:
    """Read and parse the configured file (ConfigError if it cannot be read)."""
    from moxcli.errors import UsageError
    from moxcli.inputs import read_regular

    try:
        data = read_regular(path, MAX_LOCAL_ZONE, "local zone file")
    except UsageError as exc:
        raise ConfigError(f"[dns] local_zone: {exc}") from None
    return parse_local_zone(data.decode("utf-8", errors="replace"), path, secure)

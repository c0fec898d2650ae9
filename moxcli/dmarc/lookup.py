"""Find the DMARC record of a domain in DNS (RFC 7489 §6.6.3)."""

from __future__ import annotations

from moxcli.dmarc.orgdomain import organizational_domain
from moxcli.dmarc.record import DMARCRecord, NotDMARCRecord, RecordError, parse_record
from moxcli.dns import NotFound, Resolver
from moxcli.domain import Domain
from moxcli.errors import CheckFailed
from moxcli.values import dataclass


class NoDMARCRecord(CheckFailed):
    """Neither the domain nor its organizational domain publishes (exactly one) DMARC record."""


@dataclass(frozen=True)
class Lookup:
    domain: Domain  # where the record was found
    record: DMARCRecord
    text: str
    authentic: bool


def _at(resolver: Resolver, domain: Domain, denials: list[str] | None = None) -> Lookup | None:
    try:
        answer = resolver.txt(f"_dmarc.{domain.ascii}")
    except NotFound as exc:
        if denials is not None:  # named in the error: NXDOMAIN (no such name) or NODATA (no TXT)
            denials.append(f"_dmarc.{domain.ascii}: {'NXDOMAIN' if exc.nxdomain else 'NODATA'}")
        return None
    found: list[tuple[DMARCRecord, str]] = []
    for text in answer.texts():
        try:
            found.append((parse_record(text), text))
        except NotDMARCRecord:
            continue
        except RecordError as exc:
            raise CheckFailed(f"_dmarc.{domain.ascii}: {exc}") from None
    # RFC 7489 §6.6.3 step 5: more than one record means no DMARC processing.
    if len(found) > 1:
        raise NoDMARCRecord(f"_dmarc.{domain.ascii}: {len(found)} DMARC records, expected one")
    if not found:
        return None
    return Lookup(domain, found[0][0], found[0][1], answer.authentic)


def lookup_record(resolver: Resolver, domain: Domain) -> Lookup:
    """The record at `_dmarc.<domain>`, else at the organizational domain (RFC 7489 §6.6.3 steps 1-3).

    Raises NoDMARCRecord (or CheckFailed for a broken record), and the resolver's
    TemporaryDNSError / BogusDNSError.
    """
    denials: list[str] = []
    asked = 1
    found = _at(resolver, domain, denials)
    if found is None:
        org = organizational_domain(domain)
        if org.ascii != domain.ascii:
            asked += 1
            found = _at(resolver, org, denials)
    if found is None:
        why = f" ({'; '.join(denials)})" if denials else ""
        # The --json error code: nxdomain only when every name asked does not exist.
        code = "nxdomain" if len(denials) == asked and all(d.endswith("NXDOMAIN") for d in denials) else "nodata"
        raise NoDMARCRecord(f"no DMARC record for {domain.log_name}{why}", code=code)
    return found

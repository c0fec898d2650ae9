"""The ``_mta-sts.<domain>`` TXT lookup (RFC 8461 §3.1, docs/behaviour-notes.md §4.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from moxcli.dnserrors import DNSError, NotFound
from moxcli.domain import Domain
from moxcli.mtasts.errors import DNSLookupError, MultipleRecords, NoRecord, RecordSyntax
from moxcli.mtasts.record import Record, RecordParseError, parse_record

if TYPE_CHECKING:
    from moxcli.dns import Resolver  # type only: dnspython loads when a lookup runs


def record_name(domain: Domain) -> str:
    return f"_mta-sts.{domain.ascii}"


def select_record(name: str, texts: Sequence[str]) -> tuple[Record, str]:
    """The one MTA-STS record among TXT strings (same selection as TLSRPT, docs/behaviour-notes.md §1.1).

    RFC 8461 §3.1: if the number of MTA-STS records is not one, or it is invalid, behave as
    if there is no policy. A syntax error aborts even when a valid record follows (mox).
    """
    found: tuple[Record, str] | None = None
    for text in texts:
        try:
            record = parse_record(text)
        except RecordParseError as exc:
            if not exc.is_mtasts:
                continue
            raise RecordSyntax(f"MTA-STS record {text!r} at {name}: {exc}", text) from None
        if found is not None:
            raise MultipleRecords(f"{name} has more than one MTA-STS record (RFC 8461 §3.1: treated as none)")
        found = (record, text)
    if found is None:
        raise NoRecord(f"no MTA-STS record among the TXT records at {name}", code="nodata")
    return found


def lookup_record(resolver: Resolver, domain: Domain) -> tuple[Record, str, list[str]]:
    """The MTA-STS record of ``domain``: (record, text, CNAME chain followed).

    Raises NoRecord, MultipleRecords, RecordSyntax (no MTA-STS) or DNSLookupError.
    """
    name = record_name(domain)
    try:
        answer = resolver.txt(name)
    except NotFound as exc:
        what = "NXDOMAIN: no such name" if exc.nxdomain else "NODATA: no TXT records"
        raise NoRecord(f"no MTA-STS record at {name} ({what})", code="nxdomain" if exc.nxdomain else "nodata") from None
    except DNSError as exc:
        raise DNSLookupError(f"MTA-STS record lookup: {exc}", exc) from None
    record, text = select_record(name, answer.texts())
    return record, text, list(answer.cnames)

"""What deliveries learned about each recipient domain (table RECIPIENT_DOMAIN_TLS, key: the
domain's Unicode name): whether the last delivery used STARTTLS and whether the server offered
REQUIRETLS (spec §3.7: mox keeps this "last known" support per recipient domain, overwritten at
each delivery), with the time, and when STARTTLS was last seen, so that a later delivery in
plaintext is noticed as a downgrade instead of silently forgetting it.

mox keeps the record per sender account; moxcli has one queue and keeps one per domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import RECIPIENT_DOMAIN_TLS, text_key
from moxcli.values import dataclass, fields


@dataclass
class DomainTLS:
    """The last delivery's STARTTLS use and REQUIRETLS offer for one recipient domain."""

    domain: str
    starttls: bool
    requiretls: bool
    updated: float  # unix time of the last delivery
    host: str = ""  # the MX host of the last delivery
    starttls_seen: float | None = None  # last delivery that used STARTTLS
    requiretls_seen: float | None = None  # last delivery whose server offered REQUIRETLS
    downgraded: float | None = None  # last delivery in plaintext after STARTTLS had been seen

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in fields(DomainTLS)}  # shallow: encoded at once

    @classmethod
    @record_reader(RECIPIENT_DOMAIN_TLS)
    def from_record(cls, rec: dict[str, Any]) -> DomainTLS:
        return cls(**{k: v for k, v in rec.items() if k in fields(cls)})


def get(tx: Txn, domain: str) -> DomainTLS | None:
    rec = tx.get(RECIPIENT_DOMAIN_TLS, text_key(domain))
    return None if rec is None else DomainTLS.from_record(rec)


def record(tx: Txn, domain: str, starttls: bool, requiretls: bool, host: str, now: float) -> DomainTLS:
    """Overwrite the domain's record with this delivery; keeps the times STARTTLS and REQUIRETLS
    were last seen, and notes a downgrade (plaintext after STARTTLS had been seen)."""
    old = get(tx, domain)
    new = DomainTLS(domain, starttls, requiretls, now, host)
    if old is not None:
        new.starttls_seen, new.requiretls_seen, new.downgraded = old.starttls_seen, old.requiretls_seen, old.downgraded
    if starttls:
        new.starttls_seen = now
    elif new.starttls_seen is not None:
        new.downgraded = now
    if requiretls:
        new.requiretls_seen = now
    tx.put(RECIPIENT_DOMAIN_TLS, text_key(domain), new.to_record())
    return new


def delete(tx: Txn, domain: str) -> bool:
    """Forget the domain (False: there was no record)."""
    return tx.delete(RECIPIENT_DOMAIN_TLS, text_key(domain))


def scan(tx: Txn) -> Iterator[DomainTLS]:
    """Every recipient domain, by name."""
    for _key, rec in tx.scan(RECIPIENT_DOMAIN_TLS):
        yield DomainTLS.from_record(rec)

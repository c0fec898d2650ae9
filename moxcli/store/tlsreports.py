"""Incoming TLS reports (spec §1.6 storage): one record per imported report, indexed by domain.

Table TLS_REPORT_IN, key ``u64(id)`` (sequence ``tlsreportin``), record fields: ``id``,
``imported`` (unix time), ``source`` (file name), ``from_domain`` (domain of the From header,
"" for bare JSON), ``policy_domains`` (Unicode names the report was stored for),
``host_report`` (a policy domain is our mail hostname), ``warnings`` (quirks met while
parsing), ``report`` (the report JSON, RFC 8460 field names, normalised).
Index TLS_REPORT_IN_BY_DOMAIN, key ``text_key(policy_domain, id)``, empty value.
mox stores a copy of the report per recognised policy domain; one record plus an index
entry per domain gives the same lookups without the copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moxcli.store.env import Txn
from moxcli.store.schema import TLS_REPORT_IN, TLS_REPORT_IN_BY_DOMAIN, prefix_key, split_key, text_key, u64

SEQUENCE = "tlsreportin"


def add(tx: Txn, record: dict[str, Any]) -> int:
    """Store a report record (fields above, without ``id``); returns its id."""
    rid = tx.next_id(SEQUENCE)
    tx.put(TLS_REPORT_IN, u64(rid), {**record, "id": rid})
    for dom in record["policy_domains"]:
        tx.put_raw(TLS_REPORT_IN_BY_DOMAIN, text_key(dom, rid), b"")
    return rid


def get(tx: Txn, rid: int) -> dict[str, Any] | None:
    return tx.get(TLS_REPORT_IN, u64(rid))


def ids_for_domain(tx: Txn, domain: str) -> list[int]:
    """Ids of reports stored for a policy domain (Unicode name), oldest first."""
    return [int(split_key(k, ints=(1,))[1]) for k, _ in tx.scan_raw(TLS_REPORT_IN_BY_DOMAIN, prefix_key(domain))]


def scan(tx: Txn, newest_first: bool = True) -> Iterator[dict[str, Any]]:
    for _, rec in tx.scan(TLS_REPORT_IN, reverse=newest_first):
        yield rec


def delete(tx: Txn, rid: int) -> bool:
    rec = get(tx, rid)
    if rec is None:
        return False
    for dom in rec.get("policy_domains", []):
        tx.delete(TLS_REPORT_IN_BY_DOMAIN, text_key(dom, rid))
    return tx.delete(TLS_REPORT_IN, u64(rid))

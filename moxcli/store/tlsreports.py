"""Incoming TLS reports (docs/behaviour-notes.md §1.6 storage): one record per imported report, indexed by domain.

Table TLS_REPORT_IN, key ``u64(id)`` (sequence ``tlsreportin``), record fields: ``id``,
``imported`` (unix time), ``source`` (file name), ``from_domain`` (domain of the From header,
"" for bare JSON), ``policy_domains`` (Unicode names the report was stored for),
``host_report`` (a policy domain is our mail hostname), ``warnings`` (quirks met while
parsing), ``report`` (the report JSON, RFC 8460 field names, normalised).
Index TLS_REPORT_IN_BY_DOMAIN, key ``text_key(policy_domain, id)``, empty value.
mox stores a copy of the report per recognised policy domain; one record plus an index
entry per domain gives the same lookups without the copies.
Index TLS_REPORT_IN_BY_KEY (schema 2), key ``dedupe_key(record)``, value ``u64(id)`` of the
first report stored with that key: a report is the same report when its organisation,
report id, date range and the policy domains it was stored for are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from moxcli import jsonfmt
from moxcli.jsonfmt import Finding
from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import (
    TLS_REPORT_IN,
    TLS_REPORT_IN_BY_DOMAIN,
    TLS_REPORT_IN_BY_KEY,
    from_u64,
    prefix_key,
    split_key,
    text_key,
    u64,
)
from moxcli.values import dataclass

SEQUENCE = "tlsreportin"


@dataclass(frozen=True)
class StoredTLSReport:
    """One imported TLS report; ``report`` is the report's RFC 8460 JSON document (normalised),
    kept as the document it is: the store holds the report as received, not a model of it."""

    imported: float | None
    source: str
    from_domain: str
    policy_domains: tuple[str, ...]
    host_report: bool
    warnings: tuple[Finding, ...]
    report: dict[str, Any]
    id: int = 0  # given by add()

    def to_record(self) -> dict[str, Any]:
        """The stored map (the field order of the records written before this type existed)."""
        return {
            "imported": self.imported,
            "source": self.source,
            "from_domain": self.from_domain,
            "policy_domains": list(self.policy_domains),
            "host_report": self.host_report,
            "warnings": jsonfmt.findings_json(self.warnings),
            "report": self.report,
            "id": self.id,
        }

    @classmethod
    @record_reader(TLS_REPORT_IN)
    def from_record(cls, rec: Mapping[str, Any]) -> StoredTLSReport:
        report = rec.get("report")
        return cls(
            imported=rec.get("imported"),
            source=rec.get("source") or "",
            from_domain=rec.get("from_domain") or "",
            policy_domains=tuple(rec.get("policy_domains", ())),
            host_report=bool(rec.get("host_report", False)),
            warnings=tuple(_finding(w) for w in rec.get("warnings", ())),
            report=report if isinstance(report, dict) else {},
            id=int(rec["id"]),
        )

    def to_json(self) -> dict[str, Any]:
        """``tlsreports show --json`` (docs/json.md): times as RFC 3339, null for unknown."""
        return {
            **self.to_record(),
            "imported": jsonfmt.rfc3339(self.imported),
            "source": self.source or None,
            "from_domain": self.from_domain or None,
        }

    def dedupe_key(self) -> bytes:
        return _dedupe_key(self.report, self.policy_domains)


def _finding(stored: Any) -> Finding:
    """A stored warning: `{code, message}`; records imported before moxcli 0.2.0 kept the message only."""
    if isinstance(stored, dict):
        return Finding(str(stored.get("code") or "unclassified"), str(stored.get("message", "")))
    return Finding("unclassified", str(stored))


def dedupe_key(record: Mapping[str, Any]) -> bytes:
    """The identity of a stored report: organisation, report id, date range, policy domains."""
    return _dedupe_key(record.get("report", {}), record.get("policy_domains", []))


def _dedupe_key(rep: Mapping[str, Any], policy_domains: Iterable[str]) -> bytes:
    dr = rep.get("date-range", {})
    parts = [
        rep.get("organization-name", ""),
        rep.get("report-id", ""),
        dr.get("start-datetime", ""),
        dr.get("end-datetime", ""),
        sorted(policy_domains),
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).digest()


def find_duplicate(tx: Txn, key: bytes) -> int | None:
    """Id of the stored report with this dedupe key, if any."""
    raw = tx.get_raw(TLS_REPORT_IN_BY_KEY, key)
    return None if raw is None else from_u64(raw)


def add(tx: Txn, report: StoredTLSReport, key: bytes | None = None, rid: int | None = None) -> int:
    """Store a report (its ``id`` is ignored); returns the id it is stored under: ``rid`` when
    given (reserved with ``tx.reserve_ids(SEQUENCE, n)`` by a caller storing many), else the
    sequence's next.

    The dedupe index keeps the first report with a key; callers check find_duplicate first.
    """
    if rid is None:
        rid = tx.next_id(SEQUENCE)
    record = report.to_record()
    record["id"] = rid
    tx.put(TLS_REPORT_IN, u64(rid), record)
    for dom in report.policy_domains:
        tx.put_raw(TLS_REPORT_IN_BY_DOMAIN, text_key(dom, rid), b"")
    index_key(tx, rid, report.dedupe_key() if key is None else key)
    return rid


def index_key(tx: Txn, rid: int, key: bytes) -> None:
    """Point the dedupe key at ``rid`` unless an earlier report holds it."""
    tx.put_raw(TLS_REPORT_IN_BY_KEY, key, u64(rid), overwrite=False)


def get(tx: Txn, rid: int) -> StoredTLSReport | None:
    rec = tx.get(TLS_REPORT_IN, u64(rid))
    return None if rec is None else StoredTLSReport.from_record(rec)


def ids_for_domain(tx: Txn, domain: str) -> list[int]:
    """Ids of reports stored for a policy domain (Unicode name), oldest first."""
    return [int(split_key(k, ints=(1,))[1]) for k, _ in tx.scan_raw(TLS_REPORT_IN_BY_DOMAIN, prefix_key(domain))]


def scan(tx: Txn, newest_first: bool = True) -> Iterator[StoredTLSReport]:
    for _, rec in tx.scan(TLS_REPORT_IN, reverse=newest_first):
        yield StoredTLSReport.from_record(rec)


def delete(tx: Txn, rid: int) -> bool:
    rep = get(tx, rid)
    if rep is None:
        return False
    for dom in rep.policy_domains:
        tx.delete(TLS_REPORT_IN_BY_DOMAIN, text_key(dom, rid))
    key = rep.dedupe_key()
    if find_duplicate(tx, key) == rid:
        tx.delete(TLS_REPORT_IN_BY_KEY, key)
    return tx.delete(TLS_REPORT_IN, u64(rid))

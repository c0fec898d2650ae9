"""DMARC reports received (the evaluations waiting for a report are moxcli.dmarc.db's).

DMARC_REPORT_IN: key `id`, record
{id, added, policy_domain, org_name, report_id, begin, end, source, schema, report};
DMARC_REPORT_IN_BY_DOMAIN indexes it by policy domain. DMARC_REPORT_IN_BY_KEY (schema 2),
key ``report_dedupe_key(record)``, value ``u64(id)`` of the first report stored with that key:
the same organisation, report id, date range (begin, end) and policy domain is the same report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import (
    DMARC_REPORT_IN,
    DMARC_REPORT_IN_BY_DOMAIN,
    DMARC_REPORT_IN_BY_KEY,
    from_u64,
    prefix_key,
    split_key,
    text_key,
    u64,
)
from moxcli.values import dataclass

REPORT_SEQUENCE = "dmarcreportin"


@dataclass(frozen=True)
class StoredDMARCReport:
    """One received DMARC aggregate report; ``report`` is the report as
    ``moxcli.dmarc.report.Feedback.to_json()`` gives it (the feature decodes it; store/ knows no
    feature types). ``begin``/``end`` are the report's date range, ``added`` when it was stored."""

    policy_domain: str  # Unicode name
    org_name: str
    report_id: str
    begin: int
    end: int
    schema: str
    source: str
    added: float
    report: dict[str, Any]
    id: int = 0  # given by add_report()

    def to_record(self) -> dict[str, Any]:
        """The stored map (the field order of the records written before this type existed)."""
        return {
            "policy_domain": self.policy_domain,
            "org_name": self.org_name,
            "report_id": self.report_id,
            "begin": self.begin,
            "end": self.end,
            "schema": self.schema,
            "source": self.source,
            "added": self.added,
            "report": self.report,
            "id": self.id,
        }

    @classmethod
    @record_reader(DMARC_REPORT_IN)
    def from_record(cls, rec: Mapping[str, Any]) -> StoredDMARCReport:
        report = rec["report"]
        if not isinstance(report, dict):
            raise TypeError("report is not a map")
        return cls(
            policy_domain=rec["policy_domain"],
            org_name=rec.get("org_name", ""),
            report_id=rec.get("report_id", ""),
            begin=int(rec.get("begin", 0)),
            end=int(rec.get("end", 0)),
            schema=rec.get("schema", ""),
            source=rec.get("source", ""),
            added=float(rec.get("added", 0.0)),
            report=report,
            id=int(rec["id"]),
        )

    def dedupe_key(self) -> bytes:
        return _dedupe_key(self.org_name, self.report_id, self.begin, self.end, self.policy_domain)


def report_dedupe_key(record: Mapping[str, Any]) -> bytes:
    """The identity of a received report: organisation, report id, date range, policy domain."""
    return _dedupe_key(
        record.get("org_name", ""),
        record.get("report_id", ""),
        record.get("begin", 0),
        record.get("end", 0),
        record.get("policy_domain", ""),
    )


def _dedupe_key(org_name: str, report_id: str, begin: int, end: int, policy_domain: str) -> bytes:
    parts = [org_name, report_id, begin, end, policy_domain]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).digest()


def find_duplicate_report(tx: Txn, key: bytes) -> int | None:
    """Id of the received report with this dedupe key, if any."""
    raw = tx.get_raw(DMARC_REPORT_IN_BY_KEY, key)
    return None if raw is None else from_u64(raw)


def index_report_key(tx: Txn, report_id: int, key: bytes) -> None:
    """Point the dedupe key at ``report_id`` unless an earlier report holds it."""
    tx.put_raw(DMARC_REPORT_IN_BY_KEY, key, u64(report_id), overwrite=False)


def add_report(tx: Txn, report: StoredDMARCReport, key: bytes | None = None, rid: int | None = None) -> int:
    """Store a received report (its ``id`` is ignored); returns the id it is stored under:
    ``rid`` when given (reserved with ``tx.reserve_ids(REPORT_SEQUENCE, n)`` by a caller
    storing many), else the sequence's next.

    The dedupe index keeps the first report with a key; callers check find_duplicate_report first.
    """
    n = tx.next_id(REPORT_SEQUENCE) if rid is None else rid
    record = report.to_record()
    record["id"] = n
    tx.put(DMARC_REPORT_IN, u64(n), record)
    tx.put_raw(DMARC_REPORT_IN_BY_DOMAIN, text_key(report.policy_domain, n), b"")
    index_report_key(tx, n, report.dedupe_key() if key is None else key)
    return n


def get_report(tx: Txn, report_id: int) -> StoredDMARCReport | None:
    rec = tx.get(DMARC_REPORT_IN, u64(report_id))
    return None if rec is None else StoredDMARCReport.from_record(rec)


def list_reports(tx: Txn, policy_domain: str | None = None) -> Iterator[StoredDMARCReport]:
    """Received reports, newest first; only those about ``policy_domain`` if given."""
    if policy_domain is None:
        for _, rec in tx.scan(DMARC_REPORT_IN, reverse=True):
            yield StoredDMARCReport.from_record(rec)
        return
    for key, _ in tx.scan_raw(DMARC_REPORT_IN_BY_DOMAIN, prefix_key(policy_domain), reverse=True):
        found = get_report(tx, int(split_key(key, (1,))[1]))
        if found is not None:
            yield found

"""Incoming DMARC aggregate reports (docs/behaviour-notes.md §6.9): parse report files and messages, store, list, show.

The same shape as ``incoming_tls``: ``import_files``, ``list_reports``, ``get_report``,
``summary``. Parsing (moxcli.dmarc.parse) follows mox's MIME rules and limits.
Reports are imported from files and mailboxes by the operator, so no DMARC check of the report
message is made (mox requires a DMARC pass when it receives reports by SMTP). Importing
(sources, outcomes, dedupe, batches) is moxcli.reports.incoming; this module is its DMARC kind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from moxcli import jsonfmt
from moxcli.config import Config
from moxcli.dmarc.parse import NoReport, ReportError, parse_file
from moxcli.dmarc.report import Feedback
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.reports.incoming import NotAReport, Outcome, Prepared, Rejected, import_messages, iter_paths
from moxcli.store import Store
from moxcli.store import dmarc as dstore
from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import DMARC_REPORT_IN
from moxcli.values import dataclass

KIND = "dmarc"


def prepare(data: bytes, name: str, config: Config, now: float) -> Prepared:
    """A report file or message parsed into the record to store (moxcli.reports.incoming).

    NotAReport for a message without a DMARC report; Rejected (docs/behaviour-notes.md §6.9) when the report does
    not parse, its policy domain does not parse or is not ours (when domains are configured),
    or it ends more than 60 s in the future.
    """
    warnings: list[jsonfmt.Finding] = []
    try:
        fb = parse_file(data, warnings.append)
    except NoReport as exc:
        raise NotAReport(str(exc)) from None
    except ReportError as exc:
        raise Rejected(f"could not parse report: {exc}", exc.code) from None
    try:
        domain = parse_domain(fb.policy.domain)
    except DomainError as exc:
        raise Rejected(
            f"could not parse domain in published policy {fb.policy.domain!r}: {exc}", "invalid-report"
        ) from None
    if config.domains and domain.ascii not in config.domains and domain.ascii != config.hostname:
        raise Rejected(f"published policy domain unrecognized: {domain.name}", "not-our-domain")
    # docs/behaviour-notes.md §6.9 (mox): a report about the future is not genuine.
    if fb.metadata.end > now + 60:
        raise Rejected(f"report has end date in the future ({fb.metadata.end})", "future-report")
    record = dstore.StoredDMARCReport(
        policy_domain=domain.name,
        org_name=fb.metadata.org_name,
        report_id=fb.metadata.report_id,
        begin=fb.metadata.begin,
        end=fb.metadata.end,
        schema=fb.schema,
        source=os.path.basename(name),
        added=now,
        report=fb.to_json(),
    )
    return Prepared(
        KIND,
        record.dedupe_key(),
        record,
        fb.metadata.report_id,
        fb.metadata.org_name,
        [domain.name],
        float(fb.metadata.begin),
        float(fb.metadata.end),
        warnings,
        len(data),
    )


def find_duplicate(tx: Txn, key: bytes) -> int | None:
    return dstore.find_duplicate_report(tx, key)


SEQUENCE = dstore.REPORT_SEQUENCE


def add(tx: Txn, prepared: Prepared, rid: int) -> None:
    """Store a new report under ``rid`` (reserved from SEQUENCE)."""
    assert isinstance(prepared.record, dstore.StoredDMARCReport)
    dstore.add_report(tx, prepared.record, prepared.key, rid)


def import_files(store: Store, config: Config, paths: list[Path], now: float | None = None) -> list[Outcome]:
    """Import report files (directories walked); an outcome per file (moxcli.reports.incoming)."""
    out: list[Outcome] = []
    import_messages(store, config, iter_paths(paths), (KIND,), out.append, now=now)
    return out


@dataclass(frozen=True)
class DMARCReportSummary:
    """A stored report as listed (``dmarcreports list``; JSON keys in docs/dmarc-reports.md)."""

    id: int
    imported: float
    policy_domain: str
    organization_name: str
    report_id: str
    start: int  # unix seconds, the report's date range
    end: int
    schema: str
    records: int
    messages: int
    dmarc_pass: int
    dmarc_fail: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "imported": jsonfmt.rfc3339(self.imported),
            "policy_domain": self.policy_domain,
            "organization_name": self.organization_name,
            "report_id": self.report_id,
            "start": jsonfmt.rfc3339(self.start),
            "end": jsonfmt.rfc3339(self.end),
            "schema": self.schema,
            "records": self.records,
            "messages": self.messages,
            "dmarc_pass": self.dmarc_pass,
            "dmarc_fail": self.dmarc_fail,
        }


@record_reader(DMARC_REPORT_IN)
def summary(stored: dstore.StoredDMARCReport) -> DMARCReportSummary:
    """A stored report as listed: ids, period, message counts by DMARC outcome."""
    records = stored.report["records"]
    total = sum(r["count"] for r in records)
    passed = sum(r["count"] for r in records if r["dkim"] == "pass" or r["spf"] == "pass")
    return DMARCReportSummary(
        id=stored.id,
        imported=stored.added,
        policy_domain=stored.policy_domain,
        organization_name=stored.org_name,
        report_id=stored.report_id,
        start=stored.begin,
        end=stored.end,
        schema=stored.schema,
        records=len(records),
        messages=total,
        dmarc_pass=passed,
        dmarc_fail=total - passed,
    )


def list_reports(store: Store, policy_domain: str | None = None) -> list[DMARCReportSummary]:
    """Stored reports, newest first; with ``policy_domain``, those about that domain."""
    name = None
    if policy_domain is not None:
        try:
            name = parse_domain(policy_domain).name
        except DomainError as exc:
            raise UsageError(f"invalid domain {policy_domain!r}: {exc}") from None
    with store.read() as tx:
        return [summary(r) for r in dstore.list_reports(tx, name)]


def get_report(store: Store, report_id: int) -> tuple[DMARCReportSummary, Feedback]:
    """A stored report: its summary and the report model; UsageError when there is none."""
    with store.read() as tx:
        stored = dstore.get_report(tx, report_id)
    if stored is None:
        raise UsageError(f"DMARC report {report_id}: no such report", code="not-found")
    return summary(stored), record_reader(DMARC_REPORT_IN)(Feedback.from_json)(stored.report)


def report_view(fb: Feedback) -> dict[str, Any]:
    """The report for ``show --json``: ``policy.pct`` as a number (null when absent, as in
    RFC 9990 reports, which dropped it, or not a number), as mox's ``dmarc parsereportmsg``
    gives it; the stored record keeps the text as received."""
    d = fb.to_json()
    pct = d["policy"].get("pct", "").strip()
    d["policy"]["pct"] = int(pct) if pct.isdigit() else None
    return d

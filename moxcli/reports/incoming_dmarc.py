"""Incoming DMARC aggregate reports (spec §6.9): parse report files and messages, store, list, show.

The same shape as ``incoming_tls``: ``import_files``, ``list_reports``, ``get_report``,
``summary``. Parsing (moxcli.dmarc.parse) follows mox's MIME rules and limits.
Reports are imported from files by the operator, so no DMARC check of the report message is
made (mox requires a DMARC pass when it receives reports by SMTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moxcli import jsonfmt
from moxcli.config import Config
from moxcli.dmarc.parse import ReportError, parse_file
from moxcli.dmarc.report import Feedback
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import CheckFailed, UsageError
from moxcli.store import Store
from moxcli.store import dmarc as dstore

MAX_FILE = 20 << 20


@dataclass
class Imported:
    file: str
    id: int
    policy_domain: str
    organization_name: str
    report_id: str
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read(path: Path) -> bytes:
    from moxcli.inputs import read_regular

    return read_regular(path, MAX_FILE, "not a DMARC report:", too_large=CheckFailed)


def parse_report_files(
    paths: list[Path], warn: Callable[[str], None] | None = None, now: float | None = None
) -> list[tuple[Path, Feedback, str]]:
    """Parse every file (all must be reports); (path, report, policy domain name)."""
    now = time.time() if now is None else now
    out = []
    for path in paths:
        data = _read(path)
        try:
            on_warn: Callable[[str], None] | None = (lambda m, p=path: warn(f"{p}: {m}")) if warn else None
            fb = parse_file(data, on_warn)
        except ReportError as exc:
            raise CheckFailed(f"{path}: {exc}") from None
        try:
            domain = parse_domain(fb.policy.domain).name
        except DomainError as exc:
            raise CheckFailed(
                f"{path}: could not parse domain in published policy {fb.policy.domain!r}: {exc}"
            ) from None
        # spec §6.9 (mox): a report about the future is not genuine.
        if fb.metadata.end > now + 60:
            raise CheckFailed(f"{path}: report has end date in the future ({fb.metadata.end})")
        out.append((path, fb, domain))
    return out


def import_files(
    store: Store,
    config: Config,
    paths: list[Path],
    warn: Callable[[str], None] | None = None,
    now: float | None = None,
) -> list[Imported]:
    """Parse all files, then store the new reports in one transaction (a report with the same
    organization, report id and domain as a stored one is skipped as a duplicate)."""
    added = time.time() if now is None else now
    parsed = parse_report_files(paths, warn, added)

    def store_all(tx: Any) -> list[Imported]:
        out = []
        seen: set[tuple[str, str, str]] = set()
        for path, fb, domain in parsed:
            key = (fb.metadata.org_name, fb.metadata.report_id, domain)
            dup = next(
                (
                    r
                    for r in dstore.list_reports(tx, domain)
                    if (r["org_name"], r["report_id"], r["policy_domain"]) == key
                ),
                None,
            )
            if dup is not None or key in seen:
                out.append(Imported(str(path), dup["id"] if dup else 0, domain, key[0], key[1], duplicate=True))
                continue
            seen.add(key)
            rec = {
                "policy_domain": domain,
                "org_name": fb.metadata.org_name,
                "report_id": fb.metadata.report_id,
                "begin": fb.metadata.begin,
                "end": fb.metadata.end,
                "schema": fb.schema,
                "source": path.name,
                "added": added,
                "report": fb.to_json(),
            }
            out.append(Imported(str(path), dstore.add_report(tx, rec), domain, key[0], key[1]))
        return out

    return store.update(store_all)


def summary(rec: dict[str, Any]) -> dict[str, Any]:
    """A stored report as listed: ids, period, message counts by DMARC outcome."""
    records = rec["report"]["records"]
    total = sum(r["count"] for r in records)
    passed = sum(r["count"] for r in records if r["dkim"] == "pass" or r["spf"] == "pass")
    return {
        "id": rec["id"],
        "imported": jsonfmt.rfc3339(rec["added"]),
        "policy_domain": rec["policy_domain"],
        "organization_name": rec["org_name"],
        "report_id": rec["report_id"],
        "start": jsonfmt.rfc3339(rec["begin"]),
        "end": jsonfmt.rfc3339(rec["end"]),
        "schema": rec["schema"],
        "records": len(records),
        "messages": total,
        "dmarc_pass": passed,
        "dmarc_fail": total - passed,
    }


def list_reports(store: Store, policy_domain: str | None = None) -> list[dict[str, Any]]:
    """Stored reports, newest first; with ``policy_domain``, those about that domain."""
    name = None
    if policy_domain is not None:
        try:
            name = parse_domain(policy_domain).name
        except DomainError as exc:
            raise UsageError(f"invalid domain {policy_domain!r}: {exc}") from None
    with store.read() as tx:
        return [summary(r) for r in dstore.list_reports(tx, name)]


def get_report(store: Store, report_id: int) -> tuple[dict[str, Any], Feedback]:
    """A stored report: its summary and the report model; UsageError when there is none."""
    with store.read() as tx:
        rec = dstore.get_report(tx, report_id)
    if rec is None:
        raise UsageError(f"DMARC report {report_id}: no such report")
    return summary(rec), Feedback.from_json(rec["report"])

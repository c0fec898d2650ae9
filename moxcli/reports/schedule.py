"""`moxcli send-reports`: run whichever report jobs are due, so one hourly cron line is enough.

DMARC reports are due every whole UTC hour (docs/behaviour-notes.md §6.4), TLS reports once per UTC day, after
00:00, for the previous day (docs/behaviour-notes.md §2.3). What ran is remembered in the store's meta records
(`schedule:dmarc:end`, `schedule:tls:day`), so extra runs do nothing and a missed hour is
caught up (at most 24 hours back, the 48-hour evaluation lifetime bounds what is left).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from moxcli import jsonfmt, log
from moxcli.config import Config
from moxcli.errors import MoxcliError
from moxcli.metrics import Metric, write_textfile
from moxcli.reports.dmarc import STATUSES, RunResult, hour_end, send_dmarc_reports
from moxcli.store import Store, Txn
from moxcli.values import dataclass, field

_log = log.get("schedule")

DMARC_META = "schedule:dmarc:end"
TLS_META = "schedule:tls:day"
MAX_CATCH_UP_HOURS = 24


@dataclass
class Job:
    name: str
    due: str
    ran: bool = False
    reason: str = ""
    result: Any = None
    error: str = ""
    exit_code: int = 0

    def to_json(self) -> dict[str, Any]:
        """docs/json.md: `due` is a time (DMARC hour end) or a day (TLS), null for unknown."""
        d = dict(self.__dict__)
        if self.name == "tls" and self.due:
            d["due"] = jsonfmt.day(self.due)
        d["due"] = d["due"] or None
        d["reason"] = self.reason or None
        d["error"] = self.error or None
        return d


@dataclass
class ScheduleResult:
    now: float
    dry_run: bool
    jobs: list[Job] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The highest exit code of a failed job (0 if none failed)."""
        return max((j.exit_code for j in self.jobs), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dry_run": self.dry_run,
            "jobs": self.jobs,
        }


def _hour_text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:00:00Z")


def _dmarc_jobs(store: Store, data_dir: Path, config: Config, now: float, dry_run: bool) -> list[Job]:
    if config.no_outgoing_dmarc_reports:
        return [Job("dmarc", "", reason="no_outgoing_dmarc_reports is set")]
    end = hour_end(now)
    with store.read() as tx:
        last = tx.meta(DMARC_META)
    if last is not None and last >= end:
        return [Job("dmarc", _hour_text(end), reason=f"already ran for the hour ending {_hour_text(last)}")]
    first = end if last is None else max(last + 3600, end - (MAX_CATCH_UP_HOURS - 1) * 3600)
    jobs = []
    t = first
    while t <= end:
        try:
            run = send_dmarc_reports(store, data_dir, config, now=now, end=t, dry_run=dry_run)
        except MoxcliError as exc:
            # Not marked done: the next invocation tries this hour again.
            jobs.append(Job("dmarc", _hour_text(t), reason="failed", error=str(exc), exit_code=exc.exit_code))
            break
        if not dry_run:
            store.update(partial(Txn.set_meta, name=DMARC_META, value=t))
        jobs.append(Job("dmarc", _hour_text(t), ran=True, result=run))
        t += 3600
    return jobs


def _tls_job(store: Store, data_dir: Path, config: Config, now: float, dry_run: bool) -> Job:
    day = (datetime.fromtimestamp(now, UTC) - timedelta(days=1)).strftime("%Y%m%d")
    if config.no_outgoing_tls_reports:
        return Job("tls", day, reason="no_outgoing_tls_reports is set")
    with store.read() as tx:
        last = tx.meta(TLS_META)
    if last is not None and last >= day:
        return Job("tls", day, reason=f"already ran for {last}")
    from moxcli.reports.tls import send_tls_reports

    try:
        result = send_tls_reports(store, data_dir, config, day=day, now=now, dry_run=dry_run)
    except MoxcliError as exc:
        return Job("tls", day, reason="failed", error=str(exc), exit_code=exc.exit_code)
    if not dry_run:
        store.update(lambda tx: tx.set_meta(TLS_META, day))
    return Job("tls", day, ran=True, result=result)


def run_due(
    store: Store, data_dir: Path, config: Config, *, now: float | None = None, dry_run: bool = False
) -> ScheduleResult:
    """Run the DMARC hours not yet done, then the TLS day if not yet done."""
    now = time.time() if now is None else now
    out = ScheduleResult(now, dry_run)
    out.jobs.extend(_dmarc_jobs(store, data_dir, config, now, dry_run))
    out.jobs.append(_tls_job(store, data_dir, config, now, dry_run))
    for job in out.jobs:
        _log.info("report job", job=job.name, due=job.due, ran=job.ran, reason=job.reason, error=job.error)
    return out


def dmarc_metrics(runs: list[RunResult]) -> list[Metric]:
    """Counters of DMARC report runs; every series present, 0 when nothing happened."""
    domains = Metric(
        "moxcli_dmarc_report_domains_total", "Policy domains processed, by outcome.", label="status", values=STATUSES
    )
    queued = Metric("moxcli_dmarc_reports_queued_total", "Aggregate report messages queued (one per recipient).")
    error_reports = Metric(
        "moxcli_dmarc_error_reports_queued_total", "RFC 7489 7.2.2 error reports queued (one per recipient)."
    )
    skipped = Metric(
        "moxcli_dmarc_report_recipients_skipped_total",
        "Recipients skipped, by reason.",
        label="reason",
        values=("suppressed", "too_large"),
    )
    evaluations = Metric("moxcli_dmarc_evaluations_processed_total", "Evaluations of the processed domains.")
    stale = Metric(
        "moxcli_dmarc_evaluations_stale_removed_total", "Evaluations removed because they were older than 48 hours."
    )
    errors = Metric(
        "moxcli_dmarc_report_errors_total", "Errors noted while preparing reports (DNS, authorization, queueing)."
    )
    last = Metric(
        "moxcli_dmarc_report_last_period_end_seconds", "End of the last period processed (unix time).", type="gauge"
    )
    for run in runs:
        stale.inc(by=run.stale_removed)
        last.set(run.end)
        for d in run.domains:
            domains.inc(d.status)
            queued.inc(by=len(d.queued_to))
            error_reports.inc(by=len(d.error_report_to))
            skipped.inc("suppressed", len(d.suppressed))
            skipped.inc("too_large", len(d.too_large))
            evaluations.inc(by=d.evaluations)
            errors.inc(by=len(d.errors))
    return [domains, queued, error_reports, skipped, evaluations, stale, errors, last]


def write_dmarc_metrics(path: Path, run: RunResult) -> None:
    write_textfile(path, dmarc_metrics([run]))


def write_metrics(path: Path, result: ScheduleResult) -> None:
    """Job run counts plus the DMARC counters of this invocation."""
    ran = Metric(
        "moxcli_report_jobs_run_total",
        "Report job runs by this invocation, by job.",
        label="job",
        values=("dmarc", "tls"),
    )
    for job in result.jobs:
        if job.ran:
            ran.inc(job.name)
    write_textfile(path, [ran, *dmarc_metrics([j.result for j in result.jobs if j.name == "dmarc" and j.ran])])

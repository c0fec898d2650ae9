"""The daily TLS report job (RFC 8460; docs/behaviour-notes.md §2.3-2.7): `moxcli send-tlsreports`.

For the previous UTC day (or a given one) and any older days left over, every policy domain
with stored TLS results that ask for a report gets an aggregate report at the ``mailto:``
addresses of its TLSRPT record: recipient-domain reports first, then MX-host reports (spec
§2.4). One policy domain at a time, so memory does not grow with the number of results.

Better than mox, on purpose:

- results are marked sent in the same write transaction that queues the report messages, so
  a crash at any point neither loses a report nor sends one twice (mox marks, then queues);
  a host report already marked sent is never sent again (mox only checks recipient-domain
  rows, so its host reports could go out twice after a crash before the cleanup);
- a job lock keeps overlapping runs out;
- instead of sleeping between sends, queued reports get staggered due times (mox's 4 h
  window, at most 5 min apart, docs/behaviour-notes.md §2.4 step 2); ``deliver_now`` delivers at once;
- a report covers the UTC day of its results: rows left over from an older day are reported
  with that day's date range and report id (mox uses the current run's day for them, §2.4);
- a missing or unusable DKIM key for the submitter domain stops the run before anything is
  changed (mox logs an error per report and drops the results).
"""

from __future__ import annotations

import functools
import gc
import gzip
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moxcli import jsonfmt, log
from moxcli.config import Config, DomainConfig
from moxcli.domain import Domain, DomainError, parse_domain
from moxcli.errors import CheckFailed, ConfigError, LockHeld, UsageError
from moxcli.gcpause import cyclic_gc_paused
from moxcli.metrics import Metric, write_textfile
from moxcli.reports import dkim as rdkim
from moxcli.reports.message import compose_report_message
from moxcli.store import Store, job_lock, suppress
from moxcli.store.env import Txn
from moxcli.store.files import STOP_ERRNOS
from moxcli.tlsrpt import resultsdb as tstore
from moxcli.tlsrpt.report import RESULT_TYPES, PackedMerger, Report, packed_json, report_json_text
from moxcli.values import dataclass, field

_log = log.get("tlsrptsend")

KIND_RCPT = "recipient-domain"
KIND_HOST = "host"
SEND_WINDOW = 4 * 3600.0  # docs/behaviour-notes.md §2.4 step 2: spread sends over 4 h ...
MAX_BETWEEN = 300.0  # ... at most 5 minutes apart
MAX_ATTEMPTS = 5  # docs/behaviour-notes.md §2.5 step 11
MAX_MESSAGE_SIZE = 100 * 1024 * 1024  # docs/behaviour-notes.md §2.7: composing limit
STALE_HOURS = 60  # docs/behaviour-notes.md §2.3 step 2
LOCK_NAME = "send-tlsreports"
RELEASE_EVERY = 64  # policy domains between drops of the store pages read

SKIP_REASONS = (
    "no-report-requested",
    "no-tlsrpt-record",
    "no-mailto-rua",
    "already-sent",
    "no-policies",
    "success-only",
    "no-results",
)
ERROR_REASONS = ("dns-temporary", "record-invalid", "local")

TEXT = """Attached is a TLS report with a summary of connection successes and failures
during attempts to securely deliver messages to your mail server, including
details about errors encountered. You are receiving this message because your
address is specified in the "rua" field of the TLSRPT record for your
domain/host.

Policy Domain: {policy}
Submitter: {submitter}
Report-ID: {report_id}
Period: {start} - {end} UTC
"""


@dataclass
class ReportOutcome:
    """One report composed (and queued unless dry-run); ``built`` is the report in dry-run."""

    day_utc: str
    policy_domain: str
    kind: str
    report_id: str
    recipients: list[str]
    suppressed: list[str]
    queue_ids: list[int] = field(default_factory=list)
    next_attempt: float | None = None
    policies: int = 0
    built: BuiltReport | None = None

    @property
    def report(self) -> dict[str, Any] | None:
        """The RFC 8460 JSON of the report (dry-run)."""
        return None if self.built is None else self.built.to_json()

    def report_text(self, indent: str | int | None = None) -> str:
        """``json.dumps(self.report, ensure_ascii=False, indent=indent)``, several times faster."""
        if self.built is None:
            return "null"
        return self.built.json_text(indent)

    def to_json(self, with_report: bool = True) -> dict[str, Any]:
        """The ``--json`` object; ``with_report=False`` leaves out ``report`` (see report_text)."""
        d: dict[str, Any] = {
            "day": jsonfmt.day(self.day_utc),
            "policy_domain": jsonfmt.a_label(self.policy_domain),
            "kind": self.kind,
            "report_id": self.report_id,
            "recipients": self.recipients,
            "suppressed": self.suppressed,
            "queue_ids": self.queue_ids,
            "next_attempt": jsonfmt.rfc3339(self.next_attempt) if self.next_attempt else None,
            "policies": self.policies,
        }
        if with_report and self.built is not None:
            d["report"] = self.built.to_json()
        return d


@dataclass
class SendSummary:
    """What a run did; ``reports`` holds no report bodies (they go to ``on_report``)."""

    day_utc: str
    dry_run: bool
    disabled: bool = False
    submitter: str = ""
    reports: list[ReportOutcome] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    removed_rows: int = 0
    stale_rows: int = 0
    delivered: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def local_errors(self) -> int:
        return sum(1 for e in self.errors if e["reason"] == "local")

    def to_json(self) -> dict[str, Any]:
        return {
            "day": jsonfmt.day(self.day_utc),
            "dry_run": self.dry_run,
            "disabled": self.disabled,
            "submitter": self.submitter,
            "reports": [r.to_json() for r in self.reports],
            "skipped": [_contract_day(x) for x in self.skipped],
            "errors": [_contract_day(_as_finding(x)) for x in self.errors],
            "removed_rows": self.removed_rows,
            "stale_rows": self.stale_rows,
            "delivered": self.delivered,
            "warnings": [_contract_day(x) for x in self.warnings],
        }


def _as_finding(entry: dict[str, str]) -> dict[str, str]:
    """A run error as a finding (docs/json.md, Findings): its `reason` is the `code`, its text the `message`."""
    return {
        **{k: v for k, v in entry.items() if k not in ("reason", "error")},
        "code": entry["reason"],
        "message": entry["error"],
    }


def _contract_day(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of the run's lists in the JSON contract: `day` as YYYY-MM-DD, A-labels (docs/json.md)."""
    d: dict[str, Any] = {"day": jsonfmt.day(entry["day_utc"])} if "day_utc" in entry else {}
    d.update((k, v) for k, v in entry.items() if k != "day_utc")
    if "policy_domain" in d:
        d["policy_domain"] = jsonfmt.a_label(d["policy_domain"])
    return d


@functools.lru_cache(maxsize=64)
def _day_start(day: str) -> datetime:
    """Midnight UTC of ``day``; cached: strptime costs ~0.1 ms and every report needs it."""
    try:
        return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"invalid day {day!r}: expected YYYYMMDD", code="bad-day") from None


def submitter_domain(config: Config) -> DomainConfig:
    """Spec §2.5 step 1: the first configured domain from the hostname up, with DKIM keys."""
    d = rdkim.walk_configured_domain(config)
    where = f"{config.path}: " if config.path else ""
    if d is None:
        raise ConfigError(
            f"{where}no configured domain for hostname {config.hostname} or its parents: TLS reports "
            "need a DKIM-signing submitter domain"
        )
    if d.disabled:
        raise ConfigError(f"{where}domain {d.name} (TLS report submitter for hostname {config.hostname}) is disabled")
    if not d.dkim.sign:
        raise ConfigError(
            f"{where}domain {d.name} (TLS report submitter for hostname {config.hostname}) has no "
            "DKIM signing configured; TLS reports must be DKIM-signed (RFC 8460 §3)"
        )
    rdkim.check_keys(d)
    return d


def mailto_recipients(ruas: tuple[tuple[str, ...], ...]) -> tuple[list[str], list[str]]:
    """(addresses, exact mailto rua strings) from every rua list in order (docs/behaviour-notes.md §2.5 step 3)."""
    from moxcli.delivery.queue import sendable
    from moxcli.tlsrpt.record import uri_scheme

    addrs: list[str] = []
    kept: list[str] = []
    for lst in ruas:
        for uri in lst:
            if uri_scheme(uri) != "mailto":
                continue  # https: and other schemes ignored (mox quirk, docs/behaviour-notes.md §2.6)
            opaque = uri.split(":", 1)[1].split("?", 1)[0]
            local, sep, dom = opaque.rpartition("@")
            if not sep or not local or any(c.isspace() or c in '<>,"' for c in opaque):
                continue
            try:
                d = parse_domain(dom)
            except DomainError:
                continue
            addr = f"{local}@{d.ascii}"
            if not sendable(addr):
                continue  # over RFC 5321 4.5.3.1's sizes: queueing would refuse it
            addrs.append(addr)
            kept.append(uri)
    return addrs, kept


@functools.lru_cache(maxsize=4096)
def _domain(name: str) -> Domain:
    if name.isascii():
        return Domain(name)  # stored names are normalised: ASCII means no IDNA labels
    try:
        return parse_domain(name, lax=True)
    except DomainError:
        return Domain(name)


def _ascii_name(name: str) -> str:
    """A host name or ``*.`` pattern in A-labels (a name that is no domain stays as it is)."""
    if name.isascii():
        return name
    wild = name.startswith("*.")
    return ("*." if wild else "") + _domain(name[2:] if wild else name).ascii


def _a_labels(v: list[Any]) -> None:
    """Domain names of a packed policy in A-labels, in place, whatever form the results were
    stored in. Producing, we follow the RFC: RFC 8460 4.4 says of policy-domain that for an
    IDN it MUST be the Punycode-encoded A-labels, not the U-labels; mx-host,
    receiving-mx-hostname and receiving-mx-helo are host names and get the same form. mox does
    the same (tlsrpt/report.go: "ASCII/A-labels", its tlsrptsend test: ``xn--74h.example``).
    Parsing received reports stays liberal: U-labels are accepted there."""
    v[2] = _ascii_name(v[2])
    v[3] = [_ascii_name(h) for h in v[3]]
    for d in v[6]:
        d[2] = _ascii_name(d[2])
        d[3] = _ascii_name(d[3])


def _host_policies(rows: list[tstore.PackedRow], ruas: list[str]) -> list[list[Any]]:
    """Spec §2.5 step 7, host report: one policy per recipient domain, deduped by rua list.

    After the rewrite every policy carries its row's recipient domain, and each row is a
    different recipient domain, so results of different rows never merge: only the results
    within one row are merged (docs/behaviour-notes.md §1.5), which keeps the job linear on huge tables.
    """
    out: list[list[Any]] = []
    for row in rows:
        if row.recipient_domain_reporting_addresses == ruas:
            continue
        rcpt = row.recipient_domain
        # A million distinct names would only churn _domain's cache; ASCII names are final.
        rcpt_ascii = rcpt if rcpt.isascii() else _domain(rcpt).ascii
        is_host = row.is_host
        results = row.results  # freshly decoded: rewritten in place
        for v in results:
            if is_host:
                v[3] = [v[2]]
            v[2] = rcpt_ascii
        if len(results) == 1:
            out.append(results[0])
            continue
        merger = PackedMerger()
        for v in results:
            merger.add(v)
        out.extend(merger.results)
    return out


@dataclass
class BuiltReport:
    """A report ready to send: policies in packed form (see moxcli.tlsrpt.report)."""

    organization_name: str
    start: datetime
    end: datetime
    contact_info: str
    report_id: str
    policies: list[list[Any]]

    def _head(self) -> dict[str, Any]:
        head = Report(self.organization_name, self.start, self.end, self.contact_info, self.report_id).to_json()
        del head["policies"]
        return head

    def to_json(self) -> dict[str, Any]:
        return self._head() | {"policies": [packed_json(p) for p in self.policies]}

    def json_text(self, indent: str | int | None = None) -> str:
        """``json.dumps(self.to_json(), ensure_ascii=False, indent=indent)`` without the dicts."""
        return report_json_text(self._head(), self.policies, indent)


@dataclass
class _Job:
    store: Store
    data_dir: Path
    config: Config
    submitter: DomainConfig
    dry_run: bool
    now: float
    between: float
    summary: SendSummary
    on_report: Callable[[ReportOutcome], None] | None
    metrics: dict[str, Metric]
    sent_index: int = 0
    cleanup: list[tuple[str, str]] = field(default_factory=list)


def _build(job: _Job, tx: Txn, kind: str, day: str, pdom: str, ruas: list[str]) -> tuple[BuiltReport | None, str]:
    """The report for one key, or None and the skip reason (docs/behaviour-notes.md §2.5 steps 4-8)."""
    rows = (
        tstore.packed_rows_for_recipient_domain(tx, day, pdom)
        if kind == KIND_RCPT
        else tstore.packed_rows_for_policy_domain(tx, day, pdom)
    )
    if not rows:
        return None, "no-results"
    if kind == KIND_RCPT and any(r.sent_to_recipient_domain for r in rows if r.policy_domain == r.recipient_domain):
        return None, "already-sent"
    if kind == KIND_HOST and any(r.sent_to_policy_domain for r in rows):
        return None, "already-sent"
    if kind == KIND_RCPT:
        merger = PackedMerger()
        for row in rows:
            for v in row.results:
                merger.add(v)
        policies = merger.results
    else:
        policies = _host_policies(rows, ruas)
    if not policies:
        return None, "no-policies"
    for v in policies:
        _a_labels(v)
    # Spec §2.5 step 8: a failure count or any failure detail makes a report worth sending.
    if not job.config.outgoing_tls_reports_for_all_success and not any(p[5] > 0 or p[6] for p in policies):
        return None, "success-only"
    start = _day_start(day)
    sub = job.submitter.name
    report = BuiltReport(
        organization_name=sub,
        start=start,
        end=start + timedelta(days=1) - timedelta(seconds=1),
        contact_info=f"postmaster@{sub}",
        report_id=f"{day}.{_domain(pdom).ascii}@{sub}",
        policies=policies,
    )
    return report, ""


def compose(
    config: Config,
    submitter: DomainConfig,
    policy_domain: str,
    report: BuiltReport,
    recipients: list[str],
    now: float | None = None,
) -> tuple[bytes, bytes]:
    """The report message (docs/behaviour-notes.md §2.7) and its DKIM signature headers (the queue prefix)."""
    pd = _domain(policy_domain)
    sub = parse_domain(submitter.name)
    start_unix = int(report.start.timestamp())
    end_unix = int(report.end.timestamp())
    period_end = report.end + timedelta(seconds=1)
    text = TEXT.format(
        policy=pd.log_name,
        submitter=sub.log_name,
        report_id=report.report_id,
        start=report.start.strftime("%Y-%m-%d %H:%M:%S"),
        end=period_end.strftime("%Y-%m-%d %H:%M:%S"),
    )
    filename = f"{sub.ascii}!{pd.ascii}!{start_unix}!{end_unix}.json.gz"
    data = compose_report_message(
        from_addr=f"postmaster@{sub.ascii}",
        to_addrs=recipients,
        subject=f"Report Domain: {pd.ascii} Submitter: {sub.log_name} Report-ID: <{report.report_id}>",
        extra_headers=[("TLS-Report-Domain", pd.ascii), ("TLS-Report-Submitter", sub.ascii), ("TLS-Required", "No")],
        hostname=config.hostname,
        content_type='multipart/report; report-type="tlsrpt"',
        text=text,
        # As report_json_bytes: TAB-indented, final newline (mox).
        attachment=gzip.compress((report.json_text("\t") + "\n").encode("utf-8"), mtime=0),
        attachment_type="application/tlsrpt+gzip",
        filename=filename,
        date=now,
    )
    if len(data) > MAX_MESSAGE_SIZE:
        raise CheckFailed(f"report message for {pd.ascii} is {len(data)} bytes, more than {MAX_MESSAGE_SIZE}")
    # RFC 8460 §5.3: TLS-Report-Domain and TLS-Report-Submitter SHOULD be DKIM-signed.
    prefix = rdkim.sign_message(submitter, data, ["TLS-Report-Domain", "TLS-Report-Submitter"])
    return data, prefix


def _lookup(job: _Job, resolver: Any, kind: str, day: str, pdom: str) -> tuple[list[str], list[str]] | None:
    from moxcli.dns import DNSError, NotFound
    from moxcli.tlsrpt.lookup import InvalidRecord, lookup_tlsrpt

    try:
        record, _ = lookup_tlsrpt(resolver, _domain(pdom))
    except NotFound:
        _skip(job, kind, day, pdom, "no-tlsrpt-record")
        job.cleanup.append((day, pdom))
        return None
    except DNSError as exc:
        # Spec §2.5 step 2 / §12 item 9 (faithful to mox): a DNS error drops the results.
        _error(job, kind, day, pdom, "dns-temporary", str(exc))
        job.cleanup.append((day, pdom))
        return None
    except InvalidRecord as exc:
        # A broken record keeps the results for the next run (until the stale cleanup).
        _error(job, kind, day, pdom, "record-invalid", str(exc))
        return None
    for uri, problem in record.invalid_rua:
        # Like mox: a URI that does not parse is skipped; the record's other addresses get the report.
        job.summary.warnings.append(
            {
                "day_utc": day,
                "policy_domain": pdom,
                "kind": kind,
                "code": "rua-invalid-uri",
                "message": f"rua {uri!r}: invalid URI: {problem}; skipped, the record's other addresses get the report",
                "rua": uri,
                "problem": problem,
            }
        )
        _log.warn("skipping invalid rua uri of tlsrpt record", policy_domain=pdom, rua=uri, problem=problem)
    addrs, ruas = mailto_recipients(record.ruas)
    if not addrs:
        _skip(job, kind, day, pdom, "no-mailto-rua")
        job.cleanup.append((day, pdom))
        return None
    return addrs, ruas


def _skip(job: _Job, kind: str, day: str, pdom: str, reason: str) -> None:
    job.summary.skipped.append({"day_utc": day, "policy_domain": pdom, "kind": kind, "reason": reason})
    job.metrics["skipped"].inc(reason)
    _log.debug("no tls report", policy_domain=pdom, day=day, kind=kind, reason=reason)


def _error(job: _Job, kind: str, day: str, pdom: str, reason: str, msg: str) -> None:
    job.summary.errors.append({"day_utc": day, "policy_domain": pdom, "kind": kind, "reason": reason, "error": msg})
    job.metrics["errors"].inc(reason)
    _log.error("tls report", policy_domain=pdom, day=day, kind=kind, err=msg)


def _send_key(job: _Job, resolver: Any, kind: str, key: tstore.ReportKey) -> None:
    day, pdom = key.day_utc, key.policy_domain
    if not key.send_report:
        _skip(job, kind, day, pdom, "no-report-requested")
        job.cleanup.append((day, pdom))
        return
    due = job.now + job.sent_index * job.between
    found = _lookup(job, resolver, kind, day, pdom)
    if found is None:
        return
    addrs, ruas = found

    def fn(tx: Txn) -> tuple[ReportOutcome | None, BuiltReport | None, str]:
        report, reason = _build(job, tx, kind, day, pdom, ruas)
        if report is None:
            return None, None, reason
        suppressed = [a for a in addrs if suppress.is_suppressed(tx, "tls", a, job.now)]
        out = ReportOutcome(day, pdom, kind, report.report_id, addrs, suppressed, policies=len(report.policies))
        if job.dry_run:
            out.built = report
            return out, report, ""
        data, prefix = compose(job.config, job.submitter, pdom, report, addrs, job.now)
        if kind == KIND_RCPT:
            tstore.mark_sent_recipient_domain(tx, day, pdom, ruas)
        else:
            tstore.mark_sent_policy_domain(tx, day, pdom)
        todo = [a for a in addrs if a not in suppressed]
        if todo:
            from moxcli.delivery.queue import enqueue_in

            out.queue_ids = enqueue_in(
                tx,
                job.data_dir,
                mail_from=f"postmaster@{parse_domain(job.submitter.name).ascii}",
                recipients=todo,
                data=data,
                prefix=prefix,
                require_tls=False,  # RFC 8460 §3/§5.3: deliver despite TLS problems
                is_tls_report=True,
                max_attempts=MAX_ATTEMPTS,
                next_attempt=due,
                sender_account=job.config.postmaster.account,
            )
            out.next_attempt = due
        return out, report, ""

    try:
        if job.dry_run:
            with job.store.read() as tx:
                out, report, reason = fn(tx)
        else:
            out, report, reason = job.store.update(fn)
    except (ConfigError, UsageError, CheckFailed, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in STOP_ERRNOS:
            raise  # the data directory is unusable (a planted symlink, disk full): every report would fail
        # Composing, signing or queueing failed: the transaction is rolled back, rows kept.
        _error(job, kind, day, pdom, "local", str(exc))
        return
    job.cleanup.append((day, pdom))
    if out is None or report is None:
        _skip(job, kind, day, pdom, reason)
        return
    if out.queue_ids:
        job.sent_index += 1
    failed: dict[str, int] = {}  # summed per result type first: one policy per row
    for p in report.policies:
        for d in p[6]:
            failed[d[0]] = failed.get(d[0], 0) + d[5]
    for result_type, n in failed.items():
        job.metrics["failure_sessions"].inc(result_type, n)
    job.metrics["reports"].inc(kind)
    job.metrics["messages"].inc(by=len(out.queue_ids))
    job.metrics["suppressed"].inc(by=len(out.suppressed))
    _log.info(
        "tls report",
        policy_domain=pdom,
        day=day,
        kind=kind,
        recipients=len(out.recipients),
        suppressed=len(out.suppressed),
        queued=len(out.queue_ids),
    )
    if job.on_report is not None:
        job.on_report(out)
    out.built = None
    job.summary.reports.append(out)


def new_metrics() -> dict[str, Metric]:
    """The metric families of a run, every label value present at 0."""
    return {
        "reports": Metric(
            "moxcli_tlsreports_reports_queued_total",
            "TLS reports composed and queued in the last run.",
            label="kind",
            values=(KIND_RCPT, KIND_HOST),
        ),
        "messages": Metric(
            "moxcli_tlsreports_messages_queued_total",
            "Report messages queued (one per reporting address) in the last run.",
        ),
        "suppressed": Metric(
            "moxcli_tlsreports_suppressed_total",
            "Reporting addresses skipped because they are on the suppression list.",
        ),
        "skipped": Metric(
            "moxcli_tlsreports_skipped_total",
            "Policy domains without a report, by reason.",
            label="reason",
            values=SKIP_REASONS,
        ),
        "errors": Metric(
            "moxcli_tlsreports_errors_total",
            "Policy domains whose report failed, by reason.",
            label="reason",
            values=ERROR_REASONS,
        ),
        "failure_sessions": Metric(
            "moxcli_tlsreports_failure_sessions_total",
            "Failed sessions in the queued reports, by RFC 8460 result type.",
            label="result_type",
            values=(*RESULT_TYPES, "other"),
        ),
        "last_run": Metric(
            "moxcli_tlsreports_last_run_timestamp_seconds", "Unix time the last run finished.", type="gauge"
        ),
    }


def send_tls_reports(
    store: Store,
    data_dir: Path,
    config: Config,
    *,
    resolver: Any = None,
    day: str | None = None,
    now: float | None = None,
    dry_run: bool = False,
    deliver_now: bool = False,
    metrics_file: Path | None = None,
    on_report: Callable[[ReportOutcome], None] | None = None,
) -> SendSummary:
    """Compose and queue the TLS reports for ``day`` (default: the previous UTC day) and older.

    ``on_report`` sees each report as it is made (with its JSON in dry-run mode). Raises
    ConfigError (nothing changed) when there is no DKIM-signing submitter domain, LockHeld
    when another run is busy.
    """
    t = time.time() if now is None else now
    if day is None:
        end = datetime.fromtimestamp(t, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        day = (end - timedelta(hours=12)).strftime("%Y%m%d")
    else:
        end = _day_start(day) + timedelta(days=1)
    summary = SendSummary(day_utc=day, dry_run=dry_run)
    metrics = new_metrics()
    if config.no_outgoing_tls_reports:
        summary.disabled = True
        _finish_metrics(metrics, metrics_file)
        return summary
    submitter = submitter_domain(config)
    summary.submitter = submitter.name
    if resolver is None:
        from moxcli.dns import Resolver

        resolver = Resolver.from_config(config.dns)
    with job_lock(data_dir, LOCK_NAME), cyclic_gc_paused():
        stale_day = (end - timedelta(hours=STALE_HOURS)).strftime("%Y%m%d")
        if not dry_run:
            summary.stale_rows = store.update(lambda tx: tstore.delete_before(tx, stale_day))
        with store.read() as tx:
            rcpt_keys, host_keys = tstore.report_keys(tx, day, store)
        store.drop_read_pages()
        nsend = sum(1 for k in rcpt_keys + host_keys if k.send_report)
        between = 0.0 if deliver_now else min(SEND_WINDOW / nsend if nsend else SEND_WINDOW, MAX_BETWEEN)
        job = _Job(store, Path(data_dir), config, submitter, dry_run, t, between, summary, on_report, metrics)
        # Recipient-domain reports first: they store the addresses the host reports dedupe on.
        for i, (kind, key) in enumerate([(KIND_RCPT, k) for k in rcpt_keys] + [(KIND_HOST, k) for k in host_keys]):
            _send_key(job, resolver, kind, key)
            if i % RELEASE_EVERY == RELEASE_EVERY - 1:
                store.drop_read_pages()  # resident memory stays flat on huge tables
                gc.collect(0)
        if not dry_run and job.cleanup:
            summary.removed_rows = store.update(
                lambda tx: sum(tstore.delete_policy_domain(tx, d, p) for d, p in job.cleanup)
            )
    if deliver_now and not dry_run:
        ids = [i for r in summary.reports for i in r.queue_ids]
        if ids:
            from moxcli.delivery.deliver import run_queue

            try:
                summary.delivered = [a.to_json() for a in run_queue(store, Path(data_dir), config, ids=ids)]
            except LockHeld as exc:
                # The reports are queued; the queue runner that holds the lock delivers them.
                _log.warn("reports queued, not delivered now", err=str(exc))
    _finish_metrics(metrics, metrics_file)
    return summary


def _finish_metrics(metrics: dict[str, Metric], path: Path | None) -> None:
    if path is None:
        return
    metrics["last_run"].set(time.time())
    write_textfile(path, metrics.values())

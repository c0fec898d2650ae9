"""The hourly DMARC aggregate report job (RFC 7489 §7.2; docs/behaviour-notes.md §6.3-6.8).

Run once an hour (cron or `moxcli send-reports`): for the hour that just ended, every policy
domain whose reporting interval ends then gets a report of the evaluations stored for it.

Better than mox in the same ways as the TLS reports: the report messages are queued and the
reported evaluations removed in ONE write transaction per domain (a crash never loses or
doubles a report), overlapping runs are locked out, and instead of sleeping between domains
the queued reports get staggered due times (45 minutes spread, at most 5 minutes apart).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from moxcli import jsonfmt, log
from moxcli.config import Config
from moxcli.dmarc import db as evaldb
from moxcli.dmarc.evaluation import Evaluation
from moxcli.dmarc.interval import intervals_ending_at
from moxcli.dmarc.receivedid import load_key, received_id
from moxcli.dmarc.report import DKIMAuth, Feedback, Metadata, Published, Reason, Record, SPFAuth, build_xml, record_xml
from moxcli.dmarc.verify import RuaCheck, check_domain
from moxcli.dns import DNSError, Resolver, TemporaryDNSError
from moxcli.domain import Domain, parse_domain
from moxcli.errors import ConfigError, MoxcliError, UsageError
from moxcli.jsonfmt import Finding
from moxcli.store import Store, job_lock, suppress
from moxcli.store.files import STOP_ERRNOS
from moxcli.values import dataclass, field

_log = log.get("dmarcreports")

STALE_SECONDS = 48 * 3600
SPREAD_SECONDS = 45 * 60
MAX_BETWEEN = 5 * 60
MAX_ATTEMPTS = 5
LOCK_NAME = "dmarcreports"
PARALLEL_LOOKUPS = 8

BODY = """Attached is an aggregate DMARC report with results of evaluations of the DMARC
policy of your domain for messages received by us that have your domain in the
message From header. You are receiving this message because your address is
specified in the "rua" field of the DMARC record for your domain.

Report domain: {domain}
Submitter: {submitter}
Report-ID: {report_id}
Period: {begin} - {end} UTC
"""


@dataclass
class Recipient:
    address: str
    uri: str
    max_size: int = 0


@dataclass
class DomainResult:
    """What happened for one policy domain; ``status`` is one of STATUSES."""

    domain: str
    status: str
    evaluations: int = 0
    records: int = 0
    report_id: str = ""
    begin: int = 0
    end: int = 0
    queued_to: list[str] = field(default_factory=list)
    error_report_to: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    kept: bool = False
    size: int = 0
    due: float = 0.0
    queue_ids: list[int] = field(default_factory=list)
    xml: str = ""

    def to_json(self) -> dict[str, Any]:
        """The contract form (docs/json.md): the policy domain first, the period as `start`/`end`
        times, null for unknown; keys in the order docs/dmarc-reports.md lists them."""
        known = bool(self.begin or self.end)
        d: dict[str, Any] = {
            "policy_domain": self.domain,
            "status": self.status,
            "evaluations": self.evaluations,
            "records": self.records,
            "report_id": self.report_id or None,
            "start": jsonfmt.rfc3339(self.begin) if known else None,
            "end": jsonfmt.rfc3339(self.end) if known else None,
            "queued_to": self.queued_to,
            "error_report_to": self.error_report_to,
            "suppressed": self.suppressed,
            "too_large": self.too_large,
            "errors": jsonfmt.findings_json(self.errors),
            "kept": self.kept,
            "size": self.size,
            "due": jsonfmt.rfc3339(self.due) if self.due else None,
            "queue_ids": self.queue_ids,
        }
        if self.xml:
            d["xml"] = self.xml
        return d


STATUSES = (
    "queued",
    "error-report",
    "nothing-queued",
    "no-recipients",
    "no-record",
    "only-optional",
    "temporary-error",
)


@dataclass
class RunResult:
    end: float
    intervals: list[int]
    dry_run: bool
    stale_removed: int = 0
    domains: list[DomainResult] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "end": _rfc3339(self.end),
            "intervals": self.intervals,
            "dry_run": self.dry_run,
            "stale_removed": self.stale_removed,
            "domains": [d.to_json() for d in self.domains],
            "delivered": self.delivered,
        }


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _human(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def hour_end(now: float) -> float:
    """The whole UTC hour at or before ``now``: the end of the period that just finished."""
    return float(int(now) // 3600 * 3600)


def _in_period(e: Evaluation, end: float) -> bool:
    """Evaluated before the end and not stale (a dry run sees stale rows that a run removes)."""
    return end - STALE_SECONDS <= e.evaluated < end


def _spf_auth(e: Evaluation) -> list[SPFAuth]:
    """The ``<spf>`` results of a row. RFC 7489 Appendix C requires at least one: when no SPF
    result is known, result ``none`` for the identity SPF checks, the MAIL FROM domain, or the
    HELO domain for a null reverse-path (RFC 7208 §2.4); with neither known, an empty domain."""
    if e.spf_results:
        return [SPFAuth(s.domain, s.result, s.scope) for s in e.spf_results]
    if not e.envelope_from and e.helo_domain:
        return [SPFAuth(e.helo_domain, "none", "helo")]
    return [SPFAuth(e.envelope_from, "none", "mfrom")]


def _to_record(e: Evaluation) -> Record:
    return Record(
        source_ip=e.source_ip,
        count=1,
        disposition=e.disposition,
        dkim="pass" if e.aligned_dkim_pass else "fail",
        spf="pass" if e.aligned_spf_pass else "fail",
        header_from=e.header_from,
        envelope_from=e.envelope_from,
        envelope_to=e.envelope_to,
        reasons=[Reason(r.type, r.comment) for r in e.override_reasons],
        dkim_auth=[DKIMAuth(d.domain, d.result, d.selector) for d in e.dkim_results],
        spf_auth=_spf_auth(e),
    )


def aggregate_records(evals: list[Evaluation], fmt: str) -> list[Record]:
    """Identical rows become one record with a count; records sorted by their XML (docs/behaviour-notes.md §6.4
    steps 4 and 8). Rows are compared by the fields that make up a record, which for RFC 7489
    is the same as comparing their XML, and cheaper."""
    counted: dict[tuple[Any, ...], Record] = {}
    for e in evals:
        key = (
            e.source_ip,
            e.disposition,
            e.aligned_dkim_pass,
            e.aligned_spf_pass,
            e.override_reasons,
            e.envelope_to,
            e.envelope_from,
            e.header_from,
            e.dkim_results,
            tuple((s.domain, s.result, s.scope) for s in _spf_auth(e)),
        )
        r = counted.get(key)
        if r is None:
            counted[key] = _to_record(e)
        else:
            r.count += 1
    keyed = [(record_xml(r, fmt), r) for r in counted.values()]
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed]


def date_range(first: Evaluation, end: float) -> tuple[int, int]:
    """(begin, end) in unix seconds: end is the last second of the period; begin is moved back
    by whole intervals (of the first row) until it covers the first row (docs/behaviour-notes.md §6.4 step 5)."""
    step = first.interval_hours * 3600
    begin = end - step
    while begin > first.evaluated:
        begin -= step
    return int(begin), int(end) - 1


def build_feedback(
    config: Config, domain: Domain, evals: list[Evaluation], report_id: str, end: float, errors: Sequence[str]
) -> Feedback:
    """The report of a policy domain's evaluations (oldest first) for the period ending at ``end``."""
    from moxcli import __version__

    fmt = config.dmarc_report_format
    begin, last = date_range(evals[0], end)
    pp = evals[-1].policy_published  # docs/behaviour-notes.md §6.4 step 7: the last row's policy, not a fresh lookup
    return Feedback(
        metadata=Metadata(
            org_name=config.hostname,
            email=f"postmaster@{config.hostname}",
            report_id=report_id,
            begin=begin,
            end=last,
            errors=list(errors),
            generator=f"moxcli {__version__}" if fmt == "rfc9990" else "",
        ),
        policy=Published(
            domain=pp.domain,
            p=pp.p,
            sp=pp.sp,
            pct=str(pp.pct),
            adkim=pp.adkim,
            aspf=pp.aspf,
            discovery_method="psl" if fmt == "rfc9990" else "",
        ),
        records=aggregate_records(evals, fmt),
    )


def _hostname(config: Config) -> Domain:
    return parse_domain(config.hostname) if config.hostname != "localhost" else Domain("localhost")


def _report_message(
    config: Config, domain: Domain, fb: Feedback, xml_gz: bytes, end: float, to: list[str], now: float
) -> bytes:
    from moxcli.reports.message import compose_report_message

    host = _hostname(config)
    m = fb.metadata
    text = BODY.format(
        domain=domain.log_name, submitter=host.log_name, report_id=m.report_id, begin=_human(m.begin), end=_human(end)
    )
    # RFC 7489 §7.2.1.1 subject and file name: receiver!policy-domain!begin!end.xml.gz
    return compose_report_message(
        from_addr=f"postmaster@{config.hostname}",
        to_addrs=to,
        subject=f"Report Domain: {domain.ascii} Submitter: {config.hostname} Report-ID: <{m.report_id}>",
        extra_headers=[],
        hostname=config.hostname,
        content_type="multipart/mixed",
        text=text,
        attachment=xml_gz,
        attachment_type="application/gzip",
        filename=f"{config.hostname}!{domain.ascii}!{m.begin}!{m.end}.xml.gz",
        date=now,
    )


def error_report_message(
    config: Config, domain: Domain, report_id: str, size: int, recipients: list[Recipient], now: float
) -> bytes:
    """RFC 7489 §7.2.2 error report: a text/plain part with the six required fields."""
    from moxcli.reports.message import USER_AGENT, address_header, format_date, message_id, text_part_headers

    text = (
        f"Report-Date: {format_date(now)}\n"
        f"Report-Domain: {domain.ascii}\n"
        f"Report-ID: {report_id}\n"
        f"Report-Size: {size}\n"
        f"Submitter: {config.hostname}\n"
        f"Submitting-URI: {', '.join(r.uri for r in recipients)}\n"
    )
    part_headers, body = text_part_headers(text)
    head = address_header("From", [f"postmaster@{config.hostname}"]) + address_header(
        "To", [r.address for r in recipients]
    )
    head += f"Subject: DMARC aggregate reporting error report for {domain.ascii}\r\n".encode()
    rest = [
        ("Message-Id", message_id(config.hostname)),
        ("Date", format_date(now)),
        ("User-Agent", USER_AGENT),
        ("MIME-Version", "1.0"),
        *[(k, v) for k, v in part_headers if k == "Content-Type"],
        *[(k, v) for k, v in part_headers if k == "Content-Transfer-Encoding"],
    ]
    head += "".join(f"{k}: {v}\r\n" for k, v in rest).encode()
    return head + b"\r\n" + body


def _dkim_prefix(config: Config, message: bytes) -> bytes:
    """DKIM signatures by the first configured domain walking up from the hostname; DMARC
    reports are sent unsigned when there is no key or signing fails (docs/behaviour-notes.md §6.6, §12 item 2)."""
    from moxcli.reports.dkim import sign_message, walk_configured_domain

    dom = walk_configured_domain(config)
    if dom is None or dom.disabled or not dom.dkim.sign:
        return b""
    try:
        return sign_message(dom, message)
    except ConfigError as exc:
        _log.error("dkim signing dmarc report failed, sending unsigned", err=str(exc))
        return b""


def recipients_of(checks: tuple[RuaCheck, ...]) -> list[Recipient]:
    """The distinct addresses the checked rua elements allow (RFC 7489 §7.1), without those
    queueing would refuse (over RFC 5321 4.5.3.1's sizes)."""
    from moxcli.delivery.queue import sendable

    out: list[Recipient] = []
    seen: set[str] = set()
    for check in checks:
        for u in check.uris:
            local, dom = u.mailto()
            addr = f"{local}@{dom.ascii}"
            if addr.lower() not in seen and sendable(addr):
                seen.add(addr.lower())
                out.append(Recipient(addr, u.uri, u.max_size))
    return out


@dataclass
class _Plan:
    """A domain's report, ready to be queued in one transaction."""

    result: DomainResult
    ids: list[int]
    cleanup: bool
    message: bytes = b""
    prefix: bytes = b""
    recipients: list[Recipient] = field(default_factory=list)
    error_message: Callable[[list[Recipient]], bytes] | None = None


@dataclass
class _Destinations:
    """Outcome of the DNS part for a domain: where its report may go (or why not)."""

    status: str = ""  # "" when there are recipients, else the DomainResult status
    recipients: list[Recipient] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    temporary: bool = False


def _destinations(resolver: Resolver, policy_domain: str) -> _Destinations:
    """DMARC record lookup and rua checks; no store access, so it can run in a worker thread."""
    out = _Destinations()
    try:
        check = check_domain(resolver, parse_domain(policy_domain))
    except TemporaryDNSError as exc:
        out.status, out.temporary = "temporary-error", True
        out.errors.append(Finding(exc.status, str(exc)))
        return out
    except (DNSError, MoxcliError) as exc:
        out.status = "no-record"
        out.errors.append(Finding(exc.status if isinstance(exc, DNSError) else exc.code, str(exc)))
        return out
    out.recipients = recipients_of(check.rua)
    out.temporary = any(r.temporary for r in check.rua)
    # These texts go into the report's <error> elements (RFC 7489 Appendix C).
    out.errors = [e for r in check.rua for e in r.errors]
    if not out.recipients:
        out.status = "temporary-error" if out.temporary else "no-recipients"
    return out


def _plan_domain(
    store: Store,
    config: Config,
    key: bytes,
    policy_domain: str,
    dest: _Destinations,
    end: float,
    now: float,
    dry_run: bool,
) -> _Plan:
    result = DomainResult(
        domain=policy_domain, status=dest.status or "queued", errors=list(dest.errors), kept=dest.temporary
    )
    with store.read() as tx:
        rows = [e for e in evaldb.evaluations(tx, policy_domain) if _in_period(e, end)]
    evals = sorted(rows, key=lambda e: (e.evaluated, e.id))
    ids = [e.id for e in evals]
    result.evaluations = len(evals)
    cleanup = not dest.temporary
    if dest.status:
        return _Plan(result, ids, cleanup=cleanup)
    domain = parse_domain(policy_domain)
    recipients = dest.recipients
    if not any(not e.optional for e in evals):
        result.status = "only-optional"
        return _Plan(result, ids, cleanup=cleanup)
    first = evals[0]
    # RFC 7489 §7.2.1.1: the subject's Report-ID is a msg-id, <id-left@id-right>; the same id
    # goes into the XML and the text (RFC 9990 §3.1.4). mox quirk: mox's id has no "@".
    report_id = (
        datetime.fromtimestamp(end, UTC).strftime("%Y%m%d.%H")
        + "."
        + received_id(key, first.id)
        + "@"
        + _hostname(config).ascii
    )
    fb = build_feedback(config, domain, evals, report_id, end, result.errors)
    xml = build_xml(fb, config.dmarc_report_format)
    result.report_id, result.begin, result.end, result.records = (
        report_id,
        fb.metadata.begin,
        fb.metadata.end,
        len(fb.records),
    )
    if dry_run:
        result.xml = xml.decode("utf-8")
    message = _report_message(
        config, domain, fb, gzip.compress(xml, mtime=0), end, [r.address for r in recipients], now
    )
    prefix = _dkim_prefix(config, message)
    result.size = len(prefix) + len(message)
    return _Plan(
        result,
        ids,
        cleanup=cleanup,
        message=message,
        prefix=prefix,
        recipients=recipients,
        error_message=lambda to: error_report_message(config, domain, report_id, result.size, to, now),
    )


def _queue_plan(tx: Any, data_dir: Path, config: Config, plan: _Plan, due: float, now: float, dry_run: bool) -> None:
    """Inside the caller's write transaction (or a read one for dry runs): queue and clean up."""
    from moxcli.delivery.queue import enqueue_in

    r = plan.result
    r.suppressed, r.too_large, r.queued_to, r.error_report_to, r.queue_ids = [], [], [], [], []
    if plan.message:
        r.due = due
        send: list[Recipient] = []
        for rcpt in plan.recipients:
            if suppress.is_suppressed(tx, "dmarc", rcpt.address, now):
                r.suppressed.append(rcpt.address)
            elif rcpt.max_size > 0 and r.size > rcpt.max_size:
                # RFC 7489 §7.2.1: the limit is on the report after compression and encoding;
                # comparing the whole message (as mox does) is slightly stricter.
                r.too_large.append(rcpt.address)
            else:
                send.append(rcpt)
        mail_from = f"postmaster@{config.hostname}"
        common: dict[str, Any] = dict(
            mail_from=mail_from,
            is_dmarc_report=True,
            max_attempts=MAX_ATTEMPTS,
            next_attempt=due,
            sender_account=config.postmaster.account,
        )
        if send:
            r.queued_to = [s.address for s in send]
            if not dry_run:
                r.queue_ids = enqueue_in(
                    tx, data_dir, recipients=r.queued_to, data=plan.message, prefix=plan.prefix, **common
                )
        if not r.queued_to:
            # RFC 7489 §7.2.2: nothing could take the report: try a short error report to all.
            to = [x for x in plan.recipients if not suppress.is_suppressed(tx, "dmarc", x.address, now)]
            r.status = "nothing-queued"
            if to and plan.error_message is not None:
                r.error_report_to = [x.address for x in to]
                r.status = "error-report"
                if not dry_run:
                    # Signed like the aggregate report (RFC 7489 §7.2.1.1: report messages must
                    # pass DMARC); mox sends error reports unsigned.
                    message = plan.error_message(to)
                    r.queue_ids = enqueue_in(
                        tx,
                        data_dir,
                        recipients=r.error_report_to,
                        data=message,
                        prefix=_dkim_prefix(config, message),
                        **common,
                    )
    if plan.cleanup and not dry_run:
        evaldb.delete_evaluations(tx, r.domain, plan.ids)


def send_dmarc_reports(
    store: Store,
    data_dir: Path,
    config: Config,
    *,
    now: float | None = None,
    end: float | None = None,
    dry_run: bool = False,
    deliver_now: bool = False,
    resolver: Resolver | None = None,
) -> RunResult:
    """Send the reports of the period ending at ``end`` (default: the last whole UTC hour).

    ``deliver_now``: no staggering; the queued reports are delivered at once through the engine.
    """
    if config.no_outgoing_dmarc_reports:
        raise UsageError("no_outgoing_dmarc_reports is set in the config: DMARC reports are not sent")
    if config.hostname == "localhost":
        raise ConfigError(
            f"{config.path or 'config'}: hostname is not set; DMARC reports are sent from postmaster@<hostname>"
        )
    now = time.time() if now is None else now
    end = hour_end(now) if end is None else hour_end(end)
    if dry_run:
        return _run(store, data_dir, config, now, end, True, False, resolver)
    with job_lock(data_dir, LOCK_NAME):
        run = _run(store, data_dir, config, now, end, False, deliver_now, resolver)
    ids = [i for d in run.domains for i in d.queue_ids]
    if deliver_now and ids:
        from moxcli.delivery.deliver import run_queue

        run.delivered = [a.to_json() for a in run_queue(store, data_dir, config, ids=ids)]
    return run


def _run(
    store: Store,
    data_dir: Path,
    config: Config,
    now: float,
    end: float,
    dry_run: bool,
    deliver_now: bool,
    resolver: Resolver | None,
) -> RunResult:
    resolver = resolver or Resolver.from_config(config.dns)
    intervals = intervals_ending_at(datetime.fromtimestamp(end, UTC).hour)
    run = RunResult(end=end, intervals=intervals, dry_run=dry_run)
    if not dry_run:
        run.stale_removed = store.update(lambda tx: evaldb.delete_older_than(tx, end - STALE_SECONDS))
    flagged: list[str] = []
    optional_only: dict[str, list[int]] = {}
    with store.read() as tx:
        for dom in evaldb.policy_domains(tx):
            rows = [e for e in evaldb.evaluations(tx, dom) if _in_period(e, end)]
            due = [e for e in rows if e.interval_hours in intervals]
            if not due:
                continue
            if any(not e.optional for e in due):
                flagged.append(dom)
            else:
                optional_only[dom] = [e.id for e in rows]
    for dom, ids in optional_only.items():
        # Optional evaluations never trigger a report (docs/behaviour-notes.md §6.2, §12 item 19): drop them.
        run.domains.append(DomainResult(domain=dom, status="only-optional", evaluations=len(ids)))
        if not dry_run:
            store.update(partial(evaldb.delete_evaluations, policy_domain=dom, ids=ids))
    between = min(SPREAD_SECONDS / len(flagged), MAX_BETWEEN) if flagged and not deliver_now else 0.0
    key = load_key(data_dir, create=not dry_run)
    # DNS lookups (record, external authorizations) dominate; like mox, they run concurrently.
    # The store is only used from this thread: one transaction per domain, in order.
    pool = ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_LOOKUPS, len(flagged))))
    try:
        dests = pool.map(lambda dom: _destinations(resolver, dom), flagged)
        for n, (dom, dest) in enumerate(zip(flagged, dests, strict=True)):
            plan = _plan_domain(store, config, key, dom, dest, end, now, dry_run)
            _queue_domain(store, data_dir, config, run, dom, plan, now + n * between, now, dry_run)
    except BaseException:
        # A stop signal (moxcli.stop.Interrupted) must not wait for lookups still running.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return run


def _queue_domain(
    store: Store,
    data_dir: Path,
    config: Config,
    run: RunResult,
    dom: str,
    plan: _Plan,
    due_at: float,
    now: float,
    dry_run: bool,
) -> None:
    """Queue one domain's report and remove its evaluations in one write transaction."""
    if dry_run:
        with store.read() as tx:
            _queue_plan(tx, data_dir, config, plan, due_at, now, True)
    else:
        try:
            store.update(
                partial(_queue_plan, data_dir=data_dir, config=config, plan=plan, due=due_at, now=now, dry_run=False)
            )
        except (MoxcliError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in STOP_ERRNOS:
                raise  # the data directory is unusable (a planted symlink, disk full): every report would fail
            # The transaction was aborted: nothing queued, nothing removed; the evaluations
            # are reported at the next matching hour (docs/behaviour-notes.md §6.4 step 12: any queue error).
            r = plan.result
            r.errors.append(Finding("queue-failed", f"queueing: {exc}"))
            r.status, r.kept, r.queued_to, r.error_report_to, r.queue_ids = "temporary-error", True, [], [], []
    r = plan.result
    _log.info("dmarc report", domain=dom, status=r.status, queued=len(r.queued_to), evaluations=r.evaluations)
    run.domains.append(r)

"""`moxcli reports import|html` and `send-reports`; what the report commands share (the
import options of `tlsreports import` and `dmarcreports import`, summaries, DMARC run output)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext

EPILOG_OUTCOMES = (
    "Each message is imported, a duplicate (the same report is stored: nothing stored), "
    "not-a-report, or rejected (with the reason). Exit 0 when nothing was rejected, 1 otherwise."
)


def import_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The source and output options of every report import command."""
    decorators = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option(
            "--maildir",
            "maildirs",
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Read the messages in this maildir's new/ and cur/ (repeatable).",
        ),
        click.option(
            "--mbox",
            "mboxes",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Read the messages of this mbox file (repeatable).",
        ),
        click.option(
            "--imap",
            metavar="URL",
            help="Read an IMAP mailbox: imaps://user@host/INBOX (implicit TLS) or imap://... (STARTTLS). "
            "The password comes from [imap] password_file or password_env in the config.",
        ),
        click.option(
            "--archive-folder",
            metavar="FOLDER",
            help="With --imap: move imported and duplicate messages to this folder (created if missing).",
        ),
        click.option("--mark-seen", is_flag=True, help="With --imap: flag imported and duplicate messages \\Seen."),
        click.option(
            "--list", "as_list", is_flag=True, help="Print one row per message (implied by --format tsv|csv)."
        ),
        output.format_options(
            json_help="Output NDJSON: one object per message (source, outcome, kind, reason, id, report_id, "
            "organization_name, policy_domains, start, end, warnings), then a summary object."
        ),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def run_import(app: AppContext, kinds: Sequence[str], **opts: Any) -> None:
    """The import commands' body (moxcli.cli.importview, shared with the click-free fast path)."""
    from moxcli.cli.importview import run_import as run

    code = run(app, kinds, **opts)
    if code:
        click.get_current_context().exit(code)


@click.group("reports")
def reports_group() -> None:
    """Incoming TLS and DMARC reports together: import, html."""


@reports_group.command("import", epilog=EPILOG_OUTCOMES)
@import_options
@click.pass_obj
def reports_import_cmd(app: AppContext, **opts: Any) -> None:
    """Import TLS and DMARC report mail, sorting each message by the report it holds.

    Sources: files and directories (walked), --maildir, --mbox, --imap; any mix. Reports are
    stored in batches; re-importing a report stores nothing (it is a duplicate).

    \b
    Example:
      moxcli reports import --maildir ~/Maildir/.reports
      moxcli reports import --imap imaps://reports@imap.example.org/INBOX --archive-folder Archive
    """
    run_import(app, ("tls", "dmarc"), **opts)


def summary_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--since/--until/--domain/--top and the output formats of the summary commands."""
    decorators = [
        click.option("--since", metavar="YYYY-MM-DD", help="First UTC day (of the reports' start), inclusive."),
        click.option("--until", metavar="YYYY-MM-DD", help="Last UTC day, inclusive."),
        click.option("--domain", help="Only this policy domain."),
        click.option("--top", type=click.IntRange(0), default=20, show_default=True, help="Rows per ranking (0: all)."),
        output.format_options(json_help="Output one JSON object (keys in docs); tsv/csv print the per-day rows only."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def _spark_line(label: str, values: list[float], first: str | None, last: str | None) -> None:
    from moxcli.reports.insight import sparkline

    if len(values) > 1:
        click.echo(f"{label} {first} {sparkline(values)} {last}  (max {max(values):g})")


def render_tls_summary(s: Any, fmt: str) -> None:
    if fmt == "json":
        output.emit_json(s.to_json())
        return
    day_cols = ["day", "reports", "successful sessions", "failed sessions"]
    day_rows = [(d["day"], d["reports"], d["successful_sessions"], d["failed_sessions"]) for d in s.days]
    if fmt != "table":
        output.table(None, day_cols, day_rows, fmt)
        return
    first, last = (s.days[0]["day"], s.days[-1]["day"]) if s.days else (None, None)
    click.echo(f"{s.reports} report(s), {s.successful_sessions} successful and {s.failed_sessions} failed session(s)")
    _spark_line("failed sessions per day:", [d["failed_sessions"] for d in s.days], first, last)
    _spark_line(
        "sessions per day:       ", [d["successful_sessions"] + d["failed_sessions"] for d in s.days], first, last
    )
    output.table("By day", day_cols, day_rows)
    output.table(
        "By reporting organization",
        ["organization", "reports", "successful sessions", "failed sessions"],
        [
            (o["organization_name"], o["reports"], o["successful_sessions"], o["failed_sessions"])
            for o in s.organizations
        ],
    )
    output.table(
        "By policy domain",
        ["policy domain", "successful sessions", "failed sessions"],
        [(p["policy_domain"], p["successful_sessions"], p["failed_sessions"]) for p in s.policy_domains],
    )
    output.table(
        "By result type",
        ["result type", "failed sessions"],
        [(r["result_type"], r["failed_sessions"]) for r in s.result_types],
    )
    output.table(
        "Failing MX hosts",
        ["receiving mx", "receiving ip", "result type", "failed sessions"],
        [
            (h["receiving_mx_hostname"], h["receiving_ip"], h["result_type"], h["failed_sessions"])
            for h in s.failing_hosts
        ],
    )


def render_dmarc_summary(s: Any, fmt: str) -> None:
    if fmt == "json":
        output.emit_json(s.to_json())
        return
    day_cols = ["day", "reports", "messages", "dmarc pass", "dmarc fail", "pass rate"]

    def rate(v: float | None) -> str:
        return "" if v is None else f"{v * 100:.1f}%"

    day_rows = [
        (d["day"], d["reports"], d["messages"], d["dmarc_pass"], d["dmarc_fail"], rate(d["pass_rate"])) for d in s.days
    ]
    if fmt != "table":
        output.table(None, day_cols, day_rows, fmt)
        return
    first, last = (s.days[0]["day"], s.days[-1]["day"]) if s.days else (None, None)
    fail = s.messages - s.dmarc_pass
    click.echo(f"{s.reports} report(s), {s.messages} message(s): {s.dmarc_pass} DMARC pass, {fail} fail")
    _spark_line("pass rate per day:", [(d["pass_rate"] or 0) * 100 for d in s.days], first, last)
    _spark_line("failures per day: ", [d["dmarc_fail"] for d in s.days], first, last)
    output.table("By day", day_cols, day_rows)
    output.table(
        "By reporting organization",
        ["organization", "reports", "messages", "dmarc pass", "dmarc fail"],
        [
            (o["organization_name"], o["reports"], o["messages"], o["dmarc_pass"], o["dmarc_fail"])
            for o in s.organizations
        ],
    )
    output.table(
        "By source IP (most failures first)",
        ["source ip", "messages", "dmarc pass", "dmarc fail"],
        [(r["source_ip"], r["messages"], r["dmarc_pass"], r["dmarc_fail"]) for r in s.source_ips],
    )
    output.table(
        "By disposition", ["disposition", "messages"], [(d["disposition"], d["messages"]) for d in s.dispositions]
    )
    a = s.alignment
    output.table(
        "DKIM/SPF alignment",
        ["aligned", "messages"],
        [
            ("DKIM and SPF", a["dkim_and_spf"]),
            ("DKIM only", a["dkim_only"]),
            ("SPF only", a["spf_only"]),
            ("neither (DMARC fail)", a["neither"]),
        ],
    )


@reports_group.command("html")
@click.argument("out", metavar="OUT.html", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", metavar="YYYY-MM-DD", help="First UTC day (of the reports' start), inclusive.")
@click.option("--until", metavar="YYYY-MM-DD", help="Last UTC day, inclusive.")
@click.option("--domain", help="Only this policy domain.")
@click.pass_obj
def reports_html_cmd(app: AppContext, out: Path, since: str | None, until: str | None, domain: str | None) -> None:
    """Write one self-contained HTML page with charts of the TLS and DMARC reports.

    TLS sessions and failures per day (and per policy domain), failure types, failing MX hosts
    and IPs; DMARC pass rate per day, top failing sources, alignment and dispositions. Inline
    CSS and SVG only: no script, font or image, nothing loaded from the network; open it in
    any browser or mail it.

    \b
    Example:
      moxcli reports html /var/www/reports/index.html --since 2026-11-01
    """
    from moxcli.errors import UsageError
    from moxcli.reports.html import write_html
    from moxcli.reports.insight import parse_day

    first, last = parse_day("--since", since), parse_day("--until", until)
    if not out.absolute().parent.is_dir():
        raise UsageError(f"{out}: directory {out.absolute().parent} does not exist")
    with app.open_store(readonly=True) as store:
        tls, dmarc = write_html(store, out, first, last, domain)
    output.info(f"wrote {out}: {tls.reports} TLS report(s), {dmarc.reports} DMARC report(s)")


def utc_text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_dmarc_run(run: Any, fmt: str = "table") -> None:
    """A DMARC report run (send-dmarcreports, send-reports): table (or TSV/CSV rows), then the summary on stderr."""
    if not run.domains and fmt == "table":
        output.info(f"no DMARC reports due for the period ending {utc_text(run.end)} UTC")
        if run.stale_removed:
            output.info(f"removed {run.stale_removed} evaluation(s) older than 48 hours")
        return
    if run.dry_run and fmt == "table":
        for d in run.domains:
            if d.xml:
                click.echo(f"# {d.domain}: report {d.report_id} to {', '.join(d.queued_to) or '-'}")
                click.echo(d.xml)
    output.table(
        f"DMARC reports for the period ending {utc_text(run.end)} UTC (intervals "
        f"{', '.join(f'{i}h' for i in run.intervals)})",
        ["domain", "status", "evaluations", "records", "queued to", "error report to", "notes"],
        [
            (
                d.domain,
                d.status,
                d.evaluations,
                d.records,
                ", ".join(d.queued_to),
                ", ".join(d.error_report_to),
                "; ".join(
                    [f"suppressed {a}" for a in d.suppressed]
                    + [f"too large for {a}" for a in d.too_large]
                    + d.errors
                    + (["evaluations kept for a retry"] if d.kept else [])
                ),
            )
            for d in run.domains
        ],
        fmt,
    )
    if run.stale_removed:
        output.info(f"removed {run.stale_removed} evaluation(s) older than 48 hours")
    for a in run.delivered:
        output.info(f"delivery {a['id']} {a['recipient']}: {a['outcome']} {a['error']}".rstrip())
    # The job summary goes to stderr, as for every job (docs/json.md, Formats): stdout is data.
    reports = sum(1 for d in run.domains if d.queued_to)
    errors = sum(len(d.errors) for d in run.domains)
    verb = "would be queued" if run.dry_run else "queued"
    output.info(
        f"{utc_text(run.end)} UTC: {reports} report(s) {verb}, {len(run.domains) - reports} policy domain(s) "
        f"without report, {errors} error(s), {run.stale_removed} stale evaluation(s) removed"
    )


@click.command("send-reports")
@click.option("--dry-run", is_flag=True, help="Show what is due and the reports; change nothing.")
@output.format_options(
    "Output JSON: now, jobs[] with name, due, ran, reason, result.",
    rows="one row per job: job, due, ran, reports, errors, note",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus text-format metrics here (atomically).",
)
@click.pass_obj
def send_reports_cmd(app: AppContext, dry_run: bool, fmt: str, metrics_file: Path | None) -> None:
    """Run whichever report jobs are due (for an hourly cron line).

    DMARC aggregate reports run for every hour not yet done (catching up at most 24
    hours); TLS reports run once per UTC day, for the previous day. What ran is remembered
    in the store, so running it more often than hourly is harmless.

    \b
    Example:
      0 * * * * moxcli --data /var/lib/moxcli send-reports
      moxcli send-reports --dry-run --json
    """
    from moxcli import stop
    from moxcli.reports.schedule import run_due, write_metrics

    config = app.config(required=True)
    with stop.handling(), app.open_store(readonly=False) as store:
        result = run_due(store, app.data_dir, config, dry_run=dry_run)
    if metrics_file is not None:
        write_metrics(metrics_file, result)
    if fmt == "json":
        output.emit_json(result)
    elif fmt != "table":
        output.table(None, ["job", "due", "ran", "reports", "errors", "note"], [_job_row(j) for j in result.jobs], fmt)
    else:
        for job in result.jobs:
            if job.ran:
                output.info(f"{job.name}: ran for {job.due}")
                if job.name == "dmarc":
                    render_dmarc_run(job.result)
                else:
                    output.info(
                        f"tls: {len(job.result.reports)} report(s), {len(job.result.errors)} "
                        f"error(s); details: moxcli send-tlsreports --day {job.due} --dry-run"
                    )
            elif job.error:
                output.warn(f"{job.name}: failed for {job.due}: {job.error}")
            else:
                output.info(f"{job.name}: not run: {job.reason}")
    if result.exit_code:
        raise SystemExit(result.exit_code)


def _job_row(job: Any) -> tuple[Any, ...]:
    """A send-reports job as a row: what it sent (or would) and what went wrong."""
    reports: int | None = None
    errors: int | None = None
    if job.ran and job.name == "dmarc":
        reports = sum(1 for d in job.result.domains if d.queued_to)
        errors = sum(len(d.errors) for d in job.result.domains)
    elif job.ran:
        reports, errors = len(job.result.reports), len(job.result.errors)
    return (job.name, job.due, job.ran, reports, errors, job.error or job.reason)

"""`moxcli send-tlsreports` and `moxcli tlsreports import|list|show`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.cli.reports import EPILOG_OUTCOMES, import_options, render_tls_summary, run_import, summary_options
from moxcli.context import AppContext
from moxcli.errors import CheckFailed


@click.command("send-tlsreports")
@click.option(
    "--day",
    metavar="YYYY-MM-DD",
    help="Report this UTC day (and older leftovers) instead of yesterday (YYYY-MM-DD or mox's YYYYMMDD).",
)
@click.option("--dry-run", is_flag=True, help="Print the reports and their addresses; change and send nothing.")
@click.option("--deliver-now", is_flag=True, help="Deliver the queued reports at once instead of at staggered times.")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus metrics (textfile collector format) to this file.",
)
@output.format_options(
    "Output NDJSON: one object per report, then a summary object.",
    rows="one row per report (also with --dry-run, without the report texts)",
)
@click.pass_obj
def send_tlsreports_cmd(
    app: AppContext, day: str | None, dry_run: bool, deliver_now: bool, metrics_file: Path | None, fmt: str
) -> None:
    """Send the daily TLS reports (RFC 8460).

    For every policy domain with TLS results of the previous UTC day that ask for a report
    and that publishes a TLSRPT record with mailto: addresses, compose a DKIM-signed
    aggregate report and queue it (recipient-domain reports first, then MX-host reports).
    Results are marked sent in the same transaction that queues the messages; queued
    reports get due times spread over 4 hours (at most 5 minutes apart). Run it once a day
    from cron, a few minutes after 00:00 UTC.

    \b
    Example:
      moxcli send-tlsreports --dry-run
      moxcli send-tlsreports --metrics-file /var/lib/node_exporter/moxcli_tls.prom
    """
    from moxcli import stop
    from moxcli.reports.tls import ReportOutcome, send_tls_reports

    config = app.config(required=True)
    as_json = fmt == "json"

    def on_report(r: ReportOutcome) -> None:
        # The report JSON is spliced in as text: the same output as encoding r.to_json(),
        # without building and encoding a dict per policy (large dry runs). Written directly:
        # JSON holds no terminal escapes for click.echo to strip, and it is slow on long lines.
        if as_json:
            line = output.to_json({"type": "report", **r.to_json(with_report=False)}, indent=None)
            if r.built is not None:
                line = line[:-1] + ', "report": ' + r.report_text() + "}"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        elif dry_run and fmt == "table":
            sup = f" (suppressed: {', '.join(r.suppressed)})" if r.suppressed else ""
            click.echo(
                f"# {r.kind} report for {output.safe(r.policy_domain)} ({r.day_utc}) to "
                f"{output.safe(', '.join(r.recipients))}{sup}"
            )
            click.echo(r.report_text(indent=2))

    with stop.handling(), app.open_store(readonly=dry_run) as store:
        summary = send_tls_reports(
            store,
            app.data_dir,
            config,
            day=output.day_arg("--day", day),
            dry_run=dry_run,
            deliver_now=deliver_now,
            metrics_file=metrics_file,
            on_report=on_report,
        )
    if as_json:
        d = summary.to_json()
        d["reports"] = len(summary.reports)
        output.emit_ndjson({"type": "summary", **d})
    else:
        if summary.disabled:
            output.info("TLS reports are turned off (no_outgoing_tls_reports in the config)")
            return
        if summary.reports and (fmt != "table" or not dry_run):
            output.table(
                None,
                ["day", "kind", "policy domain", "report id", "queued", "suppressed", "due (UTC)"],
                [
                    (
                        r.day_utc,
                        r.kind,
                        r.policy_domain,
                        r.report_id,
                        ", ".join(a for a in r.recipients if a not in r.suppressed),
                        ", ".join(r.suppressed),
                        datetime.fromtimestamp(r.next_attempt, UTC).strftime("%H:%M:%S") if r.next_attempt else "",
                    )
                    for r in summary.reports
                ],
                fmt,
            )
        for e in summary.errors:
            output.warn(f"{e['policy_domain']} ({e['day_utc']}, {e['kind']}): {e['error']}")
        for a in summary.delivered:
            output.info(
                f"delivery of queue message {a['id']} to {a['recipient']}: "
                f"{a['outcome']}{': ' + a['error'] if a.get('error') else ''}"
            )
        verb = "would be queued" if dry_run else "queued"
        output.info(
            f"{summary.day_utc}: {len(summary.reports)} report(s) {verb}, {len(summary.skipped)} "
            "policy domain(s) without report, "
            f"{len(summary.errors)} error(s), {summary.removed_rows} result row(s) removed, {summary.stale_rows} stale"
        )
    if summary.local_errors:
        raise CheckFailed(
            f"{summary.local_errors} report(s) could not be composed or queued; their results are kept for the next run"
        )


@click.group("tlsreports")
def tlsreports_group() -> None:
    """Incoming TLS reports: import, list, show, summary."""


@tlsreports_group.command("import", epilog=EPILOG_OUTCOMES)
@import_options
@click.pass_obj
def import_cmd(app: AppContext, **opts: Any) -> None:
    """Import TLS reports: report messages (.eml), .json or .json.gz files, mailboxes.

    Sources: files and directories (walked), --maildir, --mbox, --imap; any mix. Quirks of
    real senders (dates without timezone, mx-host as a string, ...) are accepted with a
    warning each. A report is stored for the policy domains that are configured domains or
    the hostname (all of them when no domains are configured); a report for none of them is
    rejected. Re-importing a report (same organisation, report id, date range, policy domains)
    stores nothing.

    \b
    Example:
      moxcli tlsreports import ~/reports/google.eml microsoft!example.org!1673308800!1673395199.json.gz
      moxcli tlsreports import --maildir ~/Maildir/.TLSRPT --json
    """
    run_import(app, ("tls",), **opts)


@tlsreports_group.command("summary")
@summary_options
@click.pass_obj
def summary_cmd(app: AppContext, since: str | None, until: str | None, domain: str | None, top: int, fmt: str) -> None:
    """Summarize the imported TLS reports: by day, organization, policy domain, result type, MX host.

    Sessions count on the UTC day a report's date range starts. A sparkline shows failed
    sessions per day.

    \b
    Example:
      moxcli tlsreports summary --since 2026-11-01 --domain example.org
    """
    from moxcli.reports.insight import parse_day, tls_summary

    with app.open_store(readonly=True) as store:
        s = tls_summary(store, parse_day("--since", since), parse_day("--until", until), domain, top)
    render_tls_summary(s, fmt)


@tlsreports_group.command("list")
@click.option("--domain", help="Only reports about this policy domain.")
@output.format_options("Output a JSON list (keys in docs/tls-reports.md).")
@click.pass_obj
def list_cmd(app: AppContext, domain: str | None, fmt: str) -> None:
    """List imported TLS reports, newest first.

    \b
    Example:
      moxcli tlsreports list --domain example.org
    """
    from moxcli.reports.incoming_tls import list_reports

    with app.open_store(readonly=True) as store:
        rows = list_reports(store, domain)
    if fmt == "json":
        output.emit_json(rows)
        return
    output.table(
        None,
        ["id", "organization", "start", "end", "policy domains", "success", "failure", "report id"],
        [
            (
                r.id,
                r.organization_name,
                r.start,
                r.end,
                ", ".join(r.policy_domains),
                r.successful_sessions,
                r.failed_sessions,
                r.report_id,
            )
            for r in rows
        ],
        fmt,
    )


@tlsreports_group.command("show")
@click.argument("report_id", metavar="ID", type=int)
@output.format_options(
    "Output the stored record: id, imported, source, from_domain, policy_domains, host_report, warnings, report.",
    rows="one row per failure detail with its policy (a policy without failures: one row)",
)
@click.pass_obj
def show_cmd(app: AppContext, report_id: int, fmt: str) -> None:
    """Show one imported TLS report: per policy counts and the failure details.

    \b
    Example:
      moxcli tlsreports show 3
    """
    from moxcli.reports.incoming_tls import get_report

    with app.open_store(readonly=True) as store:
        stored = get_report(store, report_id)
    if fmt == "json":
        output.emit_json(stored.to_json())
        return
    rep = stored.report
    if fmt != "table":
        output.table(None, [*_POLICY_COLUMNS, *_DETAIL_COLUMNS[1:]], _flat_rows(rep), fmt)
        for w in stored.warnings:
            output.warn(w)
        return
    output.kv(
        f"TLS report {stored.id}",
        [
            ("organization", rep["organization-name"]),
            ("report id", rep["report-id"]),
            ("period", f"{rep['date-range']['start-datetime']} - {rep['date-range']['end-datetime']}"),
            ("contact", rep["contact-info"]),
            ("from domain", stored.from_domain),
            ("source", stored.source),
        ],
    )
    output.table(
        "Policies",
        _POLICY_COLUMNS,
        [_policy_row(i, p) for i, p in enumerate(rep["policies"], 1)],
    )
    details = [(i, d) for i, p in enumerate(rep["policies"], 1) for d in p["failure-details"]]
    if details:
        output.table(
            "Failure details",
            _DETAIL_COLUMNS,
            [(i, *_detail_cells(d)) for i, d in details],
        )
    for w in stored.warnings:
        output.warn(w)


_POLICY_COLUMNS = ["#", "type", "policy domain", "mx-host", "success", "failure"]
_DETAIL_COLUMNS = [
    "#",
    "result type",
    "sessions",
    "sending ip",
    "receiving mx",
    "receiving ip",
    "reason code",
    "additional information",
]


def _policy_row(i: int, p: dict[str, Any]) -> tuple[Any, ...]:
    return (
        i,
        p["policy"]["policy-type"],
        p["policy"]["policy-domain"],
        ", ".join(p["policy"]["mx-host"]),
        p["summary"]["total-successful-session-count"],
        p["summary"]["total-failure-session-count"],
    )


def _detail_cells(d: dict[str, Any]) -> tuple[Any, ...]:
    return (
        d["result-type"],
        d["failed-session-count"],
        d.get("sending-mta-ip", ""),
        d.get("receiving-mx-hostname", ""),
        d.get("receiving-ip", ""),
        d.get("failure-reason-code", ""),
        d.get("additional-information", ""),
    )


def _flat_rows(rep: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per failure detail, its policy's columns repeated (tsv/csv are one table)."""
    rows = []
    for i, p in enumerate(rep["policies"], 1):
        details = p["failure-details"] or [None]
        rows += [(*_policy_row(i, p), *(_detail_cells(d) if d else ("",) * 7)) for d in details]
    return rows

"""`moxcli dmarc`, `send-dmarcreports` and `dmarcreports`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.cli.reports import (
    EPILOG_OUTCOMES,
    import_options,
    render_dmarc_run,
    render_dmarc_summary,
    run_import,
    summary_options,
)
from moxcli.cli.reports import utc_text as _utc
from moxcli.context import AppContext


def _parse_time(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an RFC 3339 time: {value!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@click.group("dmarc")
def dmarc_group() -> None:
    """DMARC evaluations: record them for aggregate reports."""


@dmarc_group.command("record")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-")
@click.option("--json", "as_json", is_flag=True, help="Output JSON: {stored, ids}.")
@click.pass_obj
def dmarc_record_cmd(app: AppContext, file: Path, as_json: bool) -> None:
    """Store DMARC evaluations (JSON lines) for the next aggregate reports.

    One JSON object per line with the fields of docs/dmarc-reports.md (policy_domain,
    evaluated, addresses, policy_published, source_ip, disposition, ...). The whole batch is
    checked first: a bad line is reported with its number and field and nothing is stored
    (exit 2).

    \b
    Example:
      moxcli dmarc record evaluations.jsonl
      my-mta-dmarc-export --since 1h | moxcli dmarc record -
    """
    from moxcli.dmarc.db import record_evaluations
    from moxcli.dmarc.evaluation import read_lines

    config = app.config()
    with app.open_store() as store:
        if str(file) == "-":
            ids = record_evaluations(store, config, read_lines(sys.stdin.buffer), "stdin")
        else:
            from moxcli.inputs import open_regular

            with open_regular(file) as f:
                ids = record_evaluations(store, config, read_lines(f), str(file))
    if as_json:
        output.emit_json({"stored": len(ids), "ids": ids})
    else:
        output.info(f"stored {len(ids)} evaluation(s)")


@dmarc_group.command("list")
@click.option("--domain", help="Only evaluations of this policy domain.")
@click.option(
    "--stats",
    is_flag=True,
    help="One line per policy domain: evaluations, dispositions, whether a report will be sent.",
)
@output.format_options(
    "Output a JSON list of evaluations (the record fields plus id); with --stats a list of "
    "{policy_domain, count, dispositions, send_report}."
)
@click.pass_obj
def dmarc_list_cmd(app: AppContext, domain: str | None, stats: bool, fmt: str) -> None:
    """List the evaluations waiting for a report.

    \b
    Example:
      moxcli dmarc list --domain example.org
      moxcli dmarc list --stats
    """
    from moxcli.dmarc.db import evaluation_stats, list_evaluations
    from moxcli.dmarc.evaluation import format_time

    if stats:
        with app.open_store(readonly=True) as store:
            per_domain = evaluation_stats(store)
        if fmt == "json":
            # a list with policy_domain, not an object keyed by domain (docs/json.md: keys are names)
            output.emit_json(per_domain)
        else:
            output.table(
                None,
                ["policy domain", "evaluations", "dispositions", "report"],
                [
                    (
                        s.policy_domain,
                        s.count,
                        ", ".join(s.dispositions),
                        "yes" if s.send_report else "no (only optional)",
                    )
                    for s in per_domain
                ],
                fmt,
            )
        return
    with app.open_store(readonly=True) as store:
        evals = list_evaluations(store, domain)
    if fmt == "json":
        output.emit_json(
            [
                {
                    "id": e.id,
                    **{k: output.unknown_as_null(v) for k, v in e.to_record().items()},
                    "policy_domain": output.a_label(e.policy_domain),
                    "evaluated": format_time(e.evaluated),
                }
                for e in evals
            ]
        )
        return
    output.table(
        None,
        ["id", "policy domain", "evaluated (UTC)", "interval", "source ip", "disposition", "dkim", "spf", "optional"],
        [
            (
                e.id,
                e.policy_domain,
                _utc(e.evaluated),
                f"{e.interval_hours}h",
                e.source_ip,
                e.disposition,
                "pass" if e.aligned_dkim_pass else "fail",
                "pass" if e.aligned_spf_pass else "fail",
                "yes" if e.optional else "",
            )
            for e in evals
        ],
        fmt,
    )


@dmarc_group.command("lookup")
@click.argument("domain")
@output.format_options(
    "Output JSON: domain, found_at, record, dnssec, interval_hours, rua[] "
    "{rua, status, destinations[] {uri, address, max_size}, errors, verification_name, fix}.",
    rows="one row per rua address",
)
@click.pass_obj
def dmarc_lookup_cmd(app: AppContext, domain: str, fmt: str) -> None:
    """Show a domain's DMARC record and where its aggregate reports would go.

    Looks up the record as the report job does (at the domain, else its organizational
    domain) and checks every rua address: same organization, or an external address that
    opted in with a `_report._dmarc` record (RFC 7489 §7.1). Exit 1 without a record or a
    usable address, 3 on temporary DNS errors.

    \b
    Example:
      moxcli dmarc lookup example.org
    """
    from moxcli.dmarc.verify import check_domain
    from moxcli.dns import Resolver
    from moxcli.domain import DomainError, parse_domain
    from moxcli.errors import EXIT_FAILED, EXIT_TEMPORARY, UsageError

    try:
        d = parse_domain(domain)
    except DomainError as exc:
        raise UsageError(f"invalid domain {domain!r}: {exc}", code="bad-domain") from None
    check = check_domain(Resolver.from_config(app.config().dns), d)
    if fmt == "json":
        output.emit_json(check)
    else:
        if fmt == "table":
            output.kv(
                f"DMARC record for {d.name}",
                [
                    ("found at", f"_dmarc.{check.found_at.ascii}"),
                    ("record", check.record),
                    ("dnssec", "yes" if check.authentic else "no"),
                    ("report interval", f"{check.to_json()['interval_hours']}h"),
                ],
            )
        output.table(
            None,
            ["rua", "status", "reports go to", "notes"],
            [
                (
                    r.text,
                    r.status,
                    ", ".join(u.uri + (f" (max {u.max_size} bytes)" if u.max_size else "") for u in r.uris),
                    "; ".join(r.errors) + (f"; fix: the destination publishes {r.fix['zone_line']}" if r.fix else ""),
                )
                for r in check.rua
            ],
            fmt,
        )
    if any(r.temporary for r in check.rua) and not check.destinations:
        raise SystemExit(EXIT_TEMPORARY)
    if not check.destinations:
        raise SystemExit(EXIT_FAILED)


@click.command("send-dmarcreports")
@click.option("--dry-run", is_flag=True, help="Print the reports and recipients; queue nothing, change nothing.")
@click.option(
    "--deliver-now",
    is_flag=True,
    help="Deliver the queued reports at once (through `queue run`'s engine) instead of at staggered times.",
)
@click.option(
    "--end",
    "end",
    metavar="TIME",
    help="End of the period (RFC 3339, truncated to the hour) [default: the last whole UTC hour].",
)
@output.format_options(
    "Output JSON: end, intervals, dry_run, stale_removed, domains[], delivered[].",
    rows="one row per policy domain (also with --dry-run, without the report XML)",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus text-format metrics here (atomically).",
)
@click.pass_obj
def send_dmarcreports_cmd(
    app: AppContext, dry_run: bool, deliver_now: bool, end: str | None, fmt: str, metrics_file: Path | None
) -> None:
    """Send the DMARC aggregate reports that are due.

    Run hourly. For the UTC hour that just ended, every policy domain whose reporting
    interval (from `ri`, rounded to 1, 2, 3, 4, 6, 8, 12 or 24 hours) ends then gets an
    aggregate report (RFC 7489 §7.2) of its stored evaluations, queued for delivery with
    due times spread over 45 minutes. Exit 3 if another run holds the lock.

    \b
    Example:
      moxcli send-dmarcreports --dry-run
      moxcli send-dmarcreports --json --metrics-file /var/lib/node_exporter/moxcli_dmarc.prom
    """
    from moxcli import stop
    from moxcli.reports.dmarc import send_dmarc_reports
    from moxcli.reports.schedule import write_dmarc_metrics

    config = app.config(required=True)
    with stop.handling(), app.open_store(readonly=False) as store:
        run = send_dmarc_reports(
            store, app.data_dir, config, end=_parse_time(end), dry_run=dry_run, deliver_now=deliver_now
        )
    if metrics_file is not None:
        write_dmarc_metrics(metrics_file, run)
    if fmt == "json":
        output.emit_json(run)
    else:
        render_dmarc_run(run, fmt)


@click.group("dmarcreports")
def dmarcreports_group() -> None:
    """Incoming DMARC aggregate reports: import, list, show, summary."""


@dmarcreports_group.command("import", epilog=EPILOG_OUTCOMES)
@import_options
@click.pass_obj
def dmarcreports_import_cmd(app: AppContext, **opts: Any) -> None:
    """Import received DMARC reports (.eml, .xml, .xml.gz, .zip; RFC 7489 or RFC 9990), mailboxes.

    Sources: files and directories (walked), --maildir, --mbox, --imap; any mix. A report
    whose policy domain is not a configured domain (when domains are configured) or that
    ends in the future is rejected. Re-importing a report (same organisation, report id,
    date range and policy domain) stores nothing.

    \b
    Example:
      moxcli dmarcreports import ~/Maildir/.DMARC/cur/* google.com!example.org!1700000000!1700086399.zip
      moxcli dmarcreports import --imap imaps://dmarc@imap.example.org/INBOX --archive-folder Done
    """
    run_import(app, ("dmarc",), **opts)


@dmarcreports_group.command("summary")
@summary_options
@click.pass_obj
def dmarcreports_summary_cmd(
    app: AppContext, since: str | None, until: str | None, domain: str | None, top: int, fmt: str
) -> None:
    """Summarize the received DMARC reports: by day, organization, source IP, disposition, alignment.

    Messages count on the UTC day a report's period begins. Sparklines show the DMARC pass
    rate and the failures per day.

    \b
    Example:
      moxcli dmarcreports summary --since 2026-11-01 --domain example.org --top 10
    """
    from moxcli.reports.insight import dmarc_summary, parse_day

    with app.open_store(readonly=True) as store:
        s = dmarc_summary(store, parse_day("--since", since), parse_day("--until", until), domain, top)
    render_dmarc_summary(s, fmt)


@dmarcreports_group.command("list")
@click.option("--domain", help="Only reports about this policy domain.")
@output.format_options("Output a JSON list of report summaries (see docs).")
@click.pass_obj
def dmarcreports_list_cmd(app: AppContext, domain: str | None, fmt: str) -> None:
    """List received DMARC reports, newest first.

    \b
    Example:
      moxcli dmarcreports list --domain example.org
    """
    from moxcli.reports.incoming_dmarc import list_reports

    with app.open_store(readonly=True) as store:
        reports = list_reports(store, domain)
    if fmt == "json":
        output.emit_json(reports)
        return
    output.table(
        None,
        ["id", "policy domain", "organization", "period (UTC)", "messages", "dmarc pass", "dmarc fail", "report id"],
        [
            (
                r.id,
                r.policy_domain,
                r.organization_name,
                f"{output.rfc3339(r.start)} - {output.rfc3339(r.end)}",
                r.messages,
                r.dmarc_pass,
                r.dmarc_fail,
                r.report_id,
            )
            for r in reports
        ],
        fmt,
    )


def _auth_results(r: Any) -> str:
    """A record's auth results in one cell. A DKIM selector or an SPF scope that the report does
    not give is left out, rather than shown as an empty ``/`` or ``()``."""
    dkim = [f"dkim {d.domain}{'/' + d.selector if d.selector else ''}: {d.result}" for d in r.dkim_auth]
    spf = [f"spf {s.domain}{' (' + s.scope + ')' if s.scope else ''}: {s.result}" for s in r.spf_auth]
    return "; ".join(dkim + spf)


@dmarcreports_group.command("show")
@click.argument("report_id", metavar="ID", type=int)
@output.format_options(
    "Output JSON: the summary keys plus report (metadata, policy, records, version, namespace, schema).",
    rows="one row per record",
)
@click.pass_obj
def dmarcreports_show_cmd(app: AppContext, report_id: int, fmt: str) -> None:
    """Show one received DMARC report: metadata, published policy, records.

    \b
    Example:
      moxcli dmarcreports show 3
    """
    from moxcli.reports.incoming_dmarc import get_report, report_view

    with app.open_store(readonly=True) as store:
        summary, fb = get_report(store, report_id)
    if fmt == "json":
        output.emit_json({**summary.to_json(), "report": report_view(fb)})
        return
    m, p = fb.metadata, fb.policy
    if fmt == "table":
        output.kv(
            f"DMARC report {summary.id} ({fb.schema})",
            [
                ("organization", m.org_name),
                ("email", m.email),
                ("report id", m.report_id),
                ("period", f"{_utc(m.begin)} - {_utc(m.end)} UTC"),
                ("errors", "; ".join(m.errors)),
                (
                    "policy",
                    f"domain {p.domain}, p={p.p}, sp={p.sp}, pct={p.pct}, adkim={p.adkim}, aspf={p.aspf}, fo={p.fo}",
                ),
            ],
        )
    output.table(
        None,
        ["source ip", "count", "disposition", "dkim", "spf", "header from", "envelope from", "auth results", "reasons"],
        [
            (
                r.source_ip,
                r.count,
                r.disposition,
                r.dkim,
                r.spf,
                r.header_from,
                r.envelope_from,
                _auth_results(r),
                "; ".join(f"{x.type}: {x.comment}" if x.comment else x.type for x in r.reasons),
            )
            for r in fb.records
        ],
        fmt,
    )

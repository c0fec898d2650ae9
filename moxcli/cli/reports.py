"""`moxcli reports import|html`, and the import options `tlsreports import` and
`dmarcreports import` share."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
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
        click.option("--list", "as_list", is_flag=True, help="Print one row per message (table, tsv or csv)."),
        output.format_options(
            json_help="Output NDJSON: one object per message (source, outcome, kind, reason, id, report_id, "
            "organization_name, policy_domains, start, end, warnings), then a summary object."
        ),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def run_import(
    app: AppContext,
    kinds: Sequence[str],
    paths: tuple[Path, ...],
    maildirs: tuple[Path, ...],
    mboxes: tuple[Path, ...],
    imap: str | None,
    archive_folder: str | None,
    mark_seen: bool,
    as_list: bool,
    fmt: str,
) -> None:
    """Run an import and render its outcomes; exit 1 when a message was rejected."""
    as_json = fmt == "json"
    from moxcli.reports.incoming import IMPORTED, REJECTED, Outcome, Sources, import_sources

    rows: list[Outcome] = []

    def on_outcome(o: Outcome) -> None:
        if as_json:
            sys.stdout.write(output.to_json({"type": "message", **o.to_json()}, indent=None) + "\n")
            return
        if o.outcome == IMPORTED:  # a duplicate's quirks were told when it was imported
            for w in o.warnings:
                output.warn(f"{o.source}: {w}")
        if o.outcome == REJECTED:
            output.warn(f"{o.source}: rejected: {o.reason}")
        if as_list:
            rows.append(o)

    sources = Sources(paths, maildirs, mboxes, imap, archive_folder, mark_seen)
    config = app.config()
    with app.open_store() as store:
        summary = import_sources(store, config, sources, kinds, on_outcome)
    if as_json:
        output.emit_ndjson({"type": "summary", **summary.to_json()})
    else:
        if as_list:
            output.table(
                None,
                ["source", "outcome", "kind", "id", "organization", "report id", "policy domains", "reason"],
                [
                    (
                        o.source,
                        o.outcome,
                        o.kind or "",
                        o.id if o.id is not None else "",
                        o.organization or "",
                        o.report_id or "",
                        ", ".join(o.policy_domains),
                        o.reason or "",
                    )
                    for o in rows
                ],
                fmt,
            )
        c = summary.counts
        imap_part = f", {summary.moved} moved, {summary.flagged} flagged" if imap else ""
        # docs/json.md: a job's one-line summary is a message (stderr); the rows are data.
        output.info(
            f"{summary.messages} message(s): {c[IMPORTED]} imported, {c['duplicate']} duplicate, "
            f"{c['not-a-report']} not a report, {c[REJECTED]} rejected{imap_part}"
        )
    if not summary.ok:
        # Rejected messages are what the import found wrong (exit 1), not an error of the command.
        click.get_current_context().exit(1)


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

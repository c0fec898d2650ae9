"""What `moxcli tlsreports import`, `dmarcreports import` and `reports import` do and print,
without click: the click commands (moxcli.cli.reports, tlsreports, dmarc) and the click-free
fast path (moxcli.cli.fast) both run ``run_import``, so the two give the same output, errors
and exit codes (issue 14, speed: the import's start-up)."""

from __future__ import annotations

import sys

from moxcli.cli import output

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from moxcli.context import AppContext
    from moxcli.reports.incoming import Outcome


def run_import(
    app: AppContext,
    kinds: Sequence[str],
    paths: Sequence[Path],
    maildirs: Sequence[Path],
    mboxes: Sequence[Path],
    imap: str | None,
    archive_folder: str | None,
    mark_seen: bool,
    as_list: bool,
    fmt: str,
) -> int:
    """Run an import and render its outcomes; the exit code: 1 when a message was rejected
    (what the import found wrong, not an error of the command), else 0."""
    as_json = fmt == "json"
    as_list = as_list or fmt in ("tsv", "csv")  # asking for rows is asking for the list
    from moxcli.reports.incoming import IMPORTED, REJECTED, Sources, import_sources

    rows: list[Outcome] = []
    write = sys.stdout.write

    def on_outcome(o: Outcome) -> None:
        if as_json:
            write(output.to_json({"type": "message", **o.to_json()}, indent=None) + "\n")
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
    return 0 if summary.ok else 1

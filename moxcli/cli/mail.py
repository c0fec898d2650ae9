"""`moxcli import mbox|maildir|archive`, `moxcli account list`, `moxcli mailbox list`, `moxcli message list`."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext


class _Progress:
    """Import progress: a rich bar on a terminal, else a logfmt line every ``interval`` seconds."""

    def __init__(self, interval: float, account: str) -> None:
        self.interval = interval
        self.account = account
        self.last = time.monotonic()
        self.bar: Any = None
        self.task: Any = None
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[messages]} messages, mailbox {task.fields[mailboxes]}"),
                TextColumn("{task.fields[rate]} msg/s"),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=output.console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, p: Any) -> None:
        rate = p.messages / p.elapsed if p.elapsed > 0 else 0.0
        if self.bar is not None:
            total = p.bytes_total
            fields = {"messages": p.messages, "mailboxes": f"{p.mailboxes}/{p.mailboxes_total}", "rate": f"{rate:.0f}"}
            if self.task is None:
                self.task = self.bar.add_task(output.safe(p.mailbox), total=total, **fields)
            done = p.bytes_read
            if total is None and p.messages_total:
                # maildirs: bytes are not known up front, messages are; scale to bytes read so far.
                total = int(p.bytes_read * p.messages_total / p.messages) if p.messages else None
            self.bar.update(self.task, description=output.safe(p.mailbox), completed=done, total=total, **fields)
            return
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        line = [
            "l=info m=progress pkg=import",
            f"account={_logfmt(self.account)}",
            f"mailbox={_logfmt(p.mailbox)}",
            f"mailboxes={p.mailboxes}/{p.mailboxes_total}",
            f"messages={p.messages}" + (f"/{p.messages_total}" if p.messages_total is not None else ""),
            f"bytes={p.bytes_read}" + (f"/{p.bytes_total}" if p.bytes_total is not None else ""),
            f"rate={rate:.0f}/s",
        ]
        eta = _eta(p, rate)
        if eta is not None:
            line.append(f"eta={eta:.0f}s")
        click.echo(" ".join(line), err=True)


def _eta(p: Any, rate: float) -> float | None:
    if p.bytes_total and p.bytes_read:
        return p.elapsed * (p.bytes_total - p.bytes_read) / p.bytes_read
    if p.messages_total is not None and rate > 0:
        return (p.messages_total - p.messages) / rate
    return None


def _logfmt(text: str) -> str:
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    return '"' + output.safe(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_import(
    app: AppContext,
    fmt: str,
    interval: float,
    account: str,
    fn: Callable[..., Any],
    *,
    dry_run: bool,
    ignore_quota: bool,
    **kwargs: Any,
) -> None:
    """Run an import with SIGINT/SIGTERM stopping it, except once its commit is durable.

    A signal after the commit must not be reported as "interrupted" (exit 130, the code that
    says nothing was imported): a script would import everything twice.
    """
    from moxcli.mail.importer import ImportOptions
    from moxcli.perms import check_data_dir, check_dkim_keys

    check_data_dir(app.data_dir)  # the importer opens the store itself, not through app.open_store
    cfg = app.config()
    check_dkim_keys(cfg)
    committed = False
    late: list[int] = []

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    def interrupted(signum: int, frame: Any) -> None:
        if committed:
            late.append(signum)
            return
        raise KeyboardInterrupt

    old = {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _Progress(interval, account) as progress:
            opts = ImportOptions(
                dry_run=dry_run,
                quota=cfg.quota_message_size,
                ignore_quota=ignore_quota,
                max_message_size=cfg.max_message_size,
                seal_max_size=cfg.store.seal_max_size,
                progress=progress,
                on_commit=mark_committed,
            )
            res = fn(app.data_dir, account, options=opts, **kwargs)
        _render_import(res, fmt)
        if res.interrupted or late:
            output.info("note: interrupted after the commit: every message above was imported")
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _render_import(res: Any, fmt: str) -> None:
    verb = "would create" if res.dry_run else "created"
    if res.account_created:
        output.info(f"{verb} account {output.safe(res.account)}")
    for mb in res.mailboxes:
        if mb.created:
            output.info(f"{verb} mailbox {output.safe(mb.name)}")
    for w in res.warnings:
        where = f"message {w.number} at {w.position}" if w.number else w.position
        output.warn(f"{where}: {w.message}")
    if res.warnings_total > len(res.warnings):
        output.warn(f"{res.warnings_total - len(res.warnings)} more warnings not shown")
    if fmt == "json":
        output.emit_json(res.to_json())
        return
    output.table(
        None,
        ["mailbox", "messages", "bytes", "created"],
        [(m.name, m.messages, m.size, "yes" if m.created else "") for m in res.mailboxes],
        fmt,
    )
    what = "parsed (dry run, nothing written)" if res.dry_run else "imported"
    line = (
        f"{what}: {res.messages} messages, {res.size} bytes into account {output.safe(res.account)} "
        f"in {res.seconds:.2f}s ({res.messages_per_second:.0f} messages/s), {res.warnings_total} warnings"
    )
    if fmt == "table":
        click.echo(line)
    else:
        output.info(line)  # tsv/csv: stdout holds the rows only


_JSON_IMPORT = (
    "Print a JSON summary: account, account_created, mailboxes [{name, created, messages, bytes}], "
    "messages, bytes, input_bytes, seconds, messages_per_second, dry_run, warnings [{number, position, message}], "
    "warnings_total, interrupted."
)


def _import_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every import takes: --dry-run, --ignore-quota, --progress-interval, --format/--json."""
    for option in reversed(
        [
            click.option("--dry-run", is_flag=True, help="Parse and report the mailboxes and counts, write nothing."),
            click.option(
                "--ignore-quota",
                is_flag=True,
                help="Import even when the account goes over quota_message_size (a warning instead of an abort).",
            ),
            click.option(
                "--progress-interval",
                default=5.0,
                show_default=True,
                metavar="SECONDS",
                help="Seconds between progress lines when stderr is not a terminal.",
            ),
            output.format_options(_JSON_IMPORT, rows="one row per mailbox"),
        ]
    ):
        fn = option(fn)
    return fn


@click.group("import")
def import_group() -> None:
    """Import mbox files, maildirs or archives into an account."""


@import_group.command("mbox")
@click.argument("account")
@click.argument("mailbox")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@_import_options
@click.pass_obj
def import_mbox_cmd(
    app: AppContext,
    account: str,
    mailbox: str,
    files: tuple[str, ...],
    dry_run: bool,
    ignore_quota: bool,
    progress_interval: float,
    fmt: str,
) -> None:
    """Import mbox files into a mailbox (created if missing), all or nothing.

    Reads mboxo/mboxrd (">From " unquoted), LF or CRLF, ".gz" files and "-" for stdin.
    Flags come from Status, X-Status, X-Keywords, X-Mozilla-Status and X-Mozilla-Keys.
    The messages become visible in one commit at the end; an error, Ctrl-C or a kill
    leaves the account as it was.

    \b
    Example:
      moxcli import mbox mjl Archive ~/mail/archive.mbox ~/mail/2023.mbox.gz
      zcat old.mbox.gz | moxcli import mbox --json mjl Inbox -
    """
    from moxcli.mail.importer import import_mbox

    _run_import(
        app,
        fmt,
        progress_interval,
        account,
        import_mbox,
        mailbox=mailbox,
        sources=list(files),
        dry_run=dry_run,
        ignore_quota=ignore_quota,
    )


@import_group.command("maildir")
@click.argument("account")
@click.argument("mailbox")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--recursive", is_flag=True, help="Also import the maildir++ folders (.Folder.Sub) into matching mailboxes."
)
@_import_options
@click.pass_obj
def import_maildir_cmd(
    app: AppContext,
    account: str,
    mailbox: str,
    directory: Path,
    recursive: bool,
    dry_run: bool,
    ignore_quota: bool,
    progress_interval: float,
    fmt: str,
) -> None:
    """Import a maildir (new/ and cur/) into a mailbox, all or nothing.

    Flags come from the file names (":2,DFPRST") and the folder's dovecot-keywords.
    With --recursive, maildir++ folders ".A.B" (modified UTF-7 names) go to MAILBOX/A/B,
    or to A/B when MAILBOX is Inbox.

    \b
    Example:
      moxcli import maildir --recursive mjl Inbox ~/Maildir
    """
    from moxcli.mail.importer import import_maildir

    _run_import(
        app,
        fmt,
        progress_interval,
        account,
        import_maildir,
        mailbox=mailbox,
        directory=directory,
        recursive=recursive,
        dry_run=dry_run,
        ignore_quota=ignore_quota,
    )


@import_group.command("archive")
@click.argument("account")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--skip-prefix",
    default="",
    metavar="PATH",
    help="Leading path inside the archive to drop from mailbox names (e.g. Maildir).",
)
@_import_options
@click.pass_obj
def import_archive_cmd(
    app: AppContext,
    account: str,
    archive: Path,
    skip_prefix: str,
    dry_run: bool,
    ignore_quota: bool,
    progress_interval: float,
    fmt: str,
) -> None:
    """Import the mbox files and maildirs in a .zip or .tar[.gz|.bz2|.xz], all or nothing.

    Each "NAME.mbox" becomes mailbox NAME, each maildir (a directory with cur/ and new/)
    the mailbox of its path (maildir++ ".A.B" elements decoded; the archive's root maildir is
    Inbox). Hostile archives (absolute or ".." names, links, devices, duplicate or encrypted
    entries, decompression bombs, too many entries) are refused and nothing changes.

    \b
    Example:
      moxcli import archive --dry-run mjl takeout.zip
      moxcli import archive --skip-prefix Maildir mjl maildir-backup.tgz
    """
    from moxcli.mail.archive import ArchiveLimits
    from moxcli.mail.importer import import_archive

    cfg = app.config()
    _run_import(
        app,
        fmt,
        progress_interval,
        account,
        import_archive,
        archive=archive,
        skip_prefix=skip_prefix,
        limits=ArchiveLimits(cfg.archive_max_entries, cfg.archive_max_ratio),
        dry_run=dry_run,
        ignore_quota=ignore_quota,
    )


@click.group("account")
def account_group() -> None:
    """Accounts in the store."""


@account_group.command("list")
@output.format_options("Print a JSON list of {name, addresses, created, mailboxes, messages, bytes}.")
@click.pass_obj
def account_list_cmd(app: AppContext, fmt: str) -> None:
    """List accounts with their mailbox, message and byte counts.

    \b
    Example:
      moxcli account list --json
    """
    from moxcli.mail.listing import list_accounts

    app.require_store()
    accounts = list_accounts(app.data_dir)
    if fmt == "json":
        output.emit_json(accounts)
        return
    output.table(
        None,
        ["account", "mailboxes", "messages", "bytes", "created"],
        [(a.name, a.mailboxes, a.messages, a.bytes, output.rfc3339(a.created)) for a in accounts],
        fmt,
    )


@click.group("mailbox")
def mailbox_group() -> None:
    """Mailboxes of an account."""


@mailbox_group.command("list")
@click.argument("account")
@output.format_options("Print a JSON list of {name, messages, bytes, uidvalidity, uidnext, keywords, special_use}.")
@click.pass_obj
def mailbox_list_cmd(app: AppContext, account: str, fmt: str) -> None:
    """List an account's mailboxes with message and byte counts.

    \b
    Example:
      moxcli mailbox list mjl
    """
    from moxcli.mail.listing import list_mailboxes

    app.require_store()
    mbs = list_mailboxes(app.data_dir, account)
    if fmt == "json":
        output.emit_json(mbs)
        return
    output.table(None, ["mailbox", "messages", "bytes"], [(m.name, m.messages, m.size) for m in mbs], fmt)


@click.group("message")
def message_group() -> None:
    """Messages of a mailbox."""


@message_group.command("list")
@click.argument("account")
@click.argument("mailbox")
@output.format_options("Print a JSON list of {uid, id, size, received, flags, keywords}.")
@click.pass_obj
def message_list_cmd(app: AppContext, account: str, mailbox: str, fmt: str) -> None:
    """List a mailbox's messages: uid, size, received, flags, keywords.

    \b
    Example:
      moxcli message list mjl Inbox
    """
    from moxcli.mail.listing import iter_messages

    app.require_store()
    msgs = iter_messages(app.data_dir, account, mailbox)
    if fmt == "json":
        output.emit_json(list(msgs))
        return
    output.table(
        None,
        ["uid", "size", "received", "flags", "keywords"],
        [(m.uid, m.size, output.rfc3339(m.received), " ".join(m.flags), " ".join(m.keywords)) for m in msgs],
        fmt,
    )

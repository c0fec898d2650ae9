"""`moxcli backup`, `moxcli verifydata`, `moxcli gentestdata`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click

from moxcli.cli import output
from moxcli.context import AppContext
from moxcli.errors import CheckFailed


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


@contextmanager
def _progress(enabled: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--copy", "always_copy", is_flag=True, help="Copy message files instead of hard-linking them.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help=(
        "Output a JSON summary: source, dest, ok, files_linked, files_copied, bytes, store_bytes, "
        "seconds, schema_version, warnings, errors."
    ),
)
@click.pass_obj
def backup_cmd(app: AppContext, dest: Path, always_copy: bool, as_json: bool) -> None:
    """Make a consistent backup of the data directory.

    Copies the store as of one moment (one read transaction, compacted) while other moxcli
    processes keep working, and hard-links (or, across file systems, copies) every message
    and queue file that moment references; the config and DKIM keys in the data directory
    are copied too. DEST must not exist or be empty. If anything fails, the exit code is 1
    and DEST keeps a BACKUP-INCOMPLETE file listing what failed.

    To restore: stop moxcli jobs, run `moxcli verifydata DEST`, then use DEST as the data
    directory (`--data DEST`, or move it into place).

    \b
    Example:
      moxcli --data /var/lib/moxcli backup /var/backups/moxcli-2026-01-31
    """
    from moxcli.datatools.backup import backup
    from moxcli.perms import check_data_dir

    app.require_store()
    check_data_dir(app.data_dir)  # backup opens the store itself, not through app.open_store
    _check_dkim_keys(app)
    with _progress(not as_json, "backing up files") as progress:
        res = backup(app.data_dir, dest, progress=progress, link=not always_copy)
    if as_json:
        output.emit_json(res.to_json())
    else:
        for w in res.warnings:
            output.warn(w)
        for e in res.errors:
            output.info(f"error: {output.safe(e)}")
        output.kv(
            f"backup of {res.source} in {res.dest}",
            [
                ("files linked", res.files_linked),
                ("files copied", res.files_copied),
                ("bytes", f"{res.bytes} ({_size(res.bytes)})"),
                ("store bytes", f"{res.store_bytes} ({_size(res.store_bytes)})"),
                ("seconds", f"{res.seconds:.2f}"),
            ],
        )
    if not res.ok:
        n = len(res.errors)
        raise CheckFailed(
            f"{res.dest}: backup incomplete ({n} error{'s' if n != 1 else ''}); the list is in "
            f"{res.dest}/BACKUP-INCOMPLETE"
        )


def _check_dkim_keys(app: AppContext) -> None:
    """Warn about readable DKIM keys of the config (one that does not load: nothing to check)."""
    from moxcli.errors import MoxcliError
    from moxcli.perms import check_dkim_keys

    with suppress(MoxcliError):
        check_dkim_keys(app.config())


@click.command("verifydata")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--fix", is_flag=True, help="Move unreferenced message and queue files to DIR/moved/.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help=(
        "Output JSON: data_dir, ok, problems, warnings (lists of {code, message, path}), moved ({from, to}), "
        "notes, schema_version, migrated_from, counts, seconds."
    ),
)
@click.pass_obj
def verifydata_cmd(app: AppContext, directory: Path | None, fix: bool, as_json: bool) -> None:
    """Check a data directory for problems.

    Reads DIR (default: the --data directory) without changing it: every store record
    decodes under its version, records agree with each other (messages, mailboxes and their
    counters, accounts, queue), and message and queue files match their records (missing,
    unreferenced, wrong size). A store with an older schema is checked on a migrated copy.
    While no commit came after the store's seal (store.sha256, written by every writer up
    to [store] seal_max_size, and by backup), data.mdb must hash to it: any changed byte,
    even one LMDB never reads, is a problem. Exit code 1 when there is any problem. --fix
    moves unreferenced files to DIR/moved/.

    \b
    Example:
      moxcli verifydata /var/backups/moxcli-2026-01-31
    """
    from moxcli.cli.dataview import verifydata

    verifydata(directory or app.data_dir, fix, as_json)


@click.command("gentestdata")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--messages",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Extra messages to add (for benchmarks), spread over the accounts.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for the generated data.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON: data_dir, config_file, counts, seconds.")
def gentestdata_cmd(directory: Path, messages: int, seed: int, as_json: bool) -> None:
    """Generate a deterministic data directory for tests.

    Writes a config (with deterministic DKIM keys) and a store with every record type:
    accounts, mailboxes, messages, queue entries, TLS results, DMARC evaluations, MTA-STS
    policies, suppression entries and incoming reports. DIR must not exist or be empty.

    \b
    Example:
      moxcli gentestdata /tmp/moxcli-test && moxcli --data /tmp/moxcli-test send-tlsreports --dry-run
    """
    from moxcli.cli.dataview import gentestdata

    gentestdata(directory, messages, seed, as_json)

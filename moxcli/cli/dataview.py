"""What `moxcli verifydata` and `moxcli gentestdata` do and print, without click: the click
commands (moxcli.cli.data) and the click-free fast path (moxcli.cli.fast) both run these, so
the two give the same output, errors and exit codes (issue 13, start-up)."""

from __future__ import annotations

import sys
from pathlib import Path

from moxcli.cli import output
from moxcli.errors import CheckFailed

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any


def _echo(line: str) -> None:
    """A line on stdout, flushed (as click.echo): it comes before a later error line on stderr."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def verifydata(directory: Path, fix: bool, as_json: bool) -> None:
    """Verify ``directory`` and print the findings; CheckFailed (exit 1) when there is a problem."""
    from moxcli.context import require_store
    from moxcli.datatools.verify import verify_data
    from moxcli.perms import check_data_dir

    require_store(directory)
    check_data_dir(directory)  # verify_data opens the store itself
    res = verify_data(directory, fix=fix)
    if as_json:
        output.emit_json(res.to_json())
    else:
        for p in res.problems:
            _echo(f"error: {output.safe(p)}")
        for w in res.warnings:
            _echo(f"warning: {output.safe(w)}")
        for a, b in res.moved:
            _echo(f"moved: {output.safe(a)} -> {output.safe(b)}")
        for n in res.notes:
            _echo(f"note: {output.safe(n)}")
        if res.ok:
            _echo(f"{res.data_dir}: OK ({_counts(res.counts)}; {res.seconds:.2f} s)")
        else:
            count = len(res.problems)
            _echo(
                f"{res.data_dir}: {count} problem{'s' if count != 1 else ''} "
                f"({_counts(res.counts)}; {res.seconds:.2f} s)"
            )
    if not res.ok:
        raise CheckFailed(f"{res.data_dir}: {len(res.problems)} problem{'s' if len(res.problems) != 1 else ''} found")


def _counts(counts: dict[str, Any]) -> str:
    records = sum(v for k, v in counts.items() if k not in ("message_files", "queue_files", "message_bytes"))
    return (
        f"{records} records, {counts.get('message_files', 0)} message files, {counts.get('queue_files', 0)} queue files"
    )


def gentestdata(directory: Path, messages: int, seed: int, as_json: bool) -> None:
    """Generate the test data directory and print what it holds."""
    from moxcli.datatools.gentest import generate

    res = generate(directory, messages=messages, seed=seed)
    if as_json:
        output.emit_json(res.to_json())
    else:
        output.kv(
            f"generated {res.data_dir}", [(k, v) for k, v in res.counts.items()] + [("seconds", f"{res.seconds:.2f}")]
        )

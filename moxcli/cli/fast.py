"""Argument shapes answered without importing click (issue 13, start-up): the root help and
`check tlsrpt --record TEXT` (`--version` is answered in moxcli.entry). Click alone costs about twice a bare Python
start; these are the calls people and scripts make most often in a loop or a shell.

Each function returns the exit code when it handled the call, or None: then (and for every
shape not recognised exactly) the click command runs as usual, with the same output.
"""

from __future__ import annotations

import os
import sys

FORMATS = ("table", "tsv", "csv", "json")


def run(args: list[str]) -> int | None:
    """The exit code of a call handled here (moxcli.entry answers `--version` itself), else None."""
    if args in ([], ["--help"], ["-h"]):
        return root_help(to_stderr=not args)
    if args[:2] == ["check", "tlsrpt"]:
        return check_tlsrpt_record(args[2:])
    return None


def help_width() -> int:
    """The width click formats help at: the terminal's columns as shutil.get_terminal_size
    finds them (COLUMNS, the terminal, else 80), at most 100 (the root group's
    max_content_width), minus 2, at least 50 (click.formatting.HelpFormatter)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, 100) - 2, 50)


def root_help(to_stderr: bool) -> int | None:
    """`moxcli --help` (stdout, exit 0) and `moxcli` alone (stderr, exit 2), as click prints
    them, from the texts scripts/gen-docs.py rendered with click (moxcli.cli.roothelp)."""
    from moxcli.cli.roothelp import TEXTS

    text = TEXTS.get(help_width())
    if text is None:
        return None
    (sys.stderr if to_stderr else sys.stdout).write(text + "\n")
    return 2 if to_stderr else 0


def check_tlsrpt_record(args: list[str]) -> int | None:
    """`check tlsrpt --record TEXT [--json | --format F]`: a lint without DNS or config."""
    record: str | None = None
    fmt: str | None = None
    rest = list(args)
    while rest:
        a = rest.pop(0)
        if a.startswith("--record="):
            a, value = "--record", a.removeprefix("--record=")
        elif a.startswith("--format="):
            a, value = "--format", a.removeprefix("--format=")
        elif a in ("--record", "--format") and rest and not rest[0].startswith("-"):
            value = rest.pop(0)
        elif a == "--json" and fmt is None:
            fmt = "json"
            continue
        else:
            return None  # a domain, another option, a missing value: click decides
        if a == "--record" and record is None:
            record = value
        elif a == "--format" and fmt is None and value in FORMATS:
            fmt = value
        else:
            return None
    if record is None:
        return None
    from moxcli.cli import output
    from moxcli.cli.tlsrptview import show
    from moxcli.tlsrpt.lookup import check_record_text

    output.set_json_mode(fmt == "json", ["check", "tlsrpt", *args])
    try:
        return show(check_record_text(None, record), fmt or "table")
    except BrokenPipeError:
        # as the click command: a reader that stopped early is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again
        return 0

"""Argument shapes answered without importing click (issue 13, start-up): the root help,
`check tlsrpt --record TEXT`, `verifydata [DIR]`, `gentestdata DIR` and the report imports
(`tlsreports|dmarcreports|reports import` of files, directories, maildirs and mbox files;
issue 14, speed); `--version` is answered in moxcli.entry. Click alone costs about twice a
bare Python start; these are the calls people and scripts make most often in a loop or a
shell, and the ones mox's own are compared with.

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
    if "import" in args:
        code = report_import(args)
        if code is not None:
            return code
    return data_tool(args)


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


LOG_LEVELS = ("debug", "info", "warn", "error")
DATA_TOOLS = {"verifydata": ("--json", "--fix"), "gentestdata": ("--json",)}


def data_tool(args: list[str]) -> int | None:
    """`[--data D] [--log-level L] verifydata [DIR] [--json] [--fix]` and `[...] gentestdata DIR
    [--json]` (each flag at most once), as the click commands of moxcli.cli.data run them."""
    options: dict[str, str] = {}
    rest = list(args)
    while rest and rest[0].startswith("--") and rest[0] not in DATA_TOOLS:
        name, eq, value = rest.pop(0).partition("=")
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if name not in ("--data", "--log-level") or name in options:
            return None
        options[name] = value
    if not rest or rest[0] not in DATA_TOOLS:
        return None
    command, flags = rest[0], DATA_TOOLS[rest[0]]
    paths: list[str] = []
    seen: set[str] = set()
    for a in rest[1:]:
        if a in flags and a not in seen:
            seen.add(a)
        elif a.startswith("-") or paths:
            return None  # another option, --help, a second argument: click decides
        else:
            paths.append(a)
    log_level = options.get("--log-level", "warn")
    data = options["--data"] if "--data" in options else os.environ.get("MOXCLI_DATA") or None
    config = os.environ.get("MOXCLI_CONFIG")
    if log_level not in LOG_LEVELS or not all(
        _click_path(p, file_okay=False, dir_okay=True) for p in [*paths, *([data] if data is not None else [])]
    ):
        return None  # click's usage error
    if config and not _click_path(config, file_okay=True, dir_okay=False):
        return None  # click's usage error: --config (from the environment) is a directory or unreadable
    if command == "gentestdata" and not paths:
        return None
    from pathlib import Path

    from moxcli import log
    from moxcli.cli import dataview, output

    output.set_json_mode(False, args)
    log.setup(log_level)
    try:
        if command == "gentestdata":
            dataview.gentestdata(Path(paths[0]), 0, 1, "--json" in seen)
        else:
            from moxcli.context import default_data_dir

            directory = Path(paths[0]) if paths else Path(data) if data else default_data_dir()
            dataview.verifydata(directory, "--fix" in seen, "--json" in seen)
    except (Exception, KeyboardInterrupt) as exc:
        return _failed(exc)
    return 0


def _failed(exc: BaseException) -> int:
    """The exit code of a failed run, after printing the one-line error (moxcli.cli.failure)."""
    from moxcli.cli.failure import print_error, reported

    how = reported(exc)
    if how is None:
        raise exc
    code, message, exit_code = how
    if isinstance(exc, BrokenPipeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again
        return 0
    print_error(code, message)
    return exit_code


IMPORT_COMMANDS = {"tlsreports": ("tls",), "dmarcreports": ("dmarc",), "reports": ("tls", "dmarc")}


def report_import(args: list[str]) -> int | None:
    """`[--data D] [--config F] [--log-level L] tlsreports|dmarcreports|reports import [--json]
    [--maildir DIR]... [--mbox FILE]... [PATH]...` (options in any order, each global option
    and --json at most once), as the click commands run them (moxcli.cli.importview).
    Anything else (--imap, --list, --format, --help, ...) is left to click."""
    options: dict[str, str] = {}
    rest = list(args)
    while rest and rest[0].startswith("--"):
        name, eq, value = rest.pop(0).partition("=")
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if name not in ("--data", "--config", "--log-level") or name in options:
            return None
        options[name] = value
    if len(rest) < 2 or rest[0] not in IMPORT_COMMANDS or rest[1] != "import":
        return None
    sources: dict[str, list[str]] = {"": [], "--maildir": [], "--mbox": []}
    as_json = False
    items = rest[2:]
    while items:
        a = items.pop(0)
        name, eq, value = a.partition("=")
        if a == "--json" and not as_json:
            as_json = True
            continue
        if name in ("--maildir", "--mbox"):
            if not eq:
                if not items:
                    return None
                value = items.pop(0)
            sources[name].append(value)
        elif a.startswith("-"):
            return None  # another option, a repeated --json, --help: click decides
        else:
            sources[""].append(a)
    data = options.get("--data", os.environ.get("MOXCLI_DATA") or None)
    config = options.get("--config", os.environ.get("MOXCLI_CONFIG") or None)
    log_level = options.get("--log-level", "warn")
    checks = [(p, True, True) for p in sources[""]]
    checks += [(p, False, True) for p in sources["--maildir"]]
    checks += [(p, True, False) for p in sources["--mbox"]]
    checks += [(p, False, True) for p in [data] if p is not None]
    checks += [(p, True, False) for p in [config] if p is not None]
    if log_level not in LOG_LEVELS or not all(_click_path(*c) for c in checks):
        return None  # click's usage error
    from pathlib import Path

    from moxcli import log
    from moxcli.cli import importview, output
    from moxcli.context import AppContext, default_data_dir

    output.set_json_mode(as_json, args)
    log.setup(log_level)
    app = AppContext(data_dir=Path(data) if data else default_data_dir(), config_file=Path(config) if config else None)
    try:
        code = importview.run_import(
            app,
            IMPORT_COMMANDS[rest[0]],
            [Path(p) for p in sources[""]],
            [Path(p) for p in sources["--maildir"]],
            [Path(p) for p in sources["--mbox"]],
            None,
            None,
            False,
            False,
            "json" if as_json else "table",
        )
    except (Exception, KeyboardInterrupt) as exc:
        app.remove_created_dir()  # as the click group: a failed run leaves no directories
        return _failed(exc)
    if code:
        app.remove_created_dir()
    return code


def _click_path(value: str, file_okay: bool, dir_okay: bool) -> bool:
    """Whether click.Path(file_okay, dir_okay) takes ``value`` as it is (it does not need to
    exist; an existing one must be of an allowed kind and readable)."""
    if not value or "\0" in value or value.startswith("-"):
        return False
    try:
        st = os.stat(value)
    except OSError:
        return True
    import stat

    if (not file_okay and stat.S_ISREG(st.st_mode)) or (not dir_okay and stat.S_ISDIR(st.st_mode)):
        return False
    return os.access(value, os.R_OK)

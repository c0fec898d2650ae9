"""Rendering for people (aligned tables), pipes (TSV, CSV) and scripts (JSON, NDJSON); stderr messages.

The JSON contract (docs/json.md) lives here as helpers every command uses: `rfc3339` for
times, `day` for UTC days, `finding` for coded findings, `error_object` for errors.

Tables are rendered here without rich: one row per line at full width whatever the terminal
or pipe (never folded), columns aligned; colour (a bold header) only on a terminal and never
with NO_COLOR (https://no-color.org). That keeps 1,000 rows fast and start-up light.
"""

from __future__ import annotations

import itertools
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from moxcli.jsonfmt import a_label, day, error_object, finding, rfc3339, unknown_as_null

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    import click

    F = TypeVar("F", bound=Callable[..., Any])

# No click, csv or json at import: the click-free fast paths of moxcli.entry render with
# this module too (docs/development.md, Start-up).

__all__ = ["a_label", "day", "error_object", "finding", "rfc3339", "unknown_as_null"]

FORMATS = ("table", "tsv", "csv", "json")

_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}
_CONTROL.update({0x9B: "\\x9b"})

# Set by the --json/--format callbacks so that an error raised later is printed as JSON too;
# the arguments of this run (for usage errors raised before any callback ran).
_json_mode = False
_argv: list[str] | None = None
# A whole JSON document was printed: a failure after it (exit 1 for "what was checked is wrong")
# is told by the document and the exit code, not by a second document.
_document_printed = False


def safe(text: Any) -> str:
    """Text from DNS, certificates or servers, with terminal control characters escaped."""
    s = str(text)
    # isprintable() is False for every character _CONTROL maps: most text skips the translate
    return s if s.isprintable() else s.translate(_CONTROL)


# --- the JSON contract (docs/json.md): value helpers live in moxcli.jsonfmt (the library uses them too)


def json_mode() -> bool:
    """Whether this run asked for JSON (so that errors are also printed as a JSON object)."""
    if _json_mode:
        return True
    args = list(_argv) if _argv is not None else sys.argv[1:]
    if "--" in args:
        args = args[: args.index("--")]
    return (
        "--json" in args
        or "--format=json" in args
        or any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))
    )


def set_json_mode(on: bool, argv: Sequence[str] | None = None) -> None:
    """Reset at the start of a run (with its arguments); set by --json / --format json."""
    global _json_mode, _argv, _document_printed
    _json_mode = on
    if argv is not None:
        _argv = list(argv)
        _document_printed = False


def _default(obj: Any) -> Any:
    from datetime import date, datetime

    if isinstance(obj, datetime):
        return rfc3339(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def to_json(obj: Any, indent: int | None = 2) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, indent=indent, default=_default)


def emit_json(obj: Any) -> None:
    """One JSON document on stdout."""
    global _document_printed
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()
    _document_printed = True


def emit_ndjson(obj: Any) -> None:
    """One line of a stream of JSON objects on stdout, flushed so pipes see it at once."""
    sys.stdout.write(to_json(obj, indent=None) + "\n")
    sys.stdout.flush()


def emit_error(code: str, message: str) -> None:
    """The error object on stdout (for --json runs); the caller prints the one-line message on stderr.

    Nothing when the command already printed its JSON document (docs/json.md, Errors).
    """
    if _document_printed:
        return
    sys.stdout.write(to_json(error_object(code, message), indent=None) + "\n")
    sys.stdout.flush()


# --- --format / --json ----------------------------------------------------------------------


def _set_format(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if param.name == "as_json" and value:
        set_json_mode(True)
    if param.name == "fmt" and value == "json":
        set_json_mode(True)
    return value


def format_options(
    json_help: str = "Output JSON (keys in docs/json.md); short for --format json.", rows: str | None = None
) -> Callable[[F], F]:
    """`--format table|tsv|csv|json` and `--json`; the command gets `fmt` (one of FORMATS).

    The wrapped function receives `fmt` instead of the two options. ``rows`` says what a
    tsv/csv row is where the table view shows more than one table (it goes into the help).
    """
    format_help = "Output format: table (aligned, one row per line), tsv, csv or json [default: table]."
    if rows:
        format_help = f"{format_help[:-1]}; tsv/csv: {rows}."

    def deco(f: F) -> F:
        import functools

        import click

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            as_json = kwargs.pop("as_json", False)
            fmt = kwargs.pop("fmt", None)
            kwargs["fmt"] = "json" if as_json else (fmt or "table")
            return f(*args, **kwargs)

        wrapper = click.option("--json", "as_json", is_flag=True, callback=_set_format, help=json_help)(wrapper)
        wrapper = click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            callback=_set_format,
            help=format_help,
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return deco


# --- tables ---------------------------------------------------------------------------------


def colour(stream: Any = None) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (to anything non-empty) or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    s = stream if stream is not None else sys.stdout
    try:
        return bool(s.isatty())
    except (AttributeError, ValueError):
        return False


def _width(s: str) -> int:
    if s.isascii():
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return w


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return safe(v)


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table", bold: bool = False) -> str:
    """The text of a table: aligned columns (one row per line, never folded), TSV or CSV.

    Cells are escaped for control characters (so a tab or newline in a value cannot break a
    TSV row); None is an empty cell, booleans are yes/no.
    """
    cells = [[_cell(v) for v in r] for r in rows]
    if fmt == "tsv":
        return "".join("\t".join(r) + "\n" for r in [list(columns), *cells])
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows(cells)
        return buf.getvalue()
    measured = [[(c, _width(c)) for c in r] for r in [list(columns), *cells]]  # each cell measured once
    widths = [0] * len(columns)
    for r in measured:
        for i, (_, cw) in enumerate(r):
            if cw > widths[i]:
                widths[i] = cw
    last = len(columns) - 1

    def line(r: Sequence[tuple[str, int]]) -> str:
        return "  ".join(c if i == last else c + " " * (widths[i] - cw) for i, (c, cw) in enumerate(r)).rstrip()

    head = line(measured[0])
    if bold:
        head = f"\x1b[1m{head}\x1b[0m"
    return head + "\n" + "".join(line(r) + "\n" for r in measured[1:])


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table") -> None:
    """A table on stdout in the chosen format (table, tsv, csv); a title only in table format."""
    out = sys.stdout
    text = format_table(columns, rows, fmt, bold=fmt == "table" and colour(out))
    if title and fmt == "table":
        text = f"{safe(title)}\n{text}"
    out.write(text)
    out.flush()


class RowStream:
    """TSV or CSV rows written as they come (a queue run, a refresh, domains checked in parallel):
    the header before the first row, each row flushed so a pipe sees it at once. Call start()
    when the run succeeded, so that a run without rows prints the header alone."""

    def __init__(self, columns: Sequence[str], fmt: str) -> None:
        self.columns = list(columns)
        self.fmt = fmt
        self._started = False

    def start(self) -> None:
        """The header line (also when no row follows, so a reader always gets the columns)."""
        if not self._started:
            self._started = True
            sys.stdout.write(format_table(self.columns, [], self.fmt))
            sys.stdout.flush()

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        self.start()
        text = format_table(self.columns, rows, self.fmt)
        sys.stdout.write(text[text.index("\n") + 1 :])  # without the header line
        sys.stdout.flush()


def kv(title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
    """Key/value lines for a single object, one value per line (never wrapped)."""
    lines = []
    if title:
        t = safe(title)
        lines.append(f"\x1b[1m{t}\x1b[0m" if colour() else t)
    for k, v in pairs:
        lines.append(f"  {k}: {_cell(v)}")
    sys.stdout.write("".join(x + "\n" for x in lines))
    sys.stdout.flush()


def console(stderr: bool = False) -> Any:
    """A rich console for the few views that draw more than a table (rich honours NO_COLOR and non-TTYs)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, no_color=not colour(sys.stderr if stderr else None))


def info(msg: str) -> None:
    """A human-readable note on stderr (never mixed into data on stdout)."""
    sys.stderr.write(f"{msg}\n")
    sys.stderr.flush()


def warn(msg: str) -> None:
    info(f"warning: {safe(msg)}")


def day_arg(option: str, value: str | None) -> str | None:
    """A `--day` value, `YYYY-MM-DD` (the JSON form) or `YYYYMMDD`, as the store's `YYYYMMDD`.

    An impossible date (2026-13-01) is a usage error (exit 2) naming the option.
    """
    if value is None:
        return None
    from datetime import date

    from moxcli.errors import UsageError

    s = value.strip()
    digits = s.replace("-", "") if len(s) == 10 and s[4] == "-" and s[7] == "-" else s
    try:
        if len(digits) != 8 or not digits.isdigit():
            raise ValueError
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected a day as YYYY-MM-DD", code="bad-day") from None
    return digits

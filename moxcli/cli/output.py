"""Rendering for people (rich tables) and scripts (JSON, NDJSON); stderr messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

_CONTROL = {i: f"\\x{i:02x}" for i in list(range(0x20)) + [0x7F]}
_CONTROL.update({0x9B: "\\x9b"})


def safe(text: Any) -> str:
    """Text from DNS, certificates or servers, with terminal control characters escaped."""
    return str(text).translate(_CONTROL)


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=UTC)
        return obj.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=indent, default=_default)


def emit_json(obj: Any) -> None:
    """One JSON document on stdout."""
    click.echo(to_json(obj))


def emit_ndjson(obj: Any) -> None:
    """One line of a stream of JSON objects on stdout, flushed so pipes see it at once."""
    click.echo(to_json(obj, indent=None))
    sys.stdout.flush()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A rich table on stdout; cells are escaped for control characters and rich markup."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*(escape(safe("" if v is None else v)) for v in row))
    console().print(t)


def kv(title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
    """Key/value lines for a single object."""
    from rich.markup import escape

    c = console()
    if title:
        c.print(f"[bold]{escape(safe(title))}[/bold]")
    for k, v in pairs:
        c.print(f"  {k}: {escape(safe('' if v is None else v))}")


def info(msg: str) -> None:
    """A human-readable note on stderr (never mixed into data on stdout)."""
    click.echo(msg, err=True)


def warn(msg: str) -> None:
    click.echo(f"warning: {safe(msg)}", err=True)

"""Values in the JSON contract (docs/json.md): times, days, unknowns, findings, errors.

Pure functions used by library `to_json` methods and the CLI (re-exported by moxcli.cli.output).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date, datetime
    from typing import Any


def rfc3339(t: datetime | float | int | None) -> str | None:
    """A point in time as RFC 3339 UTC with whole seconds (`2026-12-03T04:05:06Z`); None stays None.

    Accepts aware or naive (taken as UTC) datetimes and Unix seconds (int or float).
    """
    if t is None:
        return None
    from datetime import UTC, datetime

    if isinstance(t, datetime):
        dt = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    else:
        dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def day(d: date | str | None) -> str | None:
    """A UTC day as `YYYY-MM-DD`; accepts a date or the store's `YYYYMMDD` text; None stays None."""
    if d is None:
        return None
    from datetime import UTC, date, datetime

    if isinstance(d, datetime):
        d = d.astimezone(UTC).date() if d.tzinfo else d.date()
    if isinstance(d, date):
        return d.isoformat()
    s = str(d)
    if len(s) == 8 and s.isdigit():
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    if len(s) == 10 and s[4] == "-" and s[7] == "-":
        return s
    raise ValueError(f"not a day: {s!r}")


def a_label(name: str) -> str:
    """A domain name as JSON gives it: A-labels in lower case (`☺.example` -> `xn--74h.example`).

    The store keeps Unicode names (as mox does); a name that does not parse is given as it is.
    """
    if name.isascii():
        return name.lower()
    from moxcli.domain import DomainError, parse_domain

    try:
        return parse_domain(name, lax=True).ascii
    except DomainError:
        return name


def unknown_as_null(v: Any) -> Any:
    """`""` (how some stored records say "not known") as None, so JSON says null."""
    return None if v == "" else v


def finding(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """A finding (error, warning, note) in JSON: a stable kebab-case `code` plus a message for people."""
    return {"code": code, "message": message, **extra}


class Finding(str):
    """A finding's message for people that carries its stable machine code (docs/json.md, Findings).

    A `str` so that every place people read findings (tables, joined lines, log fields) shows
    the message unchanged; JSON output turns it into `{"code", "message"}` with `findings_json`.
    """

    code: str

    def __new__(cls, code: str, message: str) -> Finding:
        self = super().__new__(cls, message)
        self.code = code
        return self

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (self.code, str(self))

    def __repr__(self) -> str:
        return f"Finding({self.code!r}, {str(self)!r})"

    def to_json(self) -> dict[str, Any]:
        return finding(self.code, str(self))


def findings_json(items: Iterable[Finding]) -> list[dict[str, Any]]:
    """A list of findings as JSON objects (`json.dumps` would write a `str` subclass as a plain string)."""
    return [finding(f.code, str(f)) for f in items]


def error_object(code: str, message: str) -> dict[str, Any]:
    """What `--json` prints on stdout when a command fails: `{"error": {"code", "message"}}`."""
    return {"error": {"code": code, "message": message}}

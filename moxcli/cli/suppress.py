"""`moxcli suppress tls|dmarc add|list|remove`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from moxcli.cli import output
from moxcli.context import AppContext
from moxcli.errors import UsageError


def _parse_until(text: str | None) -> float | None:
    """YYYY-MM-DD (end of that UTC day), YYYY-MM-DDTHH:MM[:SS] (UTC), or a duration like 30d / 12h."""
    if text is None:
        return None
    t = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if t[:-1].isdigit() and t[-1:] in units:
        return time.time() + int(t[:-1]) * units[t[-1]]
    for fmt, end_of_day in (
        ("%Y-%m-%d", True),
        ("%Y-%m-%dT%H:%M:%S", False),
        ("%Y-%m-%dT%H:%M", False),
        ("%Y-%m-%d %H:%M", False),
    ):
        try:
            dt = datetime.strptime(t, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return dt.timestamp() + (86400 if end_of_day else 0)
    raise UsageError(f"--until {text!r}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or a duration like 30d, 12h")


def _fmt(t: float | None) -> str:
    return "never" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _make_group(kind: str, what: str) -> click.Group:
    @click.group(kind, help=f"Suppression list for {what} report addresses.")
    def group() -> None:
        pass

    @group.command(
        "add",
        help=f"""Stop sending {what} reports to ADDRESS.

    Without --until the entry holds until removed. Expired entries are kept for the
    listing and ignored.

    \b
    Example:
      moxcli suppress {kind} add tlsrpt@example.org --until 2026-12-31 --comment "asked us to stop"
    """,
    )
    @click.argument("address")
    @click.option(
        "--until",
        "until",
        metavar="DATE",
        help="YYYY-MM-DD (through that UTC day), YYYY-MM-DDTHH:MM (UTC) or a duration: 30d, 12h.",
    )
    @click.option("--comment", default="", help="Why (shown in list).")
    @click.option("--json", "as_json", is_flag=True, help="Output the entry: address, inserted, until, comment.")
    @click.pass_obj
    def add_cmd(app: AppContext, address: str, until: str | None, comment: str, as_json: bool) -> None:
        from moxcli.store import suppress

        u = _parse_until(until)
        with app.open_store() as store:
            entry = store.update(lambda tx: suppress.add(tx, kind, address, until=u, comment=comment))
        if as_json:
            output.emit_json(entry.to_json())
        else:
            output.info(f"suppressed {entry.address} until {_fmt(entry.until)}")

    @group.command(
        "list",
        help=f"""List the {what} suppression list, newest first.

    \b
    Example:
      moxcli suppress {kind} list --json
    """,
    )
    @output.format_options("Output a JSON list of {address, inserted, until, comment, active}.")
    @click.pass_obj
    def list_cmd(app: AppContext, fmt: str) -> None:
        from moxcli.store import suppress

        with app.open_store(readonly=True) as store, store.read() as tx:
            entries = suppress.entries(tx, kind)
        now = time.time()
        if fmt == "json":
            output.emit_json([{**e.to_json(), "active": e.active(now)} for e in entries])
            return
        output.table(
            None,
            ["address", "until (UTC)", "active", "inserted (UTC)", "comment"],
            [
                (e.address, _fmt(e.until), "yes" if e.active(now) else "expired", _fmt(e.inserted), e.comment)
                for e in entries
            ],
            fmt,
        )

    @group.command(
        "remove",
        help=f"""Remove ADDRESS from the {what} suppression list.

    \b
    Example:
      moxcli suppress {kind} remove tlsrpt@example.org
    """,
    )
    @click.argument("address")
    @click.pass_obj
    def remove_cmd(app: AppContext, address: str) -> None:
        from moxcli.store import suppress

        with app.open_store() as store:
            removed = store.update(lambda tx: suppress.remove(tx, kind, address))
        if not removed:
            raise UsageError(f"{address}: not on the {kind} suppression list", code="not-found")
        output.info(f"removed {address} from the {kind} suppression list")

    return group


@click.group("suppress")
def suppress_group() -> None:
    """Suppression lists for TLS and DMARC report addresses."""


suppress_group.add_command(_make_group("tls", "TLS"))
suppress_group.add_command(_make_group("dmarc", "DMARC"))

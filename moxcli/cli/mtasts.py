"""`moxcli fetch mtasts`, `moxcli mtasts list`, `moxcli mtasts refresh`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext


def _time(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group("fetch")
def fetch_group() -> None:
    """Fetch and validate MTA-STS policies."""


@fetch_group.command("mtasts")
@click.argument("domain", required=False)
@click.option(
    "--policy-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Lint this policy file (no network).",
)
@click.option("--record", "record_text", metavar="TEXT", help="Lint this _mta-sts TXT record text (no network).")
@click.option("--no-cache", is_flag=True, help="Look up and fetch now; neither read nor write the policy cache.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help=(
        "Output JSON: domain, record_name, cnames, record, url, policy, policy_text, cached, "
        "valid_until, valid, tlsrpt_result, errors, warnings."
    ),
)
@click.pass_obj
def fetch_mtasts_cmd(
    app: AppContext,
    domain: str | None,
    policy_file: Path | None,
    record_text: str | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Look up the MTA-STS record and fetch the policy of a domain (RFC 8461).

    Without options this goes through the policy cache exactly as delivery does: a cached
    policy whose id is unchanged in DNS is used as is, a new id is fetched and stored, a
    failed first fetch is remembered for 5 minutes. --no-cache fetches now and leaves the
    cache alone. The fetch verifies the certificate of mta-sts.DOMAIN, follows no
    redirects and reads at most 64 KiB.

    --policy-file and --record lint texts before you publish them, without network.

    Exit status: 0 valid policy, 1 no MTA-STS or invalid, 3 temporary DNS failure.

    \b
    Example:
      moxcli fetch mtasts example.org
      moxcli fetch mtasts --no-cache --json example.org
      moxcli fetch mtasts --policy-file mta-sts.txt
      moxcli fetch mtasts --record 'v=STSv1; id=20240101T000000'
    """
    from moxcli.mtasts import check as mc

    if policy_file is not None or record_text is not None:
        checks = []
        if record_text is not None:
            checks.append(mc.check_record_text(record_text))
        if policy_file is not None:
            from moxcli.inputs import read_regular

            text = read_regular(policy_file, 1 << 20, "policy file").decode("utf-8", errors="replace")
            checks.append(mc.check_policy_text(text))
        for c in checks:
            if as_json:
                output.emit_json(c.to_json())
            else:
                _render(c)
        raise SystemExit(max(c.exit_code for c in checks))
    if not domain:
        raise click.UsageError("give a DOMAIN, --policy-file FILE or --record TEXT")
    from moxcli.dns import Resolver
    from moxcli.mtasts.fetch import FetchOptions

    cfg = app.config()
    resolver = Resolver.from_config(cfg.dns)
    options = FetchOptions.from_config(cfg)
    if no_cache:
        check = mc.check_live(resolver, domain, options)
    else:
        with app.open_store() as store:
            check = mc.check_cached(store, resolver, domain, options)
    if as_json:
        output.emit_json(check.to_json())
    else:
        _render(check)
    raise SystemExit(check.exit_code)


def _render(check) -> None:
    pairs = []
    if check.domain is not None:
        from moxcli.mtasts.lookup import record_name

        pairs.append(("record name", record_name(check.domain)))
        if check.cnames:
            pairs.append(("cnames", " -> ".join(check.cnames)))
    if check.record_text or check.record:
        pairs.append(("record", check.record_text))
    if check.record is not None:
        pairs.append(("id", check.record.id))
    if check.url:
        pairs.append(("policy url", check.url))
    if check.policy is not None:
        p = check.policy
        pairs += [("mode", p.mode), ("mx", ", ".join(str(m) for m in p.mx)), ("max_age", f"{p.max_age} s")]
    if check.domain is not None:
        pairs.append(("from cache", "yes" if check.cached else "no"))
        if check.valid_until is not None:
            pairs.append(("valid until", _time(check.valid_until)))
    pairs.append(("valid", "yes" if check.valid else "no"))
    output.kv(f"MTA-STS {check.domain.name}" if check.domain else "MTA-STS", pairs)
    for e in check.errors:
        output.info(f"error: {output.safe(e)}")
    for w in check.warnings:
        output.warn(w)


@click.group("mtasts")
def mtasts_group() -> None:
    """The MTA-STS policy cache: list and refresh."""


@mtasts_group.command("list")
@output.format_options(
    "Output a JSON list of {domain, mode, mx, max_age, record_id, backoff, valid_end, last_update, last_use, inserted}."
)
@click.pass_obj
def mtasts_list_cmd(app: AppContext, fmt: str) -> None:
    """Show the cached MTA-STS policies.

    Most recently used first. A back-off row records a failed first fetch: until it ends,
    delivery acts as if the domain had no MTA-STS.

    \b
    Example:
      moxcli mtasts list
    """
    from moxcli.mtasts.cache import list_policies

    with app.open_store(readonly=True) as store:
        rows = list_policies(store)
    if fmt == "json":
        output.emit_json([r.to_json() for r in rows])
        return
    output.table(
        None,
        ["domain", "mode", "mx", "max_age", "id", "valid until", "last use", "back-off"],
        [
            (
                r.domain,
                r.policy.mode,
                ", ".join(str(m) for m in r.policy.mx),
                r.policy.max_age,
                r.record_id,
                _time(r.valid_end),
                _time(r.last_use),
                "yes" if r.backoff else "",
            )
            for r in rows
        ],
        fmt,
    )


@mtasts_group.command("refresh")
@click.option(
    "--spread",
    type=click.FloatRange(min=0),
    default=10800,
    show_default=True,
    help="Spread the refreshes over this many seconds.",
)
@output.format_options(
    "Output NDJSON: one {type: domain, domain, action, message, valid_end} per domain, then "
    "{type: summary, domains, actions}.",
    rows="one row per domain, written as it is handled",
)
@click.pass_obj
def mtasts_refresh_cmd(app: AppContext, spread: float, fmt: str) -> None:
    """Refresh cached MTA-STS policies before they expire (run daily from cron).

    Forgets policies not used for 180 days, then checks every policy not updated for 12
    hours: an unchanged id in DNS extends it, a new id fetches it again, a domain in mode
    none whose record is gone is dropped. The checks are spread over --spread seconds
    (3 hours by default, like mox) so policy hosts are not hit all at once.

    \b
    Example:
      moxcli mtasts refresh --spread 0
      # crontab: 17 3 * * * moxcli --data /var/lib/moxcli mtasts refresh
    """
    from moxcli.dns import Resolver
    from moxcli.mtasts.fetch import FetchOptions
    from moxcli.mtasts.refresh import refresh
    from moxcli.store import job_lock

    cfg = app.config()
    as_json = fmt == "json"
    rows = output.RowStream(["domain", "action", "message", "valid until"], fmt) if fmt in ("tsv", "csv") else None

    def show(r: Any) -> None:
        if as_json:
            output.emit_ndjson({"type": "domain", **r.to_json()})
        elif rows is not None:
            rows.write([(r.domain, r.action, r.message, _time(r.valid_end) if r.valid_end else "")])
        else:
            extra = f" (valid until {_time(r.valid_end)})" if r.valid_end else ""
            click.echo(f"{output.safe(r.domain)}: {r.action}: {output.safe(r.message)}{extra}")

    with job_lock(app.data_dir, "mtasts-refresh"), app.open_store() as store:
        done = refresh(
            store, Resolver.from_config(cfg.dns), FetchOptions.from_config(cfg), spread=spread, on_result=show
        )
    if rows is not None:
        rows.start()  # the header also when no domain was due
    if as_json:
        actions: dict[str, int] = {}
        for r in done:
            actions[r.action] = actions.get(r.action, 0) + 1
        output.emit_ndjson({"type": "summary", "domains": len(done), "actions": actions})
    else:
        output.info(f"{len(done)} domain(s) handled")

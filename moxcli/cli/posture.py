"""`moxcli check domain`: a domain's whole TLS posture, many domains concurrently."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext
from moxcli.errors import EXIT_FAILED, EXIT_TEMPORARY, EXIT_USAGE, UsageError

# green implemented, red not implemented, gray error, blank unknown; the symbol keeps an
# indicator readable without colours, and every indicator is always shown.
_STYLE = {
    "implemented": ("black on green", "✓"),
    "not-implemented": ("white on red", "✗"),
    "error": ("black on grey62", "!"),
    "unknown": ("default", "?"),
}


def _domains(args: tuple[str, ...], file: Path | None) -> Iterator[str]:
    yield from args
    if file is not None:
        with click.open_file(str(file), encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line


@click.command("domain")
@click.argument("domains", nargs=-1, metavar="DOMAIN...")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read domains from FILE, one a line (- for stdin).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Domains checked at the same time.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=10.0,
    show_default=True,
    help="Seconds per SMTP/HTTPS connection.",
)
@click.option("--no-connect", is_flag=True, help="DNS and MTA-STS only: do not connect to the MX hosts.")
@click.option(
    "--expiry-warning",
    "expiry_days",
    type=click.IntRange(0, 3650),
    default=21,
    show_default=True,
    metavar="DAYS",
    help="Warn about MX certificates that expire within DAYS days.",
)
@output.format_options(
    "NDJSON, one object per domain: domain, mx, mx_dnssec, mtasts, tlsrpt, hosts, indicators, findings, "
    "errors, status.",
    rows="one row per MX host (a domain without MX hosts: one row), the domain's status first; findings only in "
    "table and json",
)
@click.pass_obj
def domain_cmd(
    app: AppContext,
    domains: tuple[str, ...],
    file: Path | None,
    concurrency: int,
    timeout: float,
    no_connect: bool,
    expiry_days: int,
    fmt: str,
) -> None:
    """Show a domain's TLS posture: MX and DNSSEC, MTA-STS, DANE, TLSRPT, REQUIRETLS.

    For each domain: the MX hosts with the DNSSEC status of the MX set and of each host's
    addresses; the MTA-STS record and policy and whether it covers every MX; per MX host
    STARTTLS, PKIX validity, TLSA records (present, usable, matching) and REQUIRETLS, from
    one handshake per address; the TLSRPT record of the domain and of each MX host. Ends
    with an indicator bar: MTA-STS enforced, MX DNSSEC-signed, DANE on the first MX,
    TLSRPT, REQUIRETLS, and from this data dir's deliveries STARTTLS seen and REQUIRETLS
    seen (green ✓ implemented, red ✗ not, gray ! error, ? unknown).

    Exit status: 0 no error-class finding, 1 any, 3 only temporary failures.

    \b
    Example:
      moxcli check domain example.org
      moxcli check domain --json example.org example.net
      moxcli check domain --file domains.txt --concurrency 64 --json > posture.ndjson
    """
    from moxcli.dns import Resolver
    from moxcli.posture import PostureOptions, check_domains
    from moxcli.posture.check import apply_delivery_memory

    if not domains and file is None:
        raise UsageError("give DOMAIN... or --file F")
    from moxcli.domain import DomainError, parse_domain

    for d in domains:  # typed names are checked before any lookup: a typo is a usage error
        try:
            parse_domain(d)
        except DomainError as exc:
            raise UsageError(f'parsing domain "{d}": {exc}', code="bad-domain") from None
    cfg = app.config()
    resolver = Resolver.from_config(cfg.dns)
    if resolver.untrusted_reason:
        output.warn(resolver.untrusted_reason)
    opts = PostureOptions.from_config(cfg, timeout, connect=not no_connect, expiry_days=expiry_days)
    known = _delivery_memory(app)
    states: set[str] = set()
    rows = output.RowStream(["domain", "status", "MTA-STS", *_HOST_COLUMNS], fmt) if fmt in ("tsv", "csv") else None
    for p in check_domains(resolver, _domains(domains, file), opts, concurrency):
        apply_delivery_memory(p, known.get(_name(p.domain)))
        states.add(p.status)
        if fmt == "json":
            output.emit_ndjson(p.to_json())
        elif rows is not None:
            mode = p.mtasts.policy.mode if p.mtasts is not None and p.mtasts.policy is not None else ""
            head = (p.domain, p.status, mode)
            rows.write([(*head, *_host_row(h)) for h in p.hosts] or [head + ("",) * len(_HOST_COLUMNS)])
        else:
            _render(p)
    if rows is not None:
        rows.start()  # the header also when no domain was given
    if "invalid-domain" in states:
        raise SystemExit(EXIT_USAGE)  # a --file line that is not a domain name (its finding names the label)
    if states & {"error", "nxdomain"}:
        raise SystemExit(EXIT_FAILED)
    if "temporary" in states:
        raise SystemExit(EXIT_TEMPORARY)


def _delivery_memory(app: AppContext) -> dict[str, Any]:
    """What our deliveries learned per recipient domain, when the data dir has a store."""
    from moxcli.context import require_store
    from moxcli.delivery.queue import known_domains
    from moxcli.errors import MoxcliError

    try:
        require_store(app.data_dir)
        with app.open_store(readonly=True) as st:
            return {d.domain: d for d in known_domains(st)}
    except MoxcliError:
        return {}  # no store (or not readable): every "seen" indicator shows ?


def _name(domain: str) -> str:
    from moxcli.domain import DomainError, parse_domain

    try:
        return parse_domain(domain).name
    except DomainError:
        return domain


def _yn(v: bool | None) -> str:
    return "-" if v is None else "yes" if v else "no"


def _tlsa_cell(h: Any) -> str:
    """TLSA present / usable / matching in one word."""
    if h.tlsa is None:
        return "n/a (no DNSSEC)" if h.ips and not h.dane_applies else "-"
    if h.tlsa.error is not None:
        return "lookup error"
    if h.tlsa.insecure:
        return "ignored (insecure)"
    if not h.tlsa.records:
        return "none"
    if not h.usable:
        return "unusable"
    return {True: "matches", False: "NO MATCH", None: "usable"}[h.tlsa_matching]


_HOST_COLUMNS = ["MX host", "pref", "addresses", "DNSSEC", "in STS", "STARTTLS", "PKIX", "TLSA", "REQUIRETLS", "TLSRPT"]


def _host_row(h: Any) -> tuple[Any, ...]:
    return (
        h.host,
        h.preference if h.preference >= 0 else "-",
        ", ".join(h.ips) or "-",
        h.ips_dnssec,
        _yn(h.sts_match),
        _yn(h.starttls),
        _yn(h.pkix_valid),
        _tlsa_cell(h),
        _yn(h.requiretls),
        "yes" if h.tlsrpt is not None and h.tlsrpt.valid else "no",
    )


def _render(p: Any) -> None:
    from rich.markup import escape

    c = output.console()
    c.print(f"[bold]Domain {escape(output.safe(p.domain))}[/bold]")
    pairs: list[tuple[str, Any]] = []
    if p.nxdomain:
        pairs.append(("MX", "none: the domain does not exist (NXDOMAIN)"))
    elif p.mx is not None and p.mx.hosts:
        pairs.append(
            (
                "MX",
                ", ".join(
                    f"{h} ({pref})" if pref >= 0 else f"{h} (no MX records: the domain itself, NODATA)"
                    for h, pref in p.mx.hosts
                ),
            )
        )
    pairs.append(("MX DNSSEC", p.mx_dnssec or "-"))
    m = p.mtasts
    if m is not None:
        if m.policy is not None:
            cover = {True: "covers every MX", False: "does NOT cover every MX", None: ""}[
                p.to_json()["mtasts"]["covers_all_mx"]
            ]
            pairs.append(
                (
                    "MTA-STS",
                    f"mode {m.policy.mode}, mx {', '.join(str(x) for x in m.policy.mx)}, max_age "
                    f"{m.policy.max_age}; {cover}",
                )
            )
        elif m.record is None and not m.record_text and (not m.errors or m.errors[0].startswith("no MTA-STS record")):
            pairs.append(("MTA-STS", "none (no _mta-sts record)"))
        else:
            pairs.append(("MTA-STS", f"{m.record_text or 'record unusable'}; no usable policy"))
    if p.tlsrpt is not None:
        pairs.append(("TLSRPT", p.tlsrpt.record_text or "none"))
    for k, v in pairs:
        c.print(f"  {k}: {escape(output.safe(v))}")
    if p.hosts:
        output.table(None, _HOST_COLUMNS, [_host_row(h) for h in p.hosts])
    for f in p.findings:
        colour = {"error": "red", "warning": "yellow"}.get(f.level, "default")
        c.print(f"  [{colour}]{f.level}[/{colour}] {escape(output.safe(f.subject))}: {escape(output.safe(f.text))}")
    from moxcli.posture.check import INDICATOR_LABELS, INDICATORS

    cells = []
    for key in INDICATORS:
        style, sym = _STYLE[p.indicators.get(key, "unknown")]
        cells.append(f"[{style}] {sym} {INDICATOR_LABELS[key]} [/{style}]")
    c.print(" ".join(cells), soft_wrap=True)
    c.print()

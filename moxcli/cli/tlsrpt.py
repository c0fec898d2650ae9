"""`moxcli check tlsrpt`: look up and lint a TLSRPT record."""

from __future__ import annotations

from typing import Any

import click

from moxcli.cli import output
from moxcli.context import AppContext
from moxcli.errors import EXIT_FAILED, EXIT_TEMPORARY


@click.command("tlsrpt")
@click.argument("domain", required=False)
@click.option(
    "--record", "record_text", metavar="TEXT", help="Lint this record text instead of looking it up (no DNS)."
)
@output.format_options(
    "Output JSON: domain, name, status, cnames, dnssec, records, record, valid, version, rua, invalid_rua, "
    "extensions, errors, warnings, fix.",
    rows="one row per rua address",
)
@click.pass_obj
def tlsrpt_cmd(app: AppContext, domain: str | None, record_text: str | None, fmt: str) -> None:
    """Look up and lint the TLSRPT record of a domain or MX host (RFC 8460).

    Queries the TXT records at _smtp._tls.DOMAIN (CNAMEs are followed), picks the TLSRPT
    record and shows its reporting addresses, extensions, errors and warnings. An MX host
    name checks the host's own record (used for DANE results). With --record, checks the
    given text without DNS, before you publish it.

    Exit status: 0 valid, 1 no record, invalid, or DNSSEC-bogus (also from a resolver
    without Extended DNS Errors: a SERVFAIL is asked again with CD), 3 temporary DNS failure.

    \b
    Example:
      moxcli check tlsrpt example.org
      moxcli check tlsrpt mx.example.org --json
      moxcli check tlsrpt --record 'v=TLSRPTv1; rua=mailto:tlsrpt@example.org'
    """
    from moxcli.tlsrpt.lookup import check_record_text, check_tlsrpt

    if record_text is not None:
        check = check_record_text(domain, record_text)
    elif not domain:
        raise click.UsageError("give a DOMAIN or --record TEXT")
    else:
        from moxcli.dns import Resolver

        check = check_tlsrpt(Resolver.from_config(app.config().dns), domain)
    if fmt == "json":
        output.emit_json(check.to_json())
    else:
        _render(check, fmt)
    if check.temporary:
        raise SystemExit(EXIT_TEMPORARY)
    if not check.valid:
        raise SystemExit(EXIT_FAILED)


def _render(check: Any, fmt: str) -> None:
    from moxcli.tlsrpt.record import uri_scheme

    if fmt != "table":
        rua = check.record.rua if check.record is not None else []
        output.table(None, ["rua", "scheme"], [(u, uri_scheme(u)) for u in rua], fmt)
        _messages(check)
        return
    pairs = []
    if check.name:
        pairs.append(("name", check.name))
        pairs.append(("status", check.status))
    if check.cnames:
        pairs.append(("cnames", " -> ".join(check.cnames)))
    if check.dnssec:
        pairs.append(("dnssec", check.dnssec))
    pairs.append(("record", check.record_text or "(none)"))
    pairs.append(("valid", "yes" if check.valid else "no"))
    output.kv(f"TLSRPT {check.domain.name}" if check.domain.ascii else "TLSRPT record", pairs)
    if check.record is not None:
        output.table(None, ["rua", "scheme"], [(u, uri_scheme(u)) for u in check.record.rua])
        if check.record.extensions:
            output.table(None, ["extension", "value"], check.record.extensions)
    _messages(check)


def _messages(check: Any) -> None:
    """Other TXT records, errors, the fix and warnings: messages on stderr in every format."""
    other = [t for t in check.texts if t != check.record_text]
    for t in other:
        output.info(f"other TXT record: {output.safe(t)}")
    for e in check.errors:
        output.info(f"error: {output.safe(e)}")
    if check.fix is not None:
        output.info(f"fix: publish {check.fix['zone_line']}")
    for w in check.warnings:
        output.warn(w)

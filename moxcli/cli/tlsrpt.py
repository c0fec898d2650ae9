"""`moxcli check tlsrpt`: look up and lint a TLSRPT record."""

from __future__ import annotations

import click

from moxcli.cli import output
from moxcli.cli.tlsrptview import show
from moxcli.context import AppContext


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
    code = show(check, fmt)
    if code:
        raise SystemExit(code)

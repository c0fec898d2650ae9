"""`moxcli init` and `moxcli dns records`."""

from __future__ import annotations

from pathlib import Path

import click

from moxcli.cli import output
from moxcli.context import AppContext


def _print_records(records: list, as_json: bool) -> None:
    from moxcli.quickstart import record_dict

    if as_json:
        output.emit_json([record_dict(r) for r in records])
    else:
        click.echo("\n".join(r.zone_line() for r in records))


@click.command("init")
@click.argument("domain")
@click.option("--hostname", required=True, help="This mail host's name (EHLO name, MX target).")
@click.option(
    "--json", "as_json", is_flag=True, help="Output JSON: data_dir, config_file, domain, hostname, dkim_keys, records."
)
@click.pass_obj
def init_cmd(app: AppContext, domain: str, hostname: str, as_json: bool) -> None:
    """Create the data directory, config and DKIM keys; print DNS records.

    Generates an ed25519 and an rsa-2048 DKIM key, sets up the postmaster account and the
    host TLSRPT address, and writes the config. Refuses to overwrite an existing config.

    \b
    Example:
      moxcli --data /var/lib/moxcli init example.org --hostname mail.example.org
    """
    from moxcli.quickstart import init_data_dir, record_dict

    res = init_data_dir(app.data_dir, app.config_path, domain, hostname)
    if as_json:
        output.emit_json(
            {
                "data_dir": res.data_dir,
                "config_file": res.config_file,
                "domain": res.domain,
                "hostname": res.hostname,
                "dkim_keys": list(res.dkim_keys),
                "records": [record_dict(r) for r in res.records],
            }
        )
        return
    output.info(f"wrote {res.config_file} and DKIM keys in {res.dkim_keys[0].parent}")
    output.info("publish these DNS records:")
    _print_records(list(res.records), False)


@click.group("dns")
def dns_group() -> None:
    """DNS records to publish for the configured domains."""


@dns_group.command("records")
@click.argument("domains", metavar="[DOMAIN]...", nargs=-1)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="CERT.pem",
    help="The MX host's certificate: print its TLSA record instead of a comment.",
)
@click.option(
    "--mta-sts-policy",
    "mta_sts_policy",
    is_flag=True,
    help="Print the MTA-STS policy file to serve at https://mta-sts.DOMAIN/.well-known/mta-sts.txt instead.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Output a JSON list of {name, type, value, comment, placeholder} "
    "(with --mta-sts-policy: {domain, url, policy_text}).",
)
@click.pass_obj
def dns_records_cmd(
    app: AppContext, domains: tuple[str, ...], tls_cert: Path | None, mta_sts_policy: bool, as_json: bool
) -> None:
    """Print the DNS records to publish (zone-file lines).

    For the given configured domains (all without DOMAIN), then the MX host's own records.
    Every line is valid zone-file syntax; a record that cannot be known yet (the TLSA record
    without --tls-cert) is a `;` comment naming the command that makes it, and in --json has
    "placeholder": true and "value": null.

    \b
    Example:
      moxcli dns records example.org example.net
      moxcli dns records --tls-cert /etc/ssl/mx.pem > zone-additions.txt
      moxcli dns records --mta-sts-policy example.org
    """
    if mta_sts_policy:
        from moxcli.quickstart import mta_sts_policy as policy_text
        from moxcli.quickstart import selected_domains

        cfg = app.config(required=True)
        selected = selected_domains(cfg, domains)
        text = policy_text(cfg.hostname)
        urls = [(d.name, f"https://mta-sts.{d.name}/.well-known/mta-sts.txt") for d in selected]
        if as_json:
            output.emit_json([{"domain": n, "url": u, "policy_text": text} for n, u in urls])
            return
        # The same file for every domain (it names the MX host): printed once, the URLs on stderr.
        for _n, u in urls:
            output.info(f"serve at {u}:")
        click.echo(text, nl=False)
        return
    from moxcli.quickstart import records_for_data_dir

    _print_records(records_for_data_dir(app.config_path, domains, tls_cert), as_json)

"""`moxcli init` and `moxcli dns records`."""

from __future__ import annotations

import click

from moxcli.cli import output
from moxcli.context import AppContext


def _print_records(records: list, as_json: bool) -> None:
    from moxcli.setup import record_dict

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
    from moxcli.setup import init_data_dir, record_dict

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
@click.argument("domain", required=False)
@click.option("--json", "as_json", is_flag=True, help="Output a JSON list of {name, type, value, comment}.")
@click.pass_obj
def dns_records_cmd(app: AppContext, domain: str | None, as_json: bool) -> None:
    """Print the DNS records to publish (zone-file lines).

    \b
    Example:
      moxcli dns records example.org
    """
    from moxcli.setup import records_for_data_dir

    _print_records(records_for_data_dir(app.config_path, domain), as_json)

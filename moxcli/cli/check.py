"""`moxcli check`: TLSRPT records and a domain's whole TLS posture."""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute): imported only when that subcommand runs (`check tlsrpt
# --record` does not load the posture checker and its DNS, TLS and HTTP clients).
_SUBCOMMANDS = {"tlsrpt": ("moxcli.cli.tlsrpt", "tlsrpt_cmd"), "domain": ("moxcli.cli.posture", "domain_cmd")}


class _LazyCheck(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = getattr(importlib.import_module(entry[0]), entry[1])
        return command


@click.group("check", cls=_LazyCheck)
def check_group() -> None:
    """Check TLSRPT records and a domain's whole TLS posture."""

"""`moxcli check`: TLSRPT records and a domain's whole TLS posture."""

from __future__ import annotations

import click

from moxcli.cli.posture import domain_cmd
from moxcli.cli.tlsrpt import tlsrpt_cmd


@click.group("check")
def check_group() -> None:
    """Check TLSRPT records and a domain's whole TLS posture."""


check_group.add_command(tlsrpt_cmd)
check_group.add_command(domain_cmd)

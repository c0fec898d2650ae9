"""The SMTP server of bench/delivery.py: an aiosmtpd sink that announces PIPELINING.

Postfix, Exim, mox and most MX servers announce PIPELINING (RFC 2920); aiosmtpd serves
pipelined commands in order but does not announce the extension, so a client that follows
the RFC would wait for each reply. Loaded by ``python -m aiosmtpd -c smtpsink.PipeliningSink``
with this directory on the path.
"""

from __future__ import annotations

from typing import Any


class PipeliningSink:
    """Takes every message and drops it; EHLO says PIPELINING."""

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> PipeliningSink:
        if args:
            parser.error("PipeliningSink takes no arguments")
        return cls()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a hook that replaces the reply
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"

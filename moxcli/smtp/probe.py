"""STARTTLS and direct-TLS probes for posture checks (verify dane, check domain).

The SMTP dialogue is :class:`moxcli.smtp.client.Client`'s, the one client of moxcli (banner,
EHLO, STARTTLS, reply parsing, reply caps and deadlines); the handshake and the chain come
from :func:`moxcli.tlsconn.handshake`. A probe never raises for the server's behaviour: what
happened is in the returned :class:`SMTPProbe`, failures with RFC 8460 result types
(docs/behaviour-notes.md §3.5).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from moxcli import log
from moxcli.config import DeliveryConfig
from moxcli.smtp.client import Client, Reply, SMTPError
from moxcli.tlsconn import (
    STARTTLS_NOT_SUPPORTED,
    VALIDATION_FAILURE,
    TLSHandshakeError,
    TLSInfo,
    classify_handshake_error,
    handshake,
)
from moxcli.values import dataclass, field

_log = log.get("tls")


@dataclass
class SMTPProbe:
    """What a posture check learns from one SMTP STARTTLS session (RFC 3207, RFC 8689)."""

    address: str
    port: int
    server_name: str
    greeting: str = ""
    extensions: list[str] = field(default_factory=list)
    starttls_offered: bool = False
    starttls_reply: str = ""
    tls: TLSInfo | None = None
    extensions_tls: list[str] = field(default_factory=list)
    error: str = ""
    result_type: str = ""
    reason: str = ""
    mode: str = "starttls"  # or "direct": TLS from the first byte

    @property
    def requiretls(self) -> bool:
        """REQUIRETLS is only meaningful after STARTTLS (RFC 8689 §2)."""
        return "REQUIRETLS" in self.extensions_tls

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "mode": self.mode,
            "greeting": self.greeting,
            "extensions": self.extensions,
            "starttls_offered": self.starttls_offered,
            "starttls_reply": self.starttls_reply,
            "tls": self.tls,
            "extensions_tls": self.extensions_tls,
            "requiretls": self.requiretls,
            "error": self.error or None,
            "result_type": self.result_type or None,
            "reason": self.reason or None,
        }


def _ehlo(client: Client) -> list[str]:
    """EHLO without the HELO fallback: a server that refuses EHLO cannot offer STARTTLS, and
    the probe reports the refusal itself. The keywords in the server's order, for display."""
    try:
        client.ehlo(helo_fallback=False)
    except SMTPError as exc:
        if exc.reply is None:
            raise
        first = exc.reply.lines[0] if exc.reply.lines else ""
        raise SMTPError(f"EHLO answered {exc.reply.code} {first}", exc.reply) from None
    return list(client.extensions.keywords)


def _reply_text(r: Reply) -> str:
    return f"{r.code} {r.text}"


def _starttls(client: Client, p: SMTPProbe, server_name: str, timeout: float) -> None:
    """STARTTLS, the handshake and EHLO again; the outcome goes into ``p``."""

    def wrap(sock: socket.socket) -> socket.socket:
        tls_sock, p.tls = handshake(sock, server_name, timeout)
        return tls_sock

    try:
        client.starttls(wrap)
    except TLSHandshakeError as exc:
        p.error, p.result_type, p.reason = str(exc), exc.result_type, exc.reason
        return
    except SMTPError as exc:
        if exc.reply is None and client.starttls_reply is None:
            raise
        if exc.reply is not None:
            p.result_type, p.reason = STARTTLS_NOT_SUPPORTED, f"smtp-starttls-reply-code-{exc.reply.code}"
            p.error = f"STARTTLS answered {_reply_text(exc.reply)}"
        else:  # data pipelined after the 220 (RFC 3207, CVE-2011-0411)
            p.error = "server sent data after STARTTLS reply (possible injection)"
            p.result_type = VALIDATION_FAILURE
        return
    finally:
        if client.starttls_reply is not None:
            p.starttls_reply = _reply_text(client.starttls_reply)
    try:
        p.extensions_tls = _ehlo(client)
        client.command("QUIT")
    except SMTPError as exc:
        if not isinstance(exc.__cause__, ssl.SSLError):
            raise
        rt, reason = classify_handshake_error(exc.__cause__)
        p.error, p.result_type, p.reason = f"after handshake: {exc.__cause__}", rt, reason


def starttls_probe(
    address: str,
    port: int,
    server_name: str,
    ehlo_name: str = "localhost",
    timeout: float = 10.0,
    force_starttls: bool = False,
) -> SMTPProbe:
    """Connect, EHLO, STARTTLS (if offered or forced), handshake, EHLO again, QUIT.

    Never raises for the server's behaviour: the outcome is in the returned probe, with
    RFC 8460 result types for STARTTLS and handshake failures (docs/behaviour-notes.md §3.5). Connection
    failures set ``error`` with an empty result type (RFC 8460 §4.3.4: transient). Each reply
    must be complete within ``timeout`` seconds.
    """
    p = SMTPProbe(address, port, server_name)
    _log.debug("connecting", address=address, port=port, mode="starttls")
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        p.error = f"connect to {address} port {port}: {exc.strerror or exc}"
        return p
    client = Client(sock, ehlo_name, DeliveryConfig(greeting_timeout=timeout, command_timeout=timeout))
    try:
        try:
            greeting = client.read_greeting()
        except SMTPError as exc:
            if exc.reply is None:
                raise
            p.greeting = exc.reply.text
            p.error = f"greeting {exc.reply.code} {p.greeting}"
            return p
        p.greeting = greeting.text
        p.extensions = _ehlo(client)
        p.starttls_offered = "STARTTLS" in p.extensions
        if not p.starttls_offered and not force_starttls:
            p.result_type = STARTTLS_NOT_SUPPORTED
            p.error = "STARTTLS not offered"
            client.command("QUIT")
            return p
        _starttls(client, p, server_name, timeout)
    except SMTPError as exc:
        p.error = str(exc)
    except (OSError, UnicodeEncodeError) as exc:
        p.error = f"{address} port {port}: {exc}"
    finally:
        client.close()
    return p


def direct_tls_probe(address: str, port: int, server_name: str, timeout: float = 10.0) -> SMTPProbe:
    """Connect and start TLS at once (no STARTTLS): SMTP submission on 465 (RFC 8314),
    HTTPS, IMAPS... Never raises for the server's behaviour, like :func:`starttls_probe`."""
    p = SMTPProbe(address, port, server_name, mode="direct")
    _log.debug("connecting", address=address, port=port, mode="direct")
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        p.error = f"connect to {address} port {port}: {exc.strerror or exc}"
        return p
    try:
        tls_sock, p.tls = handshake(sock, server_name, timeout)
        tls_sock.close()
    except TLSHandshakeError as exc:
        p.error, p.result_type, p.reason = str(exc), exc.result_type, exc.reason
        sock.close()
    return p

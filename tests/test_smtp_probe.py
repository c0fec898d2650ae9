"""STARTTLS and direct-TLS probes: the SMTP client's dialogue, outcomes as RFC 8460 result types.

Scripted servers on loopback play each misbehaviour; one does a real STARTTLS handshake.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
from helpers.smtpd import self_signed_cert

from moxcli.smtp.probe import direct_tls_probe, starttls_probe


def test_probe_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = starttls_probe("127.0.0.1", port, "localhost", timeout=2)
    assert p.error.startswith(f"connect to 127.0.0.1 port {port}: ")
    assert (p.result_type, p.tls) == ("", None)


def _serve(handler: Callable[[socket.socket], None]) -> tuple[socket.socket, threading.Thread]:
    """A one-connection loopback server running ``handler`` on the accepted socket."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)

    def serve() -> None:
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            with contextlib.suppress(OSError):
                handler(c)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return srv, th


def _scripted(replies: list[bytes]) -> Callable[[socket.socket], None]:
    """Sends replies[0] at once, then one reply per received line."""

    def handler(c: socket.socket) -> None:
        c.sendall(replies[0])
        f = c.makefile("rb")
        for r in replies[1:]:
            if not f.readline():
                return
            c.sendall(r)
        f.readline()

    return handler


def _probe(handler: Callable[[socket.socket], None], timeout: float = 3, force_starttls: bool = False):
    srv, th = _serve(handler)
    try:
        return starttls_probe(
            "127.0.0.1", srv.getsockname()[1], "mx.example", timeout=timeout, force_starttls=force_starttls
        )
    finally:
        srv.close()
        th.join(5)


@pytest.mark.parametrize(
    "replies,result_type,reason,error",
    [
        (
            [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"454 4.7.0 TLS not available\r\n"],
            "starttls-not-supported",
            "smtp-starttls-reply-code-454",
            "STARTTLS answered 454 4.7.0 TLS not available",
        ),
        (
            [b"220 hi\r\n", b"250-x\r\n250 PIPELINING\r\n", b"221 bye\r\n"],
            "starttls-not-supported",
            "",
            "STARTTLS not offered",
        ),
        ([b"554 go away\r\n"], "", "", "greeting 554 go away"),
        ([b"hello\x1b[31m\r\n"], "", "", "malformed reply line"),
        # no HELO fallback: a server refusing EHLO cannot offer STARTTLS
        ([b"220 hi\r\n", b"500 what\r\n"], "", "", "EHLO answered 500 what"),
        (
            [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"220 go ahead\r\n220 injected\r\n"],
            "validation-failure",
            "",
            "server sent data after STARTTLS reply",
        ),
        # the client's caps on one reply hold for the probe too
        ([b"220 hi\r\n", b"250-x\r\n" * 101 + b"250 STARTTLS\r\n"], "", "", "reply has more than 100 lines"),
        ([b"220 " + b"x" * 3000 + b"\r\n"], "", "", "reply line too long"),
        ([b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n"], "", "", "connection closed by server"),
    ],
)
def test_probe_scripted_servers(replies, result_type, reason, error):
    p = _probe(_scripted(replies))
    assert (p.result_type, p.reason) == (result_type, reason)
    assert error in p.error
    assert p.tls is None


def test_probe_starttls_refused_keeps_the_reply():
    p = _probe(_scripted([b"220 mx hi\r\n", b"250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n", b"454 busy\r\n"]))
    assert (p.greeting, p.extensions, p.starttls_offered) == ("mx hi", ["STARTTLS", "8BITMIME"], True)
    assert p.starttls_reply == "454 busy"


def test_probe_greeting_deadline():
    """A greeting that never completes ends at the probe's timeout, however slowly it trickles."""
    done = threading.Event()

    def trickle(c: socket.socket) -> None:
        for _ in range(40):
            c.sendall(b"2")
            if done.wait(0.1):
                return

    p = _probe(trickle, timeout=0.5)
    done.set()
    assert "timeout waiting 0.5 s for the greeting" in p.error
    assert (p.result_type, p.tls) == ("", None)


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for mx.example."""
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"), "mx.example")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _starttls_server(ctx: ssl.SSLContext, after_tls: list[bytes]) -> Callable[[socket.socket], None]:
    """Greeting, EHLO with STARTTLS, 220, the handshake, then ``after_tls`` per received line."""

    def handler(c: socket.socket) -> None:
        f = c.makefile("rb")
        c.sendall(b"220 mx.example ESMTP\r\n")
        f.readline()
        c.sendall(b"250-mx.example\r\n250 STARTTLS\r\n")
        f.readline()
        c.sendall(b"220 go ahead\r\n")
        t = ctx.wrap_socket(c, server_side=True)
        tf = t.makefile("rb")
        for r in after_tls:
            if not tf.readline():
                return
            t.sendall(r)
        t.close()

    return handler


def test_probe_full_session(server_tls):
    p = _probe(_starttls_server(server_tls, [b"250-mx.example\r\n250-REQUIRETLS\r\n250 SIZE 100\r\n", b"221 bye\r\n"]))
    assert p.error == ""
    assert p.starttls_reply == "220 go ahead"
    assert p.tls is not None and p.tls.leaf.subject.rfc4514_string() == "CN=mx.example"
    assert (p.extensions_tls, p.requiretls) == (["REQUIRETLS", "SIZE"], True)


def test_probe_closed_after_handshake(server_tls):
    p = _probe(_starttls_server(server_tls, []))
    assert p.tls is not None and p.starttls_reply == "220 go ahead"
    assert p.error == "connection closed by server"
    assert p.extensions_tls == []


def test_probe_forced_starttls_without_offer():
    """With DANE records the probe tries STARTTLS even when it is not announced."""
    p = _probe(_scripted([b"220 hi\r\n", b"250 mx\r\n", b"502 no\r\n"]), force_starttls=True)
    assert (p.starttls_offered, p.starttls_reply, p.reason) == (False, "502 no", "smtp-starttls-reply-code-502")


def test_direct_probe(server_tls):
    def handler(c: socket.socket) -> None:
        server_tls.wrap_socket(c, server_side=True).close()

    srv, th = _serve(handler)
    p = direct_tls_probe("127.0.0.1", srv.getsockname()[1], "mx.example", timeout=3)
    srv.close()
    th.join(5)
    assert (p.mode, p.error) == ("direct", "")
    assert p.tls is not None and p.tls.server_name == "mx.example"


def test_direct_probe_not_tls():
    srv, th = _serve(_scripted([b"220 plain smtp\r\n" * 20]))
    p = direct_tls_probe("127.0.0.1", srv.getsockname()[1], "mx.example", timeout=3)
    srv.close()
    th.join(5)
    assert (p.tls, p.result_type) == (None, "validation-failure")

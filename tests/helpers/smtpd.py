"""SMTP servers of the tests, on loopback or a socketpair (no tests here).

``smtpd`` (fixture): aiosmtpd with scripted RCPT replies; ``RequireTLSServer``: STARTTLS and
REQUIRETLS, which aiosmtpd does not know; ``mini`` (fixture): a server of our own that announces
only the extensions given; ``Scripted``: a server on a socketpair answering from a script.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Handler:
    """Accepts mail; ``script`` maps a recipient to a list of RCPT replies used in turn."""

    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.mail_options: list[list[str]] = []  # MAIL FROM parameters per message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        replies = self.script.get(address)
        if replies:
            r = replies.pop(0)
            if not r.startswith("250"):
                return r
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        self.mail_options.append(list(envelope.mail_options))
        return "250 2.0.0 queued"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtpd():
    """An aiosmtpd server on 127.0.0.1 (the Handler, with ``port`` and ``greeting``), stopped after the test."""
    handler = Handler()
    port = free_port()
    from aiosmtpd.controller import Controller

    ctl = Controller(handler, hostname="127.0.0.1", port=port, ident="test-smtpd", server_hostname="mx.example.org")
    ctl.start()
    handler.port = port
    handler.greeting = "mx.example.org test-smtpd"
    yield handler
    ctl.stop()


def self_signed_cert(tmp_path, host: str = "example.org"):
    """A self-signed certificate for ``host``, valid today: (cert PEM path, key PEM path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return c, k


class RequireTLSServer:
    """A minimal SMTP server with STARTTLS that announces REQUIRETLS after TLS (aiosmtpd
    does not know the MAIL parameter). Records the commands it got."""

    greeting = b"220 rt.example ESMTP\r\n"

    def __init__(self, cert, key, ctx: ssl.SSLContext | None = None, sessions: int = 1) -> None:
        import socket
        import threading

        self.ctx = ctx or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sessions = sessions
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.commands: list[str] = []
        self.data = b""
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        for _ in range(self.sessions):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.session(conn)

    def session(self, conn) -> None:
        conn.settimeout(10)
        f = conn.makefile("rb")
        conn.sendall(self.greeting)
        tls = False
        try:
            while True:
                line = f.readline().decode().rstrip("\r\n")
                if not line:
                    return
                self.commands.append(line)
                verb = line.split(" ")[0].split(":")[0].upper()
                if verb == "EHLO":
                    conn.sendall(
                        b"250-rt.example\r\n250-PIPELINING\r\n"
                        + (b"250 REQUIRETLS\r\n" if tls else b"250 STARTTLS\r\n")
                    )
                elif verb == "STARTTLS":
                    conn.sendall(b"220 go\r\n")
                    conn = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                    try:
                        conn.do_handshake()
                    except ssl.SSLError:
                        time.sleep(0.5)  # the alert is sent; let the client read it before the close
                        raise
                    f = conn.makefile("rb")
                    tls = True
                elif verb == "DATA":
                    conn.sendall(b"354 go\r\n")
                    while (chunk := f.readline()) != b".\r\n":
                        self.data += chunk
                    conn.sendall(b"250 2.0.0 ok\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()


class MiniSMTP:
    """A small SMTP server of our own on loopback: announces only ``extensions`` (so it can
    leave out 8BITMIME), answers RCPT per ``rcpt_replies``, records commands and messages."""

    def __init__(self, extensions: list[str], rcpt_replies: dict[str, str] | None = None) -> None:
        self.extensions = extensions
        self.rcpt_replies = rcpt_replies or {}
        self.commands: list[str] = []
        self.messages: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                self._session(conn, f)

    def _session(self, conn: socket.socket, f) -> None:
        conn.sendall(b"220 mini.example ESMTP\r\n")
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                lines = ["mini.example", *self.extensions]
                conn.sendall(
                    "".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n" for i, x in enumerate(lines)).encode()
                )
            elif verb == "RCPT":
                addr = line[line.index("<") + 1 : line.rindex(">")]
                conn.sendall((self.rcpt_replies.get(addr, "250 2.1.5 ok") + "\r\n").encode())
            elif verb == "DATA":
                conn.sendall(b"354 go\r\n")
                data = b""
                for d in f:
                    if d == b".\r\n":
                        break
                    data += d[1:] if d.startswith(b".") else d
                self.messages.append(data)
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            elif verb in ("MAIL", "RSET", "NOOP"):
                conn.sendall(b"250 ok\r\n")
            else:
                conn.sendall(b"500 what\r\n")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the server thread
        self.sock.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def mini():
    """Makes MiniSMTP servers (``mini(extensions, rcpt_replies)``), all stopped after the test."""
    servers: list[MiniSMTP] = []

    def make(extensions: list[str], rcpt_replies: dict[str, str] | None = None) -> MiniSMTP:
        servers.append(MiniSMTP(extensions, rcpt_replies))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


class Scripted:
    """A server on a socketpair answering each command from a script; records what it got."""

    def __init__(self, greeting: bytes, replies: dict[str, list[bytes]]) -> None:
        self.client_sock, self.server_sock = socket.socketpair()
        self.replies = {k: list(v) for k, v in replies.items()}
        self.received: list[str] = []
        self.data = b""
        self.server_sock.sendall(greeting)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        f = self.server_sock.makefile("rb")
        in_data = False
        try:
            for raw in f:
                if in_data:
                    if raw == b".\r\n":
                        in_data = False
                        self.server_sock.sendall(self.replies["."].pop(0))
                    else:
                        self.data += raw
                    continue
                line = raw.decode().rstrip("\r\n")
                self.received.append(line)
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb == "RCPT":
                    verb = "RCPT " + line.split("<", 1)[1].rstrip(">")
                reply = self.replies.get(verb, [b"250 ok\r\n"]).pop(0) if self.replies.get(verb) else b"250 ok\r\n"
                self.server_sock.sendall(reply)
                if verb == "DATA" and reply.startswith(b"354"):
                    in_data = True
                if verb == "QUIT":
                    break
        except OSError:
            pass
        finally:
            self.server_sock.close()

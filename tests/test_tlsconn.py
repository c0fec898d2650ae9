"""tlsconn: PKIX verdicts with RFC 8460 result types, handshake error mapping, a real handshake."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from test_dane_pki import NOW, make_cert, make_pki

from moxcli import tlsconn as tc

P = make_pki()


@pytest.mark.parametrize(
    "chain,host,roots,ok,result_type,reason",
    [
        ([P.leaf, P.inter, P.ca], "localhost", [P.ca], True, "", ""),
        ([P.leaf, P.inter], "mail.example", [P.ca], True, "", ""),
        ([P.leaf, P.inter], "other.example", [P.ca], False, "certificate-host-mismatch", ""),
        ([P.expired, P.inter], "localhost", [P.ca], False, "certificate-expired", ""),
        ([P.expired, P.inter], "wrong.example", [P.ca], False, "certificate-expired", ""),
        ([P.leaf, P.inter], "localhost", [P.other_ca], False, "certificate-not-trusted", ""),
        # an untrusted chain wins over a wrong name (Go builds the chain first)
        ([P.leaf, P.inter], "other.example", [P.other_ca], False, "certificate-not-trusted", ""),
        ([P.leaf], "localhost", [P.ca], False, "certificate-not-trusted", ""),
        ([P.wild, P.inter], "a.example.org", [P.ca], True, "", ""),
        ([P.wild, P.inter], "a.b.example.org", [P.ca], False, "certificate-host-mismatch", ""),
        ([P.leaf, P.inter], "localhost", [], False, "certificate-not-trusted", "no-system-roots"),
        ([], "localhost", [P.ca], False, "validation-failure", ""),
    ],
)
def test_pkix_verify(chain, host, roots, ok, result_type, reason):
    v = tc.pkix_verify(chain, host, now=NOW, roots=roots)
    assert (v.ok, v.result_type, v.reason) == (ok, result_type, reason)
    assert (v.message == "") is v.ok  # a failure always says why


def test_pkix_not_authorized_to_sign():
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert("sub", key, (P.leaf, ec.generate_private_key(ec.SECP256R1())), sans=("sub.example",))
    v = tc.pkix_verify([leaf, P.leaf, P.inter], "sub.example", now=NOW, roots=[P.ca])
    assert not v.ok and v.result_type == "certificate-not-trusted"


def test_load_roots_with_ca_file(tmp_path):
    f = tmp_path / "ca.pem"
    f.write_bytes(P.ca.public_bytes(serialization.Encoding.PEM))
    roots = tc.load_roots((f,))
    assert P.ca in roots
    assert tc.pkix_verify([P.leaf, P.inter], "localhost", [f], now=NOW).ok


@pytest.mark.parametrize(
    "number,prefix,want",
    [
        (70, "tls-remote-alert", "tls-remote-alert-70-protocol-version-not-supported"),
        (48, "tls-local-alert", "tls-local-alert-48-unknown-certificate-authority"),
        (115, "tls-remote-alert", "tls-remote-alert-115-unknown-PSK-identity"),
        (200, "tls-remote-alert", "tls-remote-alert-200"),
    ],
)
def test_alert_reason(number, prefix, want):
    assert tc.alert_reason(prefix, number) == want


def _ssl_error(cls, reason):
    e = cls(1, "x")
    e.reason = reason
    return e


@pytest.mark.parametrize(
    "exc,reason",
    [
        (TimeoutError("timed out"), "io-timeout-during-handshake"),
        (
            _ssl_error(ssl.SSLError, "TLSV1_ALERT_PROTOCOL_VERSION"),
            "tls-remote-alert-70-protocol-version-not-supported",
        ),
        (_ssl_error(ssl.SSLError, "SSLV3_ALERT_HANDSHAKE_FAILURE"), "tls-remote-alert-40-handshake-failure"),
        (_ssl_error(ssl.SSLError, "TLSV1_ALERT_SOMETHING_NEW"), "tls-remote-error"),
        (_ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER"), "tls-record-header-error"),
        (_ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING"), "connection-closed-during-handshake"),
        (ConnectionResetError(), "connection-closed-during-handshake"),
        (_ssl_error(ssl.SSLError, "SOMETHING"), ""),
        (ValueError("x"), ""),
    ],
)
def test_classify_handshake_error(exc, reason):
    assert tc.classify_handshake_error(exc) == ("validation-failure", reason)


@pytest.fixture
def tls_server(tmp_path):
    """A loopback TLS server presenting [leaf, CA]; yields its port and leaf."""
    key = tmp_path / "key.pem"
    chain = tmp_path / "chain.pem"
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = make_cert("Server CA", ca_key, ca=True)
    leaf = make_cert("localhost", leaf_key, (ca, ca_key), sans=("localhost",))
    key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(5)

    def serve():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        try:
            if c.recv(1, socket.MSG_PEEK) == b"\x16":
                ctx.wrap_socket(c, server_side=True).close()
            else:
                c.close()
        except (OSError, ssl.SSLError):
            c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield srv.getsockname()[1], leaf
    srv.close()
    th.join(5)


def test_handshake_reads_chain(tls_server):
    port, leaf = tls_server
    s = socket.create_connection(("127.0.0.1", port), 5)
    tls, info = tc.handshake(s, "localhost", 5)
    tls.close()
    assert info.chain[0] == leaf and len(info.chain) == 2
    assert info.version in ("TLSv1.2", "TLSv1.3") and info.cipher and info.server_name == "localhost"
    assert info.to_json()["chain"][0]["sans"] == ["localhost"]


def test_handshake_not_tls(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.sendall(b"220 not tls at all\r\n" * 20)
        c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    s = socket.create_connection(srv.getsockname(), 5)
    with pytest.raises(tc.TLSHandshakeError) as exc:
        tc.handshake(s, "localhost", 5)
    th.join(5)
    srv.close()
    assert exc.value.result_type == "validation-failure"
    assert exc.value.reason in ("tls-record-header-error", "connection-closed-during-handshake")


def test_probe_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = tc.starttls_probe("127.0.0.1", port, "localhost", timeout=2)
    assert p.error and p.result_type == "" and p.tls is None


def _scripted_smtp(replies: list[bytes]):
    """A one-connection server: sends replies[0] at once, then one reply per received line."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)

    def serve():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            c.sendall(replies[0])
            f = c.makefile("rb")
            for r in replies[1:]:
                if not f.readline():
                    return
                c.sendall(r)
            f.readline()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return srv, th


@pytest.mark.parametrize(
    "replies,result_type,reason,error",
    [
        (
            [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"454 4.7.0 TLS not available\r\n"],
            "starttls-not-supported",
            "smtp-starttls-reply-code-454",
            "STARTTLS answered 454",
        ),
        (
            [b"220 hi\r\n", b"250-x\r\n250 PIPELINING\r\n", b"221 bye\r\n"],
            "starttls-not-supported",
            "",
            "STARTTLS not offered",
        ),
        ([b"554 go away\r\n"], "", "", "greeting 554"),
        ([b"hello\x1b[31m\r\n"], "", "", "malformed reply line"),
        ([b"220 hi\r\n", b"500 what\r\n"], "", "", "EHLO answered 500"),
        (
            [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"220 go ahead\r\n220 injected\r\n"],
            "validation-failure",
            "",
            "after STARTTLS",
        ),
    ],
)
def test_probe_scripted_servers(replies, result_type, reason, error):
    srv, th = _scripted_smtp(replies)
    p = tc.starttls_probe("127.0.0.1", srv.getsockname()[1], "mx.example", timeout=3)
    srv.close()
    th.join(5)
    assert (p.result_type, p.reason) == (result_type, reason)
    assert error in p.error and p.tls is None


class _FakeSock:
    def __init__(self, data: bytes, chunk: int):
        self.data, self.chunk = data, max(chunk, 1)

    def recv(self, n):
        out, self.data = self.data[: self.chunk], self.data[self.chunk :]
        return out


@given(st.binary(max_size=300), st.integers(1, 50))
def test_reply_parser_hostile(data, chunk):
    lines = tc._Lines(_FakeSock(data, chunk))
    try:
        code, text = lines.reply()
    except tc.SMTPError:
        return
    assert 0 <= code <= 999 and isinstance(text, list)


@pytest.mark.parametrize(
    "data,code,text",
    [
        (b"250-a\r\n250-b c\r\n250 d\r\n", 250, ["a", "b c", "d"]),
        (b"220\n", 220, [""]),
        (b"220 x\xff\r\n", 220, ["x\ufffd"]),
    ],
)
def test_reply_parser(data, code, text):
    assert tc._Lines(_FakeSock(data, 3)).reply() == (code, text)

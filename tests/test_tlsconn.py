"""tlsconn: PKIX verdicts with RFC 8460 result types, handshake error mapping, a real handshake.

The probes that wrap the handshake in an SMTP session are tested in test_smtp_probe.py."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers.pki import NOW, make_cert, make_pki

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
    assert info.version == "TLSv1.3" and info.cipher and info.server_name == "localhost"
    assert info.to_json()["chain"][0]["sans"] == ["localhost"]


def test_handshake_not_tls(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        try:
            c.sendall(b"220 not tls at all\r\n" * 20)
            while c.recv(4096):  # closed only after the client gave up: it always reads the text
                pass
        except ConnectionResetError:
            pass  # the client closed with our text unread: the kernel then sends a reset
        finally:
            c.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    s = socket.create_connection(srv.getsockname(), 5)
    with pytest.raises(tc.TLSHandshakeError) as exc:
        tc.handshake(s, "localhost", 5)
    th.join(5)
    srv.close()
    assert exc.value.result_type == "validation-failure"
    assert exc.value.reason == "tls-record-header-error"

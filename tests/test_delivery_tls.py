"""STARTTLS outcomes against aiosmtpd with TLS (vectors tls_results_delivery.json): an untrusted
certificate in opportunistic mode, and a handshake failure with the plaintext fallback."""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import time

import dns.rdata
import pytest

pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_delivery import FakeResolver, Handler, _free_port

from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.dns import Answer, NotFound
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tlsresults


def _cert(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.org")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    c, k = tmp_path / "c.pem", tmp_path / "k.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return c, k


def _server(tmp_path, old_tls: bool | None):
    if old_tls is None:  # no STARTTLS at all
        handler = Handler()
        port = _free_port()
        ctl = Controller(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        return ctl, handler, port
    c, k = _cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c, k)
    if old_tls:
        # only TLS 1.0/1.1: our client (TLS >= 1.2) gets alert 70 from the server
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    handler = Handler()
    port = _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=False)
    ctl.start()
    return ctl, handler, port


@pytest.fixture
def setup(tmp_path, request):
    ctl, handler, port = _server(tmp_path, request.param)
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n', data / "moxcli.toml")
    st = Store.open(data)
    yield st, data, cfg, handler
    st.close()
    ctl.stop()


def _run(st, data, cfg, resolver=None, **kw):
    q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["r@example.org"], data=b"Subject: x\r\n\r\nhi\r\n", **kw)
    (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, resolver or FakeResolver(), st, data))
    with st.read() as tx:
        ((row,),) = [[r_ for r_ in tlsresults.iter_rows(tx)]]
    (res,) = row.results
    return r, res.to_json()


class SecureResolver(FakeResolver):
    """Everything DNSSEC-secure: no CNAMEs, no MX (the domain is its own MX), given TLSA records."""

    def __init__(self, tlsa: list[str]) -> None:
        self.tlsa = [dns.rdata.from_text("IN", "TLSA", t) for t in tlsa]

    def cname(self, name):
        raise NotFound(name, "CNAME", False, True)

    def query(self, name, rdtype):
        if rdtype == "TLSA" and self.tlsa:
            return Answer(name, rdtype, self.tlsa, True, name)
        raise NotFound(name, rdtype, False, True)

    def ips(self, name):
        return ["127.0.0.1"], True, name


def _spki_sha256(tmp_path) -> str:
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize("setup", [False], indirect=True)
def test_dane_ee_without_mx_replaces_no_policy_result(setup, tmp_path):
    st, data, cfg, _handler = setup
    rec = f"3 1 1 {_spki_sha256(tmp_path)}"
    r, res = _run(st, data, cfg, resolver=SecureResolver([rec]))
    assert (r.outcome, r.tls) == ("delivered", "dane")
    # docs/behaviour-notes.md §2.2: delivery straight to a host without MX that has DANE keeps only the tlsa row
    assert res["policy"] == {
        "policy-type": "tlsa",
        "policy-string": [rec],
        "policy-domain": "example.org",
        "mx-host": [],
    }
    assert res["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    with st.read() as tx:
        assert [(x.policy_domain, x.is_host) for x in tlsresults.iter_rows(tx)] == [("example.org", True)]


@pytest.mark.parametrize("setup", [False], indirect=True)
def test_dane_all_unusable_requires_starttls_unverified(setup):
    st, data, cfg, _handler = setup
    r, res = _run(st, data, cfg, resolver=SecureResolver(["0 0 1 " + "00" * 32]))
    assert (r.outcome, r.tls) == ("delivered", "unverified")
    assert res["policy"] == {"policy-type": "tlsa", "policy-string": [], "policy-domain": "example.org", "mx-host": []}
    assert res["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    assert res["failure-details"] == [
        {
            "result-type": "tlsa-invalid",
            "receiving-mx-hostname": "example.org",
            "failed-session-count": 0,
            "failure-reason-code": "all-unusable-records+ignored",
        }
    ]


@pytest.mark.parametrize("setup", [None], indirect=True)
def test_dane_requires_starttls_even_if_not_offered(setup):
    st, data, cfg, handler = setup
    r, res = _run(st, data, cfg, resolver=SecureResolver(["3 1 1 " + "ab" * 32]))
    assert r.outcome in ("failed", "deferred") and "starttls" in r.error
    assert handler.messages == []  # never in plaintext
    assert res["summary"]["total-failure-session-count"] == 1
    (d,) = res["failure-details"]
    assert d["result-type"] == "starttls-not-supported" and d["failure-reason-code"].startswith(
        "smtp-starttls-reply-code-"
    )


@pytest.mark.parametrize("setup", [False], indirect=True)
def test_untrusted_certificate_opportunistic(setup):
    st, data, cfg, handler = setup
    r, res = _run(st, data, cfg)
    assert (r.outcome, r.tls) == ("delivered", "unverified")
    assert len(handler.messages) == 1
    # host and recipient results share the key (implicit MX): success 1 from each, and the
    # PKIX failure detail only from the recipient-domain result (docs/behaviour-notes.md §3.6, §12.1)
    assert res["summary"] == {"total-successful-session-count": 2, "total-failure-session-count": 0}
    (d,) = res["failure-details"]
    assert d == {
        "result-type": "certificate-not-trusted",
        "sending-mta-ip": "127.0.0.1",
        "receiving-mx-hostname": "example.org",
        "receiving-mx-helo": d["receiving-mx-helo"],
        "receiving-ip": "127.0.0.1",
        "failed-session-count": 1,
    }


@pytest.mark.parametrize("setup", [True], indirect=True)
def test_handshake_failure_falls_back_to_plaintext(setup):
    st, data, cfg, handler = setup
    r, res = _run(st, data, cfg)
    assert (r.outcome, r.tls) == ("delivered", "")
    assert len(handler.messages) == 1
    assert res["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 2}
    (d,) = res["failure-details"]
    assert (d["result-type"], d["failed-session-count"]) == ("validation-failure", 2)
    # mox's vector has alert 70; aiosmtpd's asyncio TLS may close without sending the alert
    assert d["failure-reason-code"] in (
        "tls-remote-alert-70-protocol-version-not-supported",
        "connection-closed-during-handshake",
    )


@pytest.mark.parametrize("setup", [True], indirect=True)
def test_dmarc_report_never_falls_back(setup):
    st, data, cfg, handler = setup
    r, res = _run(st, data, cfg, is_dmarc_report=True)
    assert r.outcome == "deferred" and "tls" in r.error.lower()
    assert handler.messages == []
    assert res["summary"]["total-failure-session-count"] == 2


@pytest.mark.parametrize("setup", [True], indirect=True)
def test_tls_required_no_falls_back_even_for_dmarc_report(setup):
    st, data, cfg, handler = setup
    r, _ = _run(st, data, cfg, is_dmarc_report=True, require_tls=False)
    assert (r.outcome, r.tls) == ("delivered", "")
    assert len(handler.messages) == 1


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


def test_requiretls_with_dane_delivered(tmp_path):
    c, k = _cert(tmp_path)
    srv = RequireTLSServer(c, k)
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n', data / "moxcli.toml")
    with Store.open(data) as st:
        r, res = _run(st, data, cfg, resolver=SecureResolver([f"3 1 1 {_spki_sha256(tmp_path)}"]), require_tls=True)
    srv.thread.join(10)
    srv.sock.close()
    assert (r.outcome, r.tls) == ("delivered", "dane")
    assert "MAIL FROM:<a@moxcli.test> REQUIRETLS" in srv.commands
    assert srv.data == b"Subject: x\r\n\r\nhi\r\n"
    assert res["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}


def test_alert_on_first_read_after_handshake(tmp_path):
    """TLS 1.3 server that wants a client certificate: the client's handshake completes, the
    server's alert 116 arrives with the first read (docs/behaviour-notes.md §3.5: success -1, failure +1), then
    the plaintext fallback delivers."""
    c, k = _cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(c)
    srv = RequireTLSServer(c, k, ctx=ctx, sessions=2)
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n', data / "moxcli.toml")
    with Store.open(data) as st:
        r, res = _run(st, data, cfg)
    srv.thread.join(10)
    srv.sock.close()
    assert (r.outcome, r.tls) == ("delivered", "")
    assert srv.data == b"Subject: x\r\n\r\nhi\r\n"
    # host and recipient rows share the key here (implicit MX): each had +1 -1 success, +1 failure
    assert res["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 2}
    (d,) = [d for d in res["failure-details"] if d["result-type"] != "certificate-not-trusted"]
    assert (d["result-type"], d["failure-reason-code"], d["failed-session-count"]) == (
        "validation-failure",
        "tls-remote-alert-116-certificate-required",
        2,
    )

"""STARTTLS outcomes against aiosmtpd with TLS (vectors tls_results_delivery.json): an untrusted
certificate in opportunistic mode, and a handshake failure with the plaintext fallback."""

from __future__ import annotations

import hashlib
import ssl
import warnings

import pytest

pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers.dns import loopback_dns
from helpers.smtpd import Handler, RequireTLSServer, free_port, self_signed_cert

from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tlsresults


def _server(tmp_path, old_tls: bool | None):
    if old_tls is None:  # no STARTTLS at all
        handler = Handler()
        port = free_port()
        ctl = Controller(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        return ctl, handler, port
    c, k = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c, k)
    if old_tls:
        # only TLS 1.0/1.1: our client (TLS >= 1.2) gets alert 70 from the server
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Deliberately old TLS (the fallback under test): Python deprecates these versions.
            warnings.filterwarnings("ignore", r"ssl\.TLSVersion\.TLSv1(_1)? is deprecated", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    handler = Handler()
    port = free_port()
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
    (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, resolver or loopback_dns(), st, data))
    with st.read() as tx:
        ((row,),) = [[r_ for r_ in tlsresults.iter_rows(tx)]]
    (res,) = row.results
    return r, res.to_json()


def _secure_dns(tlsa: list[str]):
    """Everything DNSSEC-secure: no CNAMEs, no MX (example.org is its own MX), these TLSA records."""
    return loopback_dns(authentic=True, records={("TLSA", "_25._tcp.example.org"): tlsa})


def _spki_sha256(tmp_path) -> str:
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize("setup", [False], indirect=True)
def test_dane_ee_without_mx_replaces_no_policy_result(setup, tmp_path):
    st, data, cfg, _handler = setup
    rec = f"3 1 1 {_spki_sha256(tmp_path)}"
    r, res = _run(st, data, cfg, resolver=_secure_dns([rec]))
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
    r, res = _run(st, data, cfg, resolver=_secure_dns(["0 0 1 " + "00" * 32]))
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
    r, res = _run(st, data, cfg, resolver=_secure_dns(["3 1 1 " + "ab" * 32]))
    assert r.outcome == "deferred" and "starttls" in r.error  # temporary: the next attempt may offer it
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


def test_handshake_failure_falls_back_to_plaintext(tmp_path):
    """A server that speaks only TLS 1.0/1.1 sends alert 70 (mox's vector); the second session
    delivers in plaintext. Our own server waits for the client to read the alert (aiosmtpd's
    asyncio TLS may close without sending it)."""
    c, k = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Deliberately old TLS (the fallback under test): Python deprecates these versions.
        warnings.filterwarnings("ignore", r"ssl\.TLSVersion\.TLSv1(_1)? is deprecated", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
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
    assert res["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 2}
    (d,) = res["failure-details"]
    assert (d["result-type"], d["failed-session-count"]) == ("validation-failure", 2)
    assert d["failure-reason-code"] == "tls-remote-alert-70-protocol-version-not-supported"


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


def test_requiretls_with_dane_delivered(tmp_path):
    c, k = self_signed_cert(tmp_path)
    srv = RequireTLSServer(c, k)
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n', data / "moxcli.toml")
    with Store.open(data) as st:
        r, res = _run(st, data, cfg, resolver=_secure_dns([f"3 1 1 {_spki_sha256(tmp_path)}"]), require_tls=True)
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
    c, k = self_signed_cert(tmp_path)
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

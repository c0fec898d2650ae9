"""The delivery scenarios of testdata/vectors/tls_results_delivery.json (mox queue tests),
reproduced against a local STARTTLS server and a scripted resolver; stored TLS results are
compared with the vector's rows field by field (the vector's IPs are empty because mox's test
uses a pipe: they are compared after filling in 127.0.0.1)."""

from __future__ import annotations

import copy
import json
import ssl
import warnings

import dns.name
import dns.rdataclass
import dns.rdatatype
import pytest
from conftest import VECTORS
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from dns.rdtypes.ANY.TLSA import TLSA
from helpers.dns import FakeResolver, loopback_dns
from helpers.smtpd import RequireTLSServer, self_signed_cert
from rfc8460_form import rfc8460_form

from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tlsresults

SCENARIOS = {
    s["name"]: s for s in json.loads((VECTORS / "tls_results_delivery.json").read_text())["queue_test_scenarios"]
}
DOMAIN, MXHOST = "mox.example", "mail.mox.example"


def _dns(authentic: bool, tlsa: list[TLSA], tlsa_authentic: bool) -> FakeResolver:
    """mox.example MX mail.mox.example at 127.0.0.1; DNSSEC status and TLSA per scenario."""
    records: dict[tuple[str, str], list] = {("MX", DOMAIN): [f"10 {MXHOST}."]}
    dnssec = {}
    if tlsa:
        records[("TLSA", f"_25._tcp.{MXHOST}")] = tlsa
        dnssec[("TLSA", f"_25._tcp.{MXHOST}")] = tlsa_authentic
    return loopback_dns(authentic=authentic, records=records, dnssec=dnssec)


def _tlsa(usage, selector, mtype, data):
    return TLSA(dns.rdataclass.IN, dns.rdatatype.TLSA, usage, selector, mtype, data)


class GreetingServer(RequireTLSServer):
    """The test server greeting as mox's test server does: `220 mail.mox.example`."""

    greeting = b"220 mail.mox.example\r\n"


def _run(tmp_path, *, old_tls=False, authentic=False, tlsa=None, tlsa_authentic=True, requiretls=None, header=b""):
    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if old_tls:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Deliberately old TLS (the fallback under test): Python deprecates these versions.
            warnings.filterwarnings("ignore", r"ssl\.TLSVersion\.TLSv1(_1)? is deprecated", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    srv = GreetingServer(cert, key, ctx=ctx, sessions=2)
    spki = (
        x509.load_pem_x509_certificate(cert.read_bytes())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    records = [_tlsa(*r) if isinstance(r, tuple) else _tlsa(3, 1, 0, spki) for r in (tlsa or [])]
    data = tmp_path / "data"
    data.mkdir()
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n', data / "moxcli.toml")
    body = b"Subject: test\r\n" + header + b"\r\nhi\r\n"
    with Store.open(data) as st:
        q.enqueue(
            st,
            data,
            mail_from="a@moxcli.test",
            recipients=[f"r@{DOMAIN}"],
            data=body,
            require_tls=q.require_tls_for(body, bool(requiretls)),
        )
        (r,) = deliver.run_queue(
            st, data, cfg, engine=deliver.Engine(cfg, _dns(authentic, records, tlsa_authentic), st, data)
        )
        with st.read() as tx:
            rows = [row.to_json() for row in tlsresults.iter_rows(tx)]
    srv.sock.close()
    return r, rows, srv, spki


def _expected(name: str, spki: bytes) -> list[dict]:
    out = []
    for row in copy.deepcopy(SCENARIOS[name]["tls_results"]):
        for res in row["Results"]:
            res["policy"]["policy-string"] = [
                s.replace("<hex of server certificate SPKI DER>", spki.hex()) for s in res["policy"]["policy-string"]
            ]
            for d in res["failure-details"]:
                if d.get("receiving-mx-helo"):  # details from a session carry its addresses
                    d["sending-mta-ip"] = d["receiving-ip"] = "127.0.0.1"
        out.append(
            {
                "policy_domain": row["PolicyDomain"],
                "recipient_domain": row["RecipientDomain"],
                "is_host": row["IsHost"],
                "results": rfc8460_form(row["Results"]),
            }
        )
    return sorted(out, key=lambda r: r["policy_domain"])


def _got(rows: list[dict]) -> list[dict]:
    keep = ("policy_domain", "recipient_domain", "is_host", "results")
    return sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: r["policy_domain"])


@pytest.mark.parametrize(
    "name,kw,outcome,tls",
    [
        ("opportunistic-tls-untrusted-cert", {}, "delivered", "unverified"),
        ("bad-tls-fallback-to-plaintext", {"old_tls": True}, "delivered", ""),
        ("dane-ee-verified", {"authentic": True, "tlsa": ["spki"]}, "delivered", "dane"),
        ("dane-all-unusable", {"authentic": True, "tlsa": [(0, 0, 0, b"")]}, "delivered", "unverified"),
        (
            "dane-insecure-tlsa-ignored",
            {"authentic": True, "tlsa": ["spki"], "tlsa_authentic": False, "old_tls": True},
            "delivered",
            "",
        ),
    ],
)
def test_scenario_results(tmp_path, name, kw, outcome, tls):
    r, rows, srv, spki = _run(tmp_path, **kw)
    assert (r.outcome, r.tls) == (outcome, tls), SCENARIOS[name]["outcome"]
    assert srv.data == b"Subject: test\r\n\r\nhi\r\n"
    assert _got(rows) == _expected(name, spki)


def test_requiretls_with_dane(tmp_path):
    r, _, srv, _ = _run(tmp_path, authentic=True, tlsa=["spki"], requiretls=True)
    assert (r.outcome, r.tls) == ("delivered", "dane")
    assert any(c.endswith(" REQUIRETLS") and c.startswith("MAIL FROM:") for c in srv.commands)


def test_tls_required_no_with_mismatching_dane(tmp_path):
    r, rows, srv, _ = _run(tmp_path, authentic=True, tlsa=[(3, 1, 1, b"\x00" * 32)], header=b"TLS-Required: No\r\n")
    assert r.outcome == "delivered" and srv.data
    (host,) = [x for x in rows if x["is_host"]]
    assert [d["failure-reason-code"] for d in host["results"][0]["failure-details"]] == ["dane-no-match"]


def test_tls_required_no_bad_tls(tmp_path):
    r, _, srv, _ = _run(tmp_path, old_tls=True, header=b"TLS-Required: No\r\n")
    assert (r.outcome, r.tls) == ("delivered", "") and srv.data


def test_requiretls_unsupported(tmp_path):
    r, _, srv, _ = _run(tmp_path, old_tls=True, requiretls=True)
    assert (r.outcome, r.enhanced) == ("failed", "5.7.30")
    assert srv.data == b""

"""`moxcli verify dane` and the DANE/PKIX library against the lab (DNSSEC, Postfix variants)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moxcli.cli import cli
from moxcli.dane.check import verify_host, verify_mx
from moxcli.dns import Resolver
from moxcli.smtp.probe import starttls_probe

pytestmark = pytest.mark.lab


@pytest.fixture
def resolver(lab):
    host, port = lab["LAB_DNS"].rsplit(":", 1)
    return Resolver([(host, int(port))], timeout=5)


@pytest.fixture
def ca(lab):
    return [Path(lab["LAB_CA"])]


def _run(runner, lab_data, *args):
    r = runner.invoke(cli, ["--data", str(lab_data), "verify", "dane", *args, "--json"])
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


@pytest.mark.parametrize(
    "domain,exit_code,status,depth,pkix",
    [
        ("dane-ok.test", 0, "verified", 0, "ok"),
        ("dane-ta.test", 0, "verified", 1, "ok"),
        ("dane-ee-wrongname.test", 0, "verified", 0, "certificate-host-mismatch"),
        ("dane-ee-expired.test", 0, "verified", 0, "certificate-expired"),
        ("dane-bad.test", 1, "failed", None, "ok"),
    ],
)
def test_verify_mx(runner, lab_data, domain, exit_code, status, depth, pkix):
    r, j = _run(runner, lab_data, "--mx", domain)
    assert r.exit_code == exit_code, r.output
    assert j["status"] == status and j["mode"] == "mx" and j["mx"]["orig_authentic"]
    (host,) = j["hosts"]
    assert host["host"] == f"mx.{domain}" and host["dnssec"] and host["records"]
    (addr,) = host["addresses"]
    assert addr["starttls"] and addr["certificate"]["subject"]
    assert addr["dane"]["depth"] == depth
    assert (addr["pkix"]["result_type"] or "ok") == pkix
    if status == "failed":
        assert (addr["result_type"], addr["reason"]) == ("validation-failure", "dane-no-match")


def test_verify_mx_dane_ta_names(resolver, lab, ca):
    rep = verify_mx(resolver, "dane-ta.test", int(lab["LAB_SMTP_PORT"]), ca)
    assert rep.hosts[0].names == ["mx.dane-ta.test", "dane-ta.test"]
    assert rep.hosts[0].addresses[0].dane.record.usage == 2


def test_verify_bogus_tlsa_fails(runner, lab_data):
    """A bogus TLSA answer is what is wrong with the host: exit 1 (delivery would defer)."""
    r, j = _run(runner, lab_data, "--mx", "dane-bogus.test")
    assert r.exit_code == 1
    h = j["hosts"][0]
    assert h["result_type"] == "dnssec-invalid" and h["reason"] == "extended-dns-error-6-dnssec-bogus"
    assert h["addresses"] == []


def test_verify_bogus_zone_fails(runner, lab_data):
    r, j = _run(runner, lab_data, "--mx", "bogus.test")
    assert r.exit_code == 1 and "bogus" in j["error"] and j["mx"]["status"] == "dnssec-bogus"


def test_insecure_tlsa_ignored(runner, lab_data):
    r, j = _run(runner, lab_data, "mx.insecure.test")
    assert r.exit_code == 1
    h = j["hosts"][0]
    assert not h["dnssec"] and h["records"] == [] and "insecure" in h["error"]
    assert h["addresses"][0]["dane"] is None and h["addresses"][0]["pkix"]["ok"]
    r, j = _run(runner, lab_data, "--mx", "insecure.test")
    assert r.exit_code == 1 and "not dnssec-secure" in j["hosts"][0]["error"]


@pytest.mark.parametrize(
    "host,result_type",
    [
        ("mx.notls.test", "starttls-not-supported"),
        ("mx.wrongname.test", "certificate-host-mismatch"),
        ("mx.expired.test", "certificate-expired"),
    ],
)
def test_pkix_results_without_tlsa(runner, lab_data, host, result_type):
    r, j = _run(runner, lab_data, host)
    assert r.exit_code == 1
    (addr,) = j["hosts"][0]["addresses"]
    got = addr["result_type"] if addr["pkix"] is None else addr["pkix"]["result_type"]
    assert got == result_type


def test_verify_host_port_and_usages(runner, lab, lab_data):
    port = lab["LAB_SMTP_PORT"]
    r, j = _run(runner, lab_data, f"mx.dane-ok.test:{port}", "--tls", "starttls-smtp", "--usages", "dane-ee")
    assert r.exit_code == 0 and j["hosts"][0]["addresses"][0]["port"] == int(port)
    assert (
        j["hosts"][0]["tlsa_base"] == "mx.dane-ok.test" and j["hosts"][0]["addresses"][0]["tls_mode"] == "starttls-smtp"
    )
    r, j = _run(runner, lab_data, "mx.dane-ok.test", "--usages", "dane-ta")
    assert r.exit_code == 1 and j["hosts"][0]["error"] == "no tlsa records with the allowed usages"


def test_verify_nonexistent(runner, lab_data):
    r, j = _run(runner, lab_data, "--mx", "nothing-here.test")
    assert r.exit_code == 1 and "no such domain" in j["hosts"][0]["error"]


def test_rich_output(runner, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "verify", "dane", "--mx", "dane-ta.test"])
    assert r.exit_code == 0
    for text in ("Host mx.dane-ta.test", "dane-ta(2) spki(1) sha2-256(1)", "depth 1", "PKIX: ok", "status: verified"):
        assert text in r.stdout


def test_verify_host_library(resolver, lab, ca):
    rep = verify_host(resolver, "mx.dane-ok.test", int(lab["LAB_SMTP_PORT"]), ca_files=ca)
    assert rep.status == "verified"
    assert rep.hosts[0].tlsa.records[0].data.hex() == lab["LAB_TLSA_EE"]


def test_probe_requiretls_and_extensions(lab):
    p = starttls_probe("127.0.0.1", int(lab["LAB_SMTP_PORT"]), "mx.dane-ok.test")
    assert p.starttls_offered and p.tls is not None and "STARTTLS" not in p.extensions_tls
    assert p.requiretls is False and "ENHANCEDSTATUSCODES" in p.extensions_tls

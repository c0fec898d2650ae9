"""`moxcli check domain` against the lab: indicators, findings, NDJSON, --file, concurrency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moxcli.cli import cli
from moxcli.dns import Resolver
from moxcli.posture import PostureOptions, check_domains

pytestmark = pytest.mark.lab

KEYS = {"domain", "mx", "mx_dnssec", "mtasts", "tlsrpt", "hosts", "indicators", "findings", "errors", "status"}
HOST_KEYS = {
    "host",
    "preference",
    "ips",
    "ips_dnssec",
    "sts_match",
    "dane_applies",
    "tlsa_present",
    "tlsa_usable",
    "tlsa_matching",
    "tlsa",
    "names",
    "starttls",
    "pkix_valid",
    "requiretls",
    "tlsrpt",
    "addresses",
    "error",
}


def _ndjson(r):
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def _check(runner, lab_data, *args):
    return runner.invoke(cli, ["--data", str(lab_data), "check", "domain", "--json", *args])


def test_sts_domain(runner, lab_data):
    r = _check(runner, lab_data, "sts.test")
    assert r.exit_code == 0, r.output
    (d,) = _ndjson(r)
    assert set(d) == KEYS and d["status"] == "ok" and d["errors"] == 0
    assert d["indicators"] == {
        "mtasts": "implemented",
        "mx_dnssec": "implemented",
        "dane": "not-implemented",
        "tlsrpt": "implemented",
        "requiretls": "not-implemented",
        "starttls_seen": "unknown",  # nothing was delivered to sts.test from this data dir
        "requiretls_seen": "unknown",
    }
    assert d["mtasts"]["mode"] == "enforce" and d["mtasts"]["covers_all_mx"] is True
    assert d["tlsrpt"]["record"] == "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"
    (h,) = d["hosts"]
    assert set(h) == HOST_KEYS
    assert (h["host"], h["ips_dnssec"], h["sts_match"], h["starttls"], h["pkix_valid"]) == (
        "mx.sts.test",
        "secure",
        True,
        True,
        True,
    )
    assert h["tlsa_present"] is False and h["requiretls"] is False
    assert h["tlsrpt"]["record"] == "v=TLSRPTv1; rua=mailto:mx-tlsrpt@reports.test"


def test_dane_ok_domain(runner, lab_data):
    r = _check(runner, lab_data, "dane-ok.test")
    assert r.exit_code == 0, r.output
    (d,) = _ndjson(r)
    assert d["indicators"]["dane"] == "implemented" and d["indicators"]["mtasts"] == "not-implemented"
    (h,) = d["hosts"]
    assert h["tlsa_present"] and h["tlsa_usable"] and h["tlsa_matching"] is True
    assert h["addresses"][0]["dane"]["verified"] and h["addresses"][0]["pkix"]["ok"]


@pytest.mark.parametrize(
    "domain,exit_code,indicator,finding",
    [
        ("dane-bad.test", 1, ("dane", "error"), "does not match the TLSA records"),
        ("dane-bogus.test", 1, ("dane", "error"), "TLSA lookup failed"),
        ("notls.test", 1, ("requiretls", "unknown"), "starttls-not-supported"),
        ("bogus.test", 1, ("mx_dnssec", "error"), "DNSSEC validation failed"),
        ("insecure.test", 0, ("mx_dnssec", "not-implemented"), ""),
        ("dane-ee-expired.test", 0, ("dane", "implemented"), "certificate-expired"),
        ("sts-404.test", 1, ("mtasts", "error"), "MTA-STS"),
    ],
)
def test_problem_domains(runner, lab_data, domain, exit_code, indicator, finding):
    r = _check(runner, lab_data, domain)
    assert r.exit_code == exit_code, r.output
    (d,) = _ndjson(r)
    assert d["indicators"][indicator[0]] == indicator[1]
    if finding:
        assert any(finding in f["message"] for f in d["findings"]), d["findings"]


def test_nonexistent_domain(runner, lab_data):
    r = _check(runner, lab_data, "nothing-here.test")
    assert r.exit_code == 1
    (d,) = _ndjson(r)
    assert d["status"] == "nxdomain" and d["hosts"] == []
    assert d["indicators"]["dane"] == "unknown" and d["indicators"]["requiretls"] == "unknown"


def test_file_order_and_concurrency(runner, lab_data, tmp_path):
    f = tmp_path / "domains.txt"
    names = ["sts.test", "dane-ok.test", "# comment", "", "dane-ta.test", "reports.test"]
    f.write_text("\n".join(names) + "\n")
    r = _check(runner, lab_data, "--file", str(f), "--concurrency", "3", "wrongname.test")
    assert r.exit_code == 0, r.output
    assert [d["domain"] for d in _ndjson(r)] == [
        "wrongname.test",
        "sts.test",
        "dane-ok.test",
        "dane-ta.test",
        "reports.test",
    ]


def test_rich_output_has_indicator_bar(runner, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "check", "domain", "dane-ok.test"])
    assert r.exit_code == 0
    last = [line for line in r.stdout.splitlines() if line.strip()][-1]
    for text in ("✗ MTA-STS enforced", "✓ MX DNSSEC-signed", "✓ DANE on first MX", "✓ TLSRPT", "✗ REQUIRETLS"):
        assert text in last


def test_usage_error(runner, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "check", "domain"])
    assert r.exit_code == 2 and "give DOMAIN... or --file F" in r.stderr


def test_concurrency_is_faster_and_equal(lab):
    host, port = lab["LAB_DNS"].rsplit(":", 1)
    resolver = Resolver([(host, int(port))], timeout=5)
    opts = PostureOptions(
        int(lab["LAB_SMTP_PORT"]), int(lab["LAB_HTTPS_PORT"]), (Path(lab["LAB_CA"]),), "mail.moxcli.test", 5
    )
    domains = [
        "sts.test",
        "dane-ok.test",
        "dane-ta.test",
        "dane-bad.test",
        "notls.test",
        "wrongname.test",
        "expired.test",
        "reports.test",
    ]
    seq = [p.to_json() for p in check_domains(resolver, domains, opts, concurrency=1, share_hosts=False)]
    par = [p.to_json() for p in check_domains(resolver, domains, opts, concurrency=8)]
    # The same answers either way; how much faster concurrency is, bench/posture.py measures.
    assert [(d["domain"], d["indicators"], d["errors"]) for d in seq] == [
        (d["domain"], d["indicators"], d["errors"]) for d in par
    ]

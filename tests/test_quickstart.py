import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from moxcli.cli import cli
from moxcli.config import load_config
from moxcli.errors import ConfigError, UsageError
from moxcli.quickstart import init_data_dir
from moxcli.store import Store
from moxcli.store.mail import list_accounts, list_mailboxes


def test_init_creates_config_keys_account(tmp_path):
    data = tmp_path / "data"
    now = 1_780_000_000.0  # 2026-05-28: selectors are named after the year
    res = init_data_dir(data, data / "moxcli.toml", "Example.ORG", "mail.example.org", now=now)
    cfg = load_config(data / "moxcli.toml", required=True)
    assert cfg.hostname == "mail.example.org"
    dom = cfg.domain("example.org")
    assert [s.algorithm for s in dom.dkim.selectors.values()] == ["ed25519", "rsa"]
    assert dom.tlsrpt.address == "tlsreports@example.org"
    assert cfg.host_tlsrpt.localpart == "tlsreports"
    for key in res.dkim_keys:
        assert key.stat().st_mode & 0o777 == 0o600
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    with Store.open(data, readonly=True) as st, st.read() as tx:
        assert [a.name for a in list_accounts(tx)] == ["postmaster"]
        assert {m.name for m in list_mailboxes(tx, "postmaster")} == {"Inbox", "Postmaster", "TLSRPT", "DMARC"}
    types = {(r.name, r.type) for r in res.records}
    assert ("_smtp._tls.mail.example.org", "TXT") in types
    assert ("_smtp._tls.example.org", "TXT") in types
    assert ("2026a._domainkey.example.org", "TXT") in types
    assert ("2026b._domainkey.example.org", "TXT") in types
    assert list(dom.dkim.selectors) == ["2026a", "2026b"]


def test_init_refuses_existing_config(tmp_path):
    cfg = tmp_path / "moxcli.toml"
    cfg.write_text("# mine\n")
    with pytest.raises(ConfigError, match="config already exists"):
        init_data_dir(tmp_path, cfg, "example.org", "mail.example.org")
    assert cfg.read_text() == "# mine\n"


@pytest.mark.parametrize(
    "domain, host",
    [("bad..example", "mail.example.org"), ("example.org", "1.2.3.4"), ("example.org.", "m.example.org")],
)
def test_init_rejects_bad_names(tmp_path, domain, host):
    with pytest.raises(UsageError):
        init_data_dir(tmp_path, tmp_path / "c.toml", domain, host)
    assert not (tmp_path / "c.toml").exists()


def test_dns_records_cli_json_and_text(runner, tmp_path):
    data = tmp_path / "d"
    r = runner.invoke(cli, ["--data", str(data), "init", "example.org", "--hostname", "mail.example.org", "--json"])
    assert r.exit_code == 0, r.output
    init_out = json.loads(r.stdout)
    assert set(init_out) == {"data_dir", "config_file", "domain", "hostname", "dkim_keys", "records"}
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--json"])
    assert r.exit_code == 0
    recs = json.loads(r.stdout)
    assert recs == init_out["records"]
    tlsrpt = next(x for x in recs if x["name"] == "_smtp._tls.example.org")
    assert tlsrpt["value"] == '"v=TLSRPTv1; rua=mailto:tlsreports@example.org"'
    dkim = [x for x in recs if "._domainkey." in x["name"]]
    assert len(dkim) == 2 and dkim[0]["value"].startswith('"v=DKIM1; k=ed25519; p=')
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "example.org"])
    assert "_smtp._tls.mail.example.org. TXT" in r.stdout
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "other.example"])
    assert r.exit_code == 2 and "not configured" in r.stderr


def test_long_dkim_txt_split_into_255_byte_strings(tmp_path):
    res = init_data_dir(tmp_path, tmp_path / "c.toml", "example.org", "mail.example.org")
    rsa = next(r for r in res.records if r.value and "k=rsa" in r.value)
    parts = rsa.value.split('" "')
    assert len(parts) >= 2 and all(len(p.strip('"')) <= 255 for p in parts)


def test_dns_records_without_config(runner, tmp_path):
    r = runner.invoke(cli, ["--data", str(tmp_path), "dns", "records"])
    assert r.exit_code == 2 and "config file not found" in r.stderr


def _two_domains(runner, tmp_path):
    data = tmp_path / "d"
    init_data_dir(data, data / "moxcli.toml", "example.org", "mail.example.org")
    cfg = data / "moxcli.toml"
    text = cfg.read_text()
    # a second domain: the [domains."example.org"] table and its sub-tables again, renamed
    start = text.index('[domains."example.org".')
    cfg.write_text(
        text + "\n" + text[start:].replace('"example.org"', '"example.net"').replace("@example.org", "@example.net")
    )
    return data


def _ldns_read_zone(tmp_path, text):
    zone = tmp_path / "zone.txt"
    zone.write_text(text)
    return subprocess.run(["ldns-read-zone", str(zone)], capture_output=True, text=True)


def test_dns_records_output_is_a_valid_zone(runner, tmp_path):
    data = _two_domains(runner, tmp_path)
    r = runner.invoke(cli, ["--data", str(data), "dns", "records"])
    assert r.exit_code == 0, r.output
    assert "; _25._tcp.mail.example.org. TLSA (not known yet)" in r.stdout
    assert "moxcli dane record 3 1 1 CERT.pem" in r.stdout
    parsed = _ldns_read_zone(tmp_path, r.stdout)
    assert parsed.returncode == 0, parsed.stderr
    owners = {line.split()[0] for line in parsed.stdout.splitlines() if line and not line.startswith(";")}
    assert {"example.org.", "example.net.", "_smtp._tls.example.net.", "_smtp._tls.mail.example.org."} <= owners
    assert not any(line.split()[3] == "TLSA" for line in parsed.stdout.splitlines() if line.strip())


def test_dns_records_with_certificate_has_the_tlsa_record(runner, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _two_domains(runner, tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "mail.example.org")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "mx.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    want = f"3 1 1 {hashlib.sha256(spki).hexdigest()}"
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--tls-cert", str(pem), "example.net"])
    assert r.exit_code == 0, r.output
    assert f"_25._tcp.mail.example.org. TLSA {want}" in r.stdout
    assert "example.org. MX" not in r.stdout.replace("mail.example.org. MX", "")
    parsed = _ldns_read_zone(tmp_path, r.stdout)
    assert parsed.returncode == 0, parsed.stderr
    (tlsa,) = [line.split() for line in parsed.stdout.splitlines() if line.split()[3:4] == ["TLSA"]]
    assert tlsa[0] == "_25._tcp.mail.example.org." and " ".join(tlsa[4:]).lower() == want
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--tls-cert", str(pem), "--json"])
    (rec,) = [x for x in json.loads(r.stdout) if x["type"] == "TLSA"]
    assert rec["value"] == want and rec["placeholder"] is False


def test_dns_records_json_placeholder_has_no_value(runner, tmp_path):
    data = _two_domains(runner, tmp_path)
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--json", "example.org", "example.net"])
    assert r.exit_code == 0
    recs = json.loads(r.stdout)
    (tlsa,) = [x for x in recs if x["placeholder"]]
    assert tlsa["type"] == "TLSA" and tlsa["value"] is None and "moxcli dane record" in tlsa["comment"]
    assert all(x["value"] for x in recs if not x["placeholder"])
    assert {x["name"] for x in recs if x["type"] == "MX"} == {"example.org", "example.net"}


def test_dns_records_mta_sts_policy(runner, tmp_path):
    data = _two_domains(runner, tmp_path)
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--mta-sts-policy", "example.net"])
    assert r.exit_code == 0
    assert r.stdout_bytes == b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
    assert r.stderr == "serve at https://mta-sts.example.net/.well-known/mta-sts.txt:\n"
    from moxcli.mtasts.policy import lint, parse_policy

    policy = parse_policy(r.stdout_bytes.decode())
    assert policy.mode == "enforce" and [str(m) for m in policy.mx] == ["mail.example.org"]
    assert lint(policy) == []  # what we suggest passes our own check
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "--mta-sts-policy", "--json"])
    assert [(x["domain"], x["url"]) for x in json.loads(r.stdout)] == [
        ("example.org", "https://mta-sts.example.org/.well-known/mta-sts.txt"),
        ("example.net", "https://mta-sts.example.net/.well-known/mta-sts.txt"),
    ]


@pytest.mark.parametrize("bad", ["bad..example", "sp ace.example"])
def test_dns_records_bad_domain_is_usage_error(runner, tmp_path, bad):
    data = _two_domains(runner, tmp_path)
    r = runner.invoke(cli, ["--data", str(data), "dns", "records", "example.org", bad, "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout)["error"]["code"] == "bad-domain"
    assert r.stderr.startswith(f"moxcli: invalid domain {bad!r}")

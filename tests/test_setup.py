import json

import pytest

from moxcli.cli import cli
from moxcli.config import load_config
from moxcli.errors import ConfigError, UsageError
from moxcli.setup import init_data_dir
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
        assert [a["name"] for a in list_accounts(tx)] == ["postmaster"]
        assert {m["name"] for m in list_mailboxes(tx, "postmaster")} == {"Inbox", "Postmaster", "TLSRPT", "DMARC"}
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
    rsa = next(r for r in res.records if "k=rsa" in r.value)
    parts = rsa.value.split('" "')
    assert len(parts) >= 2 and all(len(p.strip('"')) <= 255 for p in parts)


def test_dns_records_without_config(runner, tmp_path):
    r = runner.invoke(cli, ["--data", str(tmp_path), "dns", "records"])
    assert r.exit_code == 2 and "config file not found" in r.stderr

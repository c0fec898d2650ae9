"""`moxcli check tlsrpt`: CliRunner against the lab, --record linting, exit codes."""

import json
import socket

import pytest

from moxcli.cli import cli

pytestmark = pytest.mark.lab


def run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), "check", "tlsrpt", *args])


def test_domain_record(runner, lab_data):
    r = run(runner, lab_data, "--json", "sts.test")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert {"domain", "records", "valid", "rua", "errors", "warnings", "extensions", "dnssec"} <= set(j)
    assert j["domain"] == "sts.test" and j["valid"] is True and j["dnssec"] == "secure"
    assert j["rua"] == [{"uri": "mailto:tlsrpt@reports.test", "scheme": "mailto"}]
    assert j["errors"] == [] and j["records"][0]["tlsrpt"] is True


def test_mx_host_record(runner, lab_data):
    r = run(runner, lab_data, "--json", "mx.sts.test")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rua"][0]["uri"] == "mailto:mx-tlsrpt@reports.test"


def test_table_output(runner, lab_data):
    r = run(runner, lab_data, "sts.test")
    assert r.exit_code == 0
    assert "mailto:tlsrpt@reports.test" in r.stdout and "_smtp._tls.sts.test" in r.stdout


def test_no_record_exit_1(runner, lab_data):
    r = run(runner, lab_data, "--json", "insecure.test")
    assert r.exit_code == 1
    j = json.loads(r.stdout)
    assert j["valid"] is False and j["rua"] == [] and j["errors"][0]["code"] == "no-record"
    assert "no TLSRPT record" in j["errors"][0]["message"]


def test_bogus_is_failure_not_temporary(runner, lab_data):
    r = run(runner, lab_data, "--json", "bogus.test")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["dnssec"] == "bogus"


def test_temporary_dns_failure_exit_3(runner, tmp_path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    data = tmp_path / "d"
    data.mkdir()
    (data / "moxcli.toml").write_text(f'[dns]\nresolvers = ["127.0.0.1:{port}"]\ntimeout = 1\n')
    r = run(runner, data, "--json", "sts.test")
    assert r.exit_code == 3
    (err,) = json.loads(r.stdout)["errors"]
    assert err["code"] == "dns-error" and "no answer" in err["message"]
    r = run(runner, data, "sts.test")
    assert r.exit_code == 3 and "error:" in r.stderr


@pytest.mark.parametrize(
    "text,code,needle",
    [
        ("v=TLSRPTv1; rua=mailto:a@example.org", 0, None),
        ("v=TLSRPTv1; rua=https://example.org/r", 0, ("rua-https", "only send reports by mailto")),
        ("v=TLSRPTv1; rua=a@example.org", 1, ("record-syntax-error", "mailto: in front")),
        ("v=TLSRPTv1", 1, ("not-tlsrpt", "not a TLSRPT record")),
        ("v=TLSRPTv1; rua=ftp://x.example/", 1, ("rua-unknown-scheme", "scheme ftp")),
    ],
)
def test_record_option_needs_no_dns(runner, tmp_path, text, code, needle):
    # No config: DNS would go to the system resolver; --record must not use it.
    r = run(runner, tmp_path, "--record", text, "--json")
    assert r.exit_code == code, r.output
    j = json.loads(r.stdout)
    assert j["valid"] == (code == 0)
    if needle:
        assert any(f["code"] == needle[0] and needle[1] in f["message"] for f in j["errors"] + j["warnings"]), j


def test_record_option_human_output(runner, tmp_path):
    r = run(runner, tmp_path, "--record", "v=TLSRPTv1; rua=https://example.org/r; x=1")
    assert r.exit_code == 0
    assert "https://example.org/r" in r.stdout and "warning:" in r.stderr


def test_usage_errors(runner, tmp_path):
    assert run(runner, tmp_path).exit_code == 2
    r = run(runner, tmp_path, "bad..domain", "--record", "v=TLSRPTv1; rua=mailto:a@b")
    assert r.exit_code == 2 and "invalid domain" in r.stderr

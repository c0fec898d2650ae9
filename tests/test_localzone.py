"""[dns] local_zone: the parser, precedence over a real resolver (the lab), and the offline demo."""

import json
import subprocess
import sys

import pytest

from moxcli.cli import cli
from moxcli.config import DNSConfig
from moxcli.dns import NotFound, Resolver, TemporaryDNSError
from moxcli.errors import ConfigError
from moxcli.localzone import parse_local_zone

ZONE = """\
; comment line
$TTL 120
sts.test. 60 IN TXT "v=TLSRPTv1; rua=mailto:local@example.org" ; trailing comment
_smtp._tls.sts.test. TXT "v=TLSRPTv1; rua=mailto:local;x@example.org"
$ORIGIN local.example.
@ SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 300
www A 192.0.2.1
    AAAA 2001:db8::1
alias CNAME www
"""


def _resolver(text: str = ZONE, servers=(), secure: bool = False) -> Resolver:
    return Resolver(servers, timeout=2, local=parse_local_zone(text, None, secure))


def test_answers_from_the_file():
    r = _resolver()
    a = r.txt("_smtp._tls.sts.test")
    assert a.texts() == ["v=TLSRPTv1; rua=mailto:local;x@example.org"]
    assert a.authentic is False and a.ttl == 120
    assert r.txt("sts.test").ttl == 60
    assert r.ips("www.local.example")[0] == ["192.0.2.1", "2001:db8::1"]
    a = r.query("alias.local.example", "A")
    assert [x.address for x in a.records] == ["192.0.2.1"] and a.cnames == ["www.local.example"]


def test_marked_secure():
    assert _resolver(secure=True).txt("sts.test").authentic is True


@pytest.mark.parametrize(
    ("name", "rdtype", "nxdomain"),
    [("nothere.local.example", "A", True), ("www.local.example", "TXT", False), ("sts.test", "A", False)],
)
def test_not_found_inside_the_file(name, rdtype, nxdomain):
    with pytest.raises(NotFound) as exc:
        _resolver().query(name, rdtype)
    assert exc.value.nxdomain is nxdomain


def test_other_names_go_to_the_resolver():
    # nothing listens on the discard port: the question did go out, and got no answer
    r = _resolver(servers=[("127.0.0.1", 9)])
    with pytest.raises(TemporaryDNSError, match=r"no answer from 127\.0\.0\.1:9"):
        r.txt("example.org")
    assert r.txt("sts.test").texts() == ["v=TLSRPTv1; rua=mailto:local@example.org"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("x.example. TXT\n", "line 1"),
        ("x.example. BOGUS 1\n", "line 1"),
        ("ok.example. A 192.0.2.1\nx.example. A not-an-ip\n", "line 2"),
        ("  A 192.0.2.1\n", "line 1: record without owner"),
        ("$INCLUDE other\n", "line 1: unsupported directive"),
        ("x.example. CH TXT x\n", "only IN"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, text, where):
    with pytest.raises(ConfigError, match=where):
        parse_local_zone(text, tmp_path / "z.txt")


def test_config_key_relative_to_the_config(tmp_path):
    from moxcli.config import load_config

    (tmp_path / "z.txt").write_text(ZONE)
    cfg = tmp_path / "moxcli.toml"
    cfg.write_text('hostname = "mail.example.org"\n[dns]\nlocal_zone = "z.txt"\nlocal_zone_secure = true\n')
    dns = load_config(cfg, required=True).dns
    assert dns == DNSConfig(local_zone=tmp_path / "z.txt", local_zone_secure=True)
    assert Resolver.from_config(dns).txt("sts.test").authentic is True


@pytest.mark.lab
def test_local_answers_take_precedence_over_the_lab_resolver(runner, lab, tmp_path):
    host, port = lab["LAB_DNS"].rsplit(":", 1)
    r = _resolver(servers=[(host, int(port))])
    # in the file: the local answer, not the lab's rua=mailto:tlsrpt@reports.test
    assert r.txt("_smtp._tls.sts.test").texts() == ["v=TLSRPTv1; rua=mailto:local;x@example.org"]
    # not in the file: the lab answers, DNSSEC-secure as before
    a = r.txt("_smtp._tls.dane-ok.test")
    assert a.texts() == ["v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"] and a.authentic is True
    # through the CLI with a config
    (tmp_path / "z.txt").write_text(ZONE)
    (tmp_path / "moxcli.toml").write_text(
        f'hostname = "mail.example.org"\n[dns]\nresolvers = ["{lab["LAB_DNS"]}"]\nlocal_zone = "z.txt"\n'
    )
    out = runner.invoke(cli, ["--data", str(tmp_path), "check", "tlsrpt", "--json", "sts.test"])
    j = json.loads(out.stdout)
    assert j["dnssec"] == "insecure"
    assert [r["text"] for r in j["records"]] == ["v=TLSRPTv1; rua=mailto:local;x@example.org"]


def test_demo_shows_the_daily_tls_reports_offline(tmp_path):
    """The README's first command: gentestdata, then send-tlsreports --dry-run, no network.

    The config gentestdata writes answers every demo name from its local zone; resolv.conf
    points nowhere here, so any real DNS query would fail the run.
    """
    data = tmp_path / "demo"
    env = {"MOXCLI_DATA": "", "PATH": "/usr/bin:/bin", "LOCALDOMAIN": "", "RES_OPTIONS": "timeout:1 attempts:1"}
    moxcli = [sys.executable, "-m", "moxcli"]
    subprocess.run([*moxcli, "gentestdata", str(data)], check=True, capture_output=True, env=env)
    assert "local_zone" in (data / "moxcli.toml").read_text()
    r = subprocess.run(
        [*moxcli, "--data", str(data), "send-tlsreports", "--dry-run"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    # stdout: for each report a "# ... to <addresses>" line, then the report JSON
    blocks = [b for b in r.stdout.split("# ") if b]
    reports = {}
    for b in blocks:
        head, _, body = b.partition("\n")
        reports[head] = json.loads(body)
    heads = sorted(reports)
    assert any(h.startswith("recipient-domain report for sts.test") and h.endswith("to tlsrpt@sts.test") for h in heads)
    assert any("(suppressed: tls-reports@xn--74h.example)" in h for h in heads)
    sts = next(v for h, v in reports.items() if "for sts.test" in h)
    details = sts["policies"][0]["failure-details"]
    assert sts["policies"][0]["policy"]["policy-type"] == "sts"
    assert details[0]["result-type"] == "certificate-expired"
    # the job summary is on stderr (docs/json.md), with the number of reports shown above
    assert f": {len(reports)} report(s) would be queued" in r.stderr.splitlines()[-1]
    r2 = subprocess.run(
        [*moxcli, "--data", str(data), "send-tlsreports", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [json.loads(x) for x in r2.stdout.splitlines()]
    assert [x["type"] for x in lines].count("report") == len(reports) and lines[-1]["type"] == "summary"

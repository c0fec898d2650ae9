from pathlib import Path

import pytest

from moxcli.config import Config, load_config, parse_config
from moxcli.errors import ConfigError

FILE = Path("/etc/moxcli/moxcli.toml")

GOOD = """
hostname = "mail.example.org"
no_outgoing_tls_reports = false
outgoing_tls_reports_for_all_success = true
no_outgoing_dmarc_reports = true
[postmaster]
account = "admin"
mailbox = "Reports"
[host_tlsrpt]
localpart = "tlsreports"
account = "admin"
mailbox = "TLSRPT"
[dns]
resolvers = ["127.0.0.1:5353", "[::1]:53", "10.0.0.1"]
trust_ad = true
[network]
smtp_port = 2525
https_port = 8443
[domains."Example.ORG".dkim]
sign = ["s1"]
[domains."Example.ORG".dkim.selectors.s1]
algorithm = "rsa"
private_key_file = "dkim/s1.pem"
[domains."Example.ORG".tlsrpt]
localpart = "tls"
account = "admin"
mailbox = "TLS"
[domains."☺.example".dmarc]
localpart = "dmarc"
account = "admin"
mailbox = "DMARC"
"""


def test_good_config():
    cfg = parse_config(GOOD, FILE)
    assert cfg.hostname == "mail.example.org"
    assert cfg.postmaster.account == "admin" and cfg.postmaster.mailbox == "Reports"
    assert cfg.host_tlsrpt.localpart == "tlsreports"
    assert cfg.outgoing_tls_reports_for_all_success and cfg.no_outgoing_dmarc_reports
    assert not cfg.no_outgoing_tls_reports
    assert cfg.dns.resolvers == (("127.0.0.1", 5353), ("::1", 53), ("10.0.0.1", 53))
    assert cfg.dns.trust_ad
    assert cfg.network.smtp_port == 2525 and cfg.network.https_port == 8443
    d = cfg.domain("example.org")
    assert d is not None and d.tlsrpt.address == "tls@example.org"
    assert d.dkim.selectors["s1"].private_key_file == Path("/etc/moxcli/dkim/s1.pem")
    assert d.dkim.selectors["s1"].algorithm == "rsa"
    idn = cfg.domain("xn--74h.example")
    assert idn is not None and idn.dmarc.address == "dmarc@xn--74h.example"
    assert cfg.domain("☺.example") is idn


@pytest.mark.parametrize(
    "text, message",
    [
        ("hostnme = 'x'", "hostnme: unknown key"),
        ("hostname = 3", "hostname: expected string, got integer 3"),
        ("hostname = 'bad..name'", "hostname: invalid domain"),
        (
            "[dns]\nresolvers = ['localhost:53']",
            "dns.resolvers[0]: expected an IP address (port 53), IPv4:port or [IPv6]:port, got 'localhost:53'",
        ),
        ("[dns]\nresolvers = ['127.0.0.1:99999']", "dns.resolvers[0]"),
        ("[dns]\ntrust_ad = 'yes'", "dns.trust_ad: expected boolean"),
        ("[dns]\nbogus = 1", "dns.bogus: unknown key"),
        ("[network]\nsmtp_port = 0", "network.smtp_port: port out of range"),
        ("[network]\nsmtp_port = true", "network.smtp_port: expected integer, got boolean"),
        ("[tls]\nca_files = ['/nonexistent/ca.pem']", "tls.ca_files[0]: no such file"),
        (
            "[domains.'a.example'.dkim.selectors.s]\nalgorithm='dsa'\nprivate_key_file='k'",
            "domains.a.example.dkim.selectors.s.algorithm",
        ),
        ("[domains.'a.example'.dkim.selectors.s]\nalgorithm='rsa'", "private_key_file: required key missing"),
        ("[domains.'a.example'.dkim]\nsign = ['nope']", "dkim.sign: selector 'nope' is not defined"),
        ("[domains.'a.example'.tlsrpt]\nlocalpart='x'\naccount='a'", "tlsrpt.mailbox: required key missing"),
        ("[domains.'a example']", "domains.a example: invalid domain"),
        ("dmarc_report_format = 'v3'", "dmarc_report_format: must be one of"),
        ("quota_message_size = -1", "quota_message_size: must not be negative"),
        ("max_message_size = 0", "max_message_size: must be between 1 and 2^40 bytes"),
        ("max_message_size = 1099511627777", "max_message_size: must be between 1 and 2^40 bytes"),
        ("archive_max_entries = 0", "archive_max_entries: must be between 1 and 2^32"),
        ("archive_max_ratio = 0", "archive_max_ratio: must be between 1 and 100000"),
        ("hostname = ", "invalid TOML"),
        ("[queue]\ndelay_warning = '4 hours'", "queue.delay_warning: expected a duration such as"),
        ("[queue]\ndelay_warning = ''", "queue.delay_warning: expected a duration such as"),
        ("[queue]\ndelay_warning = -5", "queue.delay_warning: must not be negative"),
        ("[queue]\ndelay_warning = true", "queue.delay_warning: expected a duration"),
        ("[queue]\nwarn = 1", "queue.warn: unknown key"),
    ],
)
def test_bad_config_names_key_and_file(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value).startswith(str(FILE) + ": ")
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "value, seconds",
    [(None, None), ("0", 0.0), ("4h", 14400.0), ("1h30m", 5400.0), ("2d", 172800.0), ("90s", 90.0)],
)
def test_queue_delay_warning(value, seconds):
    text = "" if value is None else f"[queue]\ndelay_warning = '{value}'\n"
    assert parse_config(text, FILE).queue.delay_warning == seconds
    if seconds is not None:
        assert parse_config(f"[queue]\ndelay_warning = {int(seconds)}\n", FILE).queue.delay_warning == seconds


def test_missing_file(tmp_path):
    assert load_config(tmp_path / "none.toml") == Config()
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml", required=True)


def test_ca_file_relative_to_config(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    cfg = parse_config("[tls]\nca_files = ['ca.pem']", tmp_path / "c.toml")
    assert cfg.tls.ca_files == (tmp_path / "ca.pem",)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("::1", ("::1", 53)),  # a bare IPv6 address: port 53
        ("[::1]", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),  # an address of its own, not ::db8 port 53
        ("[2001:db8::1]:53", ("2001:db8::1", 53)),
    ],
)
def test_resolver_forms(text, want):
    cfg = parse_config(f"[dns]\nresolvers = [{text!r}]\n", Path("m.toml"))
    assert cfg.dns.resolvers == (want,)


@pytest.mark.parametrize(
    "text",
    [
        "[127.0.0.1]:53",
        "[::1]x",
        "[::1]x53",  # after the ] comes : and the port, nothing else
        "::ffff:127.0.0.1:53",  # an IPv6 address with a port needs the brackets
        "1:2:3:4:5:6:7:8:53",
        "[::1]:",
        "127.0.0.1:",
        "[::1]:65536",
        "127.0.0.1:0",
        "1.2.3.4:+5",
        "1.2.3.4:\uff15",
        "::1]:53",
    ],
)
def test_bad_resolver_forms_are_refused_naming_the_entry(text):
    with pytest.raises(
        ConfigError, match=r"dns\.resolvers\[0\]: expected an IP address \(port 53\), IPv4:port or \[IPv6\]:port, got "
    ):
        parse_config(f"[dns]\nresolvers = [{text!r}]\n", Path("m.toml"))

"""Config parsing: every default, every boundary and the exact error line per bad key.

Written from the survivors of scripts/mutation.sh on moxcli/config.py (unknown keys in
[postmaster] and the DKIM tables, the default message size limit, the limits of names,
ports and timeouts).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moxcli.config import Config, parse_config
from moxcli.errors import ConfigError

FILE = Path("/etc/m/c.toml")
SEL = "[domains.'a.example'.dkim.selectors.s]\nprivate_key_file='k'\n"
DEST = "localpart='x'\naccount='a'\nmailbox='m'\n"
ACCOUNT_RULE = "a name (no / or \\, not . or .., printable, at most 200 bytes)"
LOCALPART_RULE = "printable characters only, no spaces, @, quotes or <>, at most 64 bytes"
TIMEOUT_RULE = "must be a number of seconds above 0 and at most 300"

BAD = [
    # (config text, the error line after "<file>: ")
    ("[postmaster]\nacount='x'", "postmaster.acount: unknown key"),
    ("postmaster = 1", "postmaster: expected table, got integer 1"),
    ("[postmaster]\naccount='a/b'", f"postmaster.account: invalid account name 'a/b': {ACCOUNT_RULE}"),
    ("[postmaster]\naccount=''", f"postmaster.account: invalid account name '': {ACCOUNT_RULE}"),
    ("[postmaster]\naccount='..'", f"postmaster.account: invalid account name '..': {ACCOUNT_RULE}"),
    ("[postmaster]\naccount='.'", f"postmaster.account: invalid account name '.': {ACCOUNT_RULE}"),
    ("[postmaster]\naccount='a\\b'", f"postmaster.account: invalid account name 'a\\\\b': {ACCOUNT_RULE}"),
    ('[postmaster]\naccount="a\\u0001"', f"postmaster.account: invalid account name 'a\\x01': {ACCOUNT_RULE}"),
    ("[postmaster]\nmailbox=''", "postmaster.mailbox: invalid mailbox name '': printable, at most 200 bytes"),
    (
        '[postmaster]\nmailbox="a\\u0001"',
        "postmaster.mailbox: invalid mailbox name 'a\\x01': printable, at most 200 bytes",
    ),
    ("[host_tlsrpt]\nbogus=1", "host_tlsrpt.bogus: unknown key"),
    ("[host_tlsrpt]\nlocalpart='a b'", f"host_tlsrpt.localpart: invalid localpart 'a b': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart=''", f"host_tlsrpt.localpart: invalid localpart '': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart='a@b'", f"host_tlsrpt.localpart: invalid localpart 'a@b': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart='a\"'", f"host_tlsrpt.localpart: invalid localpart 'a\"': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart='a<'", f"host_tlsrpt.localpart: invalid localpart 'a<': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart='a>'", f"host_tlsrpt.localpart: invalid localpart 'a>': {LOCALPART_RULE}"),
    ("[host_tlsrpt]\nlocalpart='a\\b'", f"host_tlsrpt.localpart: invalid localpart 'a\\\\b': {LOCALPART_RULE}"),
    (
        '[host_tlsrpt]\nlocalpart="a\\u0001"',
        f"host_tlsrpt.localpart: invalid localpart 'a\\x01': {LOCALPART_RULE}",
    ),
    (SEL + "bogus=1", "domains.a.example.dkim.selectors.s.bogus: unknown key"),
    ("[domains.'a.example'.dkim]\nbogus=1", "domains.a.example.dkim.bogus: unknown key"),
    (
        "[domains.'a.example'.dkim.selectors]\nbogus={}\n",
        "domains.a.example.dkim.selectors.bogus.private_key_file: required key missing",
    ),
    (SEL + "hash='sha1'", "domains.a.example.dkim.selectors.s.hash: only sha256 is supported, got 'sha1'"),
    (
        SEL + "algorithm='dsa'",
        "domains.a.example.dkim.selectors.s.algorithm: must be one of ed25519, rsa, got 'dsa'",
    ),
    (
        SEL + "canonicalization='relaxed'",
        "domains.a.example.dkim.selectors.s.canonicalization: invalid value 'relaxed'",
    ),
    (SEL + "headers=[1]", "domains.a.example.dkim.selectors.s.headers[0]: expected string, got 1"),
    (SEL + "algorithm=1", "domains.a.example.dkim.selectors.s.algorithm: expected string, got integer 1"),
    (
        "[domains.'a.example'.dkim.selectors]\ns=1",
        "domains.a.example.dkim.selectors.s: expected table, got integer 1",
    ),
    ("[domains.'a.example'.dkim]\nsign=['s']", "domains.a.example.dkim.sign: selector 's' is not defined in selectors"),
    ("[domains.'a.example']\ndisabled='no'", "domains.a.example.disabled: expected boolean, got string 'no'"),
    ("[domains.'a.example']\nbogus=1", "domains.a.example.bogus: unknown key"),
    ("[domains.'a.example'.tlsrpt]\n" + DEST + "bogus=1", "domains.a.example.tlsrpt.bogus: unknown key"),
    ("[domains.'a.example'.dmarc]\n" + DEST + "bogus=1", "domains.a.example.dmarc.bogus: unknown key"),
    (
        "[domains.'a.example'.dmarc]\n" + DEST + "domain='bad..x'",
        "domains.a.example.dmarc.domain: invalid domain 'bad..x': empty label",
    ),
    (
        "[domains.'a.example'.dmarc]\naccount='a'\nmailbox='m'",
        "domains.a.example.dmarc.localpart: required key missing",
    ),
    (
        "[domains.'a.example'.dmarc]\nlocalpart='x'\nmailbox='m'",
        "domains.a.example.dmarc.account: required key missing",
    ),
    ("[dns]\ntimeout=0", f"dns.timeout: {TIMEOUT_RULE}, got 0"),
    ("[dns]\ntimeout=-1", f"dns.timeout: {TIMEOUT_RULE}, got -1"),
    ("[dns]\ntimeout=300.5", f"dns.timeout: {TIMEOUT_RULE}, got 300.5"),
    ("[dns]\ntimeout=nan", f"dns.timeout: {TIMEOUT_RULE}, got nan"),
    ("[dns]\ntimeout=inf", f"dns.timeout: {TIMEOUT_RULE}, got inf"),
    ("[dns]\ntimeout='5'", "dns.timeout: expected integer or float, got string '5'"),
    (
        "[dns]\nresolvers=['127.0.0.1:0']",
        "dns.resolvers[0]: expected an IP address (port 53), IPv4:port or [IPv6]:port, got '127.0.0.1:0'",
    ),
    (
        "[dns]\nresolvers=['127.0.0.1:65536']",
        "dns.resolvers[0]: expected an IP address (port 53), IPv4:port or [IPv6]:port, got '127.0.0.1:65536'",
    ),
    (
        "[dns]\nresolvers=['127.0.0.1', 'x:1']",
        "dns.resolvers[1]: expected an IP address (port 53), IPv4:port or [IPv6]:port, got 'x:1'",
    ),
    ("[dns]\nresolvers=[1]", "dns.resolvers[0]: expected string, got 1"),
    ("[dns]\nresolvers='127.0.0.1'", "dns.resolvers: expected array, got string '127.0.0.1'"),
    ("[network]\nhttps_port=65536", "network.https_port: port out of range: 65536"),
    ("[network]\nhttps_port=0", "network.https_port: port out of range: 0"),
    ("[network]\nsmtp_port=65536", "network.smtp_port: port out of range: 65536"),
    ("[network]\nbogus=1", "network.bogus: unknown key"),
    ("[imap]\npassword_file='p'\npassword_env='E'", "imap.password_env: set password_file or password_env, not both"),
    ("[imap]\nbogus=1", "imap.bogus: unknown key"),
    ("[tls]\nbogus=1", "tls.bogus: unknown key"),
    (
        "[queue]\ndelay_warning='1x'",
        'queue.delay_warning: expected a duration such as "4h", "1h30m" or "2d", got \'1x\'',
    ),
    ("quota_message_size = true", "quota_message_size: expected integer, got boolean True"),
    ("quota_message_size = -1", "quota_message_size: must not be negative"),
    ("[queue]\ndelay_warning = -1", "queue.delay_warning: must not be negative"),
    ("no_outgoing_tls_reports = 1", "no_outgoing_tls_reports: expected boolean, got integer 1"),
    (
        "outgoing_tls_reports_for_all_success = 1",
        "outgoing_tls_reports_for_all_success: expected boolean, got integer 1",
    ),
    ("no_outgoing_dmarc_reports = 1", "no_outgoing_dmarc_reports: expected boolean, got integer 1"),
    ("dmarc_report_format = 'v3'", "dmarc_report_format: must be one of rfc7489, rfc9990, got 'v3'"),
    ("hostname = 'a..b'", "hostname: invalid domain 'a..b': empty label"),
    ("hostname = ''", "hostname: invalid domain '': empty domain"),
    ("x = " + "[" * 5000 + "]" * 5000, "invalid TOML: nested too deeply"),
    ("[host_tlsrpt]\naccount='a/b'", f"host_tlsrpt.account: invalid account name 'a/b': {ACCOUNT_RULE}"),
    ("[host_tlsrpt]\nmailbox=''", "host_tlsrpt.mailbox: invalid mailbox name '': printable, at most 200 bytes"),
    ("[dns]\nlocal_zone = 1", "dns.local_zone: expected string, got integer 1"),
    ("[dns]\nlocal_zone_secure = 1", "dns.local_zone_secure: expected boolean, got integer 1"),
    (
        f"[domains.'a.example'.tlsrpt]\nlocalpart='{'x' * 64}'\ndomain='{'a' * 63}.{'b' * 63}.{'c' * 63}.example'\n"
        "account='a'\nmailbox='m'",
        "domains.a.example.tlsrpt.localpart: address "
        + (f"'{'x' * 64}@{'a' * 63}.{'b' * 63}.{'c' * 63}.example'"[:200] + "... (266 characters)")
        + " is too long:"
        " path longer than 256 octets (RFC 5321 4.5.3.1.3)",
    ),
    ("hostname = ", "invalid TOML: Invalid value (at end of document)"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[c[1][:60] for c in BAD])
def test_bad_config_exact_message(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value) == f"{FILE}: {message}"


def test_defaults_of_an_empty_config():
    cfg = parse_config("", FILE)
    assert cfg.path == FILE and cfg.exists is True
    assert cfg.hostname == "localhost"
    assert (cfg.postmaster.account, cfg.postmaster.mailbox) == ("postmaster", "Postmaster")
    assert cfg.host_tlsrpt is None and dict(cfg.domains) == {}
    assert cfg.no_outgoing_tls_reports is False
    assert cfg.outgoing_tls_reports_for_all_success is False
    assert cfg.no_outgoing_dmarc_reports is False
    assert cfg.dmarc_report_format == "rfc7489"
    assert cfg.quota_message_size == 0  # no limit by default
    assert (cfg.dns.resolvers, cfg.dns.trust_ad, cfg.dns.timeout) == ((), False, 5.0)
    assert cfg.tls.ca_files == ()
    assert (cfg.network.smtp_port, cfg.network.https_port) == (25, 443)
    assert (cfg.imap.password_file, cfg.imap.password_env) == (None, "")
    assert cfg.queue.delay_warning is None
    assert Config().exists is False


def test_defaults_inside_tables():
    text = (
        "[postmaster]\n[host_tlsrpt]\n[dns]\n[network]\n[imap]\n[queue]\n[tls]\n"
        "[domains.'a.example']\n"
        "[domains.'a.example'.tlsrpt]\n" + DEST + "[domains.'a.example'.dkim.selectors.s]\nprivate_key_file='/k'\n"
    )
    cfg = parse_config(text, FILE)
    assert (cfg.postmaster.account, cfg.postmaster.mailbox) == ("postmaster", "Postmaster")
    assert cfg.host_tlsrpt is not None
    assert (cfg.host_tlsrpt.localpart, cfg.host_tlsrpt.account, cfg.host_tlsrpt.mailbox) == (
        "tlsreports",
        "postmaster",
        "TLSRPT",
    )
    assert (cfg.dns.timeout, cfg.dns.trust_ad, cfg.network.smtp_port, cfg.network.https_port) == (5.0, False, 25, 443)
    assert cfg.queue.delay_warning is None and cfg.imap.password_env == ""
    d = cfg.domain("a.example")
    assert d is not None and d.disabled is False and d.dmarc is None
    assert d.tlsrpt is not None and d.tlsrpt.domain == "a.example" and d.tlsrpt.address == "x@a.example"
    s = d.dkim.selectors["s"]
    assert (s.name, s.private_key_file, s.algorithm, s.hash, s.canonicalization, s.headers) == (
        "s",
        Path("/k"),
        "ed25519",
        "sha256",
        "relaxed/relaxed",
        (),
    )
    assert d.dkim.sign == ("s",)


def test_host_tlsrpt_account_follows_postmaster():
    cfg = parse_config("[postmaster]\naccount='boss'\n[host_tlsrpt]\n", FILE)
    assert cfg.host_tlsrpt is not None and cfg.host_tlsrpt.account == "boss"


LIMITS_OK = [
    # (config text, attribute path, value): the largest/smallest values still accepted
    ("[dns]\ntimeout=300", "dns.timeout", 300.0),
    ("[dns]\ntimeout=0.001", "dns.timeout", 0.001),
    ("[network]\nsmtp_port=1\nhttps_port=65535", "network.https_port", 65535),
    ("[network]\nsmtp_port=1", "network.smtp_port", 1),
    ("[dns]\nresolvers=['127.0.0.1:65535']", "dns.resolvers", (("127.0.0.1", 65535),)),
    ("[dns]\nresolvers=['127.0.0.1:1', '10.0.0.1']", "dns.resolvers", (("127.0.0.1", 1), ("10.0.0.1", 53))),
    ("[dns]\ntimeout=7\ntrust_ad=true", "dns.timeout", 7.0),
    ("quota_message_size = 0", "quota_message_size", 0),
    ("quota_message_size = 1", "quota_message_size", 1),
    ("[postmaster]\naccount='" + "a" * 200 + "'", "postmaster.account", "a" * 200),
    ("[postmaster]\nmailbox='" + "m" * 200 + "'", "postmaster.mailbox", "m" * 200),
    ("[postmaster]\naccount='a.b'", "postmaster.account", "a.b"),
    ("[host_tlsrpt]\nlocalpart='" + "l" * 64 + "'", "host_tlsrpt.localpart", "l" * 64),
    ("[host_tlsrpt]\nlocalpart='a.b+c'", "host_tlsrpt.localpart", "a.b+c"),
    ("[postmaster]\naccount='e\u0301'", "postmaster.account", "\u00e9"),  # NFC
    ("[postmaster]\nmailbox='e\u0301'", "postmaster.mailbox", "\u00e9"),
    ("[host_tlsrpt]\nlocalpart='e\u0301'", "host_tlsrpt.localpart", "\u00e9"),
    ("dmarc_report_format = 'rfc9990'", "dmarc_report_format", "rfc9990"),
    ("no_outgoing_tls_reports = true", "no_outgoing_tls_reports", True),
    ("hostname = 'MAIL.Example.org'", "hostname", "mail.example.org"),
    ("[imap]\npassword_env='PW'", "imap.password_env", "PW"),
    ("[imap]\npassword_file='pw'", "imap.password_file", Path("/etc/m/pw")),
    ("[queue]\ndelay_warning=0", "queue.delay_warning", 0.0),
    ("[queue]\ndelay_warning='1d2h3m4s'", "queue.delay_warning", 93784.0),
    ("[queue]\ndelay_warning=' 0 '", "queue.delay_warning", 0.0),
]


@pytest.mark.parametrize("text,attr,value", LIMITS_OK, ids=[c[0][:50] for c in LIMITS_OK])
def test_accepted_limits(text, attr, value):
    obj = parse_config(text, FILE)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert obj == value


REJECTED_LIMITS = [
    ("[postmaster]\naccount='" + "a" * 201 + "'", "postmaster.account: invalid account name"),
    ("[postmaster]\nmailbox='" + "m" * 201 + "'", "postmaster.mailbox: invalid mailbox name"),
    ("[host_tlsrpt]\nlocalpart='" + "l" * 65 + "'", "host_tlsrpt.localpart: invalid localpart"),
    ("[postmaster]\naccount='" + "\u00e9" * 101 + "'", "postmaster.account: invalid account name"),  # 202 bytes
]


@pytest.mark.parametrize("text,prefix", REJECTED_LIMITS, ids=[c[1] for c in REJECTED_LIMITS])
def test_rejected_limits(text, prefix):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value).startswith(f"{FILE}: {prefix} ")


def test_long_input_is_clipped_in_the_error():
    with pytest.raises(ConfigError) as exc:
        parse_config("[postmaster]\naccount='" + "a" * 300 + "'", FILE)
    assert f"'{'a' * 199}... (302 characters): a name" in str(exc.value)


def test_dkim_sign_defaults_to_every_selector_in_order():
    text = SEL + "[domains.'a.example'.dkim.selectors.t]\nprivate_key_file='k2'\nheaders=['From','To']\n"
    d = parse_config(text, FILE).domain("a.example")
    assert d is not None and d.dkim.sign == ("s", "t")
    assert d.dkim.selectors["t"].headers == ("From", "To")
    assert d.dkim.selectors["t"].private_key_file == Path("/etc/m/k2")
    assert parse_config(text + "[domains.'a.example'.dkim]\nsign=['t']\n", FILE).domains["a.example"].dkim.sign == (
        "t",
    )


def test_domain_lookup():
    cfg = parse_config("[domains.'a.example']\n", FILE)
    assert cfg.domain("A.Example") is cfg.domains["a.example"]
    assert cfg.domain("b.example") is None
    assert cfg.domain("bad..name") is None


def test_local_zone_is_a_path_next_to_the_config():
    cfg = parse_config("[dns]\nlocal_zone = 'zone.txt'\nlocal_zone_secure = true\n", FILE)
    assert (cfg.dns.local_zone, cfg.dns.local_zone_secure) == (Path("/etc/m/zone.txt"), True)
    cfg = parse_config("[dns]\nlocal_zone = '/srv/z.txt'\n", FILE)
    assert (cfg.dns.local_zone, cfg.dns.local_zone_secure) == (Path("/srv/z.txt"), False)


def test_a_config_file_over_the_size_cap_is_refused_as_a_config(tmp_path):
    from moxcli.config import MAX_CONFIG_SIZE, load_config

    big = tmp_path / "c.toml"
    big.write_bytes(b"#" * (MAX_CONFIG_SIZE + 1))
    with pytest.raises(ConfigError) as exc:
        load_config(big)
    assert str(exc.value) == f"{big}: config larger than {MAX_CONFIG_SIZE} bytes, refused"

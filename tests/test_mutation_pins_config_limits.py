"""Config defaults and size/time limits (message size, archives, [delivery]) pinned exactly.

Written from the survivors of scripts/mutation.sh on moxcli/config.py: the default message
size limit (mox's 100 MiB) could have been 1 byte, the RFC 5321 §4.5.3.2 timeouts anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moxcli import config as c
from moxcli import values
from moxcli.config import Config, load_config, parse_config
from moxcli.errors import ConfigError

FILE = Path("/etc/m/c.toml")
MIB = 1024 * 1024


def test_message_size_and_archive_defaults():
    for cfg in (Config(), parse_config("", FILE)):
        assert cfg.max_message_size == 100 * MIB  # mox's default MaxMessageSize
        assert cfg.quota_message_size == 0
        assert cfg.archive_max_entries == 1_000_000
        assert cfg.archive_max_ratio == 200


def test_delivery_defaults_are_the_rfc_5321_timeouts():
    for d in (Config().delivery, parse_config("", FILE).delivery, parse_config("[delivery]\n", FILE).delivery):
        assert (d.greeting_timeout, d.command_timeout, d.data_init_timeout) == (300.0, 300.0, 120.0)
        assert (d.data_block_timeout, d.data_end_timeout, d.session_timeout) == (180.0, 600.0, 1800.0)
        assert d.tls_handshake_timeout == 60.0  # mox: one minute for the whole handshake
        assert (d.min_send_rate, d.max_reply_lines, d.max_reply_bytes, d.max_messages_per_connection) == (
            1024,
            100,
            65536,
            100,
        )


ACCEPTED = [
    ("max_message_size = 1", "max_message_size", 1),
    (f"max_message_size = {1 << 40}", "max_message_size", 1 << 40),
    ("archive_max_entries = 1", "archive_max_entries", 1),
    (f"archive_max_entries = {1 << 32}", "archive_max_entries", 1 << 32),
    ("archive_max_ratio = 1", "archive_max_ratio", 1),
    ("archive_max_ratio = 100000", "archive_max_ratio", 100000),
    ("[delivery]\ngreeting_timeout = 86400", "delivery.greeting_timeout", 86400.0),
    ("[delivery]\ndata_end_timeout = 0.5", "delivery.data_end_timeout", 0.5),
    ("[delivery]\nmax_reply_bytes = 512", "delivery.max_reply_bytes", 512),
    (f"[delivery]\nmin_send_rate = {1 << 30}", "delivery.min_send_rate", 1 << 30),
    ("[delivery]\nmax_messages_per_connection = 1", "delivery.max_messages_per_connection", 1),
]


@pytest.mark.parametrize("text,attr,value", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted(text, attr, value):
    obj = parse_config(text, FILE)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert obj == value
    assert type(obj) is type(value)


REJECTED = [
    ("max_message_size = 0", "max_message_size: must be between 1 and 2^40 bytes"),
    (f"max_message_size = {(1 << 40) + 1}", "max_message_size: must be between 1 and 2^40 bytes"),
    ("archive_max_entries = 0", "archive_max_entries: must be between 1 and 2^32"),
    (f"archive_max_entries = {(1 << 32) + 1}", "archive_max_entries: must be between 1 and 2^32"),
    ("archive_max_ratio = 0", "archive_max_ratio: must be between 1 and 100000"),
    ("archive_max_ratio = 100001", "archive_max_ratio: must be between 1 and 100000"),
    (
        "[delivery]\ngreeting_timeout = 0",
        "delivery.greeting_timeout: must be a number of seconds above 0 and at most 86400, got 0",
    ),
    (
        "[delivery]\nsession_timeout = 86400.5",
        "delivery.session_timeout: must be a number of seconds above 0 and at most 86400, got 86400.5",
    ),
    (
        "[delivery]\ncommand_timeout = nan",
        "delivery.command_timeout: must be a number of seconds above 0 and at most 86400, got nan",
    ),
    ("[delivery]\nmin_send_rate = 0", f"delivery.min_send_rate: must be an integer from 1 to {1 << 30}, got 0"),
    (
        f"[delivery]\nmax_reply_lines = {(1 << 30) + 1}",
        f"delivery.max_reply_lines: must be an integer from 1 to {1 << 30}, got {(1 << 30) + 1}",
    ),
    ("[delivery]\nmax_reply_bytes = 511", "delivery.max_reply_bytes: must be at least 512, got 511"),
    ("[delivery]\nmax_reply_lines = 1.5", "delivery.max_reply_lines: expected integer, got float 1.5"),
    ("[delivery]\nbogus = 1", "delivery.bogus: unknown key"),
]


@pytest.mark.parametrize("text,message", REJECTED, ids=[r[1][:60] for r in REJECTED])
def test_rejected(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value) == f"{FILE}: {message}"


def test_dkim_selector_defaults():
    s = c.DKIMSelector("s", Path("/k"))
    assert (s.algorithm, s.hash, s.canonicalization, s.headers) == ("ed25519", "sha256", "relaxed/relaxed", ())
    assert c.DKIMConfig().sign == () and dict(c.DKIMConfig().selectors) == {}
    d = c.DomainConfig("a.example")
    assert (d.tlsrpt, d.dmarc, d.disabled) == (None, None, False)


CONFIG_TYPES = [
    c.DKIMSelector("s", Path("/k")),
    c.DKIMConfig(),
    c.ReportDestination("l", "d", "a", "m"),
    c.DomainConfig("a.example"),
    c.Postmaster(),
    c.HostTLSRPT("l", "a", "m"),
    c.DNSConfig(),
    c.TLSConfig(),
    c.ImapConfig(),
    c.NetworkConfig(),
    c.QueueConfig(),
    c.DeliveryConfig(),
    Config(),
]


@pytest.mark.parametrize("obj", CONFIG_TYPES, ids=[type(o).__name__ for o in CONFIG_TYPES])
def test_config_objects_are_immutable(obj):
    name = values.fields(type(obj))[0]
    with pytest.raises(AttributeError):
        setattr(obj, name, getattr(obj, name))


def test_config_file_size_cap(tmp_path):
    ok = tmp_path / "ok.toml"
    ok.write_text("#" * (c.MAX_CONFIG_SIZE - 1) + "\n")
    assert load_config(ok).path == ok
    big = tmp_path / "big.toml"
    big.write_text("#" * c.MAX_CONFIG_SIZE + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(big)
    assert str(big) in str(exc.value)
    assert c.MAX_CONFIG_SIZE == MIB


def test_config_that_is_not_utf8(tmp_path):
    f = tmp_path / "c.toml"
    f.write_bytes(b"hostname = '\xff'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert str(exc.value).startswith(f"{f}: cannot read config: ")


def test_key_file_cap_is_64_kib():
    # read_regular callers (quickstart, DKIM signing) take their PEM cap from here: a 4096-bit
    # RSA key is about 3.3 KB, so 64 KiB leaves room without reading a stray large file.
    assert c.MAX_KEY_SIZE == 64 * 1024


def test_an_empty_config_file_means_the_built_in_defaults():
    # Commands without a config file use Config(); one with an empty file must behave the same.
    assert values.replace(parse_config("", FILE), path=None) == Config()
    tables = parse_config("[dns]\n[tls]\n[network]\n[imap]\n[queue]\n[delivery]\n[postmaster]\n", FILE)
    assert (tables.dns, tables.tls, tables.network) == (c.DNSConfig(), c.TLSConfig(), c.NetworkConfig())
    assert (tables.imap, tables.queue, tables.delivery) == (c.ImapConfig(), c.QueueConfig(), c.DeliveryConfig())
    assert tables.postmaster == c.Postmaster()
    d = parse_config("[domains.'a.example']\n[domains.'a.example'.dkim]\n", FILE).domains["a.example"]
    assert d == c.DomainConfig("a.example")
    assert parse_config("[domains.'a.example']\n", FILE).domains["a.example"].dkim == c.DKIMConfig()
    assert Config().hostname == "localhost" and Config().dmarc_report_format == "rfc7489"


def test_input_of_exactly_the_clip_limit_is_echoed_whole():
    name = "a.." + "b" * 195  # repr() is 200 characters: the limit
    with pytest.raises(ConfigError) as exc:
        parse_config(f"hostname = '{name}'", FILE)
    assert str(exc.value) == f"{FILE}: hostname: invalid domain '{name}': empty label"
    with pytest.raises(ConfigError) as exc:
        parse_config(f"hostname = '{name}b'", FILE)
    assert str(exc.value) == f"{FILE}: hostname: invalid domain '{name}b... (201 characters): empty label"


@pytest.mark.parametrize(
    "field,value,message",
    [
        (
            "localpart",
            "a b",
            "invalid localpart 'a b': printable characters only, no spaces, @, quotes or <>, at most 64 bytes",
        ),
        (
            "account",
            "a/b",
            "invalid account name 'a/b': a name (no / or \\, not . or .., printable, at most 200 bytes)",
        ),
        ("mailbox", "", "invalid mailbox name '': printable, at most 200 bytes"),
    ],
)
def test_report_destination_errors_name_the_field(field, value, message):
    fields = {"localpart": "x", "account": "a", "mailbox": "m", field: value}
    text = "[domains.'a.example'.tlsrpt]\n" + "".join(f"{k} = '{v}'\n" for k, v in fields.items())
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value) == f"{FILE}: domains.a.example.tlsrpt.{field}: {message}"


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "relaxed/simple", "simple/simple", "simple/relaxed"])
def test_every_dkim_canonicalization(canon):
    text = f"[domains.'a.example'.dkim.selectors.s]\nprivate_key_file='k'\ncanonicalization='{canon}'\n"
    assert parse_config(text, FILE).domains["a.example"].dkim.selectors["s"].canonicalization == canon


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", 64 << 20),  # the default: stores up to 64 MiB are sealed
        ("[store]\n", 64 << 20),
        ("[store]\nseal_max_size = 0", 0),  # never seal
        (f"[store]\nseal_max_size = {1 << 40}", 1 << 40),
    ],
)
def test_seal_max_size_default_and_bounds(text, want):
    assert parse_config(text, FILE).store.seal_max_size == want


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[store]\nseal_max_size = -1", "store.seal_max_size: must be between 0 (no seal) and 2^40 bytes, got -1"),
        (
            f"[store]\nseal_max_size = {(1 << 40) + 1}",
            f"store.seal_max_size: must be between 0 (no seal) and 2^40 bytes, got {(1 << 40) + 1}",
        ),
        ("[store]\nseal_max_size = '1'", "store.seal_max_size: expected integer, got string '1'"),
        ("[store]\nseal = 1", "store.seal: unknown key"),
    ],
)
def test_seal_max_size_refused(text, error):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, FILE)
    assert str(exc.value) == f"{FILE}: {error}"


@pytest.mark.parametrize(("value", "want"), [("0.5", 0.5), ("1", 1.0), ("600", 600.0)])
def test_mtasts_fetch_timeout_accepted(value, want):
    assert parse_config(f"[mtasts]\nfetch_timeout = {value}", FILE).mtasts.fetch_timeout == want


@pytest.mark.parametrize("value", ["0", "-1", "600.5"])
def test_mtasts_fetch_timeout_refused(value):
    with pytest.raises(ConfigError) as exc:
        parse_config(f"[mtasts]\nfetch_timeout = {value}", FILE)
    assert str(exc.value) == (
        f"{FILE}: mtasts.fetch_timeout: must be a number of seconds above 0 and at most 600, got {value}"
    )


def test_store_config_is_a_frozen_value():
    """Config parts are values shared by every command of a run: none can be changed in place."""
    store = parse_config("[store]\nseal_max_size = 0", FILE).store
    with pytest.raises(AttributeError, match="cannot assign to field 'seal_max_size'"):
        store.seal_max_size = 1  # type: ignore[misc]
    assert hash(store) == hash(c.StoreConfig(seal_max_size=0))

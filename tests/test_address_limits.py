"""RFC 5321 4.5.3.1 size limits (local-part 64 octets, domain 255, path 256) wherever an
address is taken: queue add --from/--to, the config's report destinations, dmarc record's
addresses, suppress add, and rua addresses when sending reports; exit 2 naming the input
and the limit, the echoed input capped."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from moxcli.cli import cli
from moxcli.delivery.queue import split_address
from moxcli.errors import UsageError
from moxcli.store import Store
from moxcli.store.schema import QUEUE

MSG = b"From: <a@moxcli.test>\nSubject: limits\n\nhello\n"
LABEL = "a" * 63


@pytest.mark.parametrize(
    "address,error",
    [
        ("x" * 64 + "@example.org", None),
        ("x" * 65 + "@example.org", r"local-part longer than 64 octets \(RFC 5321 4\.5\.3\.1\.1\)"),
        ("é" * 32 + "@example.org", None),  # 64 octets in UTF-8
        ("é" * 32 + "x@example.org", r"local-part longer than 64 octets"),  # 65 octets, 33 characters
        ("x@" + ".".join([LABEL] * 3) + ".example.org", None),  # domain 203 octets, path 207
        (
            "x" * 64 + "@" + ".".join([LABEL] * 3) + ".example",
            r"path longer than 256 octets \(RFC 5321 4\.5\.3\.1\.3\)",
        ),
    ],
)
def test_split_address_limits(address, error):
    if error is None:
        assert split_address(address)[0] == address.rpartition("@")[0]
    else:
        with pytest.raises(UsageError, match=error):
            split_address(address)


def test_domain_over_255_octets_is_named():
    with pytest.raises(UsageError, match=r"domain longer than 255 octets \(RFC 5321 4\.5\.3\.1\.2\)"):
        split_address("x@" + "a" * 300 + ".org")


def test_path_limit_counts_the_wire_form():
    """An IDN domain is sent as A-labels for an ASCII localpart: the path is measured so."""
    local = "x" * 64
    domain = ".".join(["bücher" + "a" * 35] * 4) + ".org"  # each label grows by xn-- and punycode
    address = f"{local}@{domain}"
    assert len(address.encode()) + 2 <= 256
    with pytest.raises(UsageError, match=r"path longer than 256 octets"):
        split_address(address)


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_queue_add_refuses_a_huge_localpart_with_exit_2(data_dir, option):
    huge = "x" * 100_000 + "@example.org"
    other = "--to" if option == "--from" else "--from"
    r = CliRunner().invoke(
        cli, ["--data", str(data_dir), "queue", "add", option, huge, other, "b@example.org", "-"], input=MSG
    )
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert line.startswith("moxcli: invalid address 'xxx") and line.endswith(
        "... (100012 characters): local-part longer than 64 octets (RFC 5321 4.5.3.1.1)"
    )
    assert len(line) < 250 and "\n" not in line
    with Store.open(data_dir) as store, store.read() as tx:
        assert tx.count(QUEUE) == 0


def test_dmarc_report_recipients_over_the_limits_are_dropped():
    from moxcli.dmarc.record import ReportURI
    from moxcli.dmarc.verify import RuaCheck
    from moxcli.reports.dmarc import recipients_of

    uris = (ReportURI("mailto:" + "l" * 65 + "@example.net"), ReportURI("mailto:r@example.net"))
    got = recipients_of((RuaCheck("rua", "authorized", uris),))
    assert [r.address for r in got] == ["r@example.net"]


LONG_DOMAIN = ".".join([LABEL] * 3) + ".example"  # 199 octets: with a 64-octet localpart, a 266-octet path


@pytest.mark.parametrize(
    ("local", "domain", "why"),
    [
        ("x" * 64, "example.org", None),
        ("x" * 65, "example.org", "local-part longer than 64 octets (RFC 5321 4.5.3.1.1)"),
        ("x", "a" * 256, "domain longer than 255 octets (RFC 5321 4.5.3.1.2)"),
        ("x" * 53, LONG_DOMAIN, None),  # 53 + 1 + 199 + 2 = 255
        ("x" * 54, LONG_DOMAIN, None),  # 256: the limit itself
        ("x" * 55, LONG_DOMAIN, "path longer than 256 octets (RFC 5321 4.5.3.1.3)"),
    ],
)
def test_size_problem(local, domain, why):
    from moxcli.addrlimits import size_problem

    assert size_problem(local, domain) == why


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        (
            f"[domains.'{LONG_DOMAIN}'.tlsrpt]\nlocalpart = '{'x' * 64}'\naccount = 'a'\nmailbox = 'TLS'\n",
            "tlsrpt.localpart",
        ),
        (
            f"[domains.'{LONG_DOMAIN}'.dmarc]\nlocalpart = '{'x' * 64}'\naccount = 'a'\nmailbox = 'D'\n",
            "dmarc.localpart",
        ),
        (f"hostname = '{LONG_DOMAIN}'\n[host_tlsrpt]\nlocalpart = '{'x' * 64}'\n", "host_tlsrpt.localpart"),
    ],
)
def test_config_report_addresses_over_the_path_limit_are_refused(toml, key):
    from pathlib import Path

    from moxcli.config import parse_config
    from moxcli.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        parse_config(toml, Path("m.toml"))
    text = str(exc.value)
    assert text.startswith("m.toml: ") and key in text, text
    assert text.endswith("is too long: path longer than 256 octets (RFC 5321 4.5.3.1.3)"), text


def test_config_report_address_at_the_limit_is_accepted():
    from pathlib import Path

    from moxcli.config import parse_config

    cfg = parse_config(
        f"[domains.'{LONG_DOMAIN}'.dmarc]\nlocalpart = '{'x' * 54}'\naccount = 'a'\nmailbox = 'D'\n", Path("m.toml")
    )
    assert cfg.domain(LONG_DOMAIN).dmarc.address == "x" * 54 + "@" + LONG_DOMAIN


def test_dmarc_record_refuses_an_address_over_the_limits(tmp_path, data_dir):
    import json

    from helpers.dmarc import vector_eval

    line = vector_eval(1_700_000_000, addresses=["mailto:" + "r" * 65 + "@example.org"])
    f = tmp_path / "ev.jsonl"
    f.write_text(json.dumps(line) + "\n")
    r = CliRunner().invoke(cli, ["--data", str(data_dir), "dmarc", "record", str(f)])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "addresses[0]" in line and str(f) in line, line
    assert line.endswith("is too long: local-part longer than 64 octets (RFC 5321 4.5.3.1.1)"), line


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("x" * 65 + "@example.org", "local-part longer than 64 octets (RFC 5321 4.5.3.1.1)"),
        ("x" * 64 + "@" + LONG_DOMAIN, "path longer than 256 octets (RFC 5321 4.5.3.1.3)"),
    ],
)
@pytest.mark.parametrize("kind", ["tls", "dmarc"])
def test_suppress_add_refuses_an_address_over_the_limits(data_dir, kind, address, why):
    r = CliRunner().invoke(cli, ["--data", str(data_dir), "suppress", kind, "add", address])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert line.startswith("moxcli: invalid address 'xxx") and line.endswith(why), line
    assert len(line) < 300 and "\n" not in line

"""RFC 5321 4.5.3.1 size limits on the addresses moxcli queues for sending (queue add
--from/--to): local-part 64 octets, domain 255, path 256; exit 2 naming the limit, the
echoed input capped."""

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

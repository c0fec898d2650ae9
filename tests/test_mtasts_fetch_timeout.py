"""`[mtasts] fetch_timeout`: the one deadline of a whole MTA-STS policy fetch, configurable and
used wherever a policy is fetched (fetch mtasts, check domain, mtasts refresh, delivery),
against a real HTTPS server on loopback that drips its answer one byte at a time (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import lab_config_text
from helpers.hostile_https import HostileHTTPS

from moxcli import values
from moxcli.config import ConfigError, parse_config

MOXCLI = str(Path(sys.executable).parent / "moxcli")
DEADLINE = "timeout: no complete answer within 1.5 s (one deadline for the whole fetch)"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0", "got 0"),
        ("-1", "got -1"),
        ("601", "got 601"),
        ("1e308", "got 1e+308"),
        ("nan", "got nan"),
        ("inf", "got inf"),
        ("true", "got True"),
        ('"60s"', "expected integer or float, got string '60s'"),
    ],
)
def test_fetch_timeout_is_validated_like_the_other_durations(value, why):
    with pytest.raises(ConfigError) as exc:
        parse_config(f"[mtasts]\nfetch_timeout = {value}\n", Path("/c.toml"))
    assert str(exc.value).startswith("/c.toml: mtasts.fetch_timeout: ")
    assert str(exc.value).endswith(why)


def test_fetch_timeout_default_and_value():
    assert parse_config("", Path("/c.toml")).mtasts.fetch_timeout == 60.0
    assert parse_config("[mtasts]\nfetch_timeout = 2.5\n", Path("/c.toml")).mtasts.fetch_timeout == 2.5
    with pytest.raises(ConfigError) as exc:
        parse_config("[mtasts]\nfetch_timout = 2\n", Path("/c.toml"))
    assert "fetch_timout" in str(exc.value)


def test_bad_fetch_timeout_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "moxcli.toml"
    cfg.write_text("[mtasts]\nfetch_timeout = nan\n")
    r = subprocess.run([MOXCLI, "--config", str(cfg), "fetch", "mtasts", "sts.test"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"moxcli: {cfg}: mtasts.fetch_timeout: must be a number of seconds above 0 and at most 600, got nan"
    ]


@pytest.fixture
def dripping(lab, tmp_path):
    """A data dir whose config sends MTA-STS fetches to a server dripping its body (one byte
    every 0.3 s of a 60,000-byte body), with fetch_timeout = 1.5."""
    srv = HostileHTTPS(lab, "body")
    data = tmp_path / "data"
    data.mkdir()
    text = lab_config_text(lab, "[mtasts]\nfetch_timeout = 1.5\n")
    (data / "moxcli.toml").write_text(text.replace(lab["LAB_HTTPS_PORT"], str(srv.port)))
    try:
        yield data
    finally:
        srv.close()


def test_fetch_mtasts_ends_at_the_configured_deadline(dripping):
    port = dripping.joinpath("moxcli.toml").read_text().split("https_port = ")[1].split()[0]
    r = subprocess.run(
        [MOXCLI, "--data", str(dripping), "fetch", "mtasts", "--no-cache", "sts.test"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: https://mta-sts.sts.test/.well-known/mta-sts.txt (port {port}): {DEADLINE}"
    ]


def test_check_domain_ends_the_policy_fetch_at_the_configured_deadline(dripping):
    r = subprocess.run(
        [MOXCLI, "--data", str(dripping), "check", "domain", "--no-connect", "--json", "sts.test"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    port = dripping.joinpath("moxcli.toml").read_text().split("https_port = ")[1].split()[0]
    (posture,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert posture["domain"] == "sts.test"
    assert posture["mtasts"]["errors"] == [
        {
            "code": "cannot-fetch-policy",
            "message": f"https://mta-sts.sts.test/.well-known/mta-sts.txt (port {port}): {DEADLINE}",
        }
    ]


def test_delivery_policy_fetch_uses_the_configured_deadline(lab, dripping):
    """Delivery asks the policy cache with FetchOptions.from_config (moxcli.delivery.deliver):
    a first contact ends at fetch_timeout and delivery goes on as without MTA-STS (RFC 8461 §3.3)."""
    from moxcli.config import load_config
    from moxcli.dns import Resolver
    from moxcli.mtasts.cache import policy_for_delivery
    from moxcli.mtasts.fetch import FetchOptions
    from moxcli.store import Store

    cfg = load_config(dripping / "moxcli.toml", required=True)
    options = FetchOptions.from_config(cfg)
    assert options.timeout == 1.5
    with Store.open(dripping) as store:
        outcome = policy_for_delivery(store, Resolver.from_config(cfg.dns), "sts.test", options)
    assert outcome.policy is None
    assert DEADLINE in str(outcome.error)


def test_mtasts_refresh_ends_each_fetch_at_the_configured_deadline(lab, dripping):
    """A cached policy due for a refresh whose record id changed is fetched again: from the
    dripping server, the refresh ends at fetch_timeout and keeps the cached policy."""

    from moxcli.mtasts import db

    good = dripping.parent / "good"
    good.mkdir()
    (good / "moxcli.toml").write_text(lab_config_text(lab))
    r = subprocess.run([MOXCLI, "--data", str(good), "fetch", "mtasts", "sts.test"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import shutil

    shutil.copytree(good / "store", dripping / "store")
    from moxcli.store import Store

    with Store.open(dripping) as store, store.write() as tx:
        (row,) = list(db.rows(tx))
        db.put(tx, values.replace(row, record_id="old", last_update=row.last_update - 86400))
    r = subprocess.run(
        [MOXCLI, "--data", str(dripping), "mtasts", "refresh", "--spread", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    port = dripping.joinpath("moxcli.toml").read_text().split("https_port = ")[1].split()[0]
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0] == {
        "type": "domain",
        "domain": "sts.test",
        "action": "error",
        "message": f"https://mta-sts.sts.test/.well-known/mta-sts.txt (port {port}): {DEADLINE}",
        "valid_end": None,
    }

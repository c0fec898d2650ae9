"""`moxcli suppress tls|dmarc add|list|remove` through click."""

from __future__ import annotations

import json
import time

import pytest

from moxcli.cli import cli
from moxcli.cli.suppress import _parse_until
from moxcli.errors import UsageError


def run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), "suppress", *args], env={"COLUMNS": "200"})


@pytest.mark.parametrize("kind", ["tls", "dmarc"])
def test_add_list_remove(runner, data_dir, kind):
    r = run(runner, data_dir, kind, "add", "Rep@Example.ORG", "--until", "2999-01-31", "--comment", "asked", "--json")
    assert r.exit_code == 0, r.output
    e = json.loads(r.stdout)
    assert set(e) == {"address", "inserted", "until", "comment"}
    assert e["address"] == "rep@example.org" and e["comment"] == "asked"
    assert e["until"] == "2999-02-01T00:00:00Z"  # end of 2999-01-31 UTC
    assert run(runner, data_dir, kind, "add", "old@example.org", "--until", "2000-01-01").exit_code == 0
    r = run(runner, data_dir, kind, "add", "forever@example.org")
    assert r.exit_code == 0 and "until never" in r.stderr
    r = run(runner, data_dir, kind, "list", "--json")
    rows = json.loads(r.stdout)
    assert [(x["address"], x["active"]) for x in rows] == [
        ("forever@example.org", True),
        ("old@example.org", False),
        ("rep@example.org", True),
    ]
    assert set(rows[0]) == {"address", "inserted", "until", "comment", "active"}
    r = run(runner, data_dir, kind, "list")
    assert "expired" in r.stdout and "rep@example.org" in r.stdout and "asked" in r.stdout
    r = run(runner, data_dir, kind, "remove", "REP@example.org")
    assert r.exit_code == 0
    r = run(runner, data_dir, kind, "remove", "rep@example.org")
    assert r.exit_code == 2 and r.stderr == f"moxcli: rep@example.org: not on the {kind} suppression list\n"
    other = "dmarc" if kind == "tls" else "tls"
    assert json.loads(run(runner, data_dir, other, "list", "--json").stdout) == []


def test_invalid_address_and_until(runner, data_dir):
    r = run(runner, data_dir, "tls", "add", "not-an-address")
    assert r.exit_code == 2 and "invalid address 'not-an-address'" in r.stderr
    r = run(runner, data_dir, "tls", "add", "a@example.org", "--until", "soon")
    assert r.exit_code == 2 and "--until 'soon'" in r.stderr


def test_parse_until():
    assert _parse_until(None) is None
    assert _parse_until("2024-03-01") == 1709337600.0
    assert _parse_until("2024-03-01T12:00") == 1709294400.0
    before = time.time()
    until = _parse_until("30d")
    after = time.time()
    assert before + 30 * 86400 <= until <= after + 30 * 86400
    with pytest.raises(UsageError):
        _parse_until("31-12-2024")

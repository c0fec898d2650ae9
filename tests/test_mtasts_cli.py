"""`moxcli fetch mtasts --record/--policy-file`, `mtasts list` and usage errors: no network."""

import json

import pytest

from moxcli.cli import cli
from moxcli.domain import parse_domain
from moxcli.mtasts.cache import upsert
from moxcli.mtasts.fetch import Fetched
from moxcli.mtasts.policy import parse_policy
from moxcli.store import Store

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmx: *.example.net\r\nmax_age: 1209600\r\n"


def run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), *args])


@pytest.mark.parametrize(
    "text,code,needle",
    [
        ("v=STSv1; id=20240101T000000", 0, None),
        ("v=STSv1 ; id=1", 0, ("version-not-first", "does not start with exactly")),
        ("v=STSv1; id=2024-01-01", 1, ("record-syntax-error", "leftover")),
        ("v=STSv1; id=a; id=b", 1, ("record-syntax-error", "repeated id")),
        ("v=STSv1", 1, ("record-syntax-error", "not an MTA-STS record")),
    ],
)
def test_record_lint(runner, tmp_path, text, code, needle):
    r = run(runner, tmp_path, "fetch", "mtasts", "--record", text, "--json")
    assert r.exit_code == code, r.output
    j = json.loads(r.stdout)
    assert j["valid"] == (code == 0) and j["record_text"] == text
    if code == 0:
        assert j["record"]["id"] and j["record"]["extensions"] == []
    if needle:
        assert any(f["code"] == needle[0] and needle[1] in f["message"] for f in j["errors"] + j["warnings"]), j


@pytest.mark.parametrize(
    "text,code,needle",
    [
        (GOOD, 0, None),
        (GOOD.replace("\r\n", "\n"), 0, ("policy-lf-lines", "CRLF")),
        (GOOD.replace("1209600", "3600"), 0, ("max-age-short", "one day or less")),
        (GOOD.replace("enforce", "testing"), 0, ("mode-testing", "mode testing")),
        (GOOD + "\r\n", 1, ("policy-syntax-error", "line 6")),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", 1, ("policy-syntax-error", "missing mx")),
        ("version: STSv1\nmode: enforce\nmx: \u00e9.example\nmax_age: 1\n", 1, ("policy-syntax-error", "A labels")),
    ],
)
def test_policy_file_lint(runner, tmp_path, text, code, needle):
    f = tmp_path / "mta-sts.txt"
    f.write_bytes(text.encode())
    r = run(runner, tmp_path, "fetch", "mtasts", "--policy-file", str(f), "--json")
    assert r.exit_code == code, r.output
    j = json.loads(r.stdout)
    assert j["policy_text"] == text
    if code == 0:
        assert set(j["policy"]) >= {"version", "mode", "mx", "max_age"} and j["policy"]["version"] == "STSv1"
    if needle:
        assert any(f["code"] == needle[0] and needle[1] in f["message"] for f in j["errors"] + j["warnings"]), j


def test_policy_file_human(runner, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text(GOOD)
    r = run(runner, tmp_path, "fetch", "mtasts", "--policy-file", str(f))
    assert r.exit_code == 0
    assert "mx.example.org, *.example.net" in r.stdout and "enforce" in r.stdout


def test_record_and_policy_together(runner, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("garbage")
    r = run(runner, tmp_path, "fetch", "mtasts", "--policy-file", str(f), "--record", "v=STSv1; id=1")
    assert r.exit_code == 1 and "policy syntax error" in r.stderr


def test_usage(runner, tmp_path):
    r = run(runner, tmp_path, "fetch", "mtasts")
    assert r.exit_code == 2
    r = run(runner, tmp_path, "fetch", "mtasts", "--policy-file", str(tmp_path / "missing"))
    assert r.exit_code == 2
    r = run(runner, tmp_path, "fetch", "mtasts", "bad..domain")
    assert r.exit_code == 2 and "invalid domain" in r.stderr


def test_list(runner, tmp_path):
    data = tmp_path / "data"
    with Store.open(data) as store:
        upsert(
            store, parse_domain("a.example"), "1", Fetched(parse_policy(GOOD), GOOD, "", "text/plain"), 1_700_000_000
        )
        upsert(store, parse_domain("b.example"), "", None, 1_700_000_100)
    r = run(runner, data, "mtasts", "list", "--json")
    assert r.exit_code == 0
    j = json.loads(r.stdout)
    assert [x["domain"] for x in j] == ["b.example", "a.example"]
    assert j[1]["mx"] == ["mx.example.org", "*.example.net"] and j[1]["mode"] == "enforce" and j[1]["record_id"] == "1"
    assert j[0]["backoff"] is True and j[0]["valid_end"] == "2023-11-14T22:20:00Z"
    r = runner.invoke(cli, ["--data", str(data), "mtasts", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "a.example" in r.stdout and "yes" in r.stdout


def test_list_without_store(runner, tmp_path):
    r = run(runner, tmp_path / "nothing", "mtasts", "list")
    assert r.exit_code == 2 and "no moxcli data directory at" in r.stderr


def test_refresh_empty_cache(runner, tmp_path):
    r = run(runner, tmp_path / "d", "mtasts", "refresh", "--spread", "0", "--json")
    assert r.exit_code == 0
    assert [json.loads(line) for line in r.stdout.splitlines()] == [{"type": "summary", "domains": 0, "actions": {}}]

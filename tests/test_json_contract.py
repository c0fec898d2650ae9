"""The JSON contract (docs/json.md) over the commands' real output: each validated against its
schema in docs/schemas/, the value and key rules checked, and error paths as error objects."""

import json
import re

import pytest
from conftest import ROOT
from jsonschema import Draft202012Validator

from moxcli.cli import cli
from moxcli.datatools.gentest import generate

SCHEMAS = ROOT / "docs" / "schemas"

# schema name, NDJSON?, arguments (all run with --json against the gentestdata demo, offline)
COMMANDS = [
    ("tlsresults-list", False, ["tlsresults", "list"]),
    ("tlsresults-list", False, ["tlsresults", "list", "--day", "2026-12-01"]),
    ("queue-list", False, ["queue", "list"]),
    ("queue-show", False, ["queue", "show", "4"]),
    ("domains-list", False, ["domains", "list"]),
    ("tlsreports-list", False, ["tlsreports", "list"]),
    ("tlsreports-show", False, ["tlsreports", "show", "1"]),
    ("dmarcreports-list", False, ["dmarcreports", "list"]),
    ("dmarcreports-show", False, ["dmarcreports", "show", "1"]),
    ("dmarc-list", False, ["dmarc", "list"]),
    ("dmarc-list-stats", False, ["dmarc", "list", "--stats"]),
    ("mtasts-list", False, ["mtasts", "list"]),
    ("suppress-list", False, ["suppress", "tls", "list"]),
    ("suppress-list", False, ["suppress", "dmarc", "list"]),
    ("account-list", False, ["account", "list"]),
    ("mailbox-list", False, ["mailbox", "list", "test1"]),
    ("message-list", False, ["message", "list", "test1", "Inbox"]),
    ("verifydata", False, ["verifydata"]),
    ("dns-records", False, ["dns", "records"]),
    ("dns-records-mta-sts-policy", False, ["dns", "records", "--mta-sts-policy"]),
    ("send-dmarcreports", False, ["send-dmarcreports", "--dry-run"]),
    ("send-tlsreports", True, ["send-tlsreports", "--dry-run"]),
    ("check-tlsrpt", False, ["check", "tlsrpt", "--record", "v=TLSRPTv1; rua=mailto:tls@example.org"]),
    ("check-tlsrpt", False, ["check", "tlsrpt", "--record", "v=TLSRPTv1; rua=ftp://x"]),
]

# Standard documents embedded whole keep their own keys (docs/json.md, Keys).
EMBEDDED = {"report", "results", "policy_published", "dkim_results", "spf_results"}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIMEISH = re.compile(r"^\d{4}-\d\d-\d\dT")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("contract") / "demo"
    generate(d)
    return d


def _schema(name):
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _contract_problems(obj, path=""):
    """Key and value rules of docs/json.md, outside embedded standard documents."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            where = f"{path}.{k}"
            if not SNAKE.match(k):
                out.append(f"{where}: key not snake_case")
            if k in EMBEDDED:
                continue
            if v == "":
                out.append(f'{where}: "" (unknown is null)')
            if isinstance(v, float) and v > 1e8:
                out.append(f"{where}: Unix seconds {v}")
            if isinstance(v, str) and re.fullmatch(r"\d{8}", v):
                out.append(f"{where}: YYYYMMDD {v}")
            if isinstance(v, str) and TIMEISH.match(v) and not TIME.match(v):
                out.append(f"{where}: time not RFC 3339 UTC whole seconds: {v}")
            out += _contract_problems(v, where)
    elif isinstance(obj, list):
        for v in obj:
            out += _contract_problems(v, f"{path}[]")
    return out


def _run(runner, demo, args):
    return runner.invoke(cli, ["--data", str(demo), *args, "--json"])


@pytest.mark.parametrize(
    ("schema", "ndjson", "args"), COMMANDS, ids=lambda x: " ".join(x) if isinstance(x, list) else x
)
def test_command_output_follows_its_schema_and_the_contract(runner, demo, schema, ndjson, args):
    r = _run(runner, demo, args)
    assert r.exit_code in (0, 1), r.output
    docs = [json.loads(line) for line in r.stdout.splitlines()] if ndjson else [json.loads(r.stdout)]
    assert docs
    validator = _schema(schema)
    for doc in docs:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
        assert _contract_problems(doc) == []


def test_writing_commands_follow_their_schemas(runner, tmp_path, demo):
    """init, gentestdata and backup write a new directory each; their --json output as above."""
    runs = [
        ("init", ["--data", str(tmp_path / "i"), "init", "example.org", "--hostname", "mail.example.org"]),
        ("gentestdata", ["gentestdata", str(tmp_path / "g")]),
        ("backup", ["--data", str(demo), "backup", str(tmp_path / "b")]),
    ]
    for schema, args in runs:
        r = runner.invoke(cli, [*args, "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert [e.message for e in _schema(schema).iter_errors(doc)] == [], schema
        assert _contract_problems(doc) == [], schema


def test_every_schema_is_used_and_valid():
    used = {name for name, _, _ in COMMANDS} | {"error", "init", "gentestdata", "backup"}
    on_disk = {p.stem for p in SCHEMAS.glob("*.json")}
    assert on_disk == used
    for name in on_disk:
        _schema(name)


ERRORS = [
    ("no-data-dir", 2, ["tlsresults", "list"], "nodata"),
    ("no-data-dir", 2, ["verifydata"], "nodata"),
    ("bad-day", 2, ["tlsresults", "list", "--day", "2026-02-30"], "demo"),
    ("bad-domain", 2, ["tlsreports", "list", "--domain", "bad..example"], "demo"),
    ("bad-domain", 2, ["dns", "records", "bad..example"], "demo"),
    ("usage", 2, ["queue", "list", "--no-such-option"], "demo"),
    ("usage", 2, ["tlsreports", "show", "not-a-number"], "demo"),
    ("not-found", 2, ["tlsreports", "show", "99"], "demo"),
    ("usage", 2, ["check", "tlsrpt"], "demo"),
]


@pytest.mark.parametrize(
    ("code", "exit_code", "args", "where"), ERRORS, ids=lambda x: " ".join(x) if isinstance(x, list) else str(x)
)
def test_errors_are_an_object_on_stdout_and_one_line_on_stderr(runner, demo, tmp_path, code, exit_code, args, where):
    data = demo if where == "demo" else tmp_path / "nodata"
    r = runner.invoke(cli, ["--data", str(data), *args, "--json"])
    assert r.exit_code == exit_code
    obj = json.loads(r.stdout)
    assert list(_schema("error").iter_errors(obj)) == []
    assert obj["error"]["code"] == code
    assert r.stderr.splitlines()[-1] == f"moxcli: {obj['error']['message']}"


PIPED = [
    (["tlsresults", "list"], 9),
    (["queue", "list"], 8),
    (["tlsreports", "list"], 8),
    (["mtasts", "list"], 8),
    (["account", "list"], 5),
    (["suppress", "tls", "list"], 5),
    (["dmarc", "list"], 9),
]


@pytest.mark.parametrize(("args", "columns"), PIPED, ids=lambda x: " ".join(x) if isinstance(x, list) else str(x))
def test_tables_through_a_pipe_are_one_row_per_line(demo, args, columns):
    """Off a terminal (a pipe, cron mail) and a narrow COLUMNS: whole rows, never folded."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "40", "MOXCLI_DATA": str(demo)}
    moxcli = [sys.executable, "-m", "moxcli"]
    rows = json.loads(subprocess.run([*moxcli, *args, "--json"], capture_output=True, text=True, env=env).stdout)
    table = subprocess.run([*moxcli, *args], capture_output=True, text=True, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 1 + len(rows)
    assert "\x1b[" not in table.stdout  # no colour off a terminal
    assert max(len(line) for line in lines) > 40
    tsv = subprocess.run([*moxcli, *args, "--format", "tsv"], capture_output=True, text=True, env=env).stdout
    assert [len(line.split("\t")) for line in tsv.splitlines()] == [columns] * (1 + len(rows))

"""The JSON contract (docs/json.md) over the commands' real output: each validated against its
schema in docs/schemas/, the value and key rules checked, and error paths as error objects."""

import json
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from conftest import ROOT
from helpers.commands import leaf_commands
from helpers.jsoncontract import SCHEMAS, contract_problems, schema

from moxcli import values
from moxcli.cli import cli
from moxcli.datatools.gentest import generate


@dataclass(frozen=True)
class Case:
    """One `--json` run: the command path (as the registry names it), its schema, arguments.

    ``where``: `demo` (the gentestdata demo, read only), `demo-copy` (a copy of it, for commands
    that write), `fresh` (an empty directory), `lab` (a data dir whose config points at the lab).
    ``setup`` lists commands run first (without --json) in the same data directory.
    """

    command: str
    schema: str
    args: tuple[str, ...]
    where: str = "demo"
    ndjson: bool = False
    exit_code: int = 0
    setup: tuple[tuple[str, ...] | Callable[[Path], None], ...] = ()
    stdin: str | None = None


def age_mtasts_policies(data: Path) -> None:
    """Cached policies as if fetched a day ago, so that `mtasts refresh` checks them."""
    from moxcli.mtasts import db
    from moxcli.store import Store

    with Store.open(data) as store:
        store.update(
            lambda tx: [
                db.put(tx, values.replace(r, last_update=r.last_update - 86400, valid_end=r.valid_end - 86400))
                for r in db.rows(tx)
            ]
        )


REALWORLD = ROOT / "testdata" / "realworld"
DMARC_EVAL = {
    "policy_domain": "moxcli.example",
    "evaluated": "2026-12-02T10:30:00Z",
    "interval_hours": 24,
    "addresses": ["mailto:dmarc@moxcli.example"],
    "policy_published": {"domain": "moxcli.example", "p": "reject", "sp": "reject", "pct": 100},
    "source_ip": "192.0.2.10",
    "disposition": "none",
    "aligned_dkim_pass": True,
    "aligned_spf_pass": True,
    "envelope_to": "moxcli.example",
    "envelope_from": "sender.example",
    "header_from": "sender.example",
}
QUEUED = ("queue", "add", "--from", "postmaster@mail.moxcli.test", "--to", "someone@sts.test", "-")

CASES = [
    Case("tlsresults list", "tlsresults-list", ("tlsresults", "list")),
    Case("tlsresults list", "tlsresults-list", ("tlsresults", "list", "--day", "2026-12-01")),
    Case("queue list", "queue-list", ("queue", "list")),
    Case("queue show", "queue-show", ("queue", "show", "4")),
    Case("queue add", "queue-add", QUEUED, "demo-copy", stdin="Subject: hi\r\n\r\nhello\r\n"),
    Case("queue run", "queue-run", ("queue", "run"), "lab", True, 0, (QUEUED,), "Subject: hi\r\n\r\nhello\r\n"),
    Case("domains list", "domains-list", ("domains", "list")),
    Case("tlsreports list", "tlsreports-list", ("tlsreports", "list")),
    Case("tlsreports show", "tlsreports-show", ("tlsreports", "show", "1")),
    Case("tlsreports summary", "tlsreports-summary", ("tlsreports", "summary")),
    Case(
        "tlsreports import",
        "reports-import",
        ("tlsreports", "import", str(REALWORLD / "tlsrpt")),
        "fresh",
        True,
        1,  # expect.json is not a report: rejected
    ),
    Case("dmarcreports list", "dmarcreports-list", ("dmarcreports", "list")),
    Case("dmarcreports show", "dmarcreports-show", ("dmarcreports", "show", "1")),
    Case("dmarcreports summary", "dmarcreports-summary", ("dmarcreports", "summary")),
    Case("dmarcreports import", "reports-import", ("dmarcreports", "import", str(REALWORLD / "dmarc")), "fresh", True),
    Case(
        "reports import",
        "reports-import",
        ("reports", "import", str(REALWORLD / "tlsrpt"), str(REALWORLD / "dmarc")),
        "fresh",
        True,
        1,
    ),
    Case("dmarc list", "dmarc-list", ("dmarc", "list")),
    Case("dmarc list", "dmarc-list-stats", ("dmarc", "list", "--stats")),
    Case("dmarc record", "dmarc-record", ("dmarc", "record", "-"), "demo-copy", stdin=json.dumps(DMARC_EVAL) + "\n"),
    Case("dmarc lookup", "dmarc-lookup", ("dmarc", "lookup", "sts.test"), "lab"),
    Case("dmarc lookup", "dmarc-lookup", ("dmarc", "lookup", "dane-ok.test"), "lab", exit_code=1),
    Case("mtasts list", "mtasts-list", ("mtasts", "list")),
    Case(
        "mtasts refresh",
        "mtasts-refresh",
        ("mtasts", "refresh", "--spread", "0"),
        "lab",
        True,
        setup=(("fetch", "mtasts", "sts.test"), age_mtasts_policies),
    ),
    Case("fetch mtasts", "fetch-mtasts", ("fetch", "mtasts", "sts.test"), "lab"),
    Case("fetch mtasts", "fetch-mtasts", ("fetch", "mtasts", "--no-cache", "sts-404.test"), "lab", exit_code=1),
    Case("fetch mtasts", "fetch-mtasts", ("fetch", "mtasts", "--record", "v=STSv1 ; id=1"), "fresh"),
    Case("check tlsrpt", "check-tlsrpt", ("check", "tlsrpt", "--record", "v=TLSRPTv1; rua=mailto:tls@example.org")),
    Case("check tlsrpt", "check-tlsrpt", ("check", "tlsrpt", "--record", "v=TLSRPTv1; rua=ftp://x"), exit_code=1),
    Case("check tlsrpt", "check-tlsrpt", ("check", "tlsrpt", "sts.test"), "lab"),
    Case("check tlsrpt", "check-tlsrpt", ("check", "tlsrpt", "rua-mixed.test"), "lab", exit_code=1),
    Case("check domain", "check-domain", ("check", "domain", "sts.test", "dane-bad.test"), "lab", True, 1),
    Case("verify dane", "verify-dane", ("verify", "dane", "--mx", "dane-ok.test"), "lab"),
    Case("verify dane", "verify-dane", ("verify", "dane", "--mx", "dane-bad.test"), "lab", exit_code=1),
    Case("dane record", "dane-record", ("dane", "record", "--from-host", "mx.dane-ok.test"), "lab"),
    Case("suppress tls list", "suppress-list", ("suppress", "tls", "list")),
    Case("suppress dmarc list", "suppress-list", ("suppress", "dmarc", "list")),
    Case("suppress tls add", "suppress-add", ("suppress", "tls", "add", "tls@example.org"), "demo-copy"),
    Case("suppress dmarc add", "suppress-add", ("suppress", "dmarc", "add", "d@example.org"), "demo-copy"),
    Case("account list", "account-list", ("account", "list")),
    Case("mailbox list", "mailbox-list", ("mailbox", "list", "test1")),
    Case("message list", "message-list", ("message", "list", "test1", "Inbox")),
    Case(
        "import mbox",
        "import",
        ("import", "mbox", "bob", "Inbox", str(REALWORLD / "import" / "lakeside.mbox")),
        "fresh",
    ),
    Case(
        "import maildir",
        "import",
        ("import", "maildir", "bob", "Inbox", str(REALWORLD / "import" / "lakeside.maildir")),
        "fresh",
    ),
    Case("import archive", "import", ("import", "archive", "bob", "{archive}"), "fresh"),
    Case("verifydata", "verifydata", ("verifydata",)),
    Case("dns records", "dns-records", ("dns", "records")),
    Case("dns records", "dns-records-mta-sts-policy", ("dns", "records", "--mta-sts-policy")),
    Case("send-dmarcreports", "send-dmarcreports", ("send-dmarcreports", "--dry-run")),
    Case("send-tlsreports", "send-tlsreports", ("send-tlsreports", "--dry-run"), ndjson=True),
    Case("send-reports", "send-reports", ("send-reports", "--dry-run")),
    Case("init", "init", ("init", "example.org", "--hostname", "mail.example.org"), "fresh"),
    Case("gentestdata", "gentestdata", ("gentestdata", "{new}")),
    Case("backup", "backup", ("backup", "{new}")),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("contract") / "demo"
    generate(d)
    return d


def json_commands() -> set[str]:
    """Every command that takes --json, walked from the registry (moxcli.cli.COMMANDS)."""
    return {
        name
        for name, cmd in leaf_commands().items()
        if any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option))
    }


def test_every_json_command_has_a_case():
    """A command added to the registry with --json fails here until it has a schema and a case."""
    assert json_commands() == {c.command for c in CASES}


def _data_dir(request, case: Case, demo, tmp_path):
    if case.where == "demo":
        return demo
    d = tmp_path / "d"
    if case.where == "demo-copy":
        shutil.copytree(demo, d)
    elif case.where == "lab":
        d = request.getfixturevalue("lab_data")
    return d


def _arguments(case: Case, tmp_path) -> list[str]:
    out = []
    for a in case.args:
        if a == "{new}":
            a = str(tmp_path / "new")
        elif a == "{archive}":
            a = str(tmp_path / "mail.tar.gz")
            with tarfile.open(a, "w:gz") as tar:
                tar.add(REALWORLD / "import" / "lakeside.mbox", arcname="Lists/lakeside.mbox")
        out.append(a)
    return out


def run_case(request, runner, demo, tmp_path, case: Case) -> list:
    """The JSON documents a case prints (one, or one per NDJSON line)."""
    data = _data_dir(request, case, demo, tmp_path)
    for setup in case.setup:
        if callable(setup):
            setup(data)
            continue
        r = runner.invoke(cli, ["--data", str(data), *setup], input=case.stdin)
        assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--data", str(data), *_arguments(case, tmp_path), "--json"], input=case.stdin)
    assert r.exit_code == case.exit_code, r.output
    docs = [json.loads(line) for line in r.stdout.splitlines()] if case.ndjson else [json.loads(r.stdout)]
    assert docs
    return docs


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c.args)[:60])
def test_command_output_follows_its_schema_and_the_contract(request, runner, demo, tmp_path, case):
    validator = schema(case.schema)
    for doc in run_case(request, runner, demo, tmp_path, case):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
        assert contract_problems(doc) == []


def test_every_schema_is_used_and_valid():
    used = {c.schema for c in CASES} | {"error"}
    on_disk = {p.stem for p in SCHEMAS.glob("*.json")}
    assert on_disk == used
    for name in on_disk:
        schema(name)


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
    assert list(schema("error").iter_errors(obj)) == []
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


def test_the_contract_checker_finds_each_kind_of_violation():
    bad = {
        "orgName": 1,
        "org_name": "x",
        "note": "",
        "created": 1764734706.5,
        "day": "20261203",
        "updated": "2026-12-03T04:05:06.123456+00:00",
        "policy_domain": "☺.example",
        "warnings": ["plain text"],
        "report": {"date-range": ""},
    }
    assert contract_problems(bad) == [
        ".orgName: key not snake_case",
        ".org_name: the same thing is called organization_name everywhere",
        '.note: "" (unknown is null)',
        ".created: Unix seconds 1764734706.5",
        ".day: YYYYMMDD 20261203",
        ".updated: time not RFC 3339 UTC whole seconds: 2026-12-03T04:05:06.123456+00:00",
        ".policy_domain: domain not an A-label in lower case: ☺.example",
        ".warnings[]: finding without code and message: plain text",
    ]


@pytest.mark.parametrize("command", sorted(json_commands()))
def test_every_json_command_gives_a_usage_error_as_an_error_object(runner, tmp_path, command):
    r = runner.invoke(cli, ["--data", str(tmp_path / "d"), *command.split(), "--no-such-option", "--json"])
    assert r.exit_code == 2
    obj = json.loads(r.stdout)
    assert list(schema("error").iter_errors(obj)) == []
    assert obj["error"]["code"] == "usage" and "--no-such-option" in obj["error"]["message"]
    assert r.stderr == f"moxcli: {obj['error']['message']}\n"
    assert not (tmp_path / "d").exists()


def test_a_finding_reads_as_its_message_and_carries_its_code():
    import pickle

    from moxcli.jsonfmt import Finding, findings_json

    f = Finding("dane-mismatch", "no TLSA record matches")
    assert f == "no TLSA record matches" and f"MTA-STS: {f}" == "MTA-STS: no TLSA record matches"
    assert pickle.loads(pickle.dumps(f)).code == "dane-mismatch"
    assert findings_json([f]) == [{"code": "dane-mismatch", "message": "no TLSA record matches"}]
    assert json.loads(json.dumps({"errors": findings_json([f])}))["errors"][0]["code"] == "dane-mismatch"

"""Errors and the data directory over every command (issue 13 parts 3 and 4, docs/json.md).

Commands are walked from the registry (moxcli.cli.COMMANDS): a new command fails
test_every_command_is_classified until it is listed here as read-only (and then refuses a
--data without a store) or as one that needs no store or writes one.
"""

import json

import click
import pytest
from helpers.commands import leaf_commands

from moxcli.cli import cli
from moxcli.datatools.gentest import generate

NO_DATA = "moxcli: no moxcli data directory at {data} (run `moxcli init`, or check --data)\n"

# Commands that only read the store: refused without one (exit 2, the exact message, nothing created).
READ_ONLY = {
    "verifydata": ["verifydata"],
    "backup": ["backup", "{tmp}/backup"],
    "queue list": ["queue", "list"],
    "queue show": ["queue", "show", "1"],
    "tlsresults list": ["tlsresults", "list"],
    "domains list": ["domains", "list"],
    "tlsreports list": ["tlsreports", "list"],
    "tlsreports show": ["tlsreports", "show", "1"],
    "tlsreports summary": ["tlsreports", "summary"],
    "dmarcreports list": ["dmarcreports", "list"],
    "dmarcreports show": ["dmarcreports", "show", "1"],
    "dmarcreports summary": ["dmarcreports", "summary"],
    "dmarc list": ["dmarc", "list"],
    "mtasts list": ["mtasts", "list"],
    "suppress tls list": ["suppress", "tls", "list"],
    "suppress dmarc list": ["suppress", "dmarc", "list"],
    "account list": ["account", "list"],
    "mailbox list": ["mailbox", "list", "postmaster"],
    "message list": ["message", "list", "postmaster", "Inbox"],
    "reports html": ["reports", "html", "{tmp}/reports.html"],
}
# Commands that need no store (DNS, network, config) or create or change one.
OTHERS = {
    "init",
    "dns records",
    "check domain",
    "check tlsrpt",
    "fetch mtasts",
    "verify dane",
    "dane record",
    "dmarc lookup",
    "mtasts refresh",
    "queue add",
    "queue drop",
    "queue hold",
    "queue release",
    "queue retry",
    "queue run",
    "domains forget",
    "send-tlsreports",
    "send-dmarcreports",
    "send-reports",
    "tlsreports import",
    "dmarcreports import",
    "reports import",
    "suppress tls add",
    "suppress tls remove",
    "suppress dmarc add",
    "suppress dmarc remove",
    "dmarc record",
    "gentestdata",
    "import mbox",
    "import maildir",
    "import archive",
}


def test_every_command_is_classified():
    assert set(READ_ONLY) | OTHERS == set(leaf_commands())
    assert not set(READ_ONLY) & OTHERS


def _has_json(args: list[str]) -> bool:
    ctx = click.Context(cli)
    cmd: click.Command = cli
    for a in args:
        if not isinstance(cmd, click.Group) or a not in cmd.list_commands(ctx):
            break
        cmd = cmd.get_command(ctx, a)
    return any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option))


@pytest.mark.parametrize("command", sorted(READ_ONLY))
@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_read_only_commands_refuse_a_data_dir_without_store(runner, tmp_path, command, kind):
    data = tmp_path / "typo"
    if kind == "empty":
        data.mkdir()
    args = [a.format(tmp=tmp_path) for a in READ_ONLY[command]]
    json_flag = ["--json"] if _has_json(args) else []
    r = runner.invoke(cli, ["--data", str(data), *args, *json_flag])
    assert r.exit_code == 2, r.output
    assert r.stderr == NO_DATA.format(data=data)
    assert data.exists() == (kind == "empty")
    if kind == "empty":
        assert list(data.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["typo"] if kind == "empty" else [])
    if json_flag:
        assert json.loads(r.stdout) == {"error": {"code": "no-data-dir", "message": NO_DATA.format(data=data)[8:-1]}}


# A writing command that fails on a new data directory leaves nothing behind.
# (Imports exit 1 when a message is rejected; their per-message warnings and summary are on stderr.)
FAILING_WRITES = [
    (["tlsreports", "import", "{tmp}/bad.json"], 1),
    (["dmarcreports", "import", "{tmp}/bad.xml"], 1),
    (["reports", "import", "{tmp}/bad.json"], 1),
    (["suppress", "tls", "add", "not an address"], 2),
    (["suppress", "dmarc", "add", "not an address"], 2),
    (["dmarc", "record", "{tmp}/bad.json"], 2),
    (["import", "mbox", "bob", "Inbox", "{tmp}/no-such.mbox"], 2),
    (["import", "maildir", "bob", "Inbox", "{tmp}/no-such-maildir"], 2),
    (["queue", "drop", "1"], 2),
    (["init", "bad..example", "--hostname", "mail.example.org"], 2),
]


@pytest.mark.parametrize(
    ("args", "exit_code"), FAILING_WRITES, ids=lambda a: " ".join(a) if isinstance(a, list) else ""
)
def test_failed_command_leaves_no_directories_behind(runner, tmp_path, args, exit_code):
    (tmp_path / "bad.json").write_text("{}")
    (tmp_path / "bad.xml").write_text("<feedback><report_metadata>")
    data = tmp_path / "new" / "data"
    r = runner.invoke(cli, ["--data", str(data), *[a.format(tmp=tmp_path) for a in args]])
    assert r.exit_code == exit_code, r.output
    if "import" not in args[:2]:
        (line,) = r.stderr.splitlines()
        assert line.startswith("moxcli: ")
    assert not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "demo"
    generate(d)
    return d


# Invalid input on the command line: exit 2, one line naming the value, the error code.
BAD_INPUT = [
    ("bad-domain", "bad..example", ["check", "tlsrpt", "bad..example"]),
    ("bad-domain", "bad..example", ["check", "domain", "bad..example"]),
    ("bad-domain", "bad..example", ["fetch", "mtasts", "bad..example"]),
    ("bad-domain", "bad..example", ["verify", "dane", "--mx", "bad..example"]),
    ("bad-domain", "bad..example", ["dmarc", "lookup", "bad..example"]),
    ("bad-domain", "bad..example", ["dns", "records", "bad..example"]),
    ("bad-domain", "bad..example", ["tlsreports", "list", "--domain", "bad..example"]),
    ("bad-domain", "bad..example", ["domains", "list", "bad..example"]),
    ("bad-day", "2026-02-30", ["tlsresults", "list", "--day", "2026-02-30"]),
    ("bad-day", "2026-13-01", ["send-tlsreports", "--dry-run", "--day", "2026-13-01"]),
    ("bad-day", "2026-02-30", ["tlsreports", "summary", "--since", "2026-02-30"]),
    ("bad-day", "yesterday", ["dmarcreports", "summary", "--until", "yesterday"]),
]


@pytest.mark.parametrize(("code", "value", "args"), BAD_INPUT, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_invalid_input_is_exit_2_naming_it(runner, demo, code, value, args):
    r = runner.invoke(cli, ["--data", str(demo), *args])
    assert r.exit_code == 2, r.output
    (line,) = r.stderr.splitlines()
    assert line.startswith("moxcli: ") and value in line
    if _has_json(args):
        r = runner.invoke(cli, ["--data", str(demo), *args, "--json"])
        err = json.loads(r.stdout.splitlines()[-1])["error"]
        assert err["code"] == code and value in err["message"]


# Job summaries are messages: on stderr for every job (docs/json.md, Formats), never on stdout.
JOBS = [
    (["send-tlsreports", "--dry-run"], ": 4 report(s) would be queued, "),
    (["send-dmarcreports", "--dry-run"], "DMARC report"),
    (["send-reports", "--dry-run"], "tls: 4 report(s), 0 error(s)"),
]


@pytest.mark.parametrize(("args", "summary"), JOBS, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_job_summaries_go_to_stderr(runner, demo, args, summary):
    r = runner.invoke(cli, ["--data", str(demo), *args])
    assert r.exit_code == 0, r.output
    assert summary in r.stderr and summary not in r.stdout


def test_mtasts_refresh_summary_on_stderr_and_last_json_line(runner, tmp_path):
    r = runner.invoke(cli, ["--data", str(tmp_path / "d"), "mtasts", "refresh", "--spread", "0"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "0 domain(s) handled\n")
    r = runner.invoke(cli, ["--data", str(tmp_path / "d"), "mtasts", "refresh", "--spread", "0", "--json"])
    assert json.loads(r.stdout.splitlines()[-1])["type"] == "summary"


def test_readme_first_command_is_the_offline_demo():
    """The README's first command is what tests/test_localzone.py runs offline: gentestdata,
    then the daily TLS report job as a dry run, which shows the reports and who gets them."""
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    first = readme.split("```sh\n", 1)[1].splitlines()[0]
    steps = [s.strip() for s in first.split("&&")]
    assert steps[-2:] == [
        ".venv/bin/moxcli gentestdata /tmp/moxcli-demo",
        ".venv/bin/moxcli --data /tmp/moxcli-demo send-tlsreports --dry-run",
    ]

"""One rule for an id or name that does not exist (docs/json.md, Errors: `not-found`): every
command that takes one exits 2 with one line naming it on stderr, nothing else on stdout, and
with `--json` the error object `{"error": {"code": "not-found", ...}}` on stdout. A filter that
matches nothing is not an error (an empty list, exit 0)."""

from __future__ import annotations

import json

import pytest

from moxcli.cli import cli, failure, root
from moxcli.datatools.gentest import generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("notfound") / "demo"
    generate(d)
    return d


# (arguments, the error line, whether the command has --json)
CASES = [
    (["queue", "show", "99"], "queue message 99: no such message", True),
    (["tlsreports", "show", "99"], "TLS report 99: no such report", True),
    (["dmarcreports", "show", "99"], "DMARC report 99: no such report", True),
    (["queue", "run", "--id", "99"], "queue message 99: no such message", True),
    (["queue", "drop", "99"], "queue message 99: no such message", False),
    (["queue", "hold", "99"], "queue message 99: no such message", False),
    (["queue", "release", "99"], "queue message 99: no such message", False),
    (["queue", "retry", "99"], "queue message 99: no such message", False),
    (["domains", "forget", "nope.example"], "domain nope.example: nothing recorded", False),
    (
        ["suppress", "tls", "remove", "nobody@nope.example"],
        "nobody@nope.example: not on the tls suppression list",
        False,
    ),
    (
        ["suppress", "dmarc", "remove", "nobody@nope.example"],
        "nobody@nope.example: not on the dmarc suppression list",
        False,
    ),
    (["mailbox", "list", "nobody"], "no account 'nobody'", True),
    (["message", "list", "nobody", "Inbox"], "no account 'nobody'", True),
    (["message", "list", "postmaster", "NoSuchBox"], "account postmaster: no mailbox 'NoSuchBox'", True),
]


@pytest.mark.parametrize(("args", "line", "has_json"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_missing_id_or_name_is_not_found_exit_2(runner, demo, monkeypatch, args, line, has_json):
    codes = []
    real = failure.print_error

    def spy(code: str, message: str) -> None:
        codes.append(code)
        real(code, message)

    monkeypatch.setattr(root, "print_error", spy)
    r = runner.invoke(cli, ["--data", str(demo), *args])
    assert (r.exit_code, r.stdout, r.stderr, codes) == (2, "", f"moxcli: {line}\n", ["not-found"])
    if has_json:
        r = runner.invoke(cli, ["--data", str(demo), *args, "--json"])
        assert r.exit_code == 2 and r.stderr == f"moxcli: {line}\n"
        assert json.loads(r.stdout) == {"error": {"code": "not-found", "message": line}}


@pytest.mark.parametrize(
    "args",
    [["domains", "list", "nope.example"], ["tlsresults", "list", "--day", "2001-01-01"]],
    ids=["domains list DOMAIN", "tlsresults list --day"],
)
def test_filter_without_match_is_an_empty_list(runner, demo, args):
    r = runner.invoke(cli, ["--data", str(demo), *args, "--json"])
    assert (r.exit_code, json.loads(r.stdout), r.stderr) == (0, [], "")


@pytest.mark.parametrize("action", ["drop", "hold", "retry"])
def test_several_ids_with_one_missing_change_nothing(runner, demo, action):
    before = json.loads(runner.invoke(cli, ["--data", str(demo), "queue", "list", "--json"]).stdout)
    first = before[0]["id"]
    r = runner.invoke(cli, ["--data", str(demo), "queue", action, str(first), "99"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", "moxcli: queue message 99: no such message\n")
    after = json.loads(runner.invoke(cli, ["--data", str(demo), "queue", "list", "--json"]).stdout)
    assert after == before

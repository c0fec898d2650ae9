"""CLI: import mbox|maildir, account list, mailbox list, message list (CliRunner)."""

import json
from pathlib import Path

import pytest

from moxcli.cli import cli
from moxcli.store import job_lock

MBOX = (
    b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: one\nStatus: RO\nX-Keywords: Work\n\nbody\n\n"
    b"From b@example.org Mon Jan  2 15:04:06 2006\nSubject: two\nX-Status: F\n\nbody\n"
)
IMPORT_KEYS = {
    "account",
    "account_created",
    "mailboxes",
    "messages",
    "bytes",
    "input_bytes",
    "seconds",
    "messages_per_second",
    "dry_run",
    "warnings",
    "warnings_total",
    "interrupted",
}


@pytest.fixture
def mbox(tmp_path) -> Path:
    p = tmp_path / "in.mbox"
    p.write_bytes(MBOX)
    return p


def run(runner, data_dir, *args, **kw):
    return runner.invoke(cli, ["--data", str(data_dir), *args], **kw)


def test_import_mbox_json_and_lists(runner, data_dir, mbox):
    r = run(runner, data_dir, "import", "mbox", "--json", "mjl", "inbox", str(mbox))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == IMPORT_KEYS
    assert out["messages"] == 2 and out["account_created"] and not out["dry_run"]
    assert out["mailboxes"] == [{"name": "Inbox", "created": True, "messages": 2, "bytes": out["bytes"]}]
    assert "created account mjl" in r.stderr and "created mailbox Inbox" in r.stderr

    r = run(runner, data_dir, "account", "list", "--json")
    assert r.exit_code == 0
    (acc,) = json.loads(r.stdout)
    assert set(acc) == {"name", "addresses", "created", "mailboxes", "messages", "bytes"}
    assert (acc["name"], acc["mailboxes"], acc["messages"], acc["bytes"]) == ("mjl", 1, 2, out["bytes"])

    r = run(runner, data_dir, "mailbox", "list", "--json", "mjl")
    (mb,) = json.loads(r.stdout)
    assert set(mb) == {"name", "messages", "bytes", "uidvalidity", "uidnext", "keywords", "special_use"}
    assert (mb["name"], mb["messages"], mb["uidnext"], mb["keywords"]) == ("Inbox", 2, 3, ["work"])

    r = run(runner, data_dir, "message", "list", "--json", "mjl", "INBOX")
    msgs = json.loads(r.stdout)
    assert [set(m) for m in msgs] == [{"uid", "id", "size", "received", "flags", "keywords"}] * 2
    assert [(m["uid"], m["flags"], m["keywords"], m["received"]) for m in msgs] == [
        (1, ["\\Seen"], ["work"], "2006-01-02T15:04:05Z"),
        (2, ["\\Flagged"], [], "2006-01-02T15:04:06Z"),
    ]

    r = run(runner, data_dir, "message", "list", "mjl", "Inbox")
    assert r.exit_code == 0 and "\\Seen" in r.stdout and "2006-01-02T15:04:05Z" in r.stdout
    r = run(runner, data_dir, "mailbox", "list", "mjl")
    assert r.exit_code == 0 and "Inbox" in r.stdout
    r = run(runner, data_dir, "account", "list")
    assert r.exit_code == 0 and "mjl" in r.stdout


def test_import_table_output_progress_lines_and_second_import(runner, data_dir, mbox):
    r = run(runner, data_dir, "import", "mbox", "--progress-interval", "0", "mjl", "Inbox", str(mbox))
    assert r.exit_code == 0, r.output
    assert "imported: 2 messages" in r.stdout and "Inbox" in r.stdout
    assert "l=info m=progress pkg=import account=mjl mailbox=Inbox mailboxes=1/1" in r.stderr
    r = run(runner, data_dir, "import", "mbox", "mjl", "Inbox", str(mbox))
    assert "created" not in r.stderr
    r = run(runner, data_dir, "mailbox", "list", "--json", "mjl")
    assert json.loads(r.stdout)[0]["messages"] == 4


def test_import_stdin_and_dry_run(runner, data_dir):
    r = run(runner, data_dir, "import", "mbox", "--dry-run", "--json", "mjl", "Inbox", "-", input=MBOX)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dry_run"] and out["messages"] == 2 and out["input_bytes"] == len(MBOX)
    assert "would create account mjl" in r.stderr
    r = run(runner, data_dir, "account", "list", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "no-data-dir"
    r = run(runner, data_dir, "import", "mbox", "mjl", "Inbox", "-", input=MBOX)
    assert r.exit_code == 0 and "imported: 2 messages" in r.stdout


def test_import_maildir_recursive(runner, data_dir, tmp_path):
    root = tmp_path / "Maildir"
    for d in (root, root / ".Sent"):
        for s in ("cur", "new", "tmp"):
            (d / s).mkdir(parents=True)
    (root / "new" / "1600000000.1.host").write_bytes(b"Subject: a\n\nx\n")
    (root / ".Sent" / "cur" / "1600000001.1.host:2,S").write_bytes(b"Subject: b\n\nx\n")
    r = run(runner, data_dir, "import", "maildir", "--recursive", "--json", "mjl", "Inbox", str(root))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [(m["name"], m["messages"]) for m in out["mailboxes"]] == [("Inbox", 1), ("Sent", 1)]
    r = run(runner, data_dir, "message", "list", "--json", "mjl", "Sent")
    assert json.loads(r.stdout)[0]["flags"] == ["\\Seen"]


def test_warnings_are_printed_with_message_number(runner, data_dir, tmp_path):
    p = tmp_path / "w.mbox"
    p.write_bytes(b"From x whenever\nX-Keywords: a b\n\nbody\n")
    r = run(runner, data_dir, "import", "mbox", "mjl", "Inbox", str(p))
    assert r.exit_code == 0
    assert f"warning: message 1 at {p}:1: invalid keyword 'a b' dropped" in r.stderr
    assert "unparsable date" in r.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["import", "mbox", "mjl", "a//b", "IN"], 2, "empty mailbox name"),
        (["import", "mbox", "mjl", "Inbox", "missing.mbox"], 2, "missing.mbox"),
        (["import", "mbox", "mjl", "Inbox", "BAD"], 1, "not an mbox"),
        (["import", "maildir", "mjl", "Inbox", "NOTMAILDIR"], 2, "not a maildir"),
        (["mailbox", "list", "nobody"], 2, "no account 'nobody'"),
        (["message", "list", "mjl", "Nope"], 2, "no mailbox 'Nope'"),
        (["message", "list", "mjl", "a/../b"], 2, "not allowed"),
    ],
)
def test_errors_are_one_line_with_exit_code(runner, data_dir, mbox, tmp_path, args, code, message):
    assert run(runner, data_dir, "import", "mbox", "mjl", "Inbox", str(mbox)).exit_code == 0
    (tmp_path / "bad.mbox").write_bytes(b"Subject: x\n\n")
    (tmp_path / "notmaildir").mkdir()
    subst = {
        "IN": str(mbox),
        "BAD": str(tmp_path / "bad.mbox"),
        "NOTMAILDIR": str(tmp_path / "notmaildir"),
        "missing.mbox": str(tmp_path / "missing.mbox"),
    }
    r = run(runner, data_dir, *[subst.get(a, a) for a in args])
    assert r.exit_code == code, r.output
    lines = [line for line in r.stderr.splitlines() if not line.startswith("l=")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_lock_held_is_exit_3(runner, data_dir, mbox):
    with job_lock(data_dir, "import-mjl"):
        r = run(runner, data_dir, "import", "mbox", "mjl", "Inbox", str(mbox))
    assert r.exit_code == 3 and "holds the lock" in r.stderr


def test_lists_without_store(runner, tmp_path):
    r = run(runner, tmp_path / "empty", "account", "list", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "no-data-dir"
    r = run(runner, tmp_path / "empty", "mailbox", "list", "x")
    assert r.exit_code == 2 and "no moxcli data directory at" in r.stderr

"""Every command that prints rows has --format table|tsv|csv|json, and off a terminal (a pipe,
cron mail) its rows are never folded: issue 13, part 1.

The commands come from the registry (moxcli.cli.COMMANDS): a new command must be added to
TABLES (with an invocation against the gentestdata demo) or to NO_ROWS (saying why it prints
no rows), or test_every_command_is_classified fails.
"""

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile

import click
import pytest
from conftest import ROOT
from helpers.smtpd import free_port

from moxcli.cli import cli
from moxcli.datatools.gentest import generate

MBOX = b"From a@example.org Thu Dec  3 00:00:00 2026\nSubject: hi\n\nbody\n"

# command -> (arguments, tsv columns that the table view shows on one line per row; None: the
# table view prints no rows on stdout (it tells on stderr), so only tsv/csv are checked).
# Arguments name files made by _inputs; every invocation works offline (the demo's local zone).
TABLES: dict[str, tuple[list[str], list[str] | None]] = {
    "mtasts list": (["mtasts", "list"], ["domain", "mode", "mx", "max_age", "id"]),
    "mtasts refresh": (["mtasts", "refresh", "--spread", "0"], ["domain", "action", "message"]),
    "queue list": (["queue", "list"], ["id", "recipient", "from", "size", "attempts", "last error"]),
    "queue run": (["queue", "run"], ["id", "recipient", "outcome", "error"]),
    "tlsresults list": (["tlsresults", "list"], ["day", "policy domain", "recipient domain", "failure details"]),
    "domains list": (["domains", "list"], ["domain"]),
    "send-tlsreports": (["send-tlsreports"], ["day", "kind", "policy domain", "report id", "queued", "suppressed"]),
    "tlsreports import": (["tlsreports", "import", "--list", "{tls}"], ["source", "outcome", "reason"]),
    "tlsreports list": (["tlsreports", "list"], ["id", "organization", "start", "end", "policy domains", "report id"]),
    "tlsreports show": (["tlsreports", "show", "1"], ["type", "policy domain", "mx-host", "success", "failure"]),
    "tlsreports summary": (["tlsreports", "summary"], ["day", "reports", "successful sessions", "failed sessions"]),
    "suppress dmarc list": (["suppress", "dmarc", "list"], ["address", "comment"]),
    "suppress tls list": (["suppress", "tls", "list"], ["address", "comment"]),
    "dmarc list": (["dmarc", "list"], ["id", "policy domain", "source ip", "disposition"]),
    "dmarc lookup": (["dmarc", "lookup", "mox.example"], ["rua", "status", "reports go to"]),
    "send-dmarcreports": (
        ["send-dmarcreports", "--end", "2026-12-03T00:00:00Z"],
        ["domain", "status", "evaluations", "notes"],
    ),
    "send-reports": (["send-reports", "--dry-run"], None),
    "dmarcreports import": (["dmarcreports", "import", "--list", "{dmarc}"], ["source", "outcome", "reason"]),
    "dmarcreports list": (["dmarcreports", "list"], ["id", "policy domain", "organization", "report id"]),
    "dmarcreports show": (["dmarcreports", "show", "1"], ["source ip", "count", "disposition", "auth results"]),
    "dmarcreports summary": (["dmarcreports", "summary"], ["day", "reports", "messages", "pass rate"]),
    "reports import": (["reports", "import", "--list", "{tls}", "{dmarc}"], ["source", "outcome", "reason"]),
    "import mbox": (["import", "mbox", "test1", "Piped", "{mbox}"], ["mailbox", "messages", "bytes", "created"]),
    "import maildir": (["import", "maildir", "test1", "PipedDir", "{maildir}"], ["mailbox", "messages", "bytes"]),
    "import archive": (["import", "archive", "test1", "{archive}"], ["mailbox", "messages", "bytes", "created"]),
    "account list": (["account", "list"], ["account", "mailboxes", "messages", "bytes"]),
    "mailbox list": (["mailbox", "list", "test1"], ["mailbox", "messages", "bytes"]),
    "message list": (["message", "list", "test1", "Inbox"], ["uid", "size", "received"]),
    "check domain": (["check", "domain", "--no-connect", "mox.example"], ["MX host", "pref", "addresses", "TLSRPT"]),
    "check tlsrpt": (
        [
            "check",
            "tlsrpt",
            "--record",
            "v=TLSRPTv1; rua=mailto:tls-reports-with-a-long-name@example.org,https://x.example/r",
        ],
        ["rua", "scheme"],
    ),
    "verify dane": (["verify", "dane", "--timeout", "3", "mail.mox.example"], ["problem"]),
}

# Commands that print no rows: one object (key/value lines), zone or record lines, a file.
NO_ROWS = {
    "init": "key/value lines and zone lines",
    "dns records": "zone lines for a zone file",
    "fetch mtasts": "one policy as key/value lines",
    "dane record": "TLSA record lines",
    "queue add": "one line per queued id",
    "queue drop": "one `ID<tab>dropped` line per id",
    "queue hold": "one `ID<tab>hold` line per id",
    "queue release": "one `ID<tab>release` line per id",
    "queue retry": "one `ID<tab>retry` line per id",
    "domains forget": "one `DOMAIN<tab>forgotten` line",
    "queue show": "one message as key/value lines",
    "suppress dmarc add": "a message",
    "suppress dmarc remove": "a message",
    "suppress tls add": "a message",
    "suppress tls remove": "a message",
    "dmarc record": "a message",
    "reports html": "writes a file",
    "backup": "one result as key/value lines",
    "verifydata": "problem lines and one summary line",
    "gentestdata": "one result as key/value lines",
}

TIME_OF_DAY = re.compile(r"\d\d:\d\d:\d\d")


def _leaves():
    ctx = click.Context(cli)

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, name), [*path, name])
        else:
            yield " ".join(path), cmd

    return dict(walk(cli, []))


LEAVES = _leaves()


def test_every_command_is_classified():
    assert sorted(LEAVES) == sorted([*TABLES, *NO_ROWS])
    assert not set(TABLES) & set(NO_ROWS)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_commands_have_format_and_json(name):
    opts = {o: p for p in LEAVES[name].params for o in getattr(p, "opts", [])}
    assert list(opts["--format"].type.choices) == ["table", "tsv", "csv", "json"]
    assert opts["--json"].is_flag


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    d = base / "demo"
    # SMTP to the demo's MX (127.0.0.1) goes to a port nothing listens on, whatever runs on this
    # machine's port 25: `verify dane` is refused there (exit 1), `queue run` defers.
    generate(d, extra_config=f"[network]\nsmtp_port = {free_port()}\n")
    zone = d / "local-zone.txt"
    zone.write_text(
        zone.read_text() + '_dmarc.mox.example. TXT "v=DMARC1; p=reject; rua=mailto:dmarc-reports@mox.example"\n'
    )
    return d


def _inputs(tmp):
    (tmp / "in.mbox").write_bytes(MBOX)
    for sub in ("new", "cur", "tmp"):
        (tmp / "maildir" / sub).mkdir(parents=True)
    (tmp / "maildir" / "new" / "1.host").write_bytes(MBOX.split(b"\n", 1)[1])
    with tarfile.open(tmp / "a.tar", "w") as tar:
        tar.add(tmp / "in.mbox", arcname="Archived.mbox")
    return {
        "tls": str(ROOT / "testdata" / "reports" / "tls-google.json"),
        "dmarc": str(ROOT / "testdata" / "reports" / "dmarc-google.xml"),
        "mbox": str(tmp / "in.mbox"),
        "maildir": str(tmp / "maildir"),
        "archive": str(tmp / "a.tar"),
    }


def _copy(demo, tmp, name):
    d = tmp / name
    shutil.copytree(demo, d, symlinks=True)
    return d


# Exit 1 (the thing checked is wrong) on the demo data, offline: the demo domain's posture fails,
# its MX (127.0.0.1, a closed port, see demo()) refuses the DANE check, and the sample reports
# are rejected (their domains are not the demo's); every other command exits 0.
EXIT_1 = {"check domain", "dmarcreports import", "reports import", "tlsreports import", "verify dane"}


def _tsv_rows(runner, data, args, fmt, code):
    r = runner.invoke(cli, ["--data", str(data), *args, "--format", fmt])
    assert r.exit_code == code, r.output
    if fmt == "csv":
        return list(csv.reader(io.StringIO(r.stdout)))
    return [line.split("\t") for line in r.stdout.splitlines()]


def _on_one_line(cells, lines):
    """A line holding every cell, in order (a folded row splits them over lines or cuts long ones)."""
    for line in lines:
        at = 0
        for c in cells:
            at = line.find(c, at)
            if at < 0:
                break
            at += len(c)
        else:
            return True
    return False


@pytest.mark.parametrize("name", sorted(TABLES))
def test_rows_through_a_pipe_are_one_line_each(runner, demo, tmp_path, name):
    """tsv and csv: the same rows, a header and a fixed column count; the table view through a
    real pipe at COLUMNS=40: every row on one line with its long values whole, no colour."""
    args, shown = TABLES[name]
    files = _inputs(tmp_path)
    args = [a.format(**files) for a in args]
    code = 1 if name in EXIT_1 else 0
    tsv = _tsv_rows(runner, _copy(demo, tmp_path, "tsv"), args, "tsv", code)
    rows_csv = _tsv_rows(runner, _copy(demo, tmp_path, "csv"), args, "csv", code)
    assert len(tsv) >= 2, f"{name}: no rows to check"
    header = tsv[0]
    assert all(len(r) == len(header) for r in tsv)
    assert rows_csv[0] == header
    assert len(rows_csv) == len(tsv)

    env = {**os.environ, "COLUMNS": "40", "TERM": "xterm", "MOXCLI_DATA": str(_copy(demo, tmp_path, "table"))}
    env.pop("NO_COLOR", None)
    table = subprocess.run(
        [sys.executable, "-m", "moxcli", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    assert table.returncode == code, table.stdout
    assert "\x1b[" not in table.stdout
    if shown is None:
        return
    lines = table.stdout.splitlines()
    idx = [header.index(c) for c in shown]
    for row in tsv[1:]:
        cells = [row[i] for i in idx if row[i] and row[i] != "-" and not TIME_OF_DAY.search(row[i])]
        assert _on_one_line(cells, lines), f"{name}: row {row} not on one line of:\n{table.stdout}"


@pytest.mark.parametrize(("no_color", "bold"), [("", True), ("1", False)], ids=["terminal", "NO_COLOR"])
def test_colour_on_a_terminal_only_without_no_color(demo, no_color, bold):
    """On a real terminal (a pty) the header is bold, unless NO_COLOR is set; never folded."""
    import pty

    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "40", "TERM": "xterm", "NO_COLOR": no_color, "MOXCLI_DATA": str(demo)}
    try:
        p = subprocess.run(
            [sys.executable, "-m", "moxcli", "tlsresults", "list"], stdout=child, stderr=subprocess.PIPE, env=env
        )
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main)
    assert p.returncode == 0, p.stderr
    out = b"".join(chunks).decode()
    assert out.startswith("\x1b[1mday") == bold
    assert ("\x1b[" in out) == bold
    rows = _tsv_rows_of_demo(demo)
    assert len(out.splitlines()) == len(rows)


def _tsv_rows_of_demo(demo):
    r = subprocess.run(
        [sys.executable, "-m", "moxcli", "tlsresults", "list", "--format", "tsv"],
        capture_output=True,
        text=True,
        env={**os.environ, "MOXCLI_DATA": str(demo)},
    )
    return r.stdout.splitlines()


def test_streamed_rows_without_any_row_print_the_header(runner, demo, tmp_path):
    data = _copy(demo, tmp_path, "data")
    first = runner.invoke(cli, ["--data", str(data), "queue", "run", "--format", "tsv"])
    assert first.exit_code == 0, first.output
    assert len(first.stdout.splitlines()) > 1
    attempts = len(first.stdout.splitlines()) - 1  # a row per attempt after the header
    assert first.stderr.startswith(f"{attempts} message(s) attempted: ")  # the summary: a message
    again = runner.invoke(cli, ["--data", str(data), "queue", "run", "--format", "tsv"])  # nothing due now
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout.splitlines(keepends=True)[0]
    assert again.stderr == "nothing to do\n"

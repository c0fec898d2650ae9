"""The report imports answered without click (moxcli.cli.fast.report_import) print exactly what
the click commands print, exit the same, store the same, and load no click (issue 14, speed).

Each call runs twice, on two copies of the same data directory: through the fast path and
through the click command (CliRunner). Other shapes are left to click."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import reportmail as rm
from helpers.proc import import_probe

from moxcli.cli import cli, fast
from moxcli.reports import incoming_dmarc as idmarc
from moxcli.reports import incoming_tls as itls
from moxcli.store import Store

_SECONDS = re.compile(r'"seconds": [0-9.]+')


def _same_run(text: str, *dirs) -> str:
    """Output with the run's duration and the data directory taken out."""
    for i, d in enumerate(dirs):
        text = text.replace(str(d), f"<data{i}>")
    return _SECONDS.sub('"seconds": N', text)


@pytest.fixture
def sources(tmp_path):
    """Report mail as files in a directory, a maildir and an mbox file; one broken message."""
    files = tmp_path / "files"
    files.mkdir()
    for i, m in enumerate([*rm.mailbox(6), rm.plain_mail(1)]):
        (files / f"m{i}.eml").write_bytes(m)
    broken = tmp_path / "broken.eml"
    broken.write_bytes(rm.broken_tls_mail(2))
    md = tmp_path / "md"
    for sub in ("new", "cur", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, m in enumerate(rm.mailbox(8)[4:]):
        (md / "new" / f"17000000{i}.M{i}P1.host").write_bytes(m)
    mbox = tmp_path / "box.mbox"
    with open(mbox, "wb") as f:
        for m in rm.mailbox(12)[8:]:
            f.write(b"From reports@example.org Sun Jan 11 06:00:00 2026\n" + m.replace(b"\r\n", b"\n") + b"\n")
    (tmp_path / "file").write_text("x")
    (tmp_path / "config.toml").write_text('hostname = "mail.example.org"\n[domains."example.net"]\n')
    (tmp_path / "bad.toml").write_text('hostname = "mail.example.org"\ndomains = ["example.net"]\n')
    return tmp_path


def _both(capsys, runner, tmp_path, args, env=None):
    """(fast, click) as (exit code, stdout, stderr, stored report ids), each on a new data dir."""
    out = []
    for way in ("fast", "click"):
        data = tmp_path / f"data-{way}"
        if data.exists():
            shutil.rmtree(data)
        call = [a.replace("DATA", str(data)) for a in args]
        with pytest.MonkeyPatch.context() as mp:
            for k, v in (env or {}).items():
                mp.setenv(k, v.replace("DATA", str(data)))
            if way == "fast":
                code = fast.run(call)
                got = capsys.readouterr()
                stdout, stderr = got.out, got.err
            else:
                r = runner.invoke(cli, call)
                code, stdout, stderr = r.exit_code, r.stdout, r.stderr
        stored = None
        if (data / "store" / "data.mdb").exists():
            with Store.open(data, readonly=True) as store:
                stored = (
                    [(r.id, r.report_id) for r in itls.list_reports(store)],
                    [(r.id, r.report_id) for r in idmarc.list_reports(store)],
                )
        out.append((code, _same_run(stdout, data), _same_run(stderr, data), stored, data.exists()))
    return out


CALLS = [
    ["--data", "DATA", "tlsreports", "import", "{files}"],
    ["--data", "DATA", "dmarcreports", "import", "--json", "{files}"],
    ["--data=DATA", "reports", "import", "{files}", "--maildir", "{md}", "--mbox={mbox}", "--json"],
    ["--data", "DATA", "reports", "import", "--maildir={md}", "{broken}"],  # exit 1: rejected
    ["--data", "DATA", "--log-level", "debug", "reports", "import", "{files}/m0.eml", "{files}/m2.eml"],
    ["--data", "DATA", "--config", "{tmp}/config.toml", "reports", "import", "--json", "{files}"],  # not ours
    ["--data", "DATA", "reports", "import", "{tmp}/missing"],  # usage error, no directory left
    ["--data", "DATA", "reports", "import", "--json", "--mbox", "{files}/m0.eml"],  # not an mbox
    ["--data", "DATA", "reports", "import"],  # nothing to import
    ["--data", "DATA", "reports", "import", "--maildir", "{files}"],  # not a maildir
    ["--data", "DATA", "--config", "{tmp}/missing.toml", "tlsreports", "import", "{files}"],  # no config: defaults
    ["--data", "DATA", "--config", "{tmp}/bad.toml", "tlsreports", "import", "--json", "{files}"],  # config error
]


@pytest.mark.parametrize("args", CALLS, ids=repr)
def test_fast_import_is_the_commands(capsys, runner, sources, args):
    names = {"files": "files", "md": "md", "mbox": "box.mbox", "broken": "broken.eml", "tmp": ""}
    args = [a.format(**{k: sources / v for k, v in names.items()}) for a in args]
    fast_run, click_run = _both(capsys, runner, sources, args)
    assert fast_run == click_run
    assert fast_run[0] in (0, 1, 2)


def test_fast_import_outcomes(capsys, runner, sources):
    """What the comparisons above compare is a real import: outcomes and exit codes."""
    fast_run, _ = _both(
        capsys, runner, sources, ["--data", "DATA", "reports", "import", "--json", str(sources / "files")]
    )
    code, stdout, _, stored, _ = fast_run
    lines = [json.loads(line) for line in stdout.splitlines()[:-1]]  # the summary's seconds are taken out
    assert code == 0 and [x["outcome"] for x in lines] == ["imported"] * 6 + ["not-a-report"]
    assert [x["kind"] for x in lines[:6]] == ["tls", "tls", "dmarc", "dmarc", "tls", "tls"]
    assert [i for i, _ in stored[0]] == [4, 3, 2, 1] and [i for i, _ in stored[1]] == [2, 1]
    rejected, _ = _both(
        capsys, runner, sources, ["--data", "DATA", "tlsreports", "import", str(sources / "broken.eml")]
    )
    assert rejected[0] == 1 and "rejected: " in rejected[2]


def test_fast_import_reads_the_environment(capsys, runner, sources):
    env = {"MOXCLI_DATA": "DATA", "MOXCLI_CONFIG": str(sources / "config.toml")}
    fast_run, click_run = _both(capsys, runner, sources, ["tlsreports", "import", str(sources / "files")], env)
    assert fast_run == click_run
    assert fast_run[0] == 1 and "rejected: no domains in report recognized (example.org)" in fast_run[2]


@pytest.mark.parametrize(
    "args",
    [
        ["reports", "import", "--imap", "imaps://u@h/INBOX"],
        ["reports", "import", "--list", "x"],
        ["reports", "import", "--format", "json", "x"],
        ["reports", "import", "--json", "--json", "x"],
        ["reports", "import", "--help"],
        ["reports", "import", "--", "x"],
        ["reports", "import", "--maildir"],
        ["reports", "import", "--maildir", "-x"],
        ["reports", "import", "--maildir", "{tmp}/file"],  # click: a file where a directory is wanted
        ["reports", "import", "--mbox", "{tmp}"],  # click: a directory where a file is wanted
        ["reports", "import", ""],
        ["--data", "{tmp}/file", "reports", "import", "x"],
        ["--config", "{tmp}", "reports", "import", "x"],
        ["--log-level", "loud", "reports", "import", "x"],
        ["--data", "a", "--data", "b", "reports", "import", "x"],
        ["--bogus", "reports", "import", "x"],
        ["reports", "html", "import"],
        ["mailboxes", "import", "x"],
        ["import"],
    ],
    ids=repr,
)
def test_other_import_shapes_go_to_click(capsys, sources, args):
    assert fast.run([a.replace("{tmp}", str(sources)) for a in args]) is None
    assert capsys.readouterr() == ("", "")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_source_goes_to_click(capsys, sources):
    (sources / "file").chmod(0)
    assert fast.run(["reports", "import", str(sources / "file")]) is None


PROBE = import_probe("click", "rich", "dns", "cryptography", "email.parser", "ctypes", "moxcli.mail.mbox")


def test_a_real_import_process_loads_no_click(sources):
    r = subprocess.run(
        [sys.executable, "-c", PROBE, "--data", str(sources / "d"), "reports", "import", str(sources / "files")],
        capture_output=True,
        text=True,
        env={**os.environ, "MOXCLI_QUIET_PERMISSIONS": "1"},
    )
    assert r.stderr.splitlines()[-1] == "[]", r.stderr
    assert "7 message(s): 6 imported, 0 duplicate, 1 not a report, 0 rejected" in r.stderr

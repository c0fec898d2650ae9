"""The command output the docs show is what moxcli prints.

A fenced block right after a line `<!-- output-checked: NAME -->` in README.md or docs/*.md is
run again: each `$ COMMAND` line in a fresh scratch directory prepared by SETUPS[NAME] (its
data directory is `MOXCLI_DATA`), off a terminal as a user's shell would (stdout and stderr
to one pipe, unbuffered, so lines come in the order they were written), and the output must
equal the lines that follow the command in the block. Values that change from run to run (times
taken, import times) are masked on both sides. `$ echo $?` prints the exit code of the command
before it.

To regenerate the blocks after a change in output: `UPDATE_DOC_OUTPUT=1 pytest tests/test_docs_output.py`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import reportmail as rm

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^<!-- output-checked: (\S+) -->\n```\n(.*?)^```$", re.S | re.M)
UPDATE = os.environ.get("UPDATE_DOC_OUTPUT") == "1"

# What differs from run to run, and what it is shown as when compared.
VOLATILE = [
    (re.compile(r'"seconds": [0-9.]+'), '"seconds": S'),
    (re.compile(r'"imported": ("[0-9TZ:-]+"|[0-9.]+)'), '"imported": T'),
    (re.compile(r"in [0-9.]+s \([0-9]+ messages/s\)"), "in Ss (R messages/s)"),
]


def _mask(text: str) -> str:
    for pattern, shown in VOLATILE:
        text = pattern.sub(shown, text)
    return text


# --- scratch directories, one kind per NAME -------------------------------------------------


def _maildir(path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True)
    return path


def _moxcli(cwd: Path, *args: str) -> None:
    """A step of a setup that the block does not show."""
    r = subprocess.run(
        [sys.executable, "-m", "moxcli", *args], cwd=cwd, env=_env(cwd), capture_output=True, timeout=600
    )
    assert r.returncode == 0, r.stderr


def setup_report_mail(cwd: Path) -> None:
    """A maildir of 8 mails: 6 reports (TLS in Google's shape, DMARC in Google's and Microsoft's:
    none with a quirk that warns), a mail that is no report, and a TLS report mail whose gzip
    part is corrupt. The output shown must not depend on the order of the directory."""
    md = _maildir(cwd / "Maildir")
    mails = [
        *(rm.tls_mail("google", n) for n in range(3)),
        rm.dmarc_mail("google", 0),
        *(rm.dmarc_mail("microsoft", n) for n in range(2)),
        rm.plain_mail(1),
        rm.broken_tls_mail(7),
    ]
    for i, mail in enumerate(mails):
        (md / "new" / f"{rm.BASE + rm.DAY + 600 * i}.M{i}P1.mail").write_bytes(mail)


def setup_tls_report_files(cwd: Path) -> None:
    """A directory of TLS reports: two mails and RFC 8460's example report of the realworld
    fixtures (one policy domain), and a report mail for example.org."""
    src = ROOT / "testdata" / "realworld" / "tlsrpt"
    (cwd / "reports").mkdir()
    for name in ("rfc8460-mx-host-string.json", "microsoft-no-timezone.eml", "google-multipart.eml"):
        shutil.copy(src / name, cwd / "reports" / name)
    (cwd / "reports" / "tls-example.org.eml").write_bytes(rm.tls_mail("google", 1))


def setup_dmarc_report_files(cwd: Path) -> None:
    """Two DMARC report mails, Google's (zip) and Microsoft's (gzip part) shapes."""
    (cwd / "reports").mkdir()
    (cwd / "reports" / "google.eml").write_bytes(rm.dmarc_mail("google", 1))
    (cwd / "reports" / "microsoft.eml").write_bytes(rm.dmarc_mail("microsoft", 1))


def setup_report_demo(cwd: Path) -> None:
    """The demo mail of scripts/report-demo.py (30 days, three domains), imported."""
    subprocess.run([sys.executable, ROOT / "scripts" / "report-demo.py", cwd / "demo-mail"], check=True, timeout=600)
    _moxcli(cwd, "reports", "import", "--maildir", "demo-mail")


def setup_maildir_tree(cwd: Path) -> None:
    """Account mjl with an Inbox, and a maildir++ tree: the inbox, Sent, Archive.2023 (with a
    dovecot-keywords file that has a bad line), Entwürfe (modified UTF-7 name)."""
    mbox = cwd / "first.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jan  5 10:00:00 2026\nSubject: first\n\nfirst\n")
    _moxcli(cwd, "import", "mbox", "mjl", "Inbox", str(mbox))
    mbox.unlink()
    root = _maildir(cwd / "Maildir")
    (root / "new" / "1767607200.M1P1.host").write_bytes(b"Subject: one\r\n\r\none\r\n")
    (root / "cur" / "1767607260.M2P1.host:2,S").write_bytes(b"Subject: two\r\n\r\ntwo\r\n")
    archive = _maildir(root / ".Archive.2023")
    (archive / "dovecot-keywords").write_text("0 $Forwarded\n1 work\nbogus\n")
    (archive / "cur" / "1700000000.M3P1.host:2,Sab").write_bytes(b"Subject: old\r\n\r\nold one\r\n")
    drafts = _maildir(root / ".Entw&APw-rfe")
    (drafts / "cur" / "1767607320.M4P1.host:2,D").write_bytes(b"Subject: draft\r\n\r\nto do\r\n")
    sent = _maildir(root / ".Sent")
    (sent / "cur" / "1767607380.M5P1.host:2,S").write_bytes(b"Subject: sent\r\n\r\nsent one\r\n")


SETUPS: dict[str, Callable[[Path], None]] = {
    "report-mail": setup_report_mail,
    "tls-report-files": setup_tls_report_files,
    "dmarc-report-files": setup_dmarc_report_files,
    "report-demo": setup_report_demo,
    "report-demo-dmarc": setup_report_demo,
    "maildir-tree": setup_maildir_tree,
}


# --- running a block -------------------------------------------------------------------------


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOXCLI_") and k not in ("COLUMNS", "LINES")}
    env.update(
        MOXCLI_DATA=str(cwd / "data"),
        HOME=str(cwd),
        TZ="UTC",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        PY=sys.executable,
    )
    return env


def _commands(block: str) -> list[tuple[str, str]]:
    """(command, the output shown after it) of each `$ ` line of a block."""
    out: list[tuple[str, str]] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            out.append((line[2:].rstrip("\n"), ""))
        else:
            assert out, f"block does not start with a command: {line!r}"
            out[-1] = (out[-1][0], out[-1][1] + line)
    return out


def run_block(name: str, block: str, cwd: Path) -> str:
    """The block as running its commands now prints it."""
    (cwd / "data").mkdir(mode=0o700)
    SETUPS[name](cwd)
    shown = []
    rc = 0
    for command, _ in _commands(block):
        if command == "echo $?":
            output = f"{rc}\n"
        else:
            r = subprocess.run(
                ["bash", "-c", 'moxcli() { "$PY" -m moxcli "$@"; }\n' + command],
                cwd=cwd,
                env=_env(cwd),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
            rc = r.returncode
            output = r.stdout.decode()
        shown.append(f"$ {command}\n{output}")
    return "".join(shown)


def _blocks() -> list[tuple[Path, str, str]]:
    return [(page, m.group(1), m.group(2)) for page in PAGES for m in BLOCK.finditer(page.read_text())]


BLOCKS = _blocks()


def test_every_checked_block_has_a_setup():
    names = [name for _, name, _ in BLOCKS]
    assert sorted(set(names)) == sorted(SETUPS)
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("page", "name", "block"), BLOCKS, ids=[f"{page.name}:{name}" for page, name, _ in BLOCKS])
def test_doc_output_is_what_moxcli_prints(page, name, block, tmp_path):
    now = run_block(name, block, tmp_path)
    if UPDATE and now != block:
        text = page.read_text()
        marker = f"<!-- output-checked: {name} -->\n```\n"
        start = text.index(marker) + len(marker)
        page.write_text(text[:start] + now + text[start + len(block) :])
        return
    assert _mask(now) == _mask(block)


def test_progress_lines_in_the_docs_have_the_form_moxcli_prints(tmp_path):
    """docs/import.md's progress example is timings, so only its lines' form is compared: each
    shown line, its numbers masked, is a line that an mbox or maildir import prints now."""
    shown = [line for line in (ROOT / "docs" / "import.md").read_text().splitlines() if " m=progress " in line]
    assert len(shown) >= 2
    (tmp_path / "data").mkdir(mode=0o700)
    (tmp_path / "big.mbox").write_bytes(b"From a@example.org Mon Jan  5 10:00:00 2026\nSubject: a\n\na\n" * 2)
    md = _maildir(tmp_path / "Maildir")
    for i in range(2):
        (md / "new" / f"1767607200.M{i}P1.host").write_bytes(b"Subject: b\r\n\r\nb\r\n")
    printed = []
    for args in (("mbox", "big", "Inbox", "big.mbox"), ("maildir", "big", "Old", "Maildir")):
        r = subprocess.run(
            [sys.executable, "-m", "moxcli", "import", args[0], "--progress-interval", "0", *args[1:]],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr
        printed += [line for line in r.stderr.decode().splitlines() if " m=progress " in line]

    def form(line: str) -> str:
        return re.sub(r"[0-9]+", "N", line)

    assert {form(line) for line in shown} <= {form(line) for line in printed}

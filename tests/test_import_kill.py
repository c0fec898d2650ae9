"""A killed import leaves a data directory that `verifydata` passes, and a retry imports
every message exactly once (README "safety"; docs/import.md "All or nothing").

Each trial starts `moxcli import mbox` as a child, SIGKILLs it after a random delay (anywhere
from before the store is opened to after the commit), then runs `moxcli verifydata` and, when
the killed import did not commit, imports the same mbox again. The default run does a few
trials; the `slow` variant does many.
"""

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moxcli.mail.importer import import_mbox
from moxcli.store import Store
from moxcli.store import mail as store_mail
from moxcli.store.files import message_file

MESSAGES = 400
SUBJECT = re.compile(rb"^Subject: (message \d+)\r$", re.M)


def _mbox(path: Path) -> Path:
    lines = []
    for i in range(MESSAGES):
        lines.append(
            f"From s{i}@example.org Mon Jan  2 15:04:05 2006\nFrom: s{i}@example.org\n"
            f"Subject: message {i}\n\n{'body line ' * 40}\nend of {i}\n\n"
        )
    path.write_text("".join(lines))
    return path


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moxcli", "--data", str(data), *args], capture_output=True, timeout=120
    )


def _subjects(data: Path, account: str) -> list[bytes]:
    """Subject of every stored message of the account's Inbox, read from the message files."""
    out = []
    with Store.open(data, readonly=True) as st, st.read() as tx:
        mb = store_mail.get_mailbox(tx, account, "Inbox")
        if mb is None:
            return []
        for m in store_mail.list_messages(tx, account, mb.id):
            out += SUBJECT.findall(message_file(data, account, m.id).read_bytes())
    return out


def _trial(data: Path, mbox: Path, account: str, delay: float) -> str:
    before = _subjects(data, account)
    p = subprocess.Popen(
        [sys.executable, "-m", "moxcli", "--data", str(data), "import", "mbox", account, "Inbox", str(mbox)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    v = _cli(data, "verifydata", str(data))
    assert v.returncode == 0, v.stdout.decode() + v.stderr.decode()
    expected = sorted(before + [f"message {i}".encode() for i in range(MESSAGES)])
    after_kill = _subjects(data, account)
    if sorted(after_kill) == expected:
        outcome = "committed"
    else:
        assert after_kill == before, "a killed import left part of its messages"
        r = _cli(data, "import", "mbox", account, "Inbox", str(mbox))
        assert r.returncode == 0, r.stderr.decode()
        outcome = "retried"
    assert sorted(_subjects(data, account)) == expected
    v = _cli(data, "verifydata", str(data))
    assert v.returncode == 0 and not re.search(rb"unfinished import", v.stdout + v.stderr), v.stdout.decode()
    return outcome


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    mbox = _mbox(tmp_path / "in.mbox")
    small = tmp_path / "small.mbox"
    small.write_text("From a@example.org Mon Jan  2 15:04:05 2006\nSubject: message 0\n\nhi\n")
    import_mbox(data, "existing", "Inbox", [str(small)])
    return data, mbox


def _run_trials(setup, trials: int, seed: int) -> list[str]:
    data, mbox = setup
    rnd = random.Random(seed)
    outcomes = []
    for n in range(trials):
        account = "existing" if n % 2 else f"new{n}"
        outcomes.append(_trial(data, mbox, account, rnd.uniform(0.0, 0.8)))
    return outcomes


def test_killed_import_verifies_and_retry_imports_once(setup):
    outcomes = _run_trials(setup, 4, seed=1)
    assert "retried" in outcomes


@pytest.mark.slow
def test_killed_import_many_trials(setup):
    outcomes = _run_trials(setup, 60, seed=2)
    assert outcomes.count("retried") >= 10


def test_verifydata_fix_removes_a_killed_first_import(tmp_path):
    """A new account's killed import: a warning, not a problem; --fix removes the leftovers."""
    data = tmp_path / "data"
    mbox = _mbox(tmp_path / "in.mbox")
    p = subprocess.Popen(
        [sys.executable, "-m", "moxcli", "--data", str(data), "import", "mbox", "fresh", "Inbox", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    p.stdin.write(mbox.read_bytes())
    p.stdin.flush()
    acc = data / "accounts" / "fresh" / "msg"
    deadline = time.monotonic() + 30
    while not (acc.exists() and any(f.is_file() for f in acc.rglob("*"))):
        assert time.monotonic() < deadline, "the import wrote no file"
        time.sleep(0.02)
    p.kill()
    p.wait(timeout=30)
    v = _cli(data, "verifydata", "--json", str(data))
    assert v.returncode == 0, v.stdout.decode()
    assert b"account directory of an unfinished import" in v.stdout
    v = _cli(data, "verifydata", "--fix", "--json", str(data))
    assert v.returncode == 0 and b"removed the files of an interrupted import into account fresh" in v.stdout
    assert not (data / "accounts" / "fresh").exists()
    v = _cli(data, "verifydata", "--json", str(data))
    assert v.returncode == 0 and b"unfinished import" not in v.stdout

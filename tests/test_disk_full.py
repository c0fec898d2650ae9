"""Disk full: every writing command ends with one line and leaves a store verifydata passes.

A small tmpfs is mounted (root only); filled to the last byte before each command. Skipped
only where mounting is impossible, never under CI=true."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.dmarc import hour, vector_eval

MOXCLI = str(Path(sys.executable).parent / "moxcli")


@pytest.fixture(scope="module")
def small_fs(tmp_path_factory):
    mnt = tmp_path_factory.mktemp("tmpfs")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,nr_inodes=4000", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs: Path) -> Path:
    """Fill the file system: blocks and inodes."""
    filler = fs / "filler"
    filler.mkdir()
    with open(filler / "big", "wb", buffering=0) as f:  # unbuffered: nothing left to fail at close
        chunk = b"\0" * (1 << 16)
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    n = 0
    try:
        while True:
            (filler / str(n)).touch()
            n += 1
    except OSError:
        pass
    return filler


def _free_and_verify(filler: Path, data: Path) -> None:
    """Give the space back, then the data dir must pass verifydata: nothing half written."""
    shutil.rmtree(filler)
    v = subprocess.run([MOXCLI, "verifydata", str(data)], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr


def _moxcli(data: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MOXCLI, "--data", str(data), *args], capture_output=True, text=True, input=input, timeout=120
    )


def _dmarc_line() -> str:
    return json.dumps(vector_eval(hour())) + "\n"


COMMANDS = {
    "queue-add": lambda d, t: _moxcli(
        d, "queue", "add", "--from", "a@example.org", "--to", "b@example.net", str(t / "m.eml")
    ),
    "dmarc-record": lambda d, t: _moxcli(d, "dmarc", "record", "-", input=_dmarc_line() * 200),
    "suppress-add": lambda d, t: _moxcli(d, "suppress", "tls", "add", "tlsrpt-new@example.net"),
    "queue-run": lambda d, t: _moxcli(d, "queue", "run"),
    "backup": lambda d, t: _moxcli(d, "backup", str(d.parent / "backup")),
    "mtasts-refresh": lambda d, t: _moxcli(d, "mtasts", "refresh"),
    "send-reports": lambda d, t: _moxcli(d, "send-reports"),
    "import": lambda d, t: _moxcli(d, "import", "mbox", "acc", "Inbox", str(t / "in.mbox")),
    "tlsreports-import": lambda d, t: _moxcli(d, "tlsreports", "import", str(REPORTS / "tls-google.json")),
    "dmarcreports-import": lambda d, t: _moxcli(d, "dmarcreports", "import", str(t / "dmarc.xml")),
    "init": lambda d, t: _moxcli(d.parent / "new", "init", "example.org", "--hostname", "mail.example.org"),
    "gentestdata": lambda d, t: subprocess.run(
        [MOXCLI, "gentestdata", str(d.parent / "gen")], capture_output=True, text=True, timeout=120
    ),
}
REPORTS = Path(__file__).resolve().parent.parent / "testdata" / "reports"
# What each command does on the full disk. locks/ exists (made by a `queue run` before the disk
# is filled), but no inode is left for a new lock file: `queue run` reuses its lock and has
# nothing to write; the others fail where they first write (the lock of their job, or the data).
NO_SPACE = "No space left on device"
EXPECTED = {
    "queue-add": (1, "/data/queue: " + NO_SPACE),
    "dmarc-record": (1, "store: mdb_txn_commit: " + NO_SPACE),
    "suppress-add": (1, "store: mdb_txn_commit: " + NO_SPACE),
    "queue-run": (0, None),
    "backup": (1, "/data/locks/backup.lock: " + NO_SPACE),
    "mtasts-refresh": (1, "/data/locks/mtasts-refresh.lock: " + NO_SPACE),
    "send-reports": (1, "/data/locks/dmarcreports.lock: " + NO_SPACE),
    "import": (1, "/data/locks/import-acc.lock: " + NO_SPACE),
    "tlsreports-import": (1, "store: mdb_txn_commit: " + NO_SPACE),
    "dmarcreports-import": (1, "store: mdb_txn_commit: " + NO_SPACE),
    "init": (1, "/new: " + NO_SPACE),
    "gentestdata": (1, "/gen: " + NO_SPACE),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_disk_full_is_one_line_and_nothing_half_written(small_fs, tmp_path, name):
    data = small_fs / "data"
    (tmp_path / "m.eml").write_bytes(b"Subject: x\r\n\r\n" + b"body line\r\n" * 40_000)
    (tmp_path / "in.mbox").write_bytes(
        b"".join(
            b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: %d\n\n" % i + b"line\n" * 2000 for i in range(50)
        )
    )
    day = int(time.time()) // 86400 * 86400 - 86400
    xml = (REPORTS / "dmarc-google.xml").read_text().replace("REPORTID", "r1")
    (tmp_path / "dmarc.xml").write_text(xml.replace("BEGIN", str(day)).replace("END", str(day + 86399)))
    try:
        r = _moxcli(data, "suppress", "tls", "add", "tlsrpt@example.net")
        assert r.returncode == 0, r.stderr
        (data / "moxcli.toml").write_text('hostname = "mail.mox.example"\n')
        assert _moxcli(data, "queue", "run").returncode == 0  # makes locks/ and its lock file
        filler = _fill(small_fs)
        r = COMMANDS[name](data, tmp_path)
        code, where = EXPECTED[name]
        assert r.returncode == code, r.stderr
        if where is None:
            assert r.stderr == "nothing to do\n"
        else:
            assert r.stderr.startswith("moxcli: ") and r.stderr.endswith(where + "\n"), r.stderr
            assert len(r.stderr.splitlines()) == 1, r.stderr
        if name in ("init", "gentestdata"):  # a new data dir: removed again, not left half made
            assert sorted(p.name for p in small_fs.iterdir()) == ["data", "filler"]
        _free_and_verify(filler, data)
    finally:
        for p in small_fs.iterdir():
            shutil.rmtree(p, ignore_errors=True)


@pytest.fixture
def readonly_copy(small_fs, tmp_path_factory):
    """A generated data dir on a file system remounted read-only (a backup on read-only media)."""
    from moxcli.datatools.gentest import generate

    generate(small_fs / "ro")
    (small_fs / "ro" / "store" / "lock.mdb").unlink()  # as in a tar of a backup: LMDB cannot create it
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        yield small_fs / "ro"
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
        shutil.rmtree(small_fs / "ro", ignore_errors=True)


def test_verifydata_of_a_read_only_directory(readonly_copy):
    r = subprocess.run(
        [MOXCLI, "verifydata", "--json", str(readonly_copy)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = _moxcli(readonly_copy, "queue", "list")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "args",
    [["suppress", "tls", "add", "x@example.net"], ["queue", "run"], ["tlsreports", "import", "/dev/null"]],
    ids=lambda a: "-".join(a[:2]),
)
def test_writers_on_a_read_only_file_system_fail_in_one_line(readonly_copy, args):
    r = _moxcli(readonly_copy, *args)
    assert r.returncode == 1, r.stderr
    (line,) = r.stderr.splitlines()
    assert line == f"moxcli: {readonly_copy}/store: cannot open store: {readonly_copy}/store: Read-only file system"


def _zip(path: Path, mbox: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.mbox", mbox)


PAST_THE_LOCK = {
    "import-mbox": ("import-acc", lambda d, t: _moxcli(d, "import", "mbox", "acc", "Inbox", str(t / "in.mbox"))),
    "import-maildir": ("import-acc", lambda d, t: _moxcli(d, "import", "maildir", "acc", "Box", str(t / "maildir"))),
    "import-archive": ("import-acc", lambda d, t: _moxcli(d, "import", "archive", "acc", str(t / "a.zip"))),
    "backup": ("backup", lambda d, t: _moxcli(d, "backup", str(d.parent / "backup"))),
    "backup-copy": ("backup", lambda d, t: _moxcli(d, "backup", "--copy", str(d.parent / "backup"))),
    "send-tlsreports": ("send-tlsreports", lambda d, t: _moxcli(d, "send-tlsreports")),
    "send-dmarcreports": ("dmarcreports", lambda d, t: _moxcli(d, "send-dmarcreports", "--end", _iso(hour()))),
    "queue-drop": (None, lambda d, t: _moxcli(d, "queue", "drop", "1")),
}
# What each command needs in the generated store before the disk fills: an evaluation due for
# a DMARC report (send-dmarcreports), a queued message (queue drop: gentestdata's queue holds
# messages already).
PREPARE = {
    "send-dmarcreports": lambda d: _moxcli(d, "dmarc", "record", "-", input=json.dumps(vector_eval(hour())) + "\n"),
}


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@pytest.mark.parametrize("name", list(PAST_THE_LOCK))
def test_disk_full_past_the_lock_is_one_line_and_nothing_half_written(small_fs, tmp_path, name):
    """As above, with the job's lock file made before the disk fills: the command gets past
    its lock and meets the full disk where it writes its data (message files, the backup's
    store copy and files, the report queue)."""
    data = small_fs / "data"
    mbox = b"".join(
        b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: %d\n\n" % i + b"line\n" * 2000 for i in range(50)
    )
    (tmp_path / "in.mbox").write_bytes(mbox)
    _zip(tmp_path / "a.zip", mbox)
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "maildir" / sub).mkdir(parents=True)
    for i in range(50):
        (tmp_path / "maildir" / "cur" / f"{i}.host:2,S").write_bytes(b"Subject: m\n\n" + b"line\n" * 2000)
    lock, command = PAST_THE_LOCK[name]
    try:
        from moxcli.datatools.gentest import generate

        generate(data)
        if name in PREPARE:
            prepared = PREPARE[name](data)
            assert prepared.returncode == 0, prepared.stderr
        if lock is not None:
            (data / "locks").mkdir(mode=0o700, exist_ok=True)
            (data / "locks" / f"{lock}.lock").touch(mode=0o600)
        filler = _fill(small_fs)
        r = command(data, tmp_path)
        assert r.returncode == 1, r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("moxcli: ") and r.stderr.endswith(NO_SPACE + "\n"), r.stderr
        _free_and_verify(filler, data)
    finally:
        for p in small_fs.iterdir():
            shutil.rmtree(p, ignore_errors=True)


def test_queue_run_with_due_messages_on_a_full_disk(small_fs, tmp_path):
    """A due message and no space for the run's first commit: the summary line (0 attempted, not
    "nothing to do"), then the one error line; the store stays consistent."""
    data = small_fs / "data"
    (tmp_path / "m.eml").write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    try:
        r = _moxcli(data, "suppress", "tls", "add", "tlsrpt@example.net")  # makes the data directory
        assert r.returncode == 0, r.stderr
        (data / "moxcli.toml").write_text('hostname = "mail.mox.example"\n')
        assert _moxcli(data, "queue", "run").stderr == "nothing to do\n"  # makes locks/ and its lock file
        r = _moxcli(data, "queue", "add", "--from", "a@example.org", "--to", "b@[127.0.0.1]", str(tmp_path / "m.eml"))
        assert r.returncode == 0, r.stderr
        filler = _fill(small_fs)
        r = _moxcli(data, "queue", "run")
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines() == [
            "0 message(s) attempted: 0 delivered, 0 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored",
            "moxcli: store: mdb_txn_commit: " + NO_SPACE,
        ]
        _free_and_verify(filler, data)
    finally:
        for p in small_fs.iterdir():
            shutil.rmtree(p, ignore_errors=True)

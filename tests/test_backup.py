"""backup: a consistent snapshot under concurrent writers; failures leave DEST marked."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.datadir import make_data_dir, tree_digest

from moxcli.cli import cli
from moxcli.datatools import INCOMPLETE_MARKER, VERSION_FILE
from moxcli.datatools.backup import backup
from moxcli.datatools.verify import verify_data
from moxcli.store import Store, schema
from moxcli.store.env import seal
from moxcli.store.files import message_file, queue_file, write_file


@pytest.fixture
def src(data_dir) -> Path:
    make_data_dir(data_dir)
    key = data_dir / "dkim" / "example.org" / "2026a.ed25519.pem"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return data_dir


def test_backup_links_files_and_verifies(src, tmp_path):
    dest = tmp_path / "backup"
    res = backup(src, dest)
    assert res.ok and res.errors == [] and res.warnings == []
    assert res.files_linked == 8  # 6 messages, 2 queue files
    assert res.files_copied == 2  # config and DKIM key
    assert res.schema_version == schema.SCHEMA_VERSION
    assert not (dest / INCOMPLETE_MARKER).exists()
    assert (dest / VERSION_FILE).read_text().strip()
    assert os.stat(dest / "accounts/alice/msg/a/1").st_ino == os.stat(src / "accounts/alice/msg/a/1").st_ino
    assert (dest / "moxcli.toml").read_text() == (src / "moxcli.toml").read_text()
    assert (dest / "dkim/example.org/2026a.ed25519.pem").exists()
    assert not (dest / "locks").exists()
    for d in (dest, dest / "accounts", dest / "accounts/alice/msg/a", dest / "queue", dest / "store"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    v = verify_data(dest)
    assert v.ok and v.warnings == [], (v.problems, v.warnings)
    assert v.counts["message_files"] == 6 and v.counts["queue_files"] == 2


def test_link_failure_falls_back_to_copy_and_warns_once(src, tmp_path, monkeypatch):
    calls = []

    def no_link(a, b, **kw):
        calls.append(a)
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr("moxcli.datatools.backup.os.link", no_link)
    dest = tmp_path / "backup"
    res = backup(src, dest)
    assert res.ok and len(calls) == 1
    assert res.files_linked == 0 and res.files_copied == 10
    assert len(res.warnings) == 1 and "another file system" in res.warnings[0]
    assert os.stat(dest / "accounts/alice/msg/a/1").st_ino != os.stat(src / "accounts/alice/msg/a/1").st_ino
    assert verify_data(dest).ok


def test_missing_file_fails_and_marks_dest(src, tmp_path, runner):
    message_file(src, "bob", 1).unlink()
    dest = tmp_path / "backup"
    r = runner.invoke(cli, ["--data", str(src), "backup", "--json", str(dest)])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert doc["errors"] == [
        {
            "code": "file-missing",
            "message": f"accounts/bob/msg/a/1: missing in {src.resolve()}, but the store references it",
        }
    ]
    marker = (dest / INCOMPLETE_MARKER).read_text()
    assert (
        marker.startswith(f"backup of {src.resolve()} failed with 1 error:\n")
        and "accounts/bob/msg/a/1: missing" in marker
    )
    assert "backup incomplete (1 error)" in r.stderr
    assert any(p.path == INCOMPLETE_MARKER for p in verify_data(dest).problems)


def test_unreferenced_files(src, tmp_path):
    """Unreferenced older files are kept (with a warning); newer ones belong to later writes."""
    with Store.open(src) as st, st.write() as tx:
        tx.delete(schema.QUEUE, schema.u64(1))
    write_file(queue_file(src, 50), b"enqueued after the snapshot")
    (src / "queue" / "a" / ".7.tmp1").write_bytes(b"half written")
    res = backup(src, tmp_path / "backup")
    assert res.ok
    assert res.warnings == ["queue/a/1: not referenced by the store, backed up anyway"]
    assert (tmp_path / "backup/queue/a/1").exists()
    assert not (tmp_path / "backup/queue/a/50").exists() and not (tmp_path / "backup/queue/a/.7.tmp1").exists()


def test_refusals(src, tmp_path, runner):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    r = runner.invoke(cli, ["--data", str(src), "backup", str(full)])
    assert r.exit_code == 2 and "exists and is not an empty directory" in r.stderr
    r = runner.invoke(cli, ["--data", str(src), "backup", str(src / "inner")])
    assert r.exit_code == 2 and "must not be inside the data directory" in r.stderr
    r = runner.invoke(cli, ["--data", str(tmp_path / "nodata"), "backup", str(tmp_path / "b")])
    assert r.exit_code == 2 and "no moxcli data directory at" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["--data", str(src), "backup", str(empty)])
    assert r.exit_code == 0, r.output
    assert "files linked: 8" in r.stdout and "files copied: 2" in r.stdout


def test_cli_json_keys(src, tmp_path, runner):
    r = runner.invoke(cli, ["--data", str(src), "backup", "--json", "--copy", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {
        "source",
        "dest",
        "ok",
        "files_linked",
        "files_copied",
        "bytes",
        "store_bytes",
        "seconds",
        "schema_version",
        "warnings",
        "errors",
    }
    assert doc["files_linked"] == 0 and doc["files_copied"] == 10 and doc["ok"] is True


def test_lock_held(src, tmp_path, runner):
    """A second backup of the same data directory exits 3 at once (moxcli.store.job_lock)."""
    code = (
        f"import time\nfrom moxcli.store import job_lock\nwith job_lock({str(src)!r}, 'backup'):\n"
        "    print('held', flush=True)\n    time.sleep(30)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        r = runner.invoke(cli, ["--data", str(src), "backup", str(tmp_path / "b")])
        assert r.exit_code == 3 and "holds the lock" in r.stderr
    finally:
        p.kill()
        p.wait()


WRITER = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from moxcli.store import Store
    from moxcli.delivery.queue import drop, enqueue
    from moxcli.store.mail import ensure_account
    from helpers.datadir import add_message
    data, log = Path(sys.argv[1]), open(sys.argv[2], "a")
    with Store.open(data) as st:
        st.update(lambda tx: ensure_account(tx, "writer"))
        i = 0
        queued = []
        while True:
            i += 1
            body = b"Subject: w%d\\r\\n\\r\\n" % i + b"x" * (i % 500) + b"\\r\\n"
            msg_id = st.update(lambda tx: add_message(tx, data, "writer", "Inbox", body))
            log.write(f"{{msg_id}}\\n")
            log.flush()
            # queue churn: enqueue one, "deliver" (drop) an older one
            queued += enqueue(st, data, mail_from="writer@example.org", recipients=["r@example.net"], data=body)
            if len(queued) > 5:
                drop(st, data, queued.pop(0))
    """
)


def _committed(log: Path) -> set[int]:
    return {int(x) for x in log.read_text().split()}


def test_backup_while_another_process_writes(data_dir, tmp_path):
    make_data_dir(data_dir, messages=1500)
    log = tmp_path / "committed.log"
    log.write_text("")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(tests=str(Path(__file__).parent)), str(data_dir), str(log)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while len(_committed(log)) < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        before = _committed(log)
        assert len(before) >= 50, writer.stderr.read1().decode() if writer.poll() is not None else "writer too slow"
        # pauses while linking (every 256 files) so that the writer surely commits meanwhile
        res = backup(data_dir, tmp_path / "backup", progress=lambda done, total: time.sleep(0.05))
        after = _committed(log)
    finally:
        writer.kill()
        writer.wait()
    assert res.ok, res.errors
    assert len(after) > len(before), "the writer did not write during the backup"
    v = verify_data(tmp_path / "backup")
    assert v.ok, v.problems[:5]
    with Store.open(tmp_path / "backup", readonly=True) as st, st.read() as tx:
        ids = {rec["id"] for _, rec in tx.scan(schema.MESSAGE, schema.prefix_key("writer"))}
    assert before <= ids, "a record committed before the snapshot is missing"
    assert ids == set(range(1, max(ids) + 1)), "the snapshot is not one moment"
    assert ids <= after


SLOW_BACKUP = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    from moxcli.datatools.backup import backup

    def progress(done, total):
        Path(sys.argv[3]).write_text(str(done))
        time.sleep(60)

    backup(Path(sys.argv[1]), Path(sys.argv[2]), progress=progress)
    """
)


def test_sigkill_during_backup(data_dir, tmp_path):
    make_data_dir(data_dir, messages=600)
    before = tree_digest(data_dir)
    flag = tmp_path / "midway"
    dest = tmp_path / "backup"
    p = subprocess.Popen([sys.executable, "-c", SLOW_BACKUP, str(data_dir), str(dest), str(flag)])
    try:
        deadline = time.monotonic() + 20
        while not flag.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert flag.exists(), "backup did not get midway"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL
    assert "not finished" in (dest / INCOMPLETE_MARKER).read_text()
    assert any(p.path == INCOMPLETE_MARKER for p in verify_data(dest).problems)
    assert tree_digest(data_dir, skip=("locks",)) == before
    assert verify_data(data_dir).ok
    res = backup(data_dir, tmp_path / "second")
    assert res.ok, "the lock of the killed backup is gone"


def test_bad_records_are_errors_not_crashes(src, tmp_path):
    with Store.open(src) as st, st.write() as tx:
        key = schema.text_key("alice", 1, 99)
        tx.put_raw(schema.MESSAGE, key, seal(key, b"\xc1"))
        tx.put(schema.MESSAGE, schema.text_key("../evil", 1, 1), {"id": 1, "size": 1})
        tx.put(schema.QUEUE, schema.u64(77), {"id": 77, "size": "big"})
    res = backup(src, tmp_path / "backup")
    assert not res.ok
    assert sorted(res.errors) == [
        "store/message/../evil/1/1: cannot back up its file: invalid account name '../evil'",
        "store/message/alice/1/99: cannot back up its file: does not decode (msgpack: FormatError)",
        "store/queue/77: cannot back up its file: id 77 / size 'big' are not valid numbers",
    ]
    assert res.files_linked == 8
    assert not (tmp_path / "evil").exists()


def test_queue_message_delivered_during_backup(src, tmp_path, monkeypatch):
    """Delivery after the snapshot removes record and file: a warning, and the backup's copy
    of the store drops the record so that the backup verifies."""
    original = Store.copy_to
    deliver = (
        "import sys\nfrom moxcli.store import Store\nfrom moxcli.delivery.queue import drop\n"
        "with Store.open(sys.argv[1]) as st:\n    drop(st, sys.argv[1], 2)\n"
    )

    def copy_then_deliver(self, dest, compact=True):
        original(self, dest, compact)
        subprocess.run([sys.executable, "-c", deliver, str(src)], check=True)  # another process, as in real life

    monkeypatch.setattr(Store, "copy_to", copy_then_deliver)
    res = backup(src, tmp_path / "backup")
    assert res.ok, res.errors
    assert res.warnings == ["queue/a/2: left the queue during the backup; not in the backup"]
    v = verify_data(tmp_path / "backup")
    assert v.ok, v.problems
    assert v.counts["queue"] == 1


def test_missing_queue_file_still_queued_is_an_error(src, tmp_path):
    queue_file(src, 1).unlink()
    res = backup(src, tmp_path / "backup")
    assert res.errors == [f"queue/a/1: missing in {src.resolve()}, but the store references it"]


def test_backup_to_another_file_system(src):
    """A real cross-device backup (EXDEV on link) copies instead, when /dev/shm is another fs."""
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == src.stat().st_dev:
        pytest.skip("no writable /dev/shm on another file system")
    with tempfile.TemporaryDirectory(dir=shm) as d:
        res = backup(src, Path(d) / "backup")
        assert res.ok and res.files_linked == 0 and res.files_copied == 10
        assert len(res.warnings) == 1 and "another file system" in res.warnings[0]
        assert verify_data(Path(d) / "backup").ok


def test_backup_of_an_older_schema_store(src, tmp_path, monkeypatch):
    """Before an upgrade: the old store is copied as it is, with all its files."""
    from moxcli.store import migrate

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setattr("moxcli.datatools.verify.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, lambda tx: None)
    res = backup(src, tmp_path / "backup")
    assert res.ok, res.errors
    assert res.schema_version == now
    assert res.warnings == [
        f"the store has the older schema version {now}: copied as it is, with every file under accounts/ and queue/"
    ]
    v = verify_data(tmp_path / "backup")
    assert v.ok and v.migrated_from == now, v.problems
    assert v.counts["message_files"] == 6 and v.counts["queue_files"] == 2

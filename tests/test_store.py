import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from moxcli.errors import ConfigError, StoreError
from moxcli.store import Store, StoreNeedsMigration, job_lock, migrate, schema
from moxcli.store.env import seal
from moxcli.store.files import message_file, msg_path, parse_msg_path, write_file


def test_put_get_scan_delete(data_dir):
    with Store.open(data_dir) as st:
        with st.write() as tx:
            for day in ("20260101", "20260102"):
                for dom in ("b.example", "a.example"):
                    tx.put(schema.TLS_RESULT, schema.text_key(day, dom, dom), {"day": day, "dom": dom})
        with st.read() as tx:
            keys = [schema.split_key(k) for k, _ in tx.scan(schema.TLS_RESULT, schema.prefix_key("20260102"))]
            assert keys == [["20260102", "a.example", "a.example"], ["20260102", "b.example", "b.example"]]
            rec = tx.get(schema.TLS_RESULT, schema.text_key("20260101", "a.example", "a.example"))
            assert rec == {"day": "20260101", "dom": "a.example", "_v": 1}
            assert tx.count(schema.TLS_RESULT) == 4
            rev = [
                r["day"] + r["dom"] for _, r in tx.scan(schema.TLS_RESULT, schema.prefix_key("20260101"), reverse=True)
            ]
            assert rev == ["20260101b.example", "20260101a.example"]
        with st.write() as tx:
            assert tx.delete_prefix(schema.TLS_RESULT, schema.prefix_key("20260101")) == 2
        with st.read() as tx:
            assert tx.count(schema.TLS_RESULT) == 2


def test_int_keys_sort_and_split(data_dir):
    with Store.open(data_dir) as st:
        with st.write() as tx:
            for uid in (256, 1, 65536, 2):
                tx.put(schema.MESSAGE, schema.text_key("acc", 1, uid), {"uid": uid})
        with st.read() as tx:
            assert [r["uid"] for _, r in tx.scan(schema.MESSAGE, schema.prefix_key("acc", 1))] == [1, 2, 256, 65536]
            assert next(schema.split_key(k, (1, 2)) for k, _ in tx.scan(schema.MESSAGE)) == ["acc", 1, 1]


def test_write_aborts_on_exception(data_dir):
    with Store.open(data_dir) as st:
        with pytest.raises(RuntimeError), st.write() as tx:
            tx.put(schema.QUEUE, schema.u64(1), {"x": 1})
            assert tx.next_id("queue") == 1
            raise RuntimeError("boom")
        with st.read() as tx:
            assert tx.get(schema.QUEUE, schema.u64(1)) is None
            assert tx.peek_id("queue") == 0


def test_readonly_open_requires_store_and_refuses_writes(data_dir):
    with pytest.raises(StoreError, match="no store here"):
        Store.open(data_dir, readonly=True)
    Store.open(data_dir).close()
    with Store.open(data_dir, readonly=True) as st, pytest.raises(StoreError, match="read-only"), st.write():
        pass


READER = (
    "import sys;from pathlib import Path;from moxcli.store import Store, schema\n"
    "with Store.open(Path(sys.argv[1]), readonly=True) as st, st.read() as tx:\n"
    "    print(tx.get(schema.QUEUE, schema.u64(1))['v'])\n"
)


def test_reader_not_blocked_by_writer(data_dir):
    with Store.open(data_dir) as st:
        with st.write() as tx:
            tx.put(schema.QUEUE, schema.u64(1), {"v": "old"})
        with st.write() as wtx:
            wtx.put(schema.QUEUE, schema.u64(1), {"v": "new"})
            r = subprocess.run(
                [sys.executable, "-c", READER, str(data_dir)], capture_output=True, text=True, timeout=10
            )
            assert r.stdout.strip() == "old", r.stderr
    r = subprocess.run([sys.executable, "-c", READER, str(data_dir)], capture_output=True, text=True, timeout=10)
    assert r.stdout.strip() == "new"


def test_newer_schema_refused(data_dir):
    with Store.open(data_dir) as st, st.write() as tx:
        tx.set_meta("schema_version", schema.SCHEMA_VERSION + 1)
    for readonly in (False, True):
        with pytest.raises(ConfigError, match="newer than this moxcli understands"):
            Store.open(data_dir, readonly=readonly)


def test_older_schema_migrated_in_one_transaction(data_dir, monkeypatch):
    with Store.open(data_dir) as st, st.write() as tx:
        tx.put(schema.QUEUE, schema.u64(7), {"old_field": "x"})
    calls = []

    def step(tx):
        calls.append(1)
        rec = tx.get(schema.QUEUE, schema.u64(7))
        tx.put(schema.QUEUE, schema.u64(7), {"new_field": rec["old_field"]})

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", now + 1)
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, step)
    with pytest.raises(StoreNeedsMigration):
        Store.open(data_dir, readonly=True)
    with Store.open(data_dir) as st, st.read() as tx:
        assert tx.meta("schema_version") == now + 1
        assert tx.get(schema.QUEUE, schema.u64(7))["new_field"] == "x"
    assert calls == [1]


def test_failed_migration_leaves_old_schema(data_dir, monkeypatch):
    Store.open(data_dir).close()

    def step(tx):
        tx.put(schema.QUEUE, schema.u64(1), {"half": True})
        raise StoreError("step failed")

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, step)
    with pytest.raises(StoreError, match="step failed"):
        Store.open(data_dir)
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now)
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert tx.meta("schema_version") == now
        assert tx.get(schema.QUEUE, schema.u64(1)) is None


def test_undecodable_record_is_a_store_error(data_dir):
    with Store.open(data_dir) as st:
        with st.write() as tx:
            tx.put_raw(schema.QUEUE, schema.u64(1), seal(schema.u64(1), b"\xc1garbage"))
            tx.put_raw(schema.QUEUE, schema.u64(2), seal(schema.u64(2), b"\x81\xa2_v\x63"))  # version 99
            tx.put_raw(schema.QUEUE, schema.u64(3), seal(schema.u64(3), b"\x80")[:-1] + b"\x00")
        with st.read() as tx:
            with pytest.raises(StoreError, match="fails its checksum"):
                tx.get(schema.QUEUE, schema.u64(3))
            with pytest.raises(StoreError, match="does not decode"):
                tx.get(schema.QUEUE, schema.u64(1))
            with pytest.raises(StoreError, match="unknown version 99"):
                tx.get(schema.QUEUE, schema.u64(2))


def test_map_grows_when_full(data_dir):
    with Store.open(data_dir, map_size=1 << 20) as st:
        blob = b"x" * 4000

        def fill(tx):
            for i in range(2000):
                tx.put(schema.QUEUE, schema.u64(i), {"b": blob})

        st.update(fill)
        with st.read() as tx:
            assert tx.count(schema.QUEUE) == 2000
        assert st.stat()["map_size"] > 1 << 20


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from moxcli.store import Store, schema
    st = Store.open(Path(sys.argv[1]))
    n = 0
    while True:
        with st.write() as tx:
            for i in range(200):
                tx.put(schema.QUEUE, schema.u64(n + i), {"payload": "x" * 500})
            n += 200
            tx.set_meta("written", n)
        if n == 200:
            print("ready", flush=True)  # one batch committed: the kill below finds some written
    """
)


def test_killed_writer_leaves_consistent_store(data_dir):
    """SIGKILL mid-transaction: the store opens and no half-written batch is visible."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir)], stdout=subprocess.PIPE)
    try:
        # "ready" comes after the first commit (a loaded machine may need longer than any sleep
        # for it); the writer goes on committing, so the kill most likely falls mid-transaction.
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.8)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        written = tx.meta("written", 0)
        assert written > 0
        assert tx.count(schema.QUEUE) == written
        assert sum(1 for _ in tx.scan(schema.QUEUE)) == written
    with Store.open(data_dir) as st, st.write() as tx:
        tx.put(schema.QUEUE, schema.u64(10**9), {"after": True})


@pytest.mark.parametrize(
    "msg_id, path", [(1, "a/1"), (8191, "a/8191"), (8192, "b/8192"), (524288, "ab/524288"), (1000000, "Wb/1000000")]
)
def test_message_paths(msg_id, path):
    assert msg_path(msg_id) == path
    assert parse_msg_path(path) == msg_id


@pytest.mark.parametrize("rel", ["b/1", "a/01", "a/x", "a/b/1", "1"])
def test_parse_msg_path_rejects(rel):
    assert parse_msg_path(rel) is None


def test_write_file_atomic_and_private(data_dir):
    p = message_file(data_dir, "acc", 3)
    write_file(p, b"hello")
    assert p.read_bytes() == b"hello"
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert oct(p.parent.stat().st_mode & 0o777) == "0o700"
    assert [x.name for x in p.parent.iterdir()] == ["3"]
    for d in (data_dir / "accounts", data_dir / "accounts" / "acc", data_dir / "accounts" / "acc" / "msg"):
        assert oct(d.stat().st_mode & 0o777) == "0o700", d


@pytest.mark.parametrize("name", ["", "..", "a/b", "x\x00", "bad\nname"])
def test_account_names_validated(data_dir, name):
    with pytest.raises(ValueError):
        message_file(data_dir, name, 1)


def test_job_lock_excludes_other_process(data_dir):
    code = (
        "import sys;from pathlib import Path;from moxcli.store import job_lock\n"
        "from moxcli.errors import LockHeld\n"
        "try:\n  with job_lock(Path(sys.argv[1]), 'send-tlsreports'): pass\n"
        "except LockHeld as e: print(e); sys.exit(3)\n"
    )
    with job_lock(data_dir, "send-tlsreports"):
        r = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True)
        assert r.returncode == 3
        assert f"pid {os.getpid()}" in r.stdout
    r = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True)
    assert r.returncode == 0

"""The seal of a live store (moxcli/store/seal.py): the SHA-256 of data.mdb at the last commit.

verifydata finds a flip anywhere in a sealed store's file, also in the bytes no LMDB reader
reads; a kill at any point leaves a valid seal or none, never a false alarm; two writers
never leave a seal that disagrees with the file; no seal above [store] seal_max_size.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest

from moxcli.config import DEFAULT_SEAL_MAX_SIZE as CONFIG_DEFAULT
from moxcli.config import parse_config
from moxcli.datatools.gentest import generate
from moxcli.datatools.verify import verify_data
from moxcli.errors import ConfigError
from moxcli.store import Store, schema
from moxcli.store.datafile import newest_txnid
from moxcli.store.env import encode
from moxcli.store.seal import DEFAULT_SEAL_MAX_SIZE, SEAL_FILE, VOID_FILE, check_seal, file_sha256

MOXCLI = str(Path(sys.executable).parent / "moxcli")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gen") / "data"
    generate(d)
    return d


@pytest.fixture
def data(generated, tmp_path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(generated, d)
    return d


def _seal_txn(d: Path) -> int:
    got = check_seal(d)
    assert got is not None and got.problem is None and got.note is None and got.warning is None, got
    return got.txnid


def _flip(path: Path, at: int, bit: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)[0]
        f.seek(at)
        f.write(bytes([b ^ (1 << bit)]))


def test_a_writer_seals_the_store_it_wrote(data):
    data_file = data / "store" / "data.mdb"
    assert _seal_txn(data) == newest_txnid(data_file)
    with Store.open(data) as st:
        with st.write() as tx:
            tx.set_meta("x", 1)
            assert (data / SEAL_FILE).exists()  # not yet committed: still the file it describes
        assert not (data / SEAL_FILE).exists()  # removed before the commit wrote a page
    assert _seal_txn(data) == newest_txnid(data_file)
    assert (data / SEAL_FILE).stat().st_mode & 0o777 == 0o600
    assert file_sha256(data_file) in (data / SEAL_FILE).read_text()


def test_the_seal_is_in_sha256sum_format(data):
    if not shutil.which("sha256sum"):
        pytest.skip("no sha256sum")
    r = subprocess.run(["sha256sum", "-c", "--strict", SEAL_FILE], cwd=data, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "store/data.mdb: OK\n", r.stdout + r.stderr


@pytest.mark.parametrize(
    "action",
    [
        "read-only open",
        "writable open, no write",
        "writable open by another process",
        "empty write transaction",
        "map growth",
        "verifydata",
        "verifydata --fix",
        "backup",
    ],
)
def test_what_does_not_change_the_file_keeps_the_seal_valid(data, tmp_path, action):
    """LMDB changes data.mdb only in a commit with a new transaction id (or one cut short)."""
    seal_before = (data / SEAL_FILE).read_bytes()
    file_before = (data / "store" / "data.mdb").read_bytes()
    if action == "read-only open":
        with Store.open(data, readonly=True) as st, st.read() as tx:
            tx.meta("schema_version")
    elif action == "writable open, no write":
        Store.open(data).close()
    elif action == "writable open by another process":
        code = f"from moxcli.store import Store; Store.open({str(data)!r}).close()"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    elif action == "empty write transaction":
        with Store.open(data) as st, st.write() as tx:
            tx.meta("schema_version")
    elif action == "map growth":
        with Store.open(data, map_size=1 << 20) as st:
            st._grow()
            st._env.set_mapsize(1 << 33)
    elif action.startswith("verifydata"):
        assert verify_data(data, fix=action.endswith("--fix")).ok
    else:
        from moxcli.datatools.backup import backup

        assert backup(data, tmp_path / "bk").ok
    assert (data / "store" / "data.mdb").read_bytes() == file_before
    assert (data / SEAL_FILE).read_bytes() == seal_before  # an empty write transaction seals the same file again
    _seal_txn(data)


@pytest.mark.parametrize("version", [1, 2])
def test_a_migration_seals_the_store_it_migrated(tmp_path, version):
    """An upgrade fixture (a backup of an older schema, with its digest): the migration's write
    transaction sets the digest aside, and the seal after it holds."""
    import tarfile

    with tarfile.open(ROOT / "testdata" / "upgrade" / f"v{version}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    before = newest_txnid(data / "store" / "data.mdb")
    Store.open(data).close()
    assert _seal_txn(data) == newest_txnid(data / "store" / "data.mdb") > before
    assert (data / SEAL_FILE).read_text().startswith("# moxcli seal: ")
    assert verify_data(data).ok


def test_random_flips_anywhere_in_a_sealed_store_are_found(generated, tmp_path):
    """40 flips over the whole file (most of it bytes no LMDB reader reads): each is found."""
    data = (generated / "store" / "data.mdb").read_bytes()
    assert _seal_txn(generated)
    rng = random.Random(18)
    for i in range(40):
        at, bit = rng.randrange(len(data)), rng.randrange(8)
        d = tmp_path / f"t{i}"
        shutil.copytree(generated, d, copy_function=os.link)  # only the store file is changed
        damaged = bytearray(data)
        damaged[at] ^= 1 << bit
        (d / "store" / "data.mdb").unlink()
        (d / "store" / "data.mdb").write_bytes(damaged)
        res = verify_data(d)
        assert not res.ok, (at, bit)
        shutil.rmtree(d)


def test_a_flip_nothing_reads_is_reported_by_the_seal(data):
    from moxcli.store.datafile import check_pages

    f = data / "store" / "data.mdb"
    checked = check_pages(f, frozenset(t.name.encode() for t in schema.TABLES))
    assert checked is not None
    used = bytearray(f.stat().st_size)
    for a, b in checked[1]:
        used[a:b] = b"\x01" * (b - a)
    unread = [i for i, u in enumerate(used) if not u and i >= 2 * 4096]
    _flip(f, unread[len(unread) // 2], 3)
    res = verify_data(data)
    assert [(p.code, p.path) for p in res.problems] == [("store-checksum-mismatch", "store/data.mdb")]
    assert res.problems[0].what.startswith("changed on disk since its last commit (transaction ")
    assert res.problems[0].what.endswith("; store.sha256): damaged; restore from a backup")


def test_verifydata_cli_exit_1_on_a_changed_sealed_file(data):
    f = data / "store" / "data.mdb"
    _flip(f, f.stat().st_size - 1, 0)  # the last page: free or a page's unused end
    r = subprocess.run([MOXCLI, "verifydata", str(data)], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error: store/data.mdb: changed on disk since its last commit" in r.stdout


def test_a_stale_seal_is_no_false_alarm(data):
    """A writer that does not seal (an older moxcli) leaves a seal of an older transaction:
    a note, never a problem."""
    old = _seal_txn(data)
    env = lmdb.open(str(data / "store"), max_dbs=64)
    with env.begin(write=True) as txn:
        txn.put(b"x", encode(schema.META, b"x", {"value": 1}), db=env.open_db(b"meta", txn=txn))
    env.close()
    res = verify_data(data)
    assert res.ok, res.problems
    assert [n.code for n in res.notes] == ["store-seal-stale"], res.notes
    assert f"sealed (transaction {old})" in res.notes[0]


def test_a_process_ended_between_commit_and_seal_leaves_no_seal(data, monkeypatch):
    monkeypatch.setattr(Store, "seal", lambda self: False)
    with Store.open(data) as st, st.write() as tx:
        tx.set_meta("x", 1)
    assert not (data / SEAL_FILE).exists()
    assert (data / VOID_FILE).exists()  # set aside, not deleted (a full disk: see remove_seal)
    res = verify_data(data)
    assert res.ok and res.warnings == [], res.problems + res.warnings


def test_a_seal_written_while_hashing_is_no_false_alarm(data):
    """check_seal hashes without a lock: a writer that removes the seal and commits meanwhile
    makes the hash differ under the transaction id read before, but the seal it read is gone
    (or replaced): not a problem."""
    import moxcli.store.seal as sealmod

    real = sealmod.file_sha256

    def write_while_hashing(path: Path) -> str:
        sealmod.file_sha256 = real  # the writer's own seal hashes as usual
        with Store.open(data) as st, st.write() as tx:
            tx.set_meta("x", 2)
        return real(path)

    sealmod.file_sha256 = write_while_hashing
    try:
        got = check_seal(data)
    finally:
        sealmod.file_sha256 = real
    assert got is not None and got.problem is None and got.note, got


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_seal_that_is_not_a_regular_file_is_a_warning_never_followed_nor_waited_on(data, kind):
    seal = data / SEAL_FILE
    seal.unlink()
    if kind == "fifo":
        os.mkfifo(seal)
    else:
        (data.parent / "elsewhere").write_text("x")
        seal.symlink_to(data.parent / "elsewhere")
    res = verify_data(data)
    assert [w.path for w in res.warnings] == [SEAL_FILE], res.warnings
    assert res.warnings[0].what.startswith("cannot read: "), res.warnings


def test_leftovers_are_removed_by_the_next_seal(data):
    left = [data / f".{SEAL_FILE}.tmp0123456789ab", data / VOID_FILE]
    for f in left:
        f.write_text("half")
    with Store.open(data) as st, st.write() as tx:
        tx.set_meta("x", 1)
    assert [f.name for f in left if f.exists()] == []
    _seal_txn(data)


@pytest.mark.parametrize("cap", [0, 4096])
def test_no_seal_above_the_size_cap_and_the_old_one_removed(data, cap):
    assert (data / SEAL_FILE).exists()
    with Store.open(data, seal_max_size=cap) as st, st.write() as tx:
        tx.set_meta("x", 1)
    assert not (data / SEAL_FILE).exists()
    assert not (data / VOID_FILE).exists()
    assert verify_data(data).ok


def test_verifydata_fix_honours_seal_max_size(data):
    """--fix removes a killed import's record: a write, sealed only up to DIR's config's size."""
    from moxcli.store import mail as store_mail

    with Store.open(data) as st, st.write() as tx:
        store_mail.begin_import(tx, "bob", store_mail.ImportRecord(pid=1, started=1.0))
    (data / "moxcli.toml").write_text((data / "moxcli.toml").read_text() + "\n[store]\nseal_max_size = 0\n")
    assert (data / SEAL_FILE).exists()
    res = verify_data(data, fix=True)
    assert res.ok and res.notes == ["removed the files of an interrupted import into account bob"], res.notes
    assert not (data / SEAL_FILE).exists()


def test_seal_max_size_from_the_config_reaches_the_writers(data):
    """`queue add` (through AppContext.open_store) and `import` honour [store] seal_max_size."""
    cfg = data / "moxcli.toml"
    text = cfg.read_text()
    cfg.write_text(text + "\n[store]\nseal_max_size = 4096\n")
    msg = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: x\r\n\r\nhi\r\n"
    queue_add = [MOXCLI, "--data", str(data), "queue", "add", "--from", "a@example.org", "--to", "b@example.net"]
    r = subprocess.run(queue_add, input=msg, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert not (data / SEAL_FILE).exists()
    cfg.write_text(text)  # the default cap: sealed
    r = subprocess.run(queue_add, input=msg, capture_output=True)
    assert r.returncode == 0, r.stderr
    _seal_txn(data)
    mbox = data.parent / "in.mbox"
    mbox.write_bytes(b"From a@example.org Thu Jan  1 00:00:00 2026\n" + msg.replace(b"\r\n", b"\n"))
    cfg.write_text(text + "\n[store]\nseal_max_size = 0\n")
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "import", "mbox", "test", "Inbox", str(mbox)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert not (data / SEAL_FILE).exists()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("-1", "must be between 0 (no seal) and 2^40 bytes, got -1"),
        (str((1 << 40) + 1), f"must be between 0 (no seal) and 2^40 bytes, got {(1 << 40) + 1}"),
        ('"64MiB"', "expected integer, got string '64MiB'"),
        ("1.5", "expected integer, got float 1.5"),
    ],
)
def test_seal_max_size_is_validated(value, error):
    with pytest.raises(ConfigError, match=r"store\.seal_max_size") as exc:
        parse_config(f"[store]\nseal_max_size = {value}\n", Path("/x/moxcli.toml"))
    assert error in str(exc.value)


@pytest.mark.parametrize(
    ("text", "want"), [("", CONFIG_DEFAULT), ("[store]\n", CONFIG_DEFAULT), ("[store]\nseal_max_size = 0\n", 0)]
)
def test_seal_max_size_values(text, want):
    assert parse_config(text, Path("/x/moxcli.toml")).store.seal_max_size == want


def test_the_config_default_is_the_store_default():
    assert CONFIG_DEFAULT == DEFAULT_SEAL_MAX_SIZE == 64 << 20


_WRITER = r"""
import os, sys
from pathlib import Path
from moxcli.store import Store
d, tag = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
for n in range(int(sys.argv[3])):
    with Store.open(d) as st, st.write() as tx:
        for i in range(int(sys.argv[4])):  # many pages: a commit that takes a while
            tx.set_meta(f"filler:{tag}:{i}", os.urandom(700).hex())
"""


def _writer(d: Path, tag: str, rounds: int, records: int) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(d), tag, str(rounds), str(records)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    return p


def _kill_trials(data: Path, trials: int) -> None:
    rng = random.Random(5)
    for _ in range(trials):
        p = _writer(data, "k", 1000, 300)
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        got = check_seal(data)
        assert got is None or (got.problem is None and got.warning is None), got
        res = verify_data(data)
        assert res.ok, res.problems


def test_sigkill_at_any_point_leaves_a_valid_seal_or_none(data):
    _kill_trials(data, 3)


@pytest.mark.slow
def test_sigkill_at_any_point_leaves_a_valid_seal_or_none_many(data):
    _kill_trials(data, int(os.environ.get("SEAL_KILLS", "40")))


def test_two_writers_in_parallel_never_leave_a_seal_that_disagrees(data):
    """Two processes commit and seal in turn while a third checks the seal without a lock:
    no check ever sees a problem, and the last seal matches the file."""
    a, b = _writer(data, "a", 15, 50), _writer(data, "b", 15, 50)
    checks = 0
    while a.poll() is None or b.poll() is None:
        got = check_seal(data)
        assert got is None or (got.problem is None and got.warning is None), got
        checks += 1
    assert (a.returncode, b.returncode) == (0, 0)
    assert checks > 0
    _seal_txn(data)
    assert verify_data(data).ok

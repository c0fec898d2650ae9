"""Damaged stores: record checksums, truncated data files refused before LMDB maps them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from moxcli.datatools.gentest import generate
from moxcli.datatools.verify import verify_data
from moxcli.errors import StoreError
from moxcli.store import Store, schema
from moxcli.store.env import StoreDamaged, decode, seal, unseal

MOXCLI = str(Path(sys.executable).parent / "moxcli")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gen") / "data"
    generate(d)
    return d


def test_every_record_is_sealed(generated):
    with Store.open(generated, readonly=True) as st, st.read() as tx:
        n = 0
        for table in schema.TABLES:
            if table.is_index:
                continue
            for key, raw in tx.scan_raw(table):
                assert unseal(key, raw) is not None, (table.name, key)
                n += 1
    assert n > 50


def test_any_flipped_bit_of_a_record_fails_its_checksum(generated):
    """CRC-32 detects every single-bit error: in the value and in the key."""
    rng = random.Random(3)
    with Store.open(generated, readonly=True) as st, st.read() as tx:
        records = [(t, k, v) for t in schema.TABLES if not t.is_index for k, v in tx.scan_raw(t)]
    for table, key, raw in rng.sample(records, 40):
        bit = rng.randrange(len(raw) * 8)
        damaged = bytearray(raw)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(StoreError, match="fails its checksum"):
            decode(table, key, bytes(damaged))
        kbit = rng.randrange(len(key) * 8)
        other = bytearray(key)
        other[kbit // 8] ^= 1 << (kbit % 8)
        with pytest.raises(StoreError, match="fails its checksum"):
            decode(table, bytes(other), raw)


@pytest.mark.parametrize("raw", [b"", b"\x00", b"abc", b"\xff" * 4, os.urandom(64)])
def test_decode_of_garbage_is_a_store_error(raw):
    with pytest.raises(StoreError):
        decode(schema.QUEUE, b"k", raw)


def test_a_sealed_non_map_is_a_store_error():
    with pytest.raises(StoreError, match="not a map"):
        decode(schema.QUEUE, b"k", seal(b"k", b"\x01"))


def _record_bytes(data_file: Path) -> list[int]:
    """Offsets of live record values inside data.mdb (stale copies in free pages left out)."""
    from moxcli.store.datafile import check_pages

    blob = data_file.read_bytes()
    checked = check_pages(data_file, frozenset(t.name.encode() for t in schema.TABLES))
    assert checked is not None
    used = bytearray(len(blob))
    for a, b in checked[1]:
        used[a:b] = b"\x01" * (b - a)
    out = []
    with Store.open(data_file.parent.parent, readonly=True) as st, st.read() as tx:
        for table in (schema.MESSAGE, schema.QUEUE, schema.MAILBOX, schema.TLS_RESULT):
            for _key, raw in tx.scan_raw(table):
                at = blob.find(raw)
                while at >= 0 and not used[at]:
                    at = blob.find(raw, at + 1)
                if at >= 0:
                    out.extend(range(at, at + len(raw)))
    return out


def test_bit_flips_in_stored_records_are_found_by_verifydata(generated, tmp_path):
    """A few random flips inside records (bench/bitflip.py measures the whole file)."""
    import shutil

    offsets = _record_bytes(generated / "store" / "data.mdb")
    rng = random.Random(11)
    for i in range(int(os.environ.get("BITFLIP_TRIALS", "4"))):
        d = tmp_path / f"t{i}"
        shutil.copytree(generated, d)
        f = d / "store" / "data.mdb"
        blob = bytearray(f.read_bytes())
        at = rng.choice(offsets)
        blob[at] ^= 1 << rng.randrange(8)
        f.write_bytes(blob)
        res = verify_data(d)
        assert not res.ok, f"flip at byte {at} passed"
        assert any("fails its checksum" in p.what for p in res.problems), res.problems


def _truncate(data: Path) -> None:
    f = data / "store" / "data.mdb"
    os.truncate(f, f.stat().st_size // 2)


def test_truncated_store_refused_by_open(generated, tmp_path):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(generated, d)
    _truncate(d)
    for readonly in (True, False):
        with pytest.raises(StoreDamaged, match=r"truncated: .* run moxcli verifydata"):
            Store.open(d, readonly=readonly)


@pytest.mark.parametrize(
    "args",
    [
        ["queue", "list"],
        ["tlsresults", "list"],
        ["mtasts", "list"],
        ["account", "list"],
        ["suppress", "tls", "add", "tlsrpt@example.org"],
        ["backup", "{tmp}/backup"],
    ],
    ids=lambda a: a[0] + "-" + a[1].split("/")[-1],
)
def test_truncated_store_is_exit_2_not_sigbus(generated, tmp_path, args):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(generated, d)
    _truncate(d)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = subprocess.run([MOXCLI, "--data", str(d), *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and "run moxcli verifydata" in lines[0], r.stderr


def test_read_only_directory_opened_without_lock_file(generated, tmp_path, monkeypatch):
    """A directory we cannot write (non-root: EACCES) is read without LMDB's lock file."""
    import shutil

    d = tmp_path / "d"
    shutil.copytree(generated, d)
    (d / "store" / "lock.mdb").unlink()
    monkeypatch.setattr("moxcli.store.env.os.access", lambda path, mode: False)
    monkeypatch.setattr("moxcli.datatools.verify.probe_store", lambda d: None)  # a child: not patched
    res = verify_data(d)
    assert res.ok, res.problems
    assert not (d / "store" / "lock.mdb").exists()


_COMMANDS = [
    ["tlsreports", "list"],
    ["tlsreports", "show", "1"],
    ["dmarcreports", "list"],
    ["dmarcreports", "show", "1"],
    ["queue", "list"],
    ["queue", "show", "1"],
    ["mtasts", "list"],
    ["tlsresults", "list"],
    ["suppress", "tls", "list"],
    ["suppress", "dmarc", "list"],
    ["account", "list"],
    ["mailbox", "list", "test1"],
    ["message", "list", "test1", "Inbox"],
    ["dmarc", "list"],
]
# The tables each command reads the damaged record of (the first key of its table in the generated
# data: postmaster's mailbox is not among test1's, so `mailbox list test1` never reads it).
_READS = {
    "tlsreports list": {"tlsreportin"},
    "tlsreports show 1": {"tlsreportin"},
    "dmarcreports list": {"dmarcreportin"},
    "dmarcreports show 1": {"dmarcreportin"},
    "queue list": {"queue", "rcptdomaintls"},
    "queue show 1": {"queue", "rcptdomaintls"},
    "mtasts list": {"mtasts"},
    "tlsresults list": {"tlsresult"},
    "suppress tls list": {"tlssuppress"},
    "suppress dmarc list": {"dmarcsuppress"},
    "account list": {"account", "mailbox"},
    "mailbox list test1": set(),
    "message list test1 Inbox": {"message"},
    "dmarc list": {"dmarceval"},
}


@pytest.mark.parametrize("table", [t for t in schema.TABLES if not t.is_index and t is not schema.META], ids=str)
@pytest.mark.parametrize("record", [{"_v": 1}, {"_v": 1, "id": "x", "name": 3, "addresses": None, "report": 5}])
def test_malformed_records_are_one_line_errors(generated, tmp_path, table, record):
    """A record that passes its checksum but lacks fields (a foreign writer): no traceback."""
    import shutil

    import msgpack
    from click.testing import CliRunner

    from moxcli.cli import cli

    d = tmp_path / "d"
    shutil.copytree(generated, d)
    with Store.open(d) as st, st.write() as tx:
        key = next(k for k, _ in tx.scan_raw(table))
        tx.put_raw(table, key, seal(key, msgpack.packb(record)))
    runner = CliRunner()
    for args in _COMMANDS:
        r = runner.invoke(cli, ["--data", str(d), *args])
        if table.name in _READS[" ".join(args)]:
            assert r.exit_code == 1, (args, r.output, repr(r.exception))
            (line,) = r.stderr.splitlines()
            assert line.startswith("moxcli: ") and "run moxcli verifydata" in line, (args, line)
        else:
            assert (r.exit_code, r.stderr) == (0, ""), (args, r.output, repr(r.exception))


def test_bit_flips_in_lmdb_structures_are_found(generated, tmp_path):
    """Flips in page headers, node pointers, node headers and the meta page: what record
    checksums cannot see, the page walk must (bench/bitflip.py measures the rate)."""
    import shutil
    import struct

    from moxcli.store.datafile import check_pages

    f = generated / "store" / "data.mdb"
    checked = check_pages(f, frozenset(t.name.encode() for t in schema.TABLES))
    assert checked is not None and checked[0] == []
    blob = f.read_bytes()
    psize = struct.unpack_from("<I", blob, 40)[0]
    structural = []
    for a, b in checked[1]:
        if a < 2 * psize or a % psize == 0:  # the newest meta page; a page's header and pointers
            structural.extend(range(a, b))
    rng = random.Random(5)
    for i in range(int(os.environ.get("BITFLIP_TRIALS", "6"))):
        d = tmp_path / f"s{i}"
        shutil.copytree(generated, d)
        at = rng.choice(structural)
        damaged = bytearray(blob)
        damaged[at] ^= 1 << rng.randrange(8)
        (d / "store" / "data.mdb").write_bytes(damaged)
        res = verify_data(d)
        assert not res.ok, f"flip at byte {at} passed"


def test_page_walk_of_a_churned_store_finds_nothing(tmp_path):
    """No false alarms: many commits with deletes, overflow values and a reader holding old pages."""
    from moxcli.store.datafile import check_pages

    rng = random.Random(2)
    names = frozenset(t.name.encode() for t in schema.TABLES)
    with Store.open(tmp_path) as st:
        reader = st._env.begin()
        for i in range(120):
            with st.write() as tx:
                for _ in range(rng.randrange(1, 30)):
                    k = schema.u64(rng.randrange(500))
                    if rng.random() < 0.4:
                        tx.delete(schema.QUEUE, k)
                    else:
                        tx.put(schema.QUEUE, k, {"x": "y" * rng.choice([10, 100, 3000, 9000])})
            if i == 60:
                reader.abort()
            if i % 20 == 0:
                assert st.check_pages() == []
        got = check_pages(tmp_path / "store" / "data.mdb", names)
    assert got is not None and got[0] == []


def _flip(path: Path, at: int, bit: int = 0) -> None:
    blob = bytearray(path.read_bytes())
    blob[at] ^= 1 << bit
    path.write_bytes(blob)


@pytest.mark.parametrize(
    ("at", "what"),
    [
        (4096 + 3000, "meta page 1: the bytes after its fields are not zero"),  # meta 1's unused tail
        (200, "meta page 0: the bytes after its fields are not zero"),
        (144 + 1, "transaction ids"),  # the older meta page's txnid: no longer consecutive
    ],
)
def test_meta_page_flips_nothing_reads_are_found(generated, tmp_path, at, what):
    """LMDB writes only MDB_meta's fields: the rest of both meta pages is zero, and the two
    pages hold consecutive transaction ids; a flip there is found though nothing reads it."""
    import shutil

    d = tmp_path / "d"
    shutil.copytree(generated, d)
    _flip(d / "store" / "data.mdb", at, 2)
    res = verify_data(d)
    assert any(what in p.what for p in res.problems), res.problems


def _unread_offsets(data_file: Path) -> list[int]:
    """Offsets of bytes no LMDB reader reads (page gaps, slack, free pages)."""
    from moxcli.store.datafile import check_pages

    checked = check_pages(data_file, frozenset(t.name.encode() for t in schema.TABLES))
    assert checked is not None
    used = bytearray(data_file.stat().st_size)
    for a, b in checked[1]:
        used[a:b] = b"\x01" * (b - a)
    return [i for i, u in enumerate(used) if not u and i >= 2 * 4096]


@pytest.fixture(scope="module")
def backed_up(generated, tmp_path_factory) -> Path:
    from moxcli.datatools.backup import backup

    d = tmp_path_factory.mktemp("bak") / "b"
    assert backup(generated, d).ok
    return d


def test_backup_records_a_digest_that_sha256sum_checks(backed_up):
    """store.sha256 is in sha256sum's format: a backup can be checked without moxcli."""
    import shutil

    text = (backed_up / "store.sha256").read_text()
    assert text.startswith("# moxcli backup: ") and text.endswith("  store/data.mdb\n")
    if shutil.which("sha256sum"):
        r = subprocess.run(["sha256sum", "-c", "--strict", "store.sha256"], cwd=backed_up, capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr
    res = verify_data(backed_up)
    assert res.ok and not res.warnings, res.problems + res.warnings


def test_flips_a_backup_store_no_reader_reads_are_found(backed_up, tmp_path):
    """In a backup even a flip in a byte LMDB never reads is found: its digest no longer matches."""
    import shutil

    offsets = _unread_offsets(backed_up / "store" / "data.mdb")
    assert offsets
    rng = random.Random(21)
    for i in range(int(os.environ.get("BITFLIP_TRIALS", "3"))):
        d = tmp_path / f"b{i}"
        shutil.copytree(backed_up, d)
        at = rng.choice(offsets)
        _flip(d / "store" / "data.mdb", at, rng.randrange(8))
        res = verify_data(d)
        assert [p.path for p in res.problems] == ["store/data.mdb"], (at, res.problems)
        assert "differs from the SHA-256 its backup recorded" in res.problems[0].what


def test_a_restored_backup_once_written_is_sealed_by_its_writer(backed_up, tmp_path):
    """The writer replaces the backup's digest with a seal of what it wrote, which holds."""
    import shutil

    d = tmp_path / "restored"
    shutil.copytree(backed_up, d)
    with Store.open(d) as st, st.write() as tx:
        tx.put(schema.QUEUE, schema.u64(999_999), {"x": "y"})
    assert (d / "store.sha256").read_text().startswith("# moxcli seal: ")
    res = verify_data(d)
    assert not any(p.path == "store/data.mdb" for p in res.problems), res.problems
    assert not res.notes, res.notes


def test_a_backup_written_by_a_writer_that_does_not_seal_is_not_held_to_its_digest(backed_up, tmp_path):
    """E.g. an older moxcli: a new transaction id, the digest no longer applies (a note)."""
    import shutil

    import lmdb

    d = tmp_path / "restored"
    shutil.copytree(backed_up, d)
    from moxcli.store.env import encode

    env = lmdb.open(str(d / "store"), max_dbs=64)
    with env.begin(write=True) as txn:
        txn.put(b"x", encode(schema.META, b"x", {"value": 1}), db=env.open_db(b"meta", txn=txn))
    env.close()
    res = verify_data(d)
    assert not any(p.path == "store/data.mdb" for p in res.problems), res.problems
    assert [n.code for n in res.notes if "store.sha256" in n] == ["store-written-after-backup"], res.notes


def test_a_sum_file_not_written_by_backup_is_a_warning(backed_up, tmp_path):
    import shutil

    d = tmp_path / "odd"
    shutil.copytree(backed_up, d)
    (d / "store.sha256").write_text("nonsense\n")
    res = verify_data(d)
    assert [w.path for w in res.warnings] == ["store.sha256"], res.warnings

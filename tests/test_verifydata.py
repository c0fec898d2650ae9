"""verifydata: every class of problem is found with a precise message; DIR is never changed."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import msgpack
import pytest
from helpers.datadir import make_data_dir, tree_digest
from helpers.samples import SAMPLES, need_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxcli.cli import cli
from moxcli.datatools import INCOMPLETE_MARKER, VERSION_FILE
from moxcli.datatools.verify import IdSet, data_file_problem, verify_data
from moxcli.errors import StoreError
from moxcli.store import Store, job_lock, migrate, schema
from moxcli.store.env import seal
from moxcli.store.files import message_file, queue_file, write_file


@pytest.fixture
def good(data_dir) -> Path:
    return make_data_dir(data_dir)


def test_good_dir_passes_and_is_not_changed(good):
    before = tree_digest(good)
    res = verify_data(good)
    assert res.ok, res.problems
    assert res.warnings == []
    assert res.counts["message"] == 6 and res.counts["queue"] == 2
    assert res.counts["message_files"] == 6 and res.counts["queue_files"] == 2
    assert res.schema_version == schema.SCHEMA_VERSION and res.migrated_from is None
    assert tree_digest(good) == before


def problems(data: Path, fix: bool = False) -> list[str]:
    return [str(p) for p in verify_data(data, fix=fix).problems]


def _mutate_record(data: Path, table, key_prefix: bytes, change) -> bytes:
    with Store.open(data) as st, st.write() as tx:
        key, rec = next(iter(tx.scan(table, key_prefix)))
        change(rec)
        rec.pop("_v")
        tx.put(table, key, rec)
        return key


def _put_raw(data: Path, table, key: bytes, value: bytes) -> None:
    with Store.open(data) as st, st.write() as tx:
        tx.put_raw(table, key, value)


def _delete(data: Path, table, key: bytes) -> None:
    with Store.open(data) as st, st.write() as tx:
        assert tx.delete(table, key)


def _tls_result(data: Path, domain: str) -> None:
    from moxcli.tlsrpt import resultsdb as tlsresults
    from moxcli.tlsrpt.report import make_result

    result = make_result("no-policy-found", domain)
    result.add(0, 1)
    with Store.open(data) as st, st.write() as tx:
        tlsresults.add_results(
            tx,
            "20260101",
            domain,
            [{"policy_domain": domain, "is_host": False, "send_report": True, "results": [result]}],
        )


def _dmarc_report(data: Path) -> None:
    from moxcli.store import dmarc

    with Store.open(data) as st, st.write() as tx:
        dmarc.add_report(tx, dmarc.StoredDMARCReport("example.org", "x", "1", 0, 0, "", "", 1.0, {}))


DMARC_KEY = {"policy_domain": "example.org", "org_name": "x", "report_id": "1"}


def _hexkey(record: dict) -> str:
    from moxcli.store import dmarc

    return dmarc.report_dedupe_key(record).hex()


CASES = [
    # (name, mutation of a good data dir, the exact problem lines)
    (
        "truncated message file",
        lambda d: os.truncate(message_file(d, "alice", 1), 3),
        ["accounts/alice/msg/a/1: file has 3 bytes, but store/message/alice/1/1 says size 22"],
    ),
    (
        "missing message file",
        lambda d: message_file(d, "bob", 1).unlink(),
        ["accounts/bob/msg/a/1: missing (referenced by store/message/bob/2/1)"],
    ),
    (
        "orphan message file",
        lambda d: (
            _delete(d, schema.MESSAGE, schema.text_key("alice", 1, 3))
            or _mutate_record(
                d,
                schema.MAILBOX,
                schema.text_key("alice", 1),
                lambda r: r.update(messages=r["messages"] - 1, size=r["size"] - 22),
            )
        ),
        ["accounts/alice/msg/a/5: not referenced by any record (--fix moves it away)"],
    ),
    (
        "queue file size",
        lambda d: queue_file(d, 2).unlink() or write_file(queue_file(d, 2), b"short"),
        ["queue/a/2: file has 5 bytes + 21 bytes of prefix, but store/queue/2 says size 43"],
    ),
    (
        "missing queue file",
        lambda d: queue_file(d, 1).unlink(),
        ["queue/a/1: missing (referenced by store/queue/1)"],
    ),
    (
        "orphan queue file",
        lambda d: _delete(d, schema.QUEUE, schema.u64(1)),
        ["queue/a/1: not referenced by any record (--fix moves it away)"],
    ),
    (
        "mailbox counter",
        lambda d: _mutate_record(d, schema.MAILBOX, schema.text_key("bob", 2), lambda r: r.update(messages=5)),
        ["store/mailbox/bob/2: mailbox 'Inbox' counters say 5 messages / 22 bytes, its messages add up to 1 / 22"],
    ),
    (
        "uid beyond uidnext",
        lambda d: _mutate_record(d, schema.MAILBOX, schema.text_key("bob", 2), lambda r: r.update(uidnext=1)),
        ["store/message/bob/2/1: uid 1 is not below the mailbox's uidnext 1"],
    ),
    (
        "garbage record",
        lambda d: _put_raw(d, schema.MTASTS_POLICY, b"example.net", seal(b"example.net", b"\xc1garbage")),
        ["store/mtasts/example.net: does not decode (msgpack: FormatError)"],
    ),
    (
        "record of a newer version",
        lambda d: _put_raw(
            d, schema.TLS_SUPPRESS, b"tlsrpt@example.net", seal(b"tlsrpt@example.net", b"\x81\xa2_v\x63")
        ),
        ["store/tlssuppress/tlsrpt@example.net: has unknown version 99"],
    ),
    (
        "message of a missing account",
        lambda d: _delete(d, schema.ACCOUNT, b"bob"),
        [
            "store/mailbox/bob/1: account 'bob' does not exist",
            "store/mailbox/bob/2: account 'bob' does not exist",
            "store/message/bob/2/1: account 'bob' does not exist",
            "accounts/bob: account directory without an account record",
        ],
    ),
    (
        "message in a missing mailbox",
        lambda d: _delete(d, schema.MAILBOX, schema.text_key("bob", 2)),
        [
            "store/mailbox_name/bob/Inbox: points to mailbox id 2, which does not exist",
            "store/message/bob/2/1: mailbox id 2 of account 'bob' does not exist",
        ],
    ),
    (
        "mailbox missing from the name index",
        lambda d: _delete(d, schema.MAILBOX_BY_NAME, schema.text_key("bob", "Sent")),
        ["store/mailbox/bob/1: mailbox 'Sent' is missing from the name index"],
    ),
    (
        "message id used twice",
        lambda d: _mutate_record(d, schema.MESSAGE, schema.prefix_key("alice", 2), lambda r: r.update(id=1)),
        [
            "store/message/alice/2/1: message id 1 is used by another message of account 'alice'",
            "accounts/alice/msg/a/2: not referenced by any record (--fix moves it away)",
        ],
    ),
    (
        "index entry without its record",
        lambda d: _put_raw(d, schema.TLS_REPORT_IN_BY_DOMAIN, schema.text_key("example.net", 7), b""),
        ["store/tlsreportin_domain/example.net/7: points to store/tlsreportin/7, which does not exist"],
    ),
    (
        "TLS result without its index entry",
        lambda d: (
            _tls_result(d, "example.net")
            or _delete(d, schema.TLS_RESULT_BY_RCPT, schema.text_key("20260101", "example.net", "example.net"))
        ),
        [
            "store/tlsresult/20260101/example.net/example.net: index entry "
            "store/tlsresult_rcpt/20260101/example.net/example.net is missing"
        ],
    ),
    (
        "TLS result index with the wrong flag",
        lambda d: (
            _tls_result(d, "example.net")
            or _put_raw(
                d, schema.TLS_RESULT_BY_RCPT, schema.text_key("20260101", "example.net", "example.net"), b"\x00"
            )
        ),
        [
            "store/tlsresult_rcpt/20260101/example.net/example.net: index value b'\\x00' does not "
            "match store/tlsresult/20260101/example.net/example.net (b'\\x01')"
        ],
    ),
    (
        "DMARC report missing from its index",
        lambda d: _dmarc_report(d) or _delete(d, schema.DMARC_REPORT_IN_BY_DOMAIN, schema.text_key("example.org", 1)),
        ["store/dmarcreportin/1: index entry store/dmarcreportin_domain/example.org/1 is missing"],
    ),
    (
        "DMARC report missing from its dedupe index",
        lambda d: _dmarc_report(d) or _delete(d, schema.DMARC_REPORT_IN_BY_KEY, bytes.fromhex(_hexkey(DMARC_KEY))),
        [f"store/dmarcreportin/1: index entry store/dmarcreportin_key/{_hexkey(DMARC_KEY)} is missing"],
    ),
    (
        "dedupe key of a report that does not exist",
        lambda d: _put_raw(d, schema.TLS_REPORT_IN_BY_KEY, b"\x01" * 32, schema.u64(9)),
        [f"store/tlsreportin_key/{'01' * 32}: points to store/tlsreportin/9, which does not exist"],
    ),
    (
        "incomplete backup",
        lambda d: (d / INCOMPLETE_MARKER).write_text("backup of /srv/data failed with 1 error:\nx: gone\n"),
        ["BACKUP-INCOMPLETE: this backup is incomplete (backup of /srv/data failed with 1 error)"],
    ),
    (
        "config that does not parse",
        lambda d: (d / "moxcli.toml").write_text('hostname = "mail.example.org"\nbogus = 1\n'),
        ["moxcli.toml: bogus: unknown key"],
    ),
    (
        "config naming a missing DKIM key",
        lambda d: (d / "moxcli.toml").write_text(
            '[domains."example.org".dkim.selectors.s1]\nprivate_key_file = "dkim/example.org/s1.pem"\n'
        ),
        [r"re:moxcli.toml: domain example.org: DKIM selector s1: key file /.*/dkim/example.org/s1.pem is missing"],
    ),
    (
        "truncated store",
        lambda d: os.truncate(d / "store" / "data.mdb", 5 * 4096),
        [
            r"re:store/data.mdb: changed on disk since its last commit \(transaction \d+; store.sha256\): damaged; "
            "restore from a backup",
            r"re:store/data.mdb: truncated: 20480 bytes, but its last page ends at byte \d+",
        ],
    ),
    (
        "not a store",
        lambda d: (d / "store" / "data.mdb").write_bytes(b"hello" * 100),
        ["store/data.mdb: not an LMDB data file (500 bytes)"],
    ),
    (
        "no store",
        lambda d: shutil.rmtree(d / "store"),
        ["store/data.mdb: missing: no store in this directory"],
    ),
]


@pytest.mark.parametrize("name,mutate,expected", CASES, ids=[c[0] for c in CASES])
def test_problem_detected(good, name, mutate, expected):
    mutate(good)
    got = problems(good)
    assert len(got) == len(expected), got
    for line, want in zip(got, expected, strict=True):
        assert re.fullmatch(want[3:], line) if want.startswith("re:") else line == want, line


def test_damaged_pages_reported_not_crashing(good):
    f = good / "store" / "data.mdb"
    size = f.stat().st_size
    with open(f, "r+b") as fh:
        fh.seek(2 * 4096)
        fh.write(bytes((i * 151 + 7) % 256 for i in range(size - 2 * 4096)))
    got = problems(good)
    # Every page after the two meta pages is junk: the main database's root, read first to open
    # the first table (meta), is no longer a branch or leaf page.
    # The seal (the file's digest at the last commit) no longer matches, either.
    assert len(got) == 2, got
    assert re.fullmatch(r"store/data.mdb: changed on disk since its last commit \(transaction \d+; .*", got[0])
    assert got[1] == "store: table meta: mdb_dbi_open: MDB_CORRUPTED: Located page was wrong type"


def _crash(signum: int):
    """A stand-in for walk_pages that dies of ``signum`` (a damaged map: SIGBUS, SIGSEGV)."""

    def walk(data_dir):
        import faulthandler
        import signal

        faulthandler.disable()  # pytest's handler would print a traceback first
        if signum != signal.SIGKILL:
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return walk


@pytest.mark.parametrize("signame", ["SIGBUS", "SIGSEGV", "SIGKILL"])
def test_reader_crash_is_one_problem_and_the_verifier_survives(good, monkeypatch, signame):
    """The page probe runs in a forked child: a reader killed by a signal is reported."""
    import signal

    monkeypatch.setattr("moxcli.datatools.verify.walk_pages", _crash(getattr(signal, signame)))
    res = verify_data(good)
    assert [str(p) for p in res.problems] == [
        f"store/data.mdb: reading its pages crashed the reader ({signame}): the file is damaged"
    ]
    assert [n.code for n in res.notes] == ["checks-skipped"]


def _raise(exc: BaseException):
    def walk(data_dir):
        raise exc

    return walk


@pytest.mark.parametrize(
    "exc,reason",
    [
        (SystemExit("table meta: Error: page damaged"), "table meta: Error: page damaged"),
        (RuntimeError("unexpected"), "RuntimeError: unexpected"),
        (KeyboardInterrupt(), "KeyboardInterrupt: "),
    ],
)
def test_reader_failure_is_reported_with_its_last_line(good, monkeypatch, exc, reason):
    monkeypatch.setattr("moxcli.datatools.verify.walk_pages", _raise(exc))
    assert problems(good) == [f"store/data.mdb: reading its pages failed: {reason.strip()}"]


def test_reader_that_hangs_is_killed_at_the_deadline(good, tmp_path, monkeypatch):
    import time

    from moxcli.datatools import verify

    def hang(data_dir):
        (tmp_path / "pid").write_text(str(os.getpid()))
        time.sleep(60)

    monkeypatch.setattr(verify, "walk_pages", hang)
    t = time.monotonic()
    assert verify.probe_store(good, timeout=1) == "reading every page took longer than 1 s"
    assert time.monotonic() - t < 30
    with pytest.raises(ProcessLookupError):  # killed and reaped: no child left behind
        os.kill(int((tmp_path / "pid").read_text()), 0)


def test_reader_in_a_new_python_where_there_is_no_fork(good, monkeypatch):
    """Windows has no fork: the probe starts a new interpreter (which sees no monkeypatch)."""
    from moxcli import osdep
    from moxcli.datatools import verify

    monkeypatch.setattr(osdep, "can_fork", lambda: False)
    monkeypatch.setattr(verify, "walk_pages", _raise(RuntimeError("not the child's")))
    monkeypatch.setattr(os, "fork", None)
    assert verify.probe_store(good) is None
    assert verify.probe_store(good, timeout=0.001) == "reading every page took longer than 0 s"
    assert verify_data(good).ok


def test_fix_moves_orphans_only(good):
    _delete(good, schema.QUEUE, schema.u64(1))
    (good / "queue" / "a" / ".3.tmp999").write_bytes(b"partial")
    write_file(queue_file(good, 9), b"from an aborted enqueue")
    res = verify_data(good)
    assert [str(p) for p in res.problems] == ["queue/a/1: not referenced by any record (--fix moves it away)"]
    assert [str(w) for w in res.warnings] == [
        "queue/a/.3.tmp999: temporary file of an interrupted write, ignoring",
        "queue/a/9: not referenced, id 9 is beyond the last one handed out (2): left by an aborted or running write",
    ]
    res = verify_data(good, fix=True)
    assert res.ok and res.moved == [("queue/a/1", "moved/queue/a/1")]
    assert (good / "moved" / "queue" / "a" / "1").exists() and not queue_file(good, 1).exists()
    assert queue_file(good, 9).exists()
    assert verify_data(good).ok


def test_unknown_top_level_file_and_version_note(good):
    (good / "notes.txt").write_text("x")
    (good / VERSION_FILE).write_text("0.0.1\n")
    res = verify_data(good)
    assert res.ok
    assert [str(w) for w in res.warnings] == ["notes.txt: unrecognized file, ignoring"]
    assert "written by moxcli 0.0.1" in res.notes[0]


def test_older_schema_verified_on_migrated_copy(good, monkeypatch):
    """A store of schema 1 under a moxcli with schema 2: DIR untouched, the copy migrated."""
    before = tree_digest(good)
    calls = []

    def step(tx):
        calls.append(1)
        for key, rec in list(tx.scan(schema.QUEUE)):
            rec.pop("_v")
            tx.put(schema.QUEUE, key, {**rec, "migrated": True})

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", now + 1)
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setattr("moxcli.datatools.verify.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, step)
    res = verify_data(good)
    assert res.ok, res.problems
    assert res.migrated_from == now and res.schema_version == now + 1 and calls == [1]
    assert f"schema version {now}; verified a copy migrated to version {now + 1}" in res.notes[0]
    assert tree_digest(good) == before


def test_failed_migration_is_a_problem(good, monkeypatch):
    def step(tx):
        raise StoreError("step 1 failed")

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, step)
    assert problems(good) == [f"store: migrating a copy from schema version {now} failed: step 1 failed"]


def test_crashing_migration_step_is_a_problem(good, monkeypatch):
    def step(tx):
        return {}["missing"]

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr("moxcli.store.env.SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(migrate.MIGRATIONS, now, step)
    assert problems(good) == [f"store: migrating a copy from schema version {now} failed: KeyError: 'missing'"]


def test_newer_schema_is_a_problem(good):
    with Store.open(good) as st, st.write() as tx:
        tx.set_meta("schema_version", schema.SCHEMA_VERSION + 1)
    got = problems(good)
    assert len(got) == 1 and "newer than this moxcli understands" in got[0] and got[0].startswith("store: ")


def test_idset():
    ids = IdSet()
    assert ids.add(5) and ids.add(100000) and not ids.add(5)
    assert 5 in ids and 100000 in ids and 6 not in ids and 10**9 not in ids
    assert ids.max == 100000


def test_data_file_problem_on_good_file(good):
    assert data_file_problem(good / "store" / "data.mdb") is None


def test_cli_ok_text_and_json(runner, good):
    r = runner.invoke(cli, ["verifydata", str(good)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"{good}: OK (")
    r = runner.invoke(cli, ["--data", str(good), "verifydata", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert set(doc) == {
        "data_dir",
        "ok",
        "problems",
        "warnings",
        "moved",
        "notes",
        "schema_version",
        "migrated_from",
        "counts",
        "seconds",
    }
    assert doc["ok"] is True and doc["counts"]["message_files"] == 6


def test_cli_problems_exit_1(runner, good):
    message_file(good, "bob", 1).unlink()
    r = runner.invoke(cli, ["verifydata", str(good)])
    assert r.exit_code == 1
    assert "error: accounts/bob/msg/a/1: missing (referenced by store/message/bob/2/1)\n" in r.stdout
    assert f"moxcli: {good}: 1 problem found" in r.stderr
    r = runner.invoke(cli, ["verifydata", "--json", str(good)])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["problems"] == [
        {
            "code": "file-missing",
            "message": "missing (referenced by store/message/bob/2/1)",
            "path": "accounts/bob/msg/a/1",
        }
    ]


def test_cli_fix(runner, good):
    _delete(good, schema.QUEUE, schema.u64(2))
    r = runner.invoke(cli, ["verifydata", "--fix", str(good)])
    assert r.exit_code == 0, r.output
    assert "moved: queue/a/2 -> moved/queue/a/2\n" in r.stdout


def test_cli_not_a_directory(runner, tmp_path):
    r = runner.invoke(cli, ["verifydata", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no moxcli data directory at" in r.stderr


def test_files_of_an_unfinished_import_are_warnings(good):
    from moxcli.store import mail as store_mail

    with Store.open(good) as st, st.write() as tx:
        store_mail.begin_import(tx, "bob", store_mail.ImportRecord(pid=1, started=1.0))
        first = store_mail.reserve_message_ids(tx, "bob", 10)
    path = message_file(good, "bob", first + 1)
    write_file(path, b"imported, not committed")
    warning = f"accounts/bob/msg/a/{first + 1}: not referenced, id {first + 1} is reserved by an unfinished import"
    res = verify_data(good)
    assert res.ok and res.moved == [] and [str(w) for w in res.warnings] == [warning]
    # --fix leaves an import that still runs (it holds its lock) alone ...
    with job_lock(good, "import-bob"):
        res = verify_data(good, fix=True)
    assert res.ok and [str(w) for w in res.warnings] == [warning] and path.exists()
    # ... and removes what a killed one left, as the next import would.
    res = verify_data(good, fix=True)
    assert res.ok and res.warnings == [] and not path.exists()
    assert res.notes == ["removed the files of an interrupted import into account bob"]


UPGRADE = Path(__file__).resolve().parent.parent / "testdata" / "upgrade"


@pytest.mark.parametrize("fixture", sorted(UPGRADE.glob("v*.tar.gz")), ids=lambda p: p.name)
def test_upgrade_fixture_passes(fixture, tmp_path):
    """Committed data dirs of every schema version so far pass verifydata unchanged."""
    import tarfile

    with tarfile.open(fixture) as tar:
        tar.extractall(tmp_path, filter="data")
    before = tree_digest(tmp_path / "data")
    res = verify_data(tmp_path / "data")
    assert res.ok and res.warnings == [], (res.problems, res.warnings)
    assert res.counts["message_files"] > 0 and res.counts["queue_files"] > 0
    assert tree_digest(tmp_path / "data") == before


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_fields = [
    "id",
    "uid",
    "mailbox_id",
    "size",
    "flags",
    "keywords",
    "name",
    "uidnext",
    "messages",
    "prefix",
    "ranges",
    "value",
    "_v",
]
_tables = [
    schema.MESSAGE,
    schema.MAILBOX,
    schema.QUEUE,
    schema.ACCOUNT,
    schema.META,
    schema.MAILBOX_BY_NAME,
    schema.TLS_REPORT_IN_BY_DOMAIN,
]


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    table=st.sampled_from(_tables),
    key=st.binary(min_size=1, max_size=24)
    | st.sampled_from(
        [schema.text_key("alice", 1, 1), schema.text_key("bob", 2), b"alice", b"import:bob", b"seq:message:alice"]
    ),
    record=st.dictionaries(st.sampled_from(_fields), _values, max_size=5) | st.binary(max_size=12),
)
def test_hostile_records_never_crash(data_dir_factory, table, key, record):
    """Whatever a record holds, verifydata reports problems and does not raise."""
    data = data_dir_factory()
    with Store.open(data) as s, s.write() as tx:
        if isinstance(record, bytes):
            tx.put_raw(table, key, record)
        else:
            tx.put_raw(table, key, seal(key, msgpack.packb(record, use_bin_type=True)))
    res = verify_data(data)
    for f in res.problems + res.warnings:
        assert "\n" not in str(f)


@pytest.fixture
def data_dir_factory(tmp_path, monkeypatch):
    """Fresh good data dirs for hypothesis examples (the page probe is tested elsewhere)."""
    monkeypatch.setattr("moxcli.datatools.verify.probe_store", lambda d: None)
    template = make_data_dir(tmp_path / "template", messages=1)
    n = iter(range(10**6))

    def make() -> Path:
        d = tmp_path / f"d{next(n)}"
        shutil.copytree(template, d)
        return d

    return make


SAMPLES_IMPORT = SAMPLES / "mox" / "import"


def test_imported_samples_verify_and_back_up(runner, data_dir, tmp_path):
    """Real mailboxes (mox's import test data) imported by moxcli pass verifydata and backup."""
    need_sample(SAMPLES_IMPORT)
    from moxcli.datatools.backup import backup

    r = runner.invoke(
        cli, ["--data", str(data_dir), "import", "mbox", "alice", "Archive", str(SAMPLES_IMPORT / "importtest.mbox")]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli,
        ["--data", str(data_dir), "import", "maildir", "alice", "Maildir", str(SAMPLES_IMPORT / "importtest.maildir")],
    )
    assert r.exit_code == 0, r.output
    res = verify_data(data_dir)
    assert res.ok and res.warnings == [], (res.problems, res.warnings)
    assert res.counts["message"] == res.counts["message_files"] > 0
    b = backup(data_dir, tmp_path / "backup")
    assert b.ok and b.files_linked == res.counts["message"]
    assert verify_data(tmp_path / "backup").ok


def test_queue_message_delivered_while_verifying(good, monkeypatch):
    """Delivery removes the record, then the file: a file missing for a record that is gone
    by the end of the pass is a warning, not a problem."""
    import subprocess
    import sys

    deliver = (
        "import sys\nfrom moxcli.store import Store\nfrom moxcli.delivery.queue import drop\n"
        "with Store.open(sys.argv[1]) as st:\n    drop(st, sys.argv[1], 2)\n"
    )
    real = os.path.lexists

    def lexists(path):
        if str(path).endswith("/queue/a/2") and real(path):
            subprocess.run([sys.executable, "-c", deliver, str(good)], check=True)
        return real(path)

    monkeypatch.setattr("moxcli.datatools.verify.os.path.lexists", lexists)
    res = verify_data(good)
    assert res.ok, res.problems
    assert [str(w) for w in res.warnings] == ["queue/a/2: left the queue while verifying"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.binary(max_size=300), size=st.integers(0, 1 << 16))
def test_data_file_problem_never_raises(tmp_path, head, size):
    """Any file as data.mdb: a reason or None, never an exception (it guards the mmap)."""
    f = tmp_path / "data.mdb"
    f.write_bytes(head)
    os.truncate(f, max(size, len(head)))
    problem = data_file_problem(f)
    assert problem is None or isinstance(problem, str)


def test_received_id_key_is_a_known_file(tmp_path):
    """The DMARC report id key (docs/behaviour-notes.md §9.1) is part of a data dir, not an unknown file."""
    from moxcli.datatools.verify import verify_data
    from moxcli.dmarc.receivedid import KEY_FILE, load_key

    data = tmp_path / "data"
    data.mkdir()
    from moxcli.store import Store

    Store.open(data).close()
    load_key(data)
    assert (data / KEY_FILE).exists()
    res = verify_data(data)
    assert not [w for w in res.warnings if KEY_FILE in str(w)], res.warnings
    assert res.ok

"""Import library: samples, vectors, formats, warnings, maildir++ trees, and all-or-nothing
on error, Ctrl-C and SIGKILL."""

import gzip
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import VECTORS
from helpers.samples import SAMPLES, need_sample

from moxcli.errors import CheckFailed, LockHeld, UsageError
from moxcli.mail import importer
from moxcli.mail.deliver import store_message
from moxcli.mail.importer import ImportOptions, cleanup_interrupted_imports, import_maildir, import_mbox
from moxcli.store import Store, job_lock
from moxcli.store import mail as store_mail
from moxcli.store.files import message_file

V = json.loads((VECTORS / "import_cases.json").read_text())


def gen_mbox(n: int, start: int = 0, extra_header: str = "") -> bytes:
    out = []
    for i in range(start, start + n):
        out.append(
            f"From sender{i}@example.org Mon Jan  2 15:04:{i % 60:02d} 2006\n"
            f"From: sender{i}@example.org\nSubject: message {i}\n{extra_header}\n"
            f"line one of {i}\n>From quoted\n\n"
        )
    return "".join(out).encode()


def snapshot(data_dir: Path, account: str) -> dict:
    """Everything an import may touch for an account: records, counters, sequence, files."""
    out: dict = {"files": {}}
    acc = data_dir / "accounts" / account
    if acc.exists():
        out["files"] = {
            str(p.relative_to(acc)): p.read_bytes() if p.is_file() else None for p in sorted(acc.rglob("*"))
        }
    if (data_dir / "store" / "data.mdb").exists():
        with Store.open(data_dir, readonly=True) as st, st.read() as tx:
            out["account"] = store_mail.get_account(tx, account)
            out["mailboxes"] = list(store_mail.list_mailboxes(tx, account))
            out["messages"] = [list(store_mail.list_messages(tx, account, mb.id)) for mb in out["mailboxes"]]
            out["seq"] = tx.meta(f"seq:message:{account}")
            out["imports"] = list(store_mail.unfinished_imports(tx))
    return out


def messages(data_dir: Path, account: str, mailbox: str) -> list[dict]:
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        mb = store_mail.get_mailbox(tx, account, mailbox)
        return list(store_mail.list_messages(tx, account, mb.id))


def check_contract(data_dir: Path, account: str) -> None:
    """The invariants verifydata checks: counters equal sums, files exist with the record size."""
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        ids = set()
        for mb in store_mail.list_mailboxes(tx, account):
            msgs = list(store_mail.list_messages(tx, account, mb.id))
            assert mb.messages == len(msgs) and mb.size == sum(m.size for m in msgs)
            assert all(m.uid < mb.uidnext for m in msgs)
            for m in msgs:
                assert message_file(data_dir, account, m.id).stat().st_size == m.size
                ids.add(m.id)
        assert tx.meta(f"seq:message:{account}", 0) >= max(ids, default=0)
    files = {int(p.name) for p in (data_dir / "accounts" / account / "msg").rglob("*") if p.is_file()}
    assert files == ids


# -- real samples and vectors


def test_sample_mbox(data_dir):
    sample = need_sample(SAMPLES / "mox" / "import" / "importtest.mbox")
    res = import_mbox(data_dir, "mjl", "Inbox", [str(sample)])
    assert res.messages == 2 and res.account_created and res.mailboxes[0].created
    msgs = messages(data_dir, "mjl", "Inbox")
    for m, want in zip(msgs, V["mbox_example"]["expect"], strict=True):
        assert set(m.flags) == set(want["flags"]) and m.keywords == want["keywords"]
    assert msgs[0].received == 1642970515.0 and msgs[1].received == 1642971736.0
    first = message_file(data_dir, "mjl", msgs[0].id).read_bytes()
    assert b"\r\nFrom testing\r\n" in first and first.endswith(b"end\r\n\r\n")
    assert b"\n" not in first.replace(b"\r\n", b"")
    check_contract(data_dir, "mjl")


def test_sample_maildir(data_dir):
    res = import_maildir(data_dir, "mjl", "maildir", need_sample(SAMPLES / "mox" / "import" / "importtest.maildir"))
    assert res.messages == 2 and res.warnings == []
    assert sorted(m.received for m in messages(data_dir, "mjl", "maildir")) == [1642966915.0, 1642968136.0]
    check_contract(data_dir, "mjl")


def test_vector_maildir_flags_and_keywords(data_dir, tmp_path):
    ex = V["maildir_flags"]["tgz_example"]
    for rel, content in ex["files"].items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    (tmp_path / "maildir" / "tmp").mkdir()
    (tmp_path / "maildir" / "tmp" / "1.2.3:2,S").write_text("in delivery, ignored")
    res = import_maildir(data_dir, "mjl", "maildir", tmp_path / "maildir")
    assert res.messages == 2
    got = {m.received: m for m in messages(data_dir, "mjl", "maildir")}
    for want in ex["expect"]["messages"]:
        m = got[float(want["received_unix"])]
        assert set(m.flags) == set(want["flags"]) and m.keywords == want["keywords"]
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert store_mail.get_mailbox(tx, "mjl", "maildir").keywords == ex["expect"]["mailbox_keywords"]


# -- formats


def test_gz_stdin_crlf_and_several_files_in_one_import(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "_SYNCFS_FROM", 2)  # the syncfs path of big imports
    plain = gen_mbox(3)
    (tmp_path / "a.mbox").write_bytes(plain)
    with gzip.open(tmp_path / "b.mbox.gz", "wb") as f:
        f.write(gen_mbox(2, 3))
    (tmp_path / "c.mbox").write_bytes(gen_mbox(2, 5).replace(b"\n", b"\r\n"))
    stdin = io.BytesIO(gen_mbox(1, 7))
    res = import_mbox(
        data_dir,
        "acc",
        "Archive/2006",
        [str(tmp_path / "a.mbox"), str(tmp_path / "b.mbox.gz"), "-", str(tmp_path / "c.mbox")],
        stdin=stdin,
    )
    assert res.messages == 8
    assert [(m.name, m.created, m.messages) for m in res.mailboxes] == [("Archive/2006", True, 8), ("Archive", True, 0)]
    assert res.input_bytes == sum((tmp_path / n).stat().st_size for n in ("a.mbox", "b.mbox.gz", "c.mbox")) + len(
        gen_mbox(1, 7)
    )
    msgs = messages(data_dir, "acc", "Archive/2006")
    bodies = [message_file(data_dir, "acc", m.id).read_bytes() for m in msgs]
    subjects = [b.split(b"Subject: ")[1].split(b"\r\n")[0] for b in bodies]
    assert subjects == [f"message {i}".encode() for i in (0, 1, 2, 3, 4, 7, 5, 6)]
    for b in bodies:
        assert b.endswith(b"\r\nFrom quoted\r\n\r\n")  # mboxrd: ">From" unquoted once
        assert b"\r\nFrom quoted\r\n" in b and b"\n" not in b.replace(b"\r\n", b"")
    assert msgs[0].received == 1136214240.0  # Mon Jan  2 15:04:00 2006 UTC
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert store_mail.get_mailbox(tx, "acc", "Archive") is not None  # parent created
    check_contract(data_dir, "acc")


def test_gzip_recognized_by_magic_bytes(data_dir, tmp_path):
    (tmp_path / "archive").write_bytes(gzip.compress(gen_mbox(3)))
    with open(tmp_path / "archive", "rb") as f:
        res = import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "archive"), "-"], stdin=io.BufferedReader(f))
    assert res.messages == 6
    assert res.warnings == []


def test_files_follow_the_message_path_layout(data_dir, tmp_path):
    with Store.open(data_dir) as st, st.write() as tx:
        tx.set_meta("seq:message:acc", 8189)  # the next ids cross into directory "b" (docs/behaviour-notes.md §9.2)
    (tmp_path / "a.mbox").write_bytes(gen_mbox(4))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    msg = data_dir / "accounts" / "acc" / "msg"
    assert sorted(str(p.relative_to(msg)) for p in msg.rglob("*") if p.is_file()) == [
        "a/8190",
        "a/8191",
        "b/8192",
        "b/8193",
    ]
    assert [m.id for m in messages(data_dir, "acc", "Inbox")] == [8190, 8191, 8192, 8193]
    check_contract(data_dir, "acc")


def test_dry_run_writes_nothing(data_dir, tmp_path):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(4))
    res = import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")], dry_run=True)
    assert res.dry_run and res.messages == 4 and res.account_created and res.mailboxes[0].created
    assert not (data_dir / "store").exists() and not (data_dir / "accounts").exists()
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    res = import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")], dry_run=True)
    assert not res.account_created and not res.mailboxes[0].created and res.messages == 4
    assert snapshot(data_dir, "acc") == before


def test_warnings_date_keyword_quota(data_dir, tmp_path):
    mbox = (
        b"From someone sometime\nDate: Tue, 1 Feb 2022 10:00:00 +0100\nX-Keywords: good, b(ad\n\nbody\n\n"
        b"From someone never\nSubject: no date\n\nbody\n\n"
        b"From x Mon Jan  2 15:04:05 2006\nSubject: big\n\n" + b"x" * 500 + b"\n"
    )
    (tmp_path / "w.mbox").write_bytes(mbox)
    before = time.time()
    res = import_mbox(
        data_dir, "acc", "Inbox", [str(tmp_path / "w.mbox")], options=ImportOptions(quota=300, ignore_quota=True)
    )
    assert res.messages == 3
    got = [(w.number, w.position, w.message) for w in res.warnings]
    p = str(tmp_path / "w.mbox")
    assert got[0] == (1, f"{p}:1", "invalid keyword 'b(ad' dropped")
    assert got[1][:2] == (1, f"{p}:1") and "Date header" in got[1][2]
    assert got[2][:2] == (2, f"{p}:7") and "import time" in got[2][2]
    assert got[3][:2] == (3, f"{p}:12") and "quota_message_size of 300" in got[3][2]
    assert res.warnings_total == 4
    msgs = messages(data_dir, "acc", "Inbox")
    assert msgs[0].received == 1643706000.0 and msgs[0].keywords == ["good"]
    assert msgs[1].received >= before


def test_recursive_maildirpp_tree(data_dir, tmp_path):
    root = tmp_path / "Maildir"
    folders = {
        "": "1600000000.1.h:2,S",
        ".Sent": "1600000001.1.h:2,RSa",
        ".A.B": "1600000002.1.h",
        ".Entw&APw-rfe": "1600000003.1.h:2,T",
    }
    for sub, name in folders.items():
        d = root / sub if sub else root
        for s in ("cur", "new", "tmp"):
            (d / s).mkdir(parents=True)
        (d / "cur" / name).write_bytes(b"Subject: " + sub.encode() + b"\n\nbody\n")
    (root / ".Sent" / "dovecot-keywords").write_text("0 $Forwarded\nbad line\n")
    (root / "notafolder").mkdir()
    res = import_maildir(data_dir, "acc", "inbox", root, recursive=True)
    assert [(m.name, m.created, m.messages) for m in res.mailboxes] == [
        ("Inbox", True, 1),
        ("A/B", True, 1),
        ("Entwürfe", True, 1),
        ("Sent", True, 1),
        ("A", True, 0),  # parent created too
    ]
    assert res.messages == 4
    assert [w.message for w in res.warnings] == ["line 2: expected '<index> <name>', got 'bad line'"]
    assert messages(data_dir, "acc", "Sent")[0].flags == ["\\Seen", "\\Answered", "$Forwarded"]
    assert messages(data_dir, "acc", "Entwürfe")[0].flags == ["\\Deleted"]
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert sorted(m.name for m in store_mail.list_mailboxes(tx, "acc")) == [
            "A",
            "A/B",
            "Entwürfe",
            "Inbox",
            "Sent",
        ]
    res = import_maildir(data_dir, "acc", "Old", root, recursive=True)
    assert [m.name for m in res.mailboxes] == ["Old", "Old/A/B", "Old/Entwürfe", "Old/Sent", "Old/A"]
    res = import_maildir(data_dir, "acc", "Flat", root)
    assert [m.name for m in res.mailboxes] == ["Flat"] and res.messages == 1
    check_contract(data_dir, "acc")


@pytest.mark.parametrize(
    "mailbox, make, exc",
    [
        ("a//b", None, UsageError),
        ("../x", None, UsageError),
        ("#x", None, UsageError),
        ("ok", "nocur", UsageError),
        ("ok", "badfolder", UsageError),
    ],
)
def test_bad_names_and_dirs_refused_before_anything(data_dir, tmp_path, mailbox, make, exc):
    root = tmp_path / "md"
    for s in ("cur", "new"):
        (root / s).mkdir(parents=True)
    if make == "nocur":
        (root / "cur").rmdir()
    if make == "badfolder":
        for s in ("cur", "new"):
            (root / ".a..b" / s).mkdir(parents=True)
    with pytest.raises(exc):
        import_maildir(data_dir, "acc", mailbox, root, recursive=True)
    assert not (data_dir / "store").exists() and not (data_dir / "accounts").exists()


def test_missing_file_and_bad_account(data_dir, tmp_path):
    with pytest.raises(UsageError, match=r"nope\.mbox: No such file or directory"):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "nope.mbox")])
    with pytest.raises(UsageError, match="account"):
        import_mbox(data_dir, "../acc", "Inbox", ["-"], stdin=io.BytesIO(b""))


def test_ids_continue_without_gaps_and_lock_is_exclusive(data_dir, tmp_path):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(3))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    with Store.open(data_dir) as st:
        rec = store_message(st, data_dir, "acc", "Inbox", b"x\r\n")
    assert rec.id == 4 and rec.uid == 4
    with job_lock(data_dir, "import-acc"), pytest.raises(LockHeld):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    check_contract(data_dir, "acc")


# -- all or nothing


def test_error_midway_leaves_account_as_it_was(data_dir, tmp_path):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(500))
    (tmp_path / "bad.mbox").write_bytes(b"Subject: not an mbox\n")
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    with pytest.raises(CheckFailed, match=r"bad\.mbox: not an mbox"):
        import_mbox(data_dir, "acc", "Other", [str(tmp_path / "a.mbox"), str(tmp_path / "bad.mbox")])
    assert snapshot(data_dir, "acc") == before
    with pytest.raises(CheckFailed):
        import_mbox(data_dir, "new", "Inbox", [str(tmp_path / "a.mbox"), str(tmp_path / "bad.mbox")])
    assert snapshot(data_dir, "new") == {
        "files": {},
        "account": None,
        "mailboxes": [],
        "messages": [],
        "seq": None,
        "imports": [],
    }
    assert sorted(p.name for p in (data_dir / "accounts").iterdir()) == ["acc"]


def test_bad_gzip_leaves_account_as_it_was(data_dir, tmp_path):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(3))
    (tmp_path / "b.mbox.gz").write_bytes(gzip.compress(gen_mbox(50))[:-30] + b"garbage" * 10)
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    with pytest.raises(CheckFailed, match=r"b\.mbox\.gz: bad gzip data"):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox"), str(tmp_path / "b.mbox.gz")])
    assert snapshot(data_dir, "acc") == before


def test_disk_full_midway_leaves_account_as_it_was(data_dir, tmp_path, monkeypatch):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(400))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    real = importer._ForkFiles._write
    written = []  # in the writer process

    def write(self, msg_id, data):
        if len(written) == 250:
            raise OSError(28, "No space left on device")  # os.write names no file
        written.append(msg_id)
        real(self, msg_id, data)

    monkeypatch.setattr(importer._ForkFiles, "_write", write)
    with pytest.raises(OSError, match="No space left") as exc:
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    assert exc.value.filename.startswith(str(data_dir / "accounts" / "acc" / "msg"))  # one-line CLI error
    assert snapshot(data_dir, "acc") == before


def test_ctrl_c_in_library_leaves_account_as_it_was(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 50)
    (tmp_path / "a.mbox").write_bytes(gen_mbox(300))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")

    def progress(p):
        if p.messages >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")], progress=progress)
    assert snapshot(data_dir, "acc") == before
    check_contract(data_dir, "acc")


class _CliImport:
    """A CLI import reading an mbox from a pipe we keep open: it writes files, then waits.

    Ready when it says so: with --progress-interval 0 it prints a progress line every
    importer.PROGRESS_EVERY messages, and one more message than that makes it report the
    last full one, then block reading the pipe. No guess of how long that takes under load.
    """

    MESSAGES = importer.PROGRESS_EVERY + 1
    HANG = 300  # seconds: only a guard against a hung child, never reached by a working one

    def __init__(self, data_dir: Path, account: str) -> None:
        cmd = [sys.executable, "-m", "moxcli", "--data", str(data_dir), "import", "mbox", "--progress-interval", "0"]
        self.p = subprocess.Popen(
            [*cmd, account, "Inbox", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.msg = data_dir / "accounts" / account / "msg"
        self.stderr = bytearray()
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.p.stdin is not None
        self.p.stdin.write(gen_mbox(self.MESSAGES, 1000))
        self.p.stdin.flush()
        self._wait_ready()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.stderr += line
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self) -> None:
        want = f" messages={importer.PROGRESS_EVERY} ".encode()
        while True:
            line = self._lines.get(timeout=self.HANG)
            if line is None:
                pytest.fail(f"import exited before it was ready: {bytes(self.stderr)!r}")
            if want in line:
                break
        # The writer process writes the files behind the importer: wait until there are some.
        deadline = time.monotonic() + self.HANG
        while not (self.msg.exists() and sum(1 for f in self.msg.rglob("*") if f.is_file()) >= 200):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.p.kill()
                pytest.fail(f"import wrote no files: {bytes(self.stderr)!r}")
            time.sleep(0.05)

    def finish(self) -> bytes:
        """Close the input, wait for the exit; the whole stderr."""
        assert self.p.stdin is not None
        self.p.stdin.close()
        self.p.wait(timeout=self.HANG)
        self._reader.join()
        return bytes(self.stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_leaves_account_as_it_was(data_dir, tmp_path, sig):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(3))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    imp = _CliImport(data_dir, "acc")
    imp.p.send_signal(sig)
    err = imp.finish()
    assert imp.p.returncode == 130, err
    assert b"moxcli: interrupted" in err and b"Traceback" not in err
    assert snapshot(data_dir, "acc") == before


def test_sigkill_leftovers_are_cleaned_by_next_import(data_dir, tmp_path):
    (tmp_path / "a.mbox").write_bytes(gen_mbox(3))
    import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    before = snapshot(data_dir, "acc")
    imp = _CliImport(data_dir, "acc")
    imp.p.kill()
    imp.finish()
    left = snapshot(data_dir, "acc")
    assert left["imports"] and len(left["files"]) > len(before["files"])
    # Records never saw the killed import; only files and the in-progress record are left.
    assert left["mailboxes"] == before["mailboxes"] and left["messages"] == before["messages"]
    import_mbox(data_dir, "other", "Inbox", [str(tmp_path / "a.mbox")])
    after = snapshot(data_dir, "acc")
    assert after == before
    check_contract(data_dir, "acc")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(), reason="needs /proc children"
)
def test_sigkill_takes_the_writer_process_along(data_dir):
    """The file writer dies with a killed import: no file can appear after the next cleanup."""
    imp = _CliImport(data_dir, "acc")
    pid = imp.p.pid
    writers = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert writers
    imp.p.kill()
    imp.finish()
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in writers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(w) for w in writers)


def test_sigkill_of_first_import_removes_account_dir(data_dir):
    imp = _CliImport(data_dir, "fresh")
    imp.p.kill()
    imp.finish()
    assert (data_dir / "accounts" / "fresh").exists()
    assert cleanup_interrupted_imports(data_dir) == ["fresh"]
    assert not (data_dir / "accounts" / "fresh").exists()
    assert snapshot(data_dir, "fresh")["imports"] == []


def test_cleanup_leaves_running_import_alone(data_dir):
    imp = _CliImport(data_dir, "busy")
    try:
        assert cleanup_interrupted_imports(data_dir) == []
        assert any(f.is_file() for f in imp.msg.rglob("*"))
    finally:
        err = imp.finish()
    assert imp.p.returncode == 0, err
    check_contract(data_dir, "busy")
    assert len(messages(data_dir, "busy", "Inbox")) == _CliImport.MESSAGES


def test_maildir_file_vanishing_is_a_warning(data_dir, tmp_path, monkeypatch):
    root = tmp_path / "md"
    for s in ("cur", "new"):
        (root / s).mkdir(parents=True)
    (root / "cur" / "1600000000.1.h:2,S").write_bytes(b"Subject: x\n\nbody\n")
    real = importer.md.entries

    def entries(path):
        yield "new", "1600000001.2.h"  # moved to cur/ by a client after the listing
        yield from real(path)

    monkeypatch.setattr(importer.md, "entries", entries)
    res = import_maildir(data_dir, "acc", "Inbox", root)
    assert res.messages == 1
    assert [(w.number, w.message) for w in res.warnings] == [(1, "file vanished while importing, skipped")]

"""Each platform branch of moxcli.osdep and of its callers, on Linux, by simulating the
platform (os.name, sys.platform, missing functions and modules); and the suite's guard
against renaming or removing open files (tests/open_files_guard.py)."""

import contextlib
import errno
import os
import sys
import types
from pathlib import Path

import open_files_guard
import pytest

from moxcli import osdep
from moxcli.errors import LockHeld
from moxcli.mail import importer
from moxcli.mail.importer import import_archive, import_mbox
from moxcli.store import Store, job_lock
from moxcli.store import mail as store_mail


@contextlib.contextmanager
def os_name(name: str):
    """os.name as another platform has it, as moxcli.osdep sees it (pathlib must keep making
    PosixPaths, so the real os.name stays)."""
    real = osdep.os
    osdep.os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    osdep.os.name = name
    try:
        yield
    finally:
        osdep.os = real


def mbox(n: int) -> bytes:
    return b"".join(b"From a Mon Jan  2 15:04:05 2006\nSubject: %d\n\nbody\n\n" % i for i in range(n))


def test_sync_dir_is_a_noop_where_directories_cannot_be_opened(tmp_path, monkeypatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **kw: opened.append(a[0]) or real_open(*a, **kw))
    osdep.sync_dir(tmp_path)
    assert opened == [tmp_path]
    opened.clear()
    with os_name("nt"):
        osdep.sync_dir(tmp_path)
    assert opened == []


def test_syncfs_only_on_linux(tmp_path, monkeypatch):
    assert osdep.syncfs(tmp_path) is True
    monkeypatch.setattr(sys, "platform", "win32")
    assert osdep.syncfs(tmp_path) is False


def test_import_syncs_file_by_file_without_syncfs(data_dir, tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(osdep, "syncfs", lambda path: False)
    monkeypatch.setattr(importer, "sync_files", lambda paths: synced.extend(paths))
    (tmp_path / "a.mbox").write_bytes(mbox(600))  # over the syncfs threshold
    res = import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    assert res.messages == 600 and len(synced) == 600


def test_die_with_parent_and_grow_pipe_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "ctypes", None)  # would raise ImportError if used
    osdep.die_with_parent()
    monkeypatch.setitem(sys.modules, "fcntl", None)
    r, w = os.pipe()
    try:
        osdep.grow_pipe(w, 1 << 20)
    finally:
        os.close(r)
        os.close(w)


def test_can_fork(monkeypatch):
    assert osdep.can_fork()
    monkeypatch.delattr(os, "fork")
    assert not osdep.can_fork()


@pytest.fixture
def no_fork(monkeypatch):
    monkeypatch.delattr(os, "fork")


def test_import_without_fork_uses_the_writer_thread(data_dir, tmp_path, no_fork):
    (tmp_path / "a.mbox").write_bytes(mbox(300))
    imp = importer._Import(data_dir, "acc", importer.ImportOptions())
    assert isinstance(imp.files, importer._ThreadFiles)
    res = import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    assert res.messages == 300
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        mb = store_mail.get_mailbox(tx, "acc", "Inbox")
        msgs = list(store_mail.list_messages(tx, "acc", mb.id))
    files = sorted(int(p.name) for p in (data_dir / "accounts" / "acc" / "msg").rglob("*") if p.is_file())
    assert files == sorted(m.id for m in msgs) and len(files) == 300


def test_writer_thread_error_aborts_with_nothing_left(data_dir, tmp_path, no_fork, monkeypatch):
    real = importer._ThreadFiles._write_path
    count = [0]

    def write(self, msg_id, data):
        count[0] += 1
        if count[0] == 50:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, msg_id, data)

    monkeypatch.setattr(importer._ThreadFiles, "_write_path", write)
    (tmp_path / "a.mbox").write_bytes(mbox(300))
    with pytest.raises(OSError, match="No space left on device"):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    assert not (data_dir / "accounts" / "acc").exists()
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert store_mail.get_account(tx, "acc") is None and list(store_mail.unfinished_imports(tx)) == []


def test_writer_thread_cancel_on_interrupt(data_dir, tmp_path, no_fork):
    (tmp_path / "a.mbox").write_bytes(mbox(300))

    def progress(p):
        if p.messages >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")], progress=progress)
    assert not (data_dir / "accounts" / "acc").exists()


def test_windows_lock_uses_msvcrt(tmp_path, monkeypatch):
    held: set[int] = set()
    calls = []

    def locking(fd, mode, nbytes):
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        calls.append((pos, mode, nbytes))
        ino = os.fstat(fd).st_ino
        if ino in held:
            raise OSError(errno.EACCES, "Permission denied")
        held.add(ino)

    fake = types.SimpleNamespace(locking=locking, LK_NBLCK=2)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # the POSIX branch must not run
    with os_name("nt"), job_lock(tmp_path, "job"):
        pass
    assert calls == [(1 << 30, 2, 1)]  # one byte far past the pid, so the pid stays readable
    with os_name("nt"), pytest.raises(LockHeld, match=rf"pid {os.getpid()}"), job_lock(tmp_path, "job"):
        pass


def test_mailbox_names_use_slash_whatever_os_sep(monkeypatch):
    monkeypatch.setattr(os, "sep", "\\")
    assert importer.archive_mailbox("Maildir/.Archive.2023", "Maildir") == "Archive/2023"
    assert importer._folder_mailbox("Old", "Sent/Drafts") == "Old/Sent/Drafts"


def test_guard_catches_an_open_file_renamed_by_moxcli(tmp_path):
    """The plugin flags moxcli code that removes a file it holds open (here through a module
    compiled as if it were moxcli's)."""
    path = tmp_path / "held"
    path.write_bytes(b"x")
    code = compile("import os\ndef remove(p):\n    os.unlink(p)\n", open_files_guard.MOXCLI + "fake.py", "exec")
    ns: dict = {}
    exec(code, ns)
    with open(path, "rb"):
        ns["remove"](path)
    assert open_files_guard.violations == [f"moxcli/fake.py:3: unlink of {path} while this process holds it open"]
    open_files_guard.violations.clear()
    # Closed first, as on Windows: nothing to say.
    path.write_bytes(b"x")
    ns["remove"](path)
    assert open_files_guard.violations == []


def test_import_archive_runs_without_fork(data_dir, tmp_path, no_fork):
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("x.mbox", mbox(3))
    assert import_archive(data_dir, "acc", tmp_path / "a.zip").messages == 3
    assert Path(data_dir / "accounts" / "acc").is_dir()


def test_open_flags_missing_on_the_platform(tmp_path, monkeypatch):
    """Without O_NOFOLLOW/O_NONBLOCK/O_CLOEXEC (Windows) the flags are 0 and writes still work."""
    import importlib

    from moxcli.store.files import write_file

    for flag in ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC"):
        monkeypatch.delattr(os, flag)
    try:
        importlib.reload(osdep)
        assert (osdep.O_NOFOLLOW, osdep.O_NONBLOCK, osdep.O_CLOEXEC) == (0, 0, 0)
        write_file(tmp_path / "f", b"data")
        assert (tmp_path / "f").read_bytes() == b"data"
    finally:
        monkeypatch.undo()
        importlib.reload(osdep)
    assert osdep.O_NOFOLLOW == os.O_NOFOLLOW


@pytest.fixture
def no_dir_fds(monkeypatch):
    """Directories cannot be opened or used as dir_fd anchors, as on Windows."""
    monkeypatch.setattr(osdep, "has_dir_fds", lambda: False)
    monkeypatch.delattr(os, "sendfile")
    monkeypatch.delattr(os, "fchmod")


def test_backup_by_path_where_there_are_no_dir_fds(tmp_path, no_dir_fds):
    from moxcli.datatools.backup import backup
    from moxcli.datatools.gentest import generate
    from moxcli.datatools.verify import verify_data

    data = tmp_path / "data"
    generate(data)
    for link in (True, False):
        dest = tmp_path / f"backup-{link}"
        res = backup(data, dest, link=link)
        assert res.ok, res.errors
        assert (res.files_linked > 0) if link else (res.files_copied > 0)
        check = verify_data(dest)
        assert check.ok, check.problems


def test_backup_by_path_never_follows_a_symlinked_directory(tmp_path, no_dir_fds):
    from moxcli.datatools.backup import backup
    from moxcli.datatools.gentest import generate

    data = tmp_path / "data"
    generate(data)
    msg = next(p for p in (data / "accounts").rglob("*") if p.is_file() and p.parent.parent.name == "msg")
    outside = tmp_path / "outside"
    os.rename(msg.parent, outside)
    msg.parent.symlink_to(outside)
    res = backup(data, tmp_path / "backup")
    assert not res.ok and any("a symlink or not a directory, not followed" in e for e in res.errors), res.errors
    assert not os.path.lexists(tmp_path / "backup" / msg.relative_to(data))


@pytest.mark.parametrize("dir_fds", [True, False])
def test_writers_refuse_a_symlinked_directory_with_and_without_dir_fds(tmp_path, monkeypatch, dir_fds):
    """The fd walk (POSIX) and the lstat walk (no dir fds, as on Windows) refuse the same
    planted symlinks: write_file, link_file, move_file, unlink_files, ensure_dir and job_lock."""
    from moxcli.store.files import ensure_dir, link_file, move_file, remove_empty_dir, unlink_files, write_file

    if not dir_fds:
        monkeypatch.setattr(osdep, "has_dir_fds", lambda: False)
    data = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"precious")
    write_file(data / "queue" / "a" / "1", b"one", root=data)
    assert (data / "queue" / "a" / "1").read_bytes() == b"one"
    assert oct((data / "queue").stat().st_mode & 0o777) == oct(0o700)
    (data / "accounts").symlink_to(outside)
    (data / "locks").symlink_to(outside)
    link = str(data / "accounts")
    calls = [
        lambda: write_file(data / "accounts" / "x" / "msg" / "a" / "1", b"x", root=data),
        lambda: ensure_dir(data, data / "accounts" / "x"),
        lambda: link_file(data / "queue" / "a" / "1", data / "accounts" / "1", data),
        lambda: move_file(data, data / "queue" / "a" / "1", data / "accounts" / "1"),
        lambda: unlink_files(data, [data / "accounts" / "keep"]),
        lambda: remove_empty_dir(data, data / "accounts" / "empty"),
    ]
    (outside / "empty").mkdir()
    for call in calls:
        with pytest.raises(OSError) as exc:
            call()
        assert (exc.value.errno, exc.value.strerror, exc.value.filename) == (
            errno.ELOOP,
            "a symlink, not followed",
            link,
        )
    with pytest.raises(OSError) as exc, job_lock(data, "queue"):
        pass
    assert (exc.value.errno, exc.value.filename) == (errno.ELOOP, str(data / "locks"))
    assert sorted(p.name for p in outside.iterdir()) == ["empty", "keep"]
    assert (outside / "keep").read_bytes() == b"precious"
    assert (data / "queue" / "a" / "1").read_bytes() == b"one"


def test_import_without_dir_fds_or_fork_refuses_a_symlinked_account(data_dir, tmp_path, no_fork, no_dir_fds):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "accounts").mkdir(parents=True, mode=0o700)
    (data_dir / "accounts" / "acc").symlink_to(outside)
    (tmp_path / "a.mbox").write_bytes(mbox(3))
    with pytest.raises(OSError) as exc:
        import_mbox(data_dir, "acc", "Inbox", [str(tmp_path / "a.mbox")])
    assert (exc.value.errno, exc.value.filename) == (errno.ELOOP, str(data_dir / "accounts" / "acc"))
    assert list(outside.iterdir()) == []


def test_deferred_syncs_skip_fsyncs_and_sync_once_at_the_end(tmp_path, monkeypatch):
    synced, fsyncs = [], []
    monkeypatch.setattr(osdep, "syncfs", lambda path: synced.append(path) or True)
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    from moxcli.store.files import write_file

    with osdep.deferred_syncs(tmp_path):
        assert osdep.syncs_deferred()
        write_file(tmp_path / "a" / "f", b"x", root=tmp_path)
        osdep.sync_dir(tmp_path)
        with Store.open(tmp_path) as st:
            assert st._env.flags()["sync"] is False and st._env.flags()["metasync"] is False
            st.update(lambda tx: tx.set_meta("k", 1))
        assert fsyncs == [] and synced == []
    assert synced == [tmp_path] and not osdep.syncs_deferred()
    assert (tmp_path / "a" / "f").read_bytes() == b"x"
    write_file(tmp_path / "g", b"y", root=tmp_path)
    assert len(fsyncs) == 2  # the file and its directory: syncing again
    with Store.open(tmp_path) as st:
        assert st._env.flags()["sync"] is True


def test_deferred_syncs_do_not_sync_after_a_failure(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(osdep, "syncfs", lambda path: synced.append(path) or True)
    with pytest.raises(ValueError), osdep.deferred_syncs(tmp_path):
        raise ValueError("failed")
    assert synced == [] and not osdep.syncs_deferred()


def test_deferred_syncs_fall_back_to_sync_without_syncfs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(osdep, "syncfs", lambda path: False)
    monkeypatch.setattr(os, "sync", lambda: calls.append("sync"))
    with osdep.deferred_syncs(tmp_path):
        pass
    assert calls == ["sync"]
    monkeypatch.delattr(os, "sync")
    with osdep.deferred_syncs(tmp_path):  # Windows: neither
        pass
    assert calls == ["sync"]


def test_gentestdata_syncs_once(tmp_path, monkeypatch):
    """A new data directory: no fsync per file or commit, one file-system sync at the end (of
    the hidden work directory it is built in), one fsync of the parent for the rename."""
    from moxcli.datatools.gentest import generate
    from moxcli.datatools.verify import verify_data

    synced, fsyncs = [], []
    monkeypatch.setattr(osdep, "syncfs", lambda path: synced.append(path) or True)
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    generate(tmp_path / "g", messages=20)
    assert len(fsyncs) == 1
    assert synced == [tmp_path / f".g.gentestdata-{os.getpid()}"]
    assert verify_data(tmp_path / "g").ok

"""Paths under attack: planted symlinks are never followed by writers, backup or verifydata,
and every file moxcli writes is private whatever the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.dmarc import vector_eval

from moxcli.datatools.backup import backup
from moxcli.datatools.gentest import generate
from moxcli.datatools.verify import verify_data
from moxcli.perms import _warned, check_private
from moxcli.store.files import msg_dir, queue_file, write_file

MOXCLI = str(Path(sys.executable).parent / "moxcli")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gen") / "data"
    generate(d)
    return d


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_write_file_never_follows_a_planted_temp_name(tmp_path):
    """The temp name is random and opened O_EXCL|O_NOFOLLOW: no name can be planted."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    d = tmp_path / "q" / "a"
    d.mkdir(parents=True)
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # the old predictable names
        (d / f".7.tmp{pid}").symlink_to(victim)
    write_file(d / "7", b"new content")
    assert victim.read_bytes() == b"precious"
    assert (d / "7").read_bytes() == b"new content" and stat.S_IMODE((d / "7").stat().st_mode) == 0o600


def test_queue_add_does_not_overwrite_through_symlinks(tmp_path):
    data = tmp_path / "data"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = queue_file(data, 1)
    path.parent.mkdir(parents=True)
    for pid in range(1, 4):
        (path.parent / f".1.tmp{pid}").symlink_to(victim)
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "queue", "add", "--from", "a@example.org", "--to", "b@example.net", str(msg)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == b"precious" and path.read_bytes().endswith(b"body\r\n")


def _first_message(data: Path) -> Path:
    return next(p for p in sorted((data / "accounts").glob("*/msg/*/*")) if p.is_file())


def test_symlinked_message_file_is_not_followed(generated, tmp_path):
    data = _copy(generated, tmp_path / "data")
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * _first_message(data).stat().st_size)  # same size: only the link betrays it
    msg = _first_message(data)
    msg.unlink()
    msg.symlink_to(secret)
    rel = str(msg.relative_to(data))
    res = verify_data(data)
    assert [p.path for p in res.problems] == [rel]
    assert "not a regular file (a symlink?), not followed" in res.problems[0].what
    for copy in (False, True):
        b = backup(data, tmp_path / f"backup-{copy}", link=not copy)
        assert not b.ok and any(rel in e and "not backed up" in e for e in b.errors), b.errors
        assert not (tmp_path / f"backup-{copy}" / rel).exists()
        assert not os.path.lexists(tmp_path / f"backup-{copy}" / rel)


def test_symlinked_message_directory_is_not_followed(generated, tmp_path):
    data = _copy(generated, tmp_path / "data")
    msg = _first_message(data)
    outside = tmp_path / "outside"
    os.rename(msg.parent, outside)
    msg.parent.symlink_to(outside)
    res = verify_data(data)
    assert not res.ok
    assert any("symlink, not followed" in p.what for p in res.problems), res.problems
    for copy in (False, True):
        b = backup(data, tmp_path / f"backup-{copy}", link=not copy)
        assert not b.ok
        assert not (tmp_path / f"backup-{copy}" / msg.relative_to(data)).exists()


def test_symlinked_msg_root_is_not_walked(generated, tmp_path):
    data = _copy(generated, tmp_path / "data")
    msgdir = _first_message(data).parent.parent
    (tmp_path / "etc").mkdir()
    os.rename(msgdir, tmp_path / "etc" / "msg")
    msgdir.symlink_to(tmp_path / "etc" / "msg")
    res = verify_data(data)
    assert any(p.path == str(msgdir.relative_to(data)) and "symlink" in p.what for p in res.problems), res.problems


def _modes(root: Path) -> list[str]:
    """Paths (relative) whose mode gives the group or others any access."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                bad.append(f"{p.relative_to(root)} {stat.S_IMODE(st.st_mode):04o}")
    return bad


def test_umask_000_every_written_file_is_private(tmp_path):
    """Run the writing commands under umask 000: nothing they create is group/world-accessible."""
    data = tmp_path / "new" / "data"  # parents created too
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n")
    evals = tmp_path / "e.jsonl"
    evals.write_text(json.dumps(vector_eval(time.time())) + "\n")
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: s\n\nbody\n")
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.host:2,S").write_bytes(b"Subject: m\n\nbody\n")
    archive = tmp_path / "a.zip"
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Sub.mbox", mbox.read_bytes())
    reports = ROOT / "testdata" / "reports"
    dmarc_xml = tmp_path / "dmarc.xml"
    day = int(time.time()) // 86400 * 86400 - 86400
    text = (reports / "dmarc-google.xml").read_text()
    dmarc_xml.write_text(text.replace("REPORTID", "r1").replace("BEGIN", str(day)).replace("END", str(day + 86399)))
    script = f"""
set -e
umask 000
m={MOXCLI}
$m --data {data} init example.org --hostname mail.example.org >/dev/null
$m --data {data} queue add --from a@example.org --to b@example.net {msg} >/dev/null
$m --data {data} suppress tls add tlsrpt@example.net >/dev/null
$m --data {data} mtasts list >/dev/null
$m --data {data} mtasts refresh >/dev/null
$m --data {data} import mbox acc Inbox {mbox} >/dev/null
$m --data {data} import maildir acc Archive {maildir} >/dev/null
$m --data {data} dmarc record {evals} >/dev/null
$m --data {data} tlsreports import {reports}/tls-google.json >/dev/null
$m --data {data} dmarcreports import {dmarc_xml} >/dev/null
$m --data {data} send-tlsreports >/dev/null
$m --data {data} send-dmarcreports >/dev/null 2>&1 || true
$m --data {data} backup {tmp_path}/backup >/dev/null
$m gentestdata {tmp_path}/gen >/dev/null
$m --data {tmp_path}/gen backup {tmp_path}/gen-backup >/dev/null
$m --data {tmp_path}/gen backup --copy {tmp_path}/gen-backup-copy >/dev/null
touch {tmp_path}/gen/accounts/test1/msg/a/999999
chmod 600 {tmp_path}/gen/accounts/test1/msg/a/999999
$m --data {data} import archive acc {archive} >/dev/null
$m --data {tmp_path}/gen send-reports >/dev/null
$m --data {tmp_path}/gen dmarc record {evals} >/dev/null
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    from moxcli.store import Store, schema

    with Store.open(tmp_path / "gen") as st, st.write() as tx:  # queue message 1's file: unreferenced
        assert tx.delete(schema.QUEUE, schema.u64(1))
    r = subprocess.run(["bash", "-c", f"umask 000; {MOXCLI} verifydata --fix {tmp_path}/gen"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "gen" / "moved" / "queue" / "a" / "1").is_file()
    for root in (
        tmp_path / "new",
        tmp_path / "backup",
        tmp_path / "gen",
        tmp_path / "gen-backup",
        tmp_path / "gen-backup-copy",
    ):
        assert _modes(root) == [], root


def _loud() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MOXCLI_QUIET_PERMISSIONS"}


def test_warning_for_open_data_dir_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MOXCLI_QUIET_PERMISSIONS")
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    _warned.clear()
    text = check_private(d, "data directory")
    assert text is not None and "accessible to group and others (mode 0755)" in text
    assert check_private(d, "data directory") is None  # once per run


def test_cli_warns_once_about_world_readable_store_and_key(tmp_path):
    data = _init(tmp_path)
    os.chmod(data, 0o755)
    key = next((data / "dkim").rglob("*.pem"))
    os.chmod(key, 0o644)
    r = subprocess.run([MOXCLI, "--data", str(data), "queue", "list"], capture_output=True, text=True, env=_loud())
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("data directory") == 1 and "mode 0755" in r.stderr, r.stderr
    r = subprocess.run([MOXCLI, "--data", str(data), "dns", "records"], capture_output=True, text=True, env=_loud())
    assert r.returncode == 0 and f"DKIM private key {key} is accessible to group and others" in r.stderr, r.stderr
    r = subprocess.run([MOXCLI, "--data", str(data), "queue", "list"], capture_output=True, text=True)
    assert "warn" not in r.stderr, r.stderr


def test_warning_for_a_data_dir_of_another_user(tmp_path, monkeypatch):
    monkeypatch.delenv("MOXCLI_QUIET_PERMISSIONS")
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)  # nobody
    _warned.clear()
    text = check_private(d, "data directory")
    assert text is not None and "owned by uid 65534, not by this user" in text


def test_import_backup_and_verifydata_warn_about_an_open_data_dir(tmp_path):
    """These open the store themselves (not through the CLI's shared store-open path) and
    still warn, once, through moxcli.perms.check_data_dir."""
    data = _init(tmp_path)
    os.chmod(data, 0o755)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: s\n\nbody\n")
    warning = f"data directory {data} is accessible to group and others (mode 0755)"
    for args in (
        ["import", "mbox", "acc", "Inbox", str(mbox)],
        ["backup", str(tmp_path / "backup")],
        ["verifydata"],
        ["verifydata", str(data)],
    ):
        r = subprocess.run([MOXCLI, "--data", str(data), *args], capture_output=True, text=True, env=_loud())
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr.count(warning) == 1, (args, r.stderr)
    r = subprocess.run([MOXCLI, "--data", str(data), "verifydata"], capture_output=True, text=True)
    assert r.returncode == 0 and "accessible" not in r.stderr, r.stderr


def test_import_backup_and_verifydata_warn_once_about_a_readable_dkim_key(tmp_path):
    """A DKIM key others can read lets them sign as the domain: the commands that copy or
    check the data directory warn about it once, as about the directory itself."""
    data = _init(tmp_path)
    key = next((data / "dkim").rglob("*.pem"))
    os.chmod(key, 0o640)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: s\n\nbody\n")
    warning = f"DKIM private key {key} is accessible to its group (mode 0640)"
    for args in (
        ["import", "mbox", "acc", "Inbox", str(mbox)],
        ["backup", str(tmp_path / "backup")],
        ["verifydata"],
        ["verifydata", str(data)],
    ):
        r = subprocess.run([MOXCLI, "--data", str(data), *args], capture_output=True, text=True, env=_loud())
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr.count(warning) == 1, (args, r.stderr)
    os.chmod(key, 0o600)
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "backup", str(tmp_path / "b2")], capture_output=True, text=True, env=_loud()
    )
    assert r.returncode == 0 and "DKIM" not in r.stderr, r.stderr


def _init(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "init", "example.org", "--hostname", "mail.example.org"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return data


MBOX = b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: s\n\nbody\n"


@pytest.mark.parametrize(
    ("lock", "args"),
    [
        ("queue", ["queue", "run"]),
        ("backup", ["backup", "{tmp}/backup"]),
        ("import-acc", ["import", "mbox", "acc", "Inbox", "{tmp}/in.mbox"]),
        ("mtasts-refresh", ["mtasts", "refresh"]),
        ("send-tlsreports", ["send-tlsreports"]),
        ("dmarcreports", ["send-dmarcreports"]),
    ],
)
def test_job_lock_never_follows_a_planted_symlink(tmp_path, lock, args):
    """Every job that takes a lock opens its lock file O_NOFOLLOW: a symlink planted there
    (to a file of the user running moxcli) is refused in one line naming the lock, exit 2
    (the data directory needs fixing), its target untouched (it used to be truncated and get
    the pid written into it)."""
    data = _init(tmp_path)
    (tmp_path / "in.mbox").write_bytes(MBOX)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (data / "locks").mkdir(mode=0o700, exist_ok=True)
    (data / "locks" / f"{lock}.lock").symlink_to(victim)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = subprocess.run([MOXCLI, "--data", str(data), *argv], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {data / 'locks' / f'{lock}.lock'}: a symlink, not followed"]
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize("planted", ["message file", "message directory", "account directory"])
def test_import_never_writes_through_a_planted_symlink(tmp_path, planted):
    """import writes message files by name: a symlink planted where its next file or
    directory goes is refused (exit 2, one line naming it), nothing is written through it,
    and nothing is imported."""
    data = _init(tmp_path)
    (tmp_path / "in.mbox").write_bytes(MBOX)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"precious")
    acc = data / "accounts" / "acc"
    if planted == "account directory":
        (data / "accounts").mkdir(mode=0o700)
        acc.symlink_to(outside)
        link = acc
    elif planted == "message directory":
        (acc / "msg").mkdir(mode=0o700, parents=True)
        link = acc / "msg" / msg_dir(1)
        link.symlink_to(outside)
    else:
        (acc / "msg" / msg_dir(1)).mkdir(mode=0o700, parents=True)
        link = acc / "msg" / msg_dir(1) / "1"
        link.symlink_to(victim)
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "import", "mbox", "acc", "Inbox", str(tmp_path / "in.mbox")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {link}: a symlink, not followed"]
    assert victim.read_bytes() == b"precious" and sorted(p.name for p in outside.iterdir()) == ["victim"]
    r = subprocess.run([MOXCLI, "--data", str(data), "mailbox", "list", "acc"], capture_output=True, text=True)
    assert "Inbox" not in r.stdout


def test_store_files_that_are_symlinks_are_refused(generated, tmp_path):
    """LMDB would write data.mdb (or lock.mdb) wherever a planted symlink points."""
    data = _copy(generated, tmp_path / "data")
    outside = tmp_path / "outside.mdb"
    os.rename(data / "store" / "data.mdb", outside)
    (data / "store" / "data.mdb").symlink_to(outside)
    before = outside.read_bytes()
    ev = tmp_path / "ev.jsonl"
    ev.write_text("")
    for args in (["dmarc", "record", str(ev)], ["queue", "list"], ["suppress", "tls", "add", "a@example.org"]):
        r = subprocess.run([MOXCLI, "--data", str(data), *args], capture_output=True, text=True)
        assert r.returncode != 0, (args, r.stdout)
        assert r.stderr.strip().splitlines() == [
            f"moxcli: {data / 'store' / 'data.mdb'}: a symlink, not followed; the store files must be files"
        ], args
    assert outside.read_bytes() == before


def test_verifydata_fix_never_moves_files_out_through_a_symlink(generated, tmp_path):
    """--fix moves an orphaned file to moved/: a moved/ that is a planted symlink is refused,
    the file stays where it was (moved, it would have left the data directory)."""
    from moxcli.store import Store, schema

    data = _copy(generated, tmp_path / "data")
    with Store.open(data) as st, st.write() as tx:
        assert tx.delete(schema.QUEUE, schema.u64(1))
    orphan = queue_file(data, 1)
    assert orphan.exists()
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "moved").symlink_to(outside)
    r = subprocess.run([MOXCLI, "verifydata", "--fix", str(data)], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {data / 'moved'}: a symlink, not followed"]
    assert list(outside.iterdir()) == [] and orphan.exists()


def test_backup_copies_a_symlinked_dkim_dir_as_a_link_with_a_warning(generated, tmp_path):
    """backup never follows a symlink out of the data directory; a symlinked dkim/ (or any
    other entry) is copied as the link, and a warning says its target is not in the backup."""
    import shutil

    data = _copy(generated, tmp_path / "data")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k.pem").write_text("secret")
    shutil.rmtree(data / "dkim", ignore_errors=True)  # gentestdata may have made one
    (data / "dkim").symlink_to(keys)
    res = backup(data, tmp_path / "b")
    assert res.ok, res.errors
    assert os.readlink(tmp_path / "b" / "dkim") == str(keys)
    (w,) = [w for w in res.warnings if w.startswith("dkim:")]
    assert w == f"dkim: a symlink to {keys}, copied as a symlink: what it points to is not in the backup"
    assert w.code == "symlink-copied"


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry below ``root``: file contents, or ``dir``/``link``, to compare before and after."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = "link" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def _inputs(tmp_path: Path) -> dict[str, str]:
    import zipfile

    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n")
    (tmp_path / "in.mbox").write_bytes(MBOX)
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.host:2,S").write_bytes(b"Subject: m\n\nbody\n")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("x.mbox", MBOX)
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps(vector_eval(time.time())) + "\n")
    return {
        "msg": str(msg),
        "mbox": str(tmp_path / "in.mbox"),
        "maildir": str(maildir),
        "zip": str(tmp_path / "a.zip"),
    } | {
        "ev": str(ev),
        "tmp": str(tmp_path),
    }


QUEUE_ADD = ["queue", "add", "--from", "a@example.org", "--to", "b@example.net", "--to", "c@example.net", "{msg}"]


@pytest.mark.parametrize(
    ("planted", "args"),
    [
        ("queue", QUEUE_ADD),
        ("queue/a", QUEUE_ADD),
        ("queue", ["send-tlsreports"]),
        ("queue", ["send-reports"]),
        ("accounts", ["import", "mbox", "acc", "Inbox", "{mbox}"]),
        ("accounts/test1", ["import", "maildir", "test1", "Other", "{maildir}"]),
        ("accounts/test1/msg", ["import", "archive", "test1", "{zip}"]),
        ("accounts/test1/msg/a", ["import", "mbox", "test1", "Inbox", "{mbox}"]),
        ("store", ["dmarc", "record", "{ev}"]),
        ("store", ["suppress", "tls", "add", "x@example.org"]),
        ("locks", ["queue", "run"]),
        ("locks", ["backup", "{tmp}/backup"]),
        ("locks", ["mtasts", "refresh"]),
        ("locks", ["send-tlsreports"]),
        ("locks", ["send-dmarcreports"]),
        ("locks", ["send-reports"]),
        ("locks", ["import", "mbox", "acc", "Inbox", "{mbox}"]),
    ],
)
def test_writers_never_follow_a_symlinked_directory_in_the_data_dir(generated, tmp_path, planted, args):
    """O_NOFOLLOW guards only the last component of a path: a directory of the data dir
    (queue/, an account, msg/, a message directory, store/, locks/) replaced by a symlink to
    a directory outside must not lead a writer there. Every writer walks from the data
    directory one level at a time (moxcli.store.files.open_dir): one line naming the link,
    exit 2, and the directory outside exactly as it was."""
    data = _copy(generated, tmp_path / "data")
    (data / "locks").mkdir(mode=0o700, exist_ok=True)
    outside = tmp_path / "outside"
    os.rename(data / planted, outside)  # the real content, moved out: the link leads to it
    (data / planted).symlink_to(outside)
    before = _tree(outside)
    inputs = _inputs(tmp_path)
    argv = [a.format(**inputs) for a in args]
    r = subprocess.run([MOXCLI, "--data", str(data), *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip().splitlines() == [f"moxcli: {data / planted}: a symlink, not followed"]
    assert _tree(outside) == before


def test_json_error_code_of_a_planted_symlink(generated, tmp_path):
    data = _copy(generated, tmp_path / "data")
    (data / "locks").mkdir(mode=0o700, exist_ok=True)
    (data / "locks" / "queue.lock").symlink_to(tmp_path / "nowhere")
    r = subprocess.run([MOXCLI, "--data", str(data), "queue", "run", "--json"], capture_output=True, text=True)
    assert r.returncode == 2
    assert json.loads(r.stdout) == {
        "error": {"code": "symlink", "message": f"{data / 'locks' / 'queue.lock'}: a symlink, not followed"}
    }
    assert not (tmp_path / "nowhere").exists()


def test_verifydata_fix_never_moves_into_a_symlinked_subdirectory_of_moved(generated, tmp_path):
    """moved/ itself may exist from an earlier --fix; a symlink one level below it is refused too."""
    from moxcli.store import Store, schema

    data = _copy(generated, tmp_path / "data")
    with Store.open(data) as st, st.write() as tx:
        assert tx.delete(schema.QUEUE, schema.u64(1))
    orphan = queue_file(data, 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "moved").mkdir(mode=0o700)
    (data / "moved" / "queue").symlink_to(outside)
    r = subprocess.run([MOXCLI, "verifydata", "--fix", str(data)], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {data / 'moved' / 'queue'}: a symlink, not followed"]
    assert list(outside.iterdir()) == [] and orphan.exists()


OTHER_USER_COMMANDS = [
    ["queue", "list"],
    ["queue", "add", "--from", "a@example.org", "--to", "b@example.net", "{msg}"],
    ["dmarc", "record", "{ev}"],
    ["import", "mbox", "acc", "Inbox", "{mbox}"],
    ["backup", "{tmp}/backup"],
    ["verifydata"],
    ["mtasts", "list"],
]


@pytest.mark.parametrize("args", OTHER_USER_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_cli_warns_once_about_a_data_dir_of_another_user(tmp_path, args):
    """A data directory that belongs to another user (here: nobody, uid 65534; the suite
    runs as root, which can still use it): exactly one warning line naming it, and the
    command does its work (exit 0)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the data directory to another user")
    data = _init(tmp_path)
    os.chown(data, 65534, 65534)
    inputs = _inputs(tmp_path)
    argv = [a.format(**inputs) for a in args]
    r = subprocess.run([MOXCLI, "--data", str(data), *argv], capture_output=True, text=True, env=_loud())
    assert r.returncode == 0, r.stderr
    warning = f"data directory {data} is owned by uid 65534, not by this user (uid 0); fix: chown it to the user"
    lines = [line for line in r.stderr.splitlines() if str(data) in line]
    assert len(lines) == 1 and warning in lines[0], r.stderr
    assert "store" not in lines[0]


def test_cli_runner_warns_once_about_a_data_dir_of_another_user(tmp_path, monkeypatch, runner):
    """The same in-process (CliRunner): one warning line, once per run, though import checks
    the data directory itself and again when it opens the store."""
    from moxcli.cli import cli

    if os.geteuid() != 0:
        pytest.skip("needs root to give the data directory to another user")
    monkeypatch.delenv("MOXCLI_QUIET_PERMISSIONS")
    data = _init(tmp_path)
    os.chown(data, 65534, 65534)
    inputs = _inputs(tmp_path)
    for args in (["import", "mbox", "acc", "Inbox", inputs["mbox"]], ["queue", "list"]):
        _warned.clear()  # one run each
        r = runner.invoke(cli, ["--data", str(data), *args])
        assert r.exit_code == 0, r.output
        lines = [line for line in r.stderr.splitlines() if str(data) in line]
        assert len(lines) == 1 and "owned by uid 65534, not by this user" in lines[0], r.stderr


def test_cli_warns_once_each_about_an_open_store_directory_and_file(tmp_path):
    data = _init(tmp_path)
    os.chmod(data / "store", 0o755)
    os.chmod(data / "store" / "data.mdb", 0o644)
    for args in (["queue", "list"], ["suppress", "tls", "add", "x@example.org"], ["verifydata"]):
        r = subprocess.run([MOXCLI, "--data", str(data), *args], capture_output=True, text=True, env=_loud())
        assert r.returncode == 0, r.stderr
        lines = [line for line in r.stderr.splitlines() if str(data) in line]
        assert len(lines) == 2, (args, r.stderr)
        assert f"store directory {data / 'store'} is accessible to group and others (mode 0755)" in lines[0]
        assert f"store file {data / 'store' / 'data.mdb'} is accessible to group and others (mode 0644)" in lines[1]


def test_local_delivery_never_writes_through_a_symlinked_account(generated, tmp_path):
    """DSNs and report copies delivered to a local account (moxcli.mail.deliver.store_message)
    write by the same fd walk: a symlinked msg/ is refused, nothing is stored or written outside."""
    import errno

    from moxcli.mail.deliver import store_message
    from moxcli.store import Store
    from moxcli.store import mail as store_mail

    data = _copy(generated, tmp_path / "data")
    msg_root = data / "accounts" / "postmaster" / "msg"
    msg_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    os.rename(msg_root, outside)
    msg_root.symlink_to(outside)
    before = _tree(outside)
    with Store.open(data) as store:
        with store.read() as tx:
            count = store_mail.account_size(tx, "postmaster")
        with pytest.raises(OSError) as exc:
            store_message(store, data, "postmaster", "Postmaster", b"Subject: dsn\r\n\r\nbody\r\n")
        with store.read() as tx:
            assert store_mail.account_size(tx, "postmaster") == count
    assert (exc.value.errno, exc.value.filename) == (errno.ELOOP, str(msg_root))
    assert _tree(outside) == before


@pytest.mark.parametrize("planted", ["dkim", "dkim/example.org", "store"])
def test_init_never_writes_keys_or_store_through_a_symlink(tmp_path, planted):
    data = tmp_path / "data"
    (data / "dkim").mkdir(parents=True, mode=0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    if (data / planted).exists():
        os.rmdir(data / planted)
    (data / planted).symlink_to(outside)
    r = subprocess.run(
        [MOXCLI, "--data", str(data), "init", "example.org", "--hostname", "mail.example.org"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {data / planted}: a symlink, not followed"]
    assert list(outside.iterdir()) == []

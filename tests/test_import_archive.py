"""`moxcli import archive`: mbox files and maildirs inside .zip and .tar[.gz|.bz2|.xz] archives,
all or nothing, and hostile archives refused with nothing changed."""

import io
import json
import stat
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from moxcli.cli import cli
from moxcli.errors import CheckFailed, UsageError
from moxcli.mail.archive import ArchiveLimits, entry_name
from moxcli.mail.importer import ImportOptions, archive_mailbox, import_archive
from moxcli.store import Store
from moxcli.store import mail as store_mail

MBOX = (
    b"From a@example.org Mon Jan  2 15:04:05 2006\nSubject: one\nX-Keywords: other, test\nStatus: RO\n\nbody 1\n\n"
    b"From b@example.org Mon Jan  2 15:04:06 2006\nSubject: two\n\nbody 2\n"
)
MSG = b"Subject: maildir message\n\nbody\n"

# name -> bytes (None: a directory). Order matters for tar: the dovecot-keywords of
# Maildir/.Sent comes after the message that uses its letter "a".
TREE: list[tuple[str, bytes | None]] = [
    ("Takeout/", None),
    ("Takeout/All mail.mbox", MBOX),
    ("Takeout/Archive/2023.mbox", MBOX[: MBOX.index(b"From b")]),
    ("Maildir/cur/1700000000.M1P1.host:2,S", MSG),
    ("Maildir/new/1700000001.M2P1.host", MSG),
    ("Maildir/tmp/1700000002.M3P1.host", MSG),  # a delivery in progress: not imported
    ("Maildir/dovecot-uidlist", b"3 V1 N1\n"),  # server metadata: ignored
    ("Maildir/.Sent/cur/1700000003.M4P1.host:2,RSa", MSG),
    ("Maildir/.Sent/dovecot-keywords", b"0 $Forwarded\n"),
    ("Maildir/.Entw&APw-rfe/cur/", None),  # an empty maildir is still a mailbox
    ("Maildir/.Entw&APw-rfe/new/", None),
    ("README.txt", b"not mail\n"),
]


def make_zip(path: Path, tree=TREE) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in tree:
            if data is None:
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return path


def make_tar(path: Path, mode: str = "w:gz", tree=TREE) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in tree:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def mailboxes(data: Path, account: str) -> dict[str, list[tuple[list[str], list[str]]]]:
    """mailbox -> [(flags, keywords)] per message, in uid order."""
    out = {}
    with Store.open(data, readonly=True) as st, st.read() as tx:
        for mb in store_mail.list_mailboxes(tx, account):
            out[mb.name] = [(m.flags, m.keywords) for m in store_mail.list_messages(tx, account, mb.id)]
    return out


EXPECTED = {
    "Takeout": [],
    "Takeout/All mail": [(["\\Seen"], ["other", "test"]), ([], [])],
    "Takeout/Archive": [],
    "Takeout/Archive/2023": [(["\\Seen"], ["other", "test"])],
    "Maildir": [(["\\Seen"], []), ([], [])],
    "Maildir/Sent": [(["\\Seen", "\\Answered", "$Forwarded"], [])],
    "Maildir/Entwürfe": [],
}


@pytest.mark.parametrize("maker", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_archive_kinds_import_the_same_mailboxes(data_dir, tmp_path, maker):
    modes = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
    path = tmp_path / f"a.{maker}"
    make_zip(path) if maker == "zip" else make_tar(path, modes[maker])
    res = import_archive(data_dir, "mjl", path)
    assert res.messages == 6 and res.account_created
    assert mailboxes(data_dir, "mjl") == EXPECTED
    assert [w.message for w in res.warnings] == ["not an mbox file (*.mbox) or a maildir message, skipped"]
    assert res.warnings[0].position == f"{path}:README.txt"


def test_skip_prefix_makes_the_root_maildir_inbox(data_dir, tmp_path):
    path = make_tar(tmp_path / "a.tgz")
    import_archive(data_dir, "mjl", path, skip_prefix="Maildir")
    got = mailboxes(data_dir, "mjl")
    assert got["Inbox"] == EXPECTED["Maildir"] and got["Sent"] == EXPECTED["Maildir/Sent"] and "Entwürfe" in got


@pytest.mark.parametrize(
    "path, prefix, mailbox",
    [
        ("", "", "Inbox"),
        ("Maildir", "", "Maildir"),
        ("Maildir", "Maildir", "Inbox"),
        ("Maildir/.Archive.2023", "Maildir/", "Archive/2023"),
        ("Maildir/.Archive.2023", "Mail", "Maildir/Archive/2023"),  # only whole elements
        ("inbox/x", "", "Inbox/x"),
        ("Mail/.Entw&APw-rfe", "Mail", "Entwürfe"),
    ],
)
def test_archive_mailbox_names(path, prefix, mailbox):
    assert archive_mailbox(path, prefix) == mailbox


@pytest.mark.parametrize(
    "raw, ok",
    [
        ("a/b", "a/b"),
        ("./a//b/", "a/b"),
        ("../a", None),
        ("a/../../b", None),
        ("/etc/passwd", None),
        ("\\\\server\\x", None),
        ("C:\\x", None),
        ("a\x00b", None),
        ("a\nb", None),
    ],
)
def test_entry_names(raw, ok):
    from moxcli.mail.archive import ArchiveError

    if ok is None:
        with pytest.raises(ArchiveError):
            entry_name(raw)
    else:
        assert entry_name(raw) == ok


def test_dry_run_counts_and_writes_nothing(data_dir, tmp_path):
    path = make_zip(tmp_path / "a.zip")
    res = import_archive(data_dir, "mjl", path, options=ImportOptions(dry_run=True))
    assert res.dry_run and res.messages == 6
    assert {m.name: m.messages for m in res.mailboxes} == {k: len(v) for k, v in EXPECTED.items()}
    assert not (data_dir / "accounts").exists()


def test_all_or_nothing_with_an_existing_account(data_dir, tmp_path):
    import_archive(data_dir, "mjl", make_zip(tmp_path / "a.zip"))
    bad = [*TREE, ("Maildir/.Bad/cur/1.x.y", b"x" * 200)]
    path = make_tar(tmp_path / "b.tgz", tree=bad)
    with pytest.raises(CheckFailed, match=r"b.tgz:Maildir/.Bad/cur/1.x.y: message 7 is larger than max_message_size"):
        import_archive(data_dir, "mjl", path, options=ImportOptions(max_message_size=100))
    assert mailboxes(data_dir, "mjl") == EXPECTED


def _zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _zip_with_duplicate_name() -> bytes:
    """The hostile archive: one name twice. zipfile warns while writing it; that is deliberate."""
    with pytest.warns(UserWarning, match="Duplicate name: 'a.mbox'"):
        return _zip_bytes([("a.mbox", MBOX), ("a.mbox", MBOX)])


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _encrypted_zip() -> bytes:
    """A zip whose entry has the "encrypted" flag (bit 0) set in both headers."""
    data = bytearray(_zip_bytes([("x.mbox", MBOX)]))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    return bytes(data)


def _lying_zip() -> bytes:
    """A zip entry that declares 100 bytes and holds 2 MB."""
    big = b"From a Mon Jan  2 15:04:05 2006\n\n" + b"a" * (2 << 20)
    data = bytearray(_zip_bytes([("x.mbox", big)]))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = data.find(sig)
        data[i + off : i + off + 4] = (100).to_bytes(4, "little")
    return bytes(data)


def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for info, data in members:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _tinfo(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _gzip_tar_bomb() -> bytes:
    """A .tar.gz of 64 MB of zeros in a few tens of KB."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("Maildir/cur/1.a.b")
        info.size = 64 << 20

        class Zeros:
            left = 64 << 20

            def read(self, n: int) -> bytes:
                n = min(n, self.left)
                self.left -= n
                return bytes(n)

        tf.addfile(info, Zeros())
    return buf.getvalue()


def make_tar_bytes_truncated() -> bytes:
    data = _tar_bytes([(_tinfo("a.mbox"), MBOX * 50)], "w:gz")
    return data[: len(data) // 2]


HOSTILE = {
    "zip traversal": ("zip", lambda: _zip_bytes([("../evil.mbox", MBOX)]), "path traversal"),
    "zip absolute": ("zip", lambda: _zip_bytes([("/etc/evil.mbox", MBOX)]), "absolute path"),
    "zip symlink": ("zip", lambda: _zip_bytes([(_symlink_info("link.mbox"), b"/etc/passwd")]), "symbolic link"),
    "zip duplicate": ("zip", lambda: _zip_with_duplicate_name(), "the same name twice"),
    "zip encrypted": ("zip", _encrypted_zip, "encrypted"),
    "zip too many": ("zip", lambda: _zip_bytes([(f"{i}.mbox", MBOX) for i in range(5)]), "more than the limit of 4"),
    "zip bomb ratio": ("zip", lambda: _zip_bytes([("z.mbox", b"\0" * (8 << 20))]), "decompression bomb"),
    "zip declared size": ("zip", _lying_zip, "entry 'x.mbox': damaged data: Bad CRC-32"),
    "tar traversal": ("tgz", lambda: _tar_bytes([(_tinfo("a/../../x.mbox"), MBOX)], "w:gz"), "path traversal"),
    "tar absolute": ("tar", lambda: _tar_bytes([(_tinfo("/x.mbox"), MBOX)]), "absolute path"),
    "tar symlink": (
        "tar",
        lambda: _tar_bytes([(_tinfo("x.mbox", tarfile.SYMTYPE, "/etc/passwd"), b"")]),
        "symbolic link",
    ),
    "tar hard link": (
        "tar",
        lambda: _tar_bytes([(_tinfo("x.mbox", tarfile.LNKTYPE, "/etc/passwd"), b"")]),
        "hard link",
    ),
    "tar device": ("tar", lambda: _tar_bytes([(_tinfo("dev", tarfile.CHRTYPE), b"")]), "not a file or directory"),
    "tar duplicate": ("tar", lambda: _tar_bytes([(_tinfo("a.mbox"), MBOX), (_tinfo("./a.mbox"), MBOX)]), "same name"),
    "tar too many": ("tar", lambda: _tar_bytes([(_tinfo(f"{i}.mbox"), MBOX) for i in range(5)]), "limit of 4"),
    "tar gzip bomb": ("tgz", _gzip_tar_bomb, "decompression bomb"),
    "truncated tgz": ("tgz", make_tar_bytes_truncated, "damaged data"),
    "not an archive": ("zip", lambda: b"just text\n" * 10, "not a zip or tar archive"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_change_nothing(data_dir, tmp_path, case):
    ext, make, why = HOSTILE[case]
    import_archive(data_dir, "mjl", make_zip(tmp_path / "good.zip"))
    path = tmp_path / f"hostile.{ext}"
    path.write_bytes(make())
    with pytest.raises(CheckFailed) as e:
        import_archive(data_dir, "mjl", path, limits=ArchiveLimits(max_entries=4, max_ratio=200))
    assert why in str(e.value) and str(e.value).startswith(f"{path}: ")
    assert str(e.value).endswith("nothing was imported")
    assert mailboxes(data_dir, "mjl") == EXPECTED
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        assert list(store_mail.unfinished_imports(tx)) == []


def test_missing_archive_is_a_usage_error(data_dir, tmp_path):
    with pytest.raises(UsageError, match="not a regular file"):
        import_archive(data_dir, "mjl", tmp_path / "nope.zip")


def test_cli_archive_json_table_progress_and_errors(data_dir, tmp_path):
    runner = CliRunner()
    path = make_tar(tmp_path / "a.tgz")
    base = ["--data", str(data_dir), "import", "archive"]
    r = runner.invoke(cli, [*base, "--dry-run", "mjl", str(path)])
    assert r.exit_code == 0, r.stderr
    assert "parsed (dry run, nothing written): 6 messages" in r.stdout and "Maildir/Sent" in r.stdout
    assert "would create mailbox Maildir/Entwürfe" in r.stderr
    r = runner.invoke(cli, [*base, "--json", "--progress-interval", "0", "--skip-prefix", "Maildir", "mjl", str(path)])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["messages"] == 6 and {m["name"] for m in out["mailboxes"]} >= {"Inbox", "Sent", "Takeout/All mail"}
    assert "m=progress pkg=import account=mjl" in r.stderr
    hostile = tmp_path / "h.zip"
    hostile.write_bytes(_zip_bytes([("../evil.mbox", MBOX)]))
    r = runner.invoke(cli, [*base, "mjl", str(hostile)])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"moxcli: {hostile}: entry '../evil.mbox': path traversal")
    r = runner.invoke(cli, [*base, "mjl", str(tmp_path / "missing.zip")])
    assert r.exit_code == 2


def test_config_limits_reach_the_cli(data_dir, tmp_path):
    (data_dir / "moxcli.toml").write_text("archive_max_entries = 3\n")
    r = CliRunner().invoke(
        cli, ["--data", str(data_dir), "import", "archive", "mjl", str(make_zip(tmp_path / "a.zip"))]
    )
    assert r.exit_code == 1 and "more than the limit of 3" in r.stderr


def test_large_mbox_in_archive_streams(data_dir, tmp_path):
    """A 20,000-message mbox inside a .tgz: imported in one pass, every message there."""
    body = b"".join(b"From x@example.org Mon Jan  2 15:04:05 2006\nSubject: %d\n\nline\n\n" % i for i in range(20000))
    path = tmp_path / "big.tgz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("big.mbox")
        info.size = len(body)
        info.mtime = int(time.time())
        tf.addfile(info, io.BytesIO(body))
    res = import_archive(data_dir, "mjl", path)
    assert res.messages == 20000 and res.mailboxes[0].name == "big"

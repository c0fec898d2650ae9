"""The data-dir layout (moxcli/datatools/layout.py) is what backup and verifydata act on."""

import pytest

from moxcli.datatools import layout
from moxcli.datatools.backup import backup
from moxcli.datatools.verify import verify_data
from moxcli.store import Store


def test_every_entry_has_one_policy_and_a_description():
    names = [e.name for e in layout.ENTRIES]
    assert len(names) == len(set(names))
    assert {e.backup for e in layout.ENTRIES} == {layout.OWN_STEP, layout.COPY, layout.SKIP}
    assert all(e.holds for e in layout.ENTRIES)
    assert layout.COPIED_QUIETLY | layout.NOT_COPIED_AS_IS == layout.KNOWN
    assert not layout.COPIED_QUIETLY & layout.NOT_COPIED_AS_IS


@pytest.fixture
def full_data_dir(data_dir):
    """A data dir with a store and one file or directory for every other listed entry."""
    with Store.open(data_dir):
        pass
    for e in layout.ENTRIES:
        p = data_dir / e.name
        if e.name == "store" or p.exists():
            continue
        if e.name in ("accounts", "queue", "locks", "tmp", "dkim", "moved"):
            p.mkdir(mode=0o700)
            (p / "x").write_text("x")
        else:
            p.write_text("x\n")
    (data_dir / "moxcli.toml").write_text('hostname = "mail.example.org"\n')
    (data_dir / "stray.txt").write_text("not ours\n")
    return data_dir


def test_backup_follows_the_layout(full_data_dir, tmp_path):
    res = backup(full_data_dir, tmp_path / "b")
    copied = {p.name for p in (tmp_path / "b").iterdir()}
    for e in layout.ENTRIES:
        if e.backup == layout.COPY:
            assert e.name in copied, e
        if e.backup == layout.SKIP and e.name not in (layout.VERSION_FILE, layout.STORE_SUM):
            assert e.name not in copied, e
    # The backup writes its own version file and store digest, not the source's ("x\n").
    assert (tmp_path / "b" / layout.VERSION_FILE).read_text() != "x\n"
    assert (tmp_path / "b" / layout.STORE_SUM).read_text() != "x\n"
    # An unlisted entry is copied, with a warning naming it; listed ones copy quietly.
    assert "stray.txt" in copied
    warned = " ".join(str(w) for w in res.warnings)
    assert "stray.txt" in warned
    assert not any(name in warned for name in layout.COPIED_QUIETLY)


def test_verifydata_warns_only_about_unlisted_entries(full_data_dir):
    res = verify_data(full_data_dir)
    top = [str(w) for w in res.warnings if "unrecognized file" in str(w) and "/" not in str(w).split(":")[0]]
    assert top == ["stray.txt: unrecognized file, ignoring"]

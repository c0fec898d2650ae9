"""Reading maildirs (docs/behaviour-notes.md §8.3) and maildir++ trees (mox issue #134): folders, entries, names.

File name rules are pure functions; the rest lists directories and reads files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from moxcli.mail.flags import parse_dovecot_keywords
from moxcli.mail.names import maildirpp_folder
from moxcli.values import dataclass

SUBDIRS = ("new", "cur")  # new/ first, then cur/; tmp/ holds deliveries in progress: ignored


class MaildirError(ValueError):
    """A directory that is not a maildir."""


@dataclass(frozen=True)
class Folder:
    path: Path  # the maildir (holds cur/ and new/)
    name: str  # mailbox path below the import's mailbox: "" for the root, "A/B" for .A.B


def name_time(name: str) -> float | None:
    """Delivery time encoded in a maildir file name ("<unix time>.<unique>.<host>[:2,<info>]"):
    like mox, only when the name has three '.'-separated parts and the first is an integer."""
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0].isdecimal() and parts[0].isascii():
        return float(parts[0])
    return None


def name_info(name: str) -> str:
    """The flag letters after ":2," (empty when there are none)."""
    i = name.rfind(":2,")
    return "" if i < 0 else name[i + 3 :]


def check_maildir(path: Path) -> None:
    for sub in SUBDIRS:
        if (path / sub).is_symlink():
            # A cur/ pointing at /etc would import /etc: never leave the tree being imported.
            raise MaildirError(f"{path / sub}: is a symbolic link, not a maildir directory")
        if not (path / sub).is_dir():
            raise MaildirError(f"{path}: not a maildir: no {sub}/ directory")


def folders(root: Path, recursive: bool) -> list[Folder]:
    """The root maildir and, with ``recursive``, its maildir++ folders (".A.B" -> "A/B"), sorted."""
    check_maildir(root)
    out = [Folder(root, "")]
    if recursive:
        subs = []
        with os.scandir(root) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    name = maildirpp_folder(entry.name)
                    if name is not None:
                        check_maildir(Path(entry.path))
                        subs.append(Folder(Path(entry.path), name))
        out += sorted(subs, key=lambda f: f.name)
    return out


def dovecot_keywords(path: Path) -> tuple[list[str], list[str]]:
    """The folder's dovecot-keywords list and parse errors; no file means no keywords."""
    try:
        text = (path / "dovecot-keywords").read_text("utf-8", "replace")
    except FileNotFoundError:
        return [], []
    return parse_dovecot_keywords(text)


def entries(path: Path) -> Iterator[tuple[str, str]]:
    """(subdir, file name) of the messages in new/ then cur/, in directory order (no sort:
    a 200,000-message folder is listed as it is read)."""
    for sub in SUBDIRS:
        with os.scandir(path / sub) as it:
            for entry in it:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    yield sub, entry.name


def count_entries(path: Path) -> int:
    return sum(1 for _ in entries(path))

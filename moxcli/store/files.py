"""Message and queue file paths (docs/behaviour-notes.md §9.2) and durable file writes.

Files are written to a temporary name in the same directory, synced, then renamed, so a
reader never sees a half-written file. Bulk writers (import) skip the per-file sync and call
:func:`sync_files` once before their store commit.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from moxcli import osdep
from moxcli.osdep import sync_dir

_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
FILES_PER_DIR_SHIFT = 13  # 8192 files per directory


class PathError(ValueError):
    pass


def msg_dir(msg_id: int) -> str:
    """Directory of a message id: base-64 digits of id >> 13, least significant first."""
    if msg_id < 0:
        raise PathError(f"negative message id {msg_id}")
    n = msg_id >> FILES_PER_DIR_SHIFT
    out = _DIGITS[n & 63]
    n >>= 6
    while n:
        out += _DIGITS[n & 63]
        n >>= 6
    return out


def msg_path(msg_id: int) -> str:
    """`<dir>/<id>` relative to the message directory (1 -> a/1, 8192 -> b/8192)."""
    return f"{msg_dir(msg_id)}/{msg_id}"


def parse_msg_path(rel: str) -> int | None:
    """The id of a relative message path if it is one this layout would produce, else None."""
    parts = rel.split("/")
    if len(parts) != 2 or not parts[1].isdigit() or parts[1].startswith("0"):
        return None
    msg_id = int(parts[1])
    return msg_id if msg_dir(msg_id) == parts[0] else None


def check_account_name(name: str) -> str:
    """Account names become directory names: no path tricks, no control characters."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PathError(f"invalid account name {name!r}")
    if any(not c.isprintable() or 0xD800 <= ord(c) <= 0xDFFF for c in name) or len(name.encode()) > 200:
        raise PathError(f"invalid account name {name[:100]!r}")
    return name


def account_dir(data_dir: Path, account: str) -> Path:
    return Path(data_dir) / "accounts" / check_account_name(account)


def message_file(data_dir: Path, account: str, msg_id: int) -> Path:
    return account_dir(data_dir, account) / "msg" / msg_path(msg_id)


def queue_file(data_dir: Path, msg_id: int) -> Path:
    return Path(data_dir) / "queue" / msg_path(msg_id)


def private_dir(path: Path) -> Path:
    """Create a directory and its missing parents, each readable only by us (0700).

    ``mkdir(parents=True)`` would give the parents the umask's mode instead.
    """
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
    return path


def refuse_symlinks(root: Path, path: Path) -> None:
    """OSError(ELOOP) when ``path`` or a directory between it and ``root`` is a symlink: a
    writer must not put files (or move them) wherever a planted link points."""
    p = Path(path)
    while p != root and Path(root) in p.parents:
        if p.is_symlink():
            raise OSError(errno.ELOOP, "a symlink, not followed", str(p))
        p = p.parent


def create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new file ``.<name>.tmp<random>`` in ``directory``, mode 0600, open for writing.

    O_EXCL|O_NOFOLLOW: a name planted in advance (a symlink to a file elsewhere, a file of
    another user) is never opened, so a writer can never be made to overwrite a file outside
    the data directory; a random part makes the name unguessable (tempfile.mkstemp's rule).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | osdep.O_NOFOLLOW | osdep.O_CLOEXEC | osdep.O_BINARY
    for _ in range(100):
        tmp = directory / f".{name}.tmp{os.urandom(6).hex()}"  # secrets.token_hex, without importing secrets
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(directory))


def write_file(path: Path, data: bytes, sync: bool = True) -> None:
    """Write then rename: the final name appears only with complete content."""
    private_dir(path.parent)
    fd, tmp = create_temp(path.parent, path.name)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if sync:
            os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None  # e.g. ENOSPC: name the file
        raise
    os.close(fd)
    os.replace(tmp, path)
    if sync:
        sync_dir(path.parent)


def sync_files(paths: Iterable[Path]) -> None:
    """fsync each file and each distinct parent directory once (one sync before a commit)."""
    dirs = set()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(p.parent)
    for d in dirs:
        sync_dir(d)

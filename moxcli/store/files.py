"""Message and queue file paths (docs/behaviour-notes.md §9.2) and durable file writes.

Files are written to a temporary name in the same directory, synced, then renamed, so a
reader never sees a half-written file. Bulk writers (import) skip the per-file sync and call
:func:`sync_files` once before their store commit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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

    ``mkdir(parents=True)`` would give the parents the umask's mode instead. For directories
    inside a data directory use :func:`ensure_dir`, which also refuses planted symlinks.
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


# Errors of the data directory itself: a job that writes many things stops at the first one
# instead of failing item by item (a planted symlink; a full, over-quota or read-only disk).
STOP_ERRNOS = frozenset({errno.ELOOP, errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def symlink_refused(path: Path | str) -> OSError:
    """The error for a planted symlink (or other non-directory) where a writer needs a
    directory of its own: ELOOP, which the CLI reports in one line, exit 2."""
    return OSError(errno.ELOOP, "a symlink, not followed", str(path))


# A directory below the anchor: opened, never followed (O_NOFOLLOW refuses a symlink as the
# last component; walking level by level makes every level the last one once).
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | osdep.O_NOFOLLOW | osdep.O_CLOEXEC


def _below(root: Path, path: Path) -> tuple[str, ...]:
    """The components of ``path`` below ``root`` (ValueError when it is not below)."""
    return Path(path).relative_to(root).parts


def open_dir(root: Path, path: Path, create: bool = True) -> int:
    """A descriptor of the directory ``path`` (``root`` itself or below it), walked from ``root``
    one level at a time with O_NOFOLLOW, so that no level below ``root`` can be a symlink, not
    even one swapped in during the walk. ``root`` (the data directory) is opened as it is: it
    may be a symlink of the operator's choosing. Missing levels are created 0700 when
    ``create``; a symlink (or a file) at any level raises OSError(ELOOP) naming it.

    POSIX only (``osdep.has_dir_fds()``); :func:`ensure_dir` is the portable entry point.
    """
    parts = _below(root, path)
    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | osdep.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
        private_dir(root)
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | osdep.O_CLOEXEC)
    cur = Path(root)
    try:
        for part in parts:
            cur = cur / part
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(cur)) from None
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as exc:  # ENOSPC, EROFS, EACCES: name the whole path
                    raise OSError(exc.errno, exc.strerror, str(cur)) from None
                nxt = _open_level(fd, part, cur)
            except OSError as exc:
                raise _level_error(fd, part, cur, exc) from None
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_level(fd: int, part: str, cur: Path) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise _level_error(fd, part, cur, exc) from None


def _level_error(fd: int, part: str, cur: Path, exc: OSError) -> OSError:
    """ELOOP (or FreeBSD's EMLINK) from O_NOFOLLOW, or ENOTDIR for a symlink to a file: the
    planted-symlink error; anything else as it was, naming the level."""
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return symlink_refused(cur)
    if exc.errno == errno.ENOTDIR:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                return symlink_refused(cur)
    return OSError(exc.errno, exc.strerror, str(cur))


def ensure_dir(root: Path, path: Path) -> Path:
    """The directory ``path`` inside the data directory ``root``, created 0700 with its missing
    parents; OSError(ELOOP) when any level below ``root`` is a symlink (never followed)."""
    if osdep.has_dir_fds():
        os.close(open_dir(root, path))
        return path
    # No directory descriptors (Windows): each level checked with lstat, then created. A
    # symlink swapped in between check and use is not caught here; Windows needs privileges
    # to make symlinks at all.
    private_dir(root)
    cur = Path(root)
    for part in _below(root, path):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                cur.mkdir(mode=0o700)
            st = os.lstat(cur)
        if not stat.S_ISDIR(st.st_mode):
            raise symlink_refused(cur)
    return path


def refuse_symlinks(root: Path, path: Path) -> None:
    """OSError(ELOOP) when ``path`` or a directory between it and ``root`` is a symlink: a
    writer must not put files (or move them) wherever a planted link points."""
    p = Path(path)
    while p != root and Path(root) in p.parents:
        if p.is_symlink():
            raise symlink_refused(p)
        p = p.parent


_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | osdep.O_NOFOLLOW | osdep.O_CLOEXEC | osdep.O_BINARY


def _temp_name(name: str) -> str:
    return f".{name}.tmp{os.urandom(6).hex()}"  # secrets.token_hex, without importing secrets


def create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new file ``.<name>.tmp<random>`` in ``directory``, mode 0600, open for writing.

    O_EXCL|O_NOFOLLOW: a name planted in advance (a symlink to a file elsewhere, a file of
    another user) is never opened, so a writer can never be made to overwrite a file outside
    the data directory; a random part makes the name unguessable (tempfile.mkstemp's rule).
    """
    for _ in range(100):
        tmp = directory / _temp_name(name)
        try:
            return os.open(tmp, _FILE_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(directory))


def _write_fd(fd: int, data: bytes, sync: bool) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    if sync:
        osdep.fsync(fd)


def write_file(path: Path, data: bytes, sync: bool = True, root: Path | None = None) -> None:
    """Write then rename: the final name appears only with complete content.

    ``root`` is the data directory ``path`` lies in: no directory between them may be a
    symlink (:func:`open_dir`); missing ones are created 0700. Without ``root`` only the
    file's own directory is the anchor (a file the user named, such as ``--config``).
    """
    path = Path(path)
    anchor = path.parent if root is None else Path(root)
    if not osdep.has_dir_fds():
        _write_file_by_path(anchor, path, data, sync)
        return
    dfd = open_dir(anchor, path.parent)
    try:
        for _ in range(100):
            tmp = _temp_name(path.name)
            try:
                fd = os.open(tmp, _FILE_FLAGS, 0o600, dir_fd=dfd)
                break
            except FileExistsError:
                continue
            except OSError as exc:  # ENOSPC, EROFS, EACCES: name the file, not the temp name
                raise OSError(exc.errno, exc.strerror, str(path)) from None
        else:
            raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))
        try:
            _write_fd(fd, data, sync)
        except BaseException as exc:
            os.close(fd)
            os.unlink(tmp, dir_fd=dfd)
            if isinstance(exc, OSError) and exc.filename is None:
                raise OSError(exc.errno, exc.strerror, str(path)) from None  # e.g. ENOSPC: name the file
            raise
        os.close(fd)
        try:
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as exc:
            os.unlink(tmp, dir_fd=dfd)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        if sync:
            osdep.fsync(dfd)
    finally:
        os.close(dfd)


def _write_file_by_path(anchor: Path, path: Path, data: bytes, sync: bool) -> None:
    """write_file where directories cannot be opened (Windows): levels checked by lstat."""
    ensure_dir(anchor, path.parent)
    fd, tmp = create_temp(path.parent, path.name)
    try:
        _write_fd(fd, data, sync)
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


def link_file(src: Path, dst: Path, root: Path) -> None:
    """Hard-link ``src`` as ``dst`` (replacing a leftover ``dst``), both inside ``root``, no
    directory between them and ``root`` followed if it is a symlink."""
    if not osdep.has_dir_fds():
        refuse_symlinks(root, src.parent)
        ensure_dir(root, dst.parent)
        dst.unlink(missing_ok=True)
        os.link(src, dst)
        return
    sfd = open_dir(root, src.parent, create=False)
    try:
        dfd = sfd if dst.parent == src.parent else open_dir(root, dst.parent)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst.name, dir_fd=dfd)
            try:
                os.link(src.name, dst.name, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(dst)) from None
        finally:
            if dfd != sfd:
                os.close(dfd)
    finally:
        os.close(sfd)


def move_file(root: Path, src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (its directory created 0700), both inside ``root``, without
    following a symlink at any level below ``root``: a file is never moved out of it."""
    if not osdep.has_dir_fds():
        refuse_symlinks(root, src.parent)
        ensure_dir(root, dst.parent)
        os.rename(src, dst)
        return
    sfd = open_dir(root, src.parent, create=False)
    try:
        dfd = open_dir(root, dst.parent)
        try:
            os.rename(src.name, dst.name, src_dir_fd=sfd, dst_dir_fd=dfd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(src)) from None
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def remove_empty_dir(root: Path, path: Path) -> bool:
    """Remove the directory ``path`` inside ``root`` if it is empty; False when it is not (or is
    gone). Its parent is reached without following a symlink, so a cleanup never removes a
    directory elsewhere."""
    if not osdep.has_dir_fds():
        refuse_symlinks(root, path)
        try:
            path.rmdir()
        except OSError:
            return False
        return True
    try:
        dfd = open_dir(root, path.parent, create=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        os.rmdir(path.name, dir_fd=dfd)
    except OSError:
        return False
    finally:
        os.close(dfd)
    return True


def unlink_files(root: Path, paths: Iterable[Path]) -> None:
    """Remove files inside ``root`` (missing ones are fine), each directory opened once without
    following a symlink: a planted link must not make a cleanup delete files elsewhere
    (OSError(ELOOP) for such a directory)."""
    by_dir: dict[Path, list[str]] = {}
    for p in paths:
        by_dir.setdefault(Path(p).parent, []).append(Path(p).name)
    for d, names in by_dir.items():
        if not osdep.has_dir_fds():
            refuse_symlinks(root, d)
            for n in names:
                (d / n).unlink(missing_ok=True)
            continue
        try:
            dfd = open_dir(root, d, create=False)
        except FileNotFoundError:
            continue
        try:
            for n in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(n, dir_fd=dfd)
        finally:
            os.close(dfd)


def sync_files(paths: Iterable[Path]) -> None:
    """fsync each file and each distinct parent directory once (one sync before a commit)."""
    dirs = set()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            osdep.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(p.parent)
    for d in dirs:
        sync_dir(d)

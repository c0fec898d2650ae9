"""What differs between Linux/Unix and Windows in moxcli's file handling, in one place.

mox's Windows port taught: an open file cannot be renamed or removed (close first; the test
suite's tests/open_files_guard.py enforces that on Linux), a directory cannot be opened to
fsync it, locks are not flock, and there is no fork. Every caller goes through these
functions instead of testing the platform itself, and each branch is tested by simulating
the platform (tests/test_osdep.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_WINDOWS_LOCK_OFFSET = 1 << 30

# open(2) flags that only some systems have; 0 where missing (Windows has no O_NOFOLLOW,
# O_NONBLOCK or O_CLOEXEC, and needs O_BINARY so that bytes stay bytes).
O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
O_BINARY: int = getattr(os, "O_BINARY", 0)


# Set while deferred_syncs() is in force: fsync() is then a no-op.
_syncs_deferred = False


def fsync(fd: int) -> None:
    """os.fsync of a file or directory moxcli wrote, unless deferred_syncs() is in force."""
    if not _syncs_deferred:
        os.fsync(fd)


def syncs_deferred() -> bool:
    """Whether deferred_syncs() is in force (the store then commits without syncing too)."""
    return _syncs_deferred


@contextmanager
def deferred_syncs(path: Path) -> Iterator[None]:
    """Writes skip their fsyncs (and store commits theirs); one sync of the file system
    holding ``path`` at the end, when the block succeeded.

    Only for a directory nothing else uses before the block ends (gentestdata's new data
    directory): a killed process leaves what it wrote as complete as with the syncs (the
    page cache keeps it; files are still written to a temporary name and renamed, commits
    still commit); only a system crash before the end can lose writes, of a directory that
    was not finished anyway. Where there is no syncfs(2), os.sync(); on Windows nothing."""
    global _syncs_deferred
    _syncs_deferred = True
    try:
        yield
    finally:
        _syncs_deferred = False
    if not syncfs(path) and hasattr(os, "sync"):
        os.sync()


def can_sync_dir() -> bool:
    """Directories can be opened and fsync'd (POSIX); on Windows a rename is durable without."""
    return os.name == "posix" and hasattr(os, "O_DIRECTORY")


def sync_dir(path: Path) -> None:
    """Make a create or rename in ``path`` durable; a no-op where directories cannot be synced."""
    if not can_sync_dir():
        return
    if _syncs_deferred:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> bool:
    """One syncfs(2) of the file system holding ``path`` (Linux); False where there is none,
    and the caller syncs file by file instead."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    fn = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if fn is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


def has_dir_fds() -> bool:
    """Directories can be opened and used as anchors (``dir_fd=``): POSIX; Windows has neither,
    and callers walk by path there, checking each level with lstat."""
    return hasattr(os, "O_DIRECTORY") and os.open in os.supports_dir_fd and os.link in os.supports_dir_fd


def fchmod(fd: int, path: Path, mode: int) -> None:
    """Set a new file's mode by descriptor where possible (no window for a swapped name), else
    by path (Windows before Python 3.13 has no fchmod)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(path, mode)


def can_fork() -> bool:
    """A process can fork (the importer's file writer); Windows has no fork."""
    return hasattr(os, "fork") and os.name == "posix"


def die_with_parent() -> None:
    """In a forked child: be killed when the parent dies (Linux PR_SET_PDEATHSIG); elsewhere
    nothing, and the child notices the closed pipe instead."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def grow_pipe(fd: int, size: int) -> None:
    """Ask for a larger pipe buffer (Linux F_SETPIPE_SZ): fewer wake-ups; ignored elsewhere."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        pass


def lock_nonblocking(fd: int) -> None:
    """Take an exclusive lock on the open file ``fd`` at once, or raise BlockingIOError.

    POSIX: flock, dropped by the kernel when the process dies. Windows: msvcrt.locking of one
    byte far past the end (Windows locks are mandatory: the pid written at the start stays
    readable for the "lock held" message), also released when the process exits.
    """
    if os.name == "nt":
        import msvcrt

        try:
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError as exc:
            raise BlockingIOError(exc.errno, "locked by another process") from None
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

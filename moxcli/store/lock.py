"""Job locks: jobs that must not overlap (report senders, import into one account, backup).

A lock (moxcli.osdep.lock_nonblocking: flock, or msvcrt.locking on Windows) on
`<data>/locks/<name>.lock`; the system drops it when the process dies, so a killed job never
leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moxcli.errors import LockHeld
from moxcli.osdep import O_CLOEXEC, O_NOFOLLOW, lock_nonblocking


@contextmanager
def job_lock(data_dir: Path, name: str) -> Iterator[Path]:
    """Hold the named lock for the block; raise LockHeld at once if another process has it."""
    from moxcli import osdep
    from moxcli.store.files import ensure_dir, open_dir, symlink_refused

    locks = Path(data_dir) / "locks"
    path = locks / f"{name.replace('/', '_')}.lock"
    # Never through a planted symlink, neither the lock file (its target would be truncated and
    # get our pid) nor locks/ itself: a symlink there is refused in one line naming it, exit 2.
    flags = os.O_RDWR | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC
    dfd = open_dir(Path(data_dir), locks) if osdep.has_dir_fds() else None
    if dfd is None:
        ensure_dir(Path(data_dir), locks)  # no dir fds (Windows): levels checked by lstat
    try:
        fd = os.open(path if dfd is None else path.name, flags, 0o600, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's O_NOFOLLOW answer
            raise symlink_refused(path) from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        if dfd is not None:
            os.close(dfd)
    try:
        try:
            lock_nonblocking(fd)
        except BlockingIOError:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise LockHeld(
                f"{name}: another moxcli process (pid {holder}) holds the lock {path}; try again later"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # disk full, quota: the pid is only a hint for the "lock held" message; the flock counts
        yield path
    finally:
        os.close(fd)

"""A clean stop on SIGTERM and SIGINT for jobs that talk to the network (`queue run`, the
report senders).

The CLI wraps such a job in :func:`handling`. The first signal raises :class:`Interrupted`
at once where that is safe (network I/O, composing reports in a write transaction that then
aborts), and only sets a flag inside :func:`shielded` blocks: the commits before and after
a delivery attempt, which must not be cut in half. Code in a shielded block checks
:func:`requested` at its own safe points (the queue run checks it between attempts) and
calls :func:`unshielded` around the parts that may be cut short (the SMTP session), so a
stalling server cannot hold the process. A second signal ends the process at once (exit 3):
the store is crash-safe, and the kernel drops the job lock with the process.

Without :func:`handling` (library use, tests) every function here is a no-op.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from moxcli.errors import EXIT_TEMPORARY

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The job was stopped by a signal; what was in progress is recorded, run it again later.

    A BaseException like KeyboardInterrupt, so that handlers for ordinary errors (a report
    domain that failed, a message that failed) do not swallow it; the CLI prints it as one
    line and exits 3 (temporary: run again).
    """

    exit_code = EXIT_TEMPORARY

    def __init__(self, signame: str, detail: str = "") -> None:
        self.signame = signame
        self.partial: object = None  # what the interrupted step got done, for its caller to record
        super().__init__(f"interrupted by {signame}" + (f": {detail}" if detail else ""))


class _State:
    def __init__(self) -> None:
        self.active = False
        self.signame = ""
        self.at = 0.0  # time.monotonic() of the first signal
        self.shield = 0  # > 0: only set the flag; the code checks requested() itself


_state = _State()


def requested() -> bool:
    """True once a stop signal arrived (under :func:`handling`)."""
    return bool(_state.signame)


def signal_name() -> str:
    return _state.signame


def since() -> float:
    """Seconds since the stop signal (0 when none)."""
    return time.monotonic() - _state.at if _state.signame else 0.0


def check(detail: str = "") -> None:
    """Raise :class:`Interrupted` if a stop was requested (a safe point in shielded code)."""
    if _state.signame:
        raise Interrupted(_state.signame, detail)


def _handler(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _state.signame:
        # Second signal: no more politeness. The store is crash-safe and flock dies with us.
        os.write(2, f"moxcli: {name} again: exiting at once\n".encode())
        os._exit(EXIT_TEMPORARY)
    _state.signame = name
    _state.at = time.monotonic()
    os.write(2, f"moxcli: {name}: stopping (a second signal exits at once)\n".encode())
    if _state.shield == 0:
        raise Interrupted(name)


@contextmanager
def handling() -> Iterator[None]:
    """Install the SIGTERM/SIGINT handlers for the block (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread() or _state.active:
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _state.active, _state.signame, _state.shield = True, "", 0
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _state.active, _state.shield = False, 0
        _state.signame = ""


@contextmanager
def shielded() -> Iterator[None]:
    """A signal in this block only sets the flag (for commits that must not be cut in half)."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1


@contextmanager
def unshielded() -> Iterator[None]:
    """Inside a shielded block: let a signal raise :class:`Interrupted` here (network I/O).

    A stop requested before the block raises at once.
    """
    if not _state.active:
        yield
        return
    saved = _state.shield
    _state.shield = 0
    try:
        check()
        yield
    finally:
        _state.shield = saved

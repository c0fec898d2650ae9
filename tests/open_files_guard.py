"""pytest plugin: moxcli never renames, replaces or removes a file it holds open.

On Windows an open file cannot be renamed or removed (mox's Windows port learned it the hard
way); Linux allows it, so a violation would go unnoticed here. For the whole suite this plugin
wraps os.rename, os.replace, os.remove, os.unlink and shutil.move: when the call comes from
moxcli's own code (the first caller outside the standard library is in moxcli/) and a path
it names (source or destination) is open in this process (/proc/self/fd), the test that made
the call fails, naming the operation, the path and the moxcli line.

Only code running in the test process is seen (library calls and CliRunner commands), not
CLI subprocesses.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

MOXCLI = str(Path(__file__).resolve().parent.parent / "moxcli") + os.sep
_STDLIB = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
_PROC_FD = Path("/proc/self/fd")
_SELF = os.path.realpath(__file__)

violations: list[str] = []


def _open_paths() -> set[str]:
    out = set()
    try:
        fds = os.listdir(_PROC_FD)
    except OSError:
        return out
    for fd in fds:
        try:
            out.add(os.readlink(_PROC_FD / fd))
        except OSError:
            continue
    return out


def _moxcli_caller() -> str | None:
    """``file:line`` of the first caller outside the standard library, when it is moxcli's."""
    frame = sys._getframe(2)
    while frame is not None:
        name = os.path.realpath(frame.f_code.co_filename)
        if name == _SELF or name.startswith(_STDLIB):
            frame = frame.f_back
            continue
        return f"{name[len(MOXCLI) :]}:{frame.f_lineno}" if name.startswith(MOXCLI) else None
    return None


def _absolute(path: Any, dir_fd: int | None) -> str | None:
    try:
        p = os.fsdecode(path)
    except TypeError:
        return None
    if dir_fd is not None and not os.path.isabs(p):
        try:
            p = os.path.join(os.readlink(_PROC_FD / str(dir_fd)), p)
        except OSError:
            return None
    return os.path.realpath(p)


def _check(op: str, paths: list[tuple[Any, int | None]]) -> None:
    where = _moxcli_caller()
    if where is None:
        return
    open_now = _open_paths()
    for path, dir_fd in paths:
        p = _absolute(path, dir_fd)
        if p is not None and p in open_now:
            violations.append(f"moxcli/{where}: {op} of {p} while this process holds it open")


def _wrap_two(op: str, real: Any) -> Any:
    def wrapper(src: Any, dst: Any, *args: Any, **kw: Any) -> Any:
        _check(op, [(src, kw.get("src_dir_fd")), (dst, kw.get("dst_dir_fd"))])
        return real(src, dst, *args, **kw)

    return wrapper


def _wrap_one(op: str, real: Any) -> Any:
    def wrapper(path: Any, *args: Any, **kw: Any) -> Any:
        _check(op, [(path, kw.get("dir_fd"))])
        return real(path, *args, **kw)

    return wrapper


def pytest_configure(config: pytest.Config) -> None:
    if not _PROC_FD.is_dir():
        return
    os.rename = _wrap_two("rename", os.rename)
    os.replace = _wrap_two("replace", os.replace)
    os.remove = _wrap_one("remove", os.remove)
    os.unlink = _wrap_one("unlink", os.unlink)
    shutil.move = _wrap_two("shutil.move", shutil.move)


@pytest.fixture(autouse=True)
def _no_rename_of_open_files():
    violations.clear()
    yield
    found = list(violations)
    violations.clear()
    if found:
        pytest.fail("open file renamed or removed (fails on Windows):\n" + "\n".join(found), pytrace=False)

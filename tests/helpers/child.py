"""Run moxcli (or a Python snippet) in a child process whose address space is limited, so a
test of a hostile peer shows the command ends cleanly in bounded memory (issue 18)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The store maps 1 GiB of address space; a few hundred MB on top is all a command may take.
ADDRESS_SPACE = (1 << 30) + (384 << 20)


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m moxcli ARGS`` (or ``python -c ...`` when ARGS start with ``-c``) under RLIMIT_AS."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "moxcli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=_limit, timeout=timeout)

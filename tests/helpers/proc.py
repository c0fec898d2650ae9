"""moxcli as a child process, and the messages the stop tests send (no tests here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BODY = b"From: <a@moxcli.test>\r\nSubject: stop test\r\n\r\nhello\r\n"

# Larger than the loopback socket buffers, so that the client blocks in the middle of the data.
BIG = b"From: <a@moxcli.test>\r\nSubject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 80_000


# For a test that sends a second signal while the first one's stop waits for the server (the
# QUIT grace, 1 s by default): so long that a loaded machine cannot make the test miss it. The
# stalling stub never answers, so only the second signal ends such a run before the test's
# own timeout.
WIDE_QUIT_GRACE = {"MOXCLI_TEST_QUIT_GRACE": "300"}


def spawn_moxcli(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m moxcli --data DATA ARGS` from this checkout, output piped; ``env`` is added
    to the environment."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "moxcli", "--data", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def log_since(path: str, offset: int) -> list[str]:
    """The lines a log file gained after ``offset`` (its size when a test began)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace").splitlines()


# A small parent runs the CLI, so the child's ru_maxrss is not the forked test process's.
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run([sys.executable, '-m', 'moxcli'] + sys.argv[1:], capture_output=True)\n"
    "sys.stderr.buffer.write(r.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def moxcli_peak_rss(*args: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """`moxcli ARGS` in a child of a small parent: its stderr and exit code, and on stdout
    the child's peak RSS in KiB."""
    return subprocess.run([sys.executable, "-c", _PEAK_RSS, *args], capture_output=True, timeout=timeout)


def import_probe(*heavy: str) -> str:
    """A `python -c` script that runs moxcli with its own arguments (`sys.argv[1:]`) and then
    prints, as its last stderr line, which of the ``heavy`` modules the call imported."""
    return (
        "import sys\n"
        'sys.argv = ["moxcli", *sys.argv[1:]]\n'
        "from moxcli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {heavy!r}\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )

"""Measuring one command in its own child process: wall time, CPU time and peak RSS.

Peak RSS is the measured process's own ``ru_maxrss``: the kernel's high-water mark of that
process alone (not sampled, so no peak is missed; not the cumulative RUSAGE_CHILDREN figure,
which would carry the largest earlier phase into later ones). It counts every resident page,
including file pages mapped from the store by LMDB, so it is an upper bound of what the
process needs. Each phase of a benchmark runs as its own child so each gets its own figure.

The command is started by GNU time (``/usr/bin/time``, Debian package ``time``), which
reports its child's ru_maxrss: a child forked straight from this Python process would count
the pages it shared with us before exec (~15 MB here) as its own. Without GNU time the figure
comes from wait4() on our own child, with that floor (the output says so).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measured:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    maxrss_mb: float  # the child's peak resident set (ru_maxrss), MB
    returncode: int
    stdout: bytes
    stderr: bytes

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            raise SystemExit(f"{what} failed (exit {self.returncode}): {self.stderr.decode(errors='replace')[-800:]}")
        return self


GNU_TIME = "/usr/bin/time"


def run(cmd: list[str], stdout_file: Path | None = None, cwd: Path = ROOT, env: dict | None = None) -> Measured:
    """Run ``cmd`` and measure it; stdout kept in memory, or written to ``stdout_file`` when
    it may be large (the caller then reads the counts from the file)."""
    import tempfile

    out = open(stdout_file, "wb") if stdout_file else subprocess.PIPE  # noqa: SIM115 (closed below)
    timed = os.access(GNU_TIME, os.X_OK)
    report = tempfile.NamedTemporaryFile(prefix="bench-time-", delete=False) if timed else None  # noqa: SIM115
    if report is not None:
        report.close()
        cmd = [GNU_TIME, "-f", "%M %U %S", "-o", report.name, "--", *cmd]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, cwd=cwd, env=env)
    stdout, stderr = b"", b""
    try:
        if stdout_file is None:
            # communicate() reads both pipes; the exit status is then collected by wait4 below.
            stdout, stderr = _drain(p)
        else:
            assert p.stderr is not None
            stderr = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout_file:
            out.close()  # type: ignore[union-attr]
    cpu, maxrss_kb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    if report is not None:
        fields = Path(report.name).read_text().split("\n")[-2].split()  # after "Command exited ..." if any
        os.unlink(report.name)
        maxrss_kb, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
    return Measured(wall, cpu, maxrss_kb / 1024, p.returncode, stdout, stderr)


def _drain(p: subprocess.Popen) -> tuple[bytes, bytes]:
    """Both pipes read to the end without waiting for the process (wait4 does that)."""
    import threading

    chunks: dict[str, bytes] = {}

    def read(name: str, f) -> None:
        chunks[name] = f.read()

    t = threading.Thread(target=read, args=("err", p.stderr))
    t.start()
    read("out", p.stdout)
    t.join()
    return chunks["out"], chunks["err"]


def load_note() -> str:
    """The 1-minute load average and the CPU count, to print beside every figure."""
    how = "" if os.access(GNU_TIME, os.X_OK) else "; RSS via wait4, includes ~15 MB shared before exec"
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs{how}"

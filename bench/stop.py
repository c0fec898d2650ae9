#!/usr/bin/env python3
"""How long `moxcli queue run` takes to exit after SIGTERM/SIGINT while a server stalls.

    .venv/bin/python bench/stop.py [--trials 3]

Issue 11 asks for exit code 3 within 5 s of the signal even when the remote server stalls.
Tests do not assert timings (docs/development.md), so the figure is measured here: for each
stall of the small SMTP server of the tests (`tests/smtpstub.py`: no greeting, no reply to
MAIL, stops reading in the middle of the data, no reply after the final dot) a real
`queue run` child is signalled once the server reached the stall, and the time from the
signal to the child's exit is printed (min/max over the trials), with its exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from smtpstub import NORMAL, STALL_AFTER_DOT, STALL_BANNER, STALL_MAIL, STALL_MID_DATA, stub  # noqa: E402

BODY = b"From: <a@moxcli.test>\r\nSubject: stop bench\r\n\r\nhello\r\n"
# Larger than the loopback socket buffers: the client blocks in the middle of the data.
BIG = b"From: <a@moxcli.test>\r\nSubject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 80_000
STALLS = [
    ("no greeting", STALL_BANNER, "connected", BODY),
    ("no MAIL reply", STALL_MAIL, "mail", BODY),
    ("stops reading mid-data", STALL_MID_DATA, "mid-data", BIG),
    ("no reply after the dot", STALL_AFTER_DOT, "after-dot", BODY),
]


def moxcli(data: Path, *args: str, stdin: bytes | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "moxcli", "--data", str(data), *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if wait:
        return subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def one(mode: str, event: str, body: bytes, sig: signal.Signals) -> tuple[float, int]:
    """Seconds from the signal to the exit of a `queue run` stuck at the stall, and its exit code."""
    with tempfile.TemporaryDirectory() as tmp, stub([mode, NORMAL]) as srv:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        (data / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n')
        moxcli(data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", stdin=body)
        p = moxcli(data, "queue", "run", wait=False)
        try:
            if not srv.reached[event].wait(120):
                raise SystemExit(f"queue run never reached the stall ({event})")
            t0 = time.monotonic()
            p.send_signal(sig)
            code = p.wait(timeout=120)
            return time.monotonic() - t0, code
        finally:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    for name, mode, event, body in STALLS:
        for sig in (signal.SIGTERM, signal.SIGINT):
            runs = [one(mode, event, body, sig) for _ in range(args.trials)]
            secs = [s for s, _ in runs]
            codes = sorted({c for _, c in runs})
            print(
                f"  {name:24} {sig.name:7} exit {','.join(map(str, codes))}: "
                f"{min(secs):.2f}-{max(secs):.2f} s after the signal ({args.trials} trials)"
            )


if __name__ == "__main__":
    main()

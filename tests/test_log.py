"""moxcli.log: logfmt lines at the level setup() sets; the logging module is imported only
when a line is printed (start-up, issue 13), with the same lines as when it was imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parent.parent)

SCRIPT = """
import sys
{pre}
from moxcli import log
{setup}
lg = log.get("test")
lg.debug("d", n=1)
lg.info("i", n=2)
print("loaded", "logging" in sys.modules, file=sys.stderr)
print("enabled", lg.enabled("debug"), lg.enabled("info"), lg.enabled("error"), file=sys.stderr)
lg.warn("w w", path="/x y")
lg.error("e", why='a"b')
print("loaded", "logging" in sys.modules, file=sys.stderr)
"""


def _run(pre: str, setup: str) -> list[str]:
    code = SCRIPT.format(pre=pre, setup=setup)
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env={"PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr
    return r.stderr.splitlines()


@pytest.mark.parametrize(
    ("setup", "want"),
    [
        (
            'log.setup("warn")',
            [
                "loaded False",
                "enabled False False True",
                'l=warn m="w w" pkg=test path="/x y"',
                'l=error m=e pkg=test why="a\\"b"',
            ],
        ),
        (
            'log.setup("info")',
            [
                "l=info m=i pkg=test n=2",
                "loaded True",
                "enabled False True True",
                'l=warn m="w w" pkg=test path="/x y"',
                'l=error m=e pkg=test why="a\\"b"',
            ],
        ),
        (
            'log.setup("error")',
            ["loaded False", "enabled False False True", 'l=error m=e pkg=test why="a\\"b"'],
        ),
        ("", ["loaded False", "enabled False False True", "w w", "e"]),  # no setup: logging's last resort
    ],
    ids=["warn", "info", "error", "no-setup"],
)
def test_lines_are_the_same_whether_logging_was_loaded_first_or_not(setup, want):
    lazy = _run("", setup)
    assert lazy == [*want, "loaded True"]
    first = _run("import logging", setup)  # as under pytest, or when a library imported it
    assert [x for x in first if not x.startswith("loaded")] == [x for x in want if not x.startswith("loaded")]

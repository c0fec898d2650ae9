"""The `moxcli` executable: answers `--version` before importing click (a few ms instead of
~30), everything else goes to the click command in moxcli.cli."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from moxcli import __version__

        sys.stdout.write(f"moxcli, version {__version__}\n")
        return
    from moxcli.cli import main as cli_main

    cli_main()

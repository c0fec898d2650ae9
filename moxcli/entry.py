"""The `moxcli` executable: a few calls are answered before importing click (moxcli.cli.fast:
`--version`, the root help, `check tlsrpt --record TEXT`); everything else goes to the click
command in moxcli.cli."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # before any other import: the call made most in scripts
        from moxcli import __version__

        sys.stdout.write(f"moxcli, version {__version__}\n")
        return
    from moxcli.cli.fast import run

    code = run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from moxcli.cli.root import main as cli_main

    cli_main()

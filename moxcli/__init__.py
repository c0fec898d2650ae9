"""moxcli: a command-line toolkit for mail-server operators.

The library is usable without the CLI: every command in :mod:`moxcli.cli` is a thin
wrapper around a function of a feature package (``moxcli.tlsrpt``, ``moxcli.mtasts``, ...).
"""

__version__ = "0.1.0"

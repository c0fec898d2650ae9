"""The registry's leaf commands, walked once for every test that checks all of them."""

from __future__ import annotations

import click


def leaf_commands(include_hidden: bool = True) -> dict[str, click.Command]:
    """Every leaf command of `moxcli` by its full name ("queue run"); hidden commands (and
    the subtrees of hidden groups) only with ``include_hidden``."""
    from moxcli.cli import cli

    found: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: list[str], ctx: click.Context) -> None:
        if not isinstance(cmd, click.Group):
            found[" ".join(path)] = cmd
            return
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and (include_hidden or not sub.hidden):
                walk(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx))

    walk(cli, [], click.Context(cli, info_name="moxcli"))
    return found

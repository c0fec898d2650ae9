#!/usr/bin/env python3
"""Generate man pages (man/) and shell completions (completions/) from the click commands.

Run after changing a command: `python scripts/gen-docs.py`. tests/test_docs.py fails when
the committed files differ from what this writes.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moxcli import __version__  # noqa: E402
from moxcli.cli import cli  # noqa: E402

SHELLS = {"bash": "moxcli.bash", "zsh": "_moxcli", "fish": "moxcli.fish"}


def _roff(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = line.replace("\\", "\\e").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def _walk(cmd: click.Command, path: list[str], ctx: click.Context):
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx))


def man_page(path: list[str], cmd: click.Command, ctx: click.Context) -> str:
    title = "-".join(path)
    help_text = inspect.cleandoc(cmd.help or "").replace("\b\n", "")
    lines = [
        f'.TH "{title.upper()}" "1" "" "moxcli {__version__}" "moxcli manual"',
        ".SH NAME",
        f"{_roff(title)} \\- {_roff(cmd.get_short_help_str(limit=200))}",
        ".SH SYNOPSIS",
        f".B {_roff(' '.join(path))}",
        _roff(" ".join(cmd.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
    ]
    for para in help_text.strip().split("\n\n"):
        lines += [".PP", ".nf" if para.startswith(("Example", "  ")) or "\n  " in para else ".fi", _roff(para), ".fi"]
    opts = [p for p in cmd.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    if opts:
        lines.append(".SH OPTIONS")
        for p in opts:
            record = p.get_help_record(ctx)
            if record:
                lines += [".TP", f".B {_roff(record[0])}", _roff(record[1])]
    if isinstance(cmd, click.Group):
        lines.append(".SH COMMANDS")
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                lines += [
                    ".TP",
                    f".B {_roff(name)}",
                    _roff(sub.get_short_help_str(limit=200)) + f"  See \\fB{title}-{name}\\fR(1).",
                ]
    lines += [
        ".SH EXIT STATUS",
        "0 ok, 1 what was checked is wrong or failed, 2 usage or configuration error, 3 temporary failure.",
        ".SH SEE ALSO",
        ".BR moxcli (1)",
    ]
    return "\n".join(lines) + "\n"


def generate(out_root: Path) -> dict[Path, str]:
    files: dict[Path, str] = {}
    root_ctx = click.Context(cli, info_name="moxcli", **cli.context_settings)
    for path, cmd, ctx in _walk(cli, ["moxcli"], root_ctx):
        files[out_root / "man" / f"{'-'.join(path)}.1"] = man_page(path, cmd, ctx)
    from click.shell_completion import get_completion_class

    for shell, name in SHELLS.items():
        comp = get_completion_class(shell)(cli, {}, "moxcli", "_MOXCLI_COMPLETE")
        files[out_root / "completions" / name] = comp.source()
    return files


def main() -> None:
    files = generate(ROOT)
    for d in ("man", "completions"):
        for old in (ROOT / d).glob("*"):
            if old not in files:
                old.unlink()
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files")


if __name__ == "__main__":
    main()

"""The `moxcli` root command: a click group whose subcommands are imported only when used.

`moxcli --help` reads the short help texts of the registry (moxcli.cli.COMMANDS) and imports
no command module, so it stays fast (no dnspython, cryptography or rich at start-up).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import click

from moxcli import __version__
from moxcli.cli import COMMANDS
from moxcli.cli.failure import MAX_ERROR_LINE as MAX_ERROR_LINE  # moxcli.cli.MAX_ERROR_LINE
from moxcli.cli.failure import print_error, reported
from moxcli.errors import EXIT_USAGE
from moxcli.stop import Interrupted


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs or asks for its own help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(cmd_name):
            return None
        module = importlib.import_module(entry[0])
        return getattr(module, entry[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except BaseException as exc:
            failed = not isinstance(exc, (click.exceptions.Exit, SystemExit)) or bool(
                getattr(exc, "exit_code", getattr(exc, "code", 0))
            )
            remove = getattr(ctx.obj, "remove_created_dir", None)
            if failed and remove is not None:
                remove()
            raise

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Exception, KeyboardInterrupt, Interrupted) as exc:
            how = reported(exc)
            if how is None:
                raise
            code, message, exit_code = how
            if isinstance(exc, BrokenPipeError):
                ctx.exit(0)
            if isinstance(exc, Interrupted):
                _fail(ctx, code, message, exit_code, exit_now=False)
                # Everything is recorded, the store closed and the locks released by now; exit
                # without waiting for worker threads still in a DNS lookup (they hold nothing).
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(exit_code)
            _fail(ctx, code, message, exit_code)  # raises click's Exit

    def main(self, args: Any = None, prog_name: str | None = None, *a: Any, **kw: Any) -> Any:
        """Click's usage errors as the documented one line (`moxcli: <command>: <why>`), exit 2.

        Click prints a three-line block (usage, hint, error) otherwise; with --json the error
        is also a JSON object on stdout.
        """
        from moxcli.cli import output

        standalone = kw.pop("standalone_mode", True)
        output.set_json_mode(False, sys.argv[1:] if args is None else args)
        try:
            # click's own arguments passed through unchanged; its overloads cannot type *a
            rv = super().main(args, prog_name, *a, standalone_mode=False, **kw)  # type: ignore[call-overload]
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help(), err=True)
            rv = EXIT_USAGE
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""
            msg = exc.format_message()
            msg = msg[:1].lower() + msg[1:].rstrip(".")
            hint = f" (see 'moxcli {where} --help')" if where else " (see 'moxcli --help')"
            _fail(None, "usage", f"{where + ': ' if where else ''}{msg}{hint}", exc.exit_code, exit_now=False)
            rv = exc.exit_code
        except click.exceptions.Abort:
            _fail(None, "interrupted", "aborted", 1, exit_now=False)
            rv = 1
        if not standalone:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(ctx: click.Context | None, code: str, message: str, exit_code: int, exit_now: bool = True) -> None:
    """One line on stderr; with --json also `{"error": {"code", "message"}}` on stdout (docs/json.md)."""
    print_error(code, message)
    if exit_now and ctx is not None:
        ctx.exit(exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MOXCLI_DATA",
    help="Data directory [env MOXCLI_DATA; default $XDG_DATA_HOME/moxcli].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MOXCLI_CONFIG",
    help="Config file [env MOXCLI_CONFIG; default <data>/moxcli.toml].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warn", "error"]),
    default="warn",
    show_default=True,
    help="Log lines (logfmt) on stderr at this level and above.",
)
@click.version_option(__version__, prog_name="moxcli")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, config_file: Path | None, log_level: str) -> None:
    """moxcli: TLS posture, delivery with TLS reporting, DMARC and TLS reports, and
    data tools for mail-server operators.

    Exit codes: 0 ok, 1 what was checked is wrong or failed, 2 usage or configuration
    error, 3 temporary failure (DNS, network, a lock held by another run).

    \b
    Examples:
      moxcli check tlsrpt example.com
      moxcli check domain --json example.com example.net
      moxcli --data /var/lib/moxcli send-tlsreports --dry-run
    """
    from moxcli import log
    from moxcli.context import AppContext, default_data_dir

    log.setup(log_level)
    ctx.obj = AppContext(data_dir=data_dir or default_data_dir(), config_file=config_file)


def main() -> None:
    try:
        cli.main(prog_name="moxcli")
    except KeyboardInterrupt:
        click.echo("moxcli: interrupted", err=True)
        sys.exit(130)

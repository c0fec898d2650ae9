"""The CLI frame: lazy command loading, global options, exit codes, one-line errors."""

import inspect
import subprocess
import sys

from moxcli.cli import COMMANDS, LazyGroup, cli


def test_help_lists_commands_without_importing_heavy_modules():
    code = (
        "import sys\nfrom moxcli.cli import main\nsys.argv=['moxcli','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('dns.resolver','cryptography','rich','rich.progress','lmdb','msgpack') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in r.stdout
    assert "init" in r.stdout and "Commands:" in r.stdout


def test_registry_help_matches_command_docstrings():
    ctx = cli.make_context("moxcli", ["--help"], resilient_parsing=True)
    for name in LazyGroup().list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        first = inspect.cleandoc(cmd.help or "").splitlines()[0]
        assert first == COMMANDS[name][2], name


def test_every_command_help_has_example(runner):
    ctx = cli.make_context("moxcli", ["--help"], resilient_parsing=True)

    def walk(cmd, path):
        yield path, cmd
        if hasattr(cmd, "commands") or hasattr(cmd, "list_commands"):
            for n in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, n), [*path, n])

    for path, cmd in walk(cli, []):
        if not path:
            continue
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, path
        if not hasattr(cmd, "list_commands"):
            assert "Example" in r.output, f"moxcli {' '.join(path)} --help has no example"


def test_version(runner):
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and "moxcli, version" in r.output


def test_unknown_command_is_usage_error(runner):
    r = runner.invoke(cli, ["nonsense"])
    assert r.exit_code == 2


def test_user_error_is_one_line_on_stderr(runner, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("hostname = 1\n")
    r = runner.invoke(cli, ["--data", str(tmp_path / "d"), "--config", str(cfg), "dns", "records"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == f"moxcli: {cfg}: hostname: expected string, got integer 1\n"


def test_data_dir_from_environment(runner, tmp_path):
    d = tmp_path / "envdata"
    r = runner.invoke(cli, ["init", "example.org", "--hostname", "mail.example.org"], env={"MOXCLI_DATA": str(d)})
    assert r.exit_code == 0, r.output
    assert (d / "moxcli.toml").exists()


def test_default_data_dir_follows_xdg(runner, tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "MOXCLI_DATA": ""}
    r = runner.invoke(cli, ["init", "example.org", "--hostname", "mail.example.org"], env=env)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "xdg" / "moxcli" / "moxcli.toml").exists()


def test_python_dash_m_entry_point(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "moxcli", "--data", str(tmp_path), "dns", "records"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.startswith("moxcli: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def test_version_and_record_lint_stay_light():
    """--version imports no click; `check tlsrpt --record` no dnspython, rich or lmdb (issue 13)."""
    code = (
        "import sys\nfrom moxcli.entry import main\nsys.argv=['moxcli','--version']\nmain()\n"
        "print('CLICK', 'click' in sys.modules)\n"
        "sys.argv=['moxcli','check','tlsrpt','--record','v=TLSRPTv1; rua=mailto:a@example.org']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('dns', 'dns.resolver', 'rich', 'lmdb', 'msgpack', 'cryptography')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.startswith("moxcli, version ")
    assert "CLICK False" in r.stdout
    assert "HEAVY []" in r.stdout, r.stdout

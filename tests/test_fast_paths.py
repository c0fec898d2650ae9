"""The calls answered without click (moxcli.cli.fast, moxcli.entry) print exactly what the
click command prints, exit the same, and really load no click (issue 13, start-up)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.proc import import_probe

from moxcli.cli import cli, fast
from moxcli.datatools.gentest import generate
from moxcli.domain import Domain, parse_domain
from moxcli.tlsrpt.record import Record, parse_record

VALID = "v=TLSRPTv1; rua=mailto:tls-reports@example.org"
RECORD_CALLS = [
    ["--record", VALID],
    [f"--record={VALID}"],
    ["--record", "v=TLSRPTv1; rua=https://reports.example.org/tls,mailto:a@example.org"],
    ["--record", "v=TLSRPTv1; rua=ftp://x"],
    ["--record", "not a record at all"],
    ["--record", "v=TLSRPTv1;rua=mailto:a@example.org; ext=1\x1b[31m"],
    ["--record", VALID, "--json"],
    ["--json", "--record", "v=TLSRPTv1; rua=ftp://x"],
    ["--record", VALID, "--format", "tsv"],
    ["--format=csv", "--record", "v=TLSRPTv1; rua=mailto:a@example.org,mailto:b@example.org"],
]


def _fast(capsys, args):
    code = fast.run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


CLICK = "import sys; from moxcli.cli.root import main; sys.argv[0] = 'moxcli'; main()"


@pytest.mark.parametrize("columns", ["80", "120"])
@pytest.mark.parametrize("args", [["--help"], ["-h"], []], ids=repr)
def test_root_help_is_clicks(columns, args):
    """In real processes (CliRunner forces click's width to 80): the fast path and click."""
    env = {"COLUMNS": columns, "PATH": ""}
    fast_run = subprocess.run([sys.executable, "-m", "moxcli", *args], capture_output=True, text=True, env=env)
    click_run = subprocess.run([sys.executable, "-c", CLICK, *args], capture_output=True, text=True, env=env)
    assert fast_run.returncode == click_run.returncode == (2 if not args else 0)
    assert (fast_run.stdout, fast_run.stderr) == (click_run.stdout, click_run.stderr)
    assert "Usage: moxcli [OPTIONS] COMMAND [ARGS]..." in fast_run.stdout + fast_run.stderr


def test_root_help_is_served_at_80_and_100_columns(capsys, monkeypatch):
    for columns in ("80", "100", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        assert fast.run(["--help"]) == 0
        assert capsys.readouterr().out.startswith("Usage: moxcli [OPTIONS] COMMAND [ARGS]...")


def test_root_help_at_other_widths_is_left_to_click(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert fast.run(["--help"]) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("args", RECORD_CALLS, ids=repr)
def test_check_tlsrpt_record_is_the_commands_output(runner, capsys, args):
    code, out, err = _fast(capsys, ["check", "tlsrpt", *args])
    r = runner.invoke(cli, ["check", "tlsrpt", *args])
    assert code == r.exit_code
    assert (out, err) == (r.stdout, r.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["example.org", "--record", VALID],  # a domain: the record name matters
        ["--record", VALID, "--record", VALID],
        ["--record", VALID, "--format", "yaml"],
        ["--record", VALID, "--json", "--json"],
        ["--record"],
        ["--record", "-x"],
        ["--record", VALID, "--bogus"],
        ["example.org"],
        [],
    ],
    ids=repr,
)
def test_other_check_tlsrpt_shapes_go_to_click(capsys, args):
    assert fast.run(["check", "tlsrpt", *args]) is None
    assert capsys.readouterr() == ("", "")


PROBE = import_probe("click", "rich", "dns", "cryptography", "lmdb", "msgpack")


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--version"], []),
        (["--help"], []),
        (["check", "tlsrpt", "--record", VALID], []),
        (["check", "tlsrpt", "--record", VALID, "--json"], []),
        (["check", "--help"], ["click"]),
        (["gentestdata", "{tmp}/demo"], ["lmdb", "msgpack"]),  # the store (DKIM keys: PEM written directly)
        (["verifydata", "{tmp}/demo"], ["lmdb", "msgpack"]),
        (["verifydata", "{tmp}/demo", "--fix", "--json"], ["lmdb", "msgpack"]),
        (["gentestdata", "{tmp}/demo2", "--seed", "2"], ["click", "lmdb", "msgpack"]),
    ],
    ids=repr,
)
def test_what_a_real_process_imports(tmp_path, args, want):
    """The start-up a command pays: no click for the fast paths, no dnspython, rich or
    cryptography where the command does not use them."""
    if "verifydata" in args:
        generate(tmp_path / "demo")
    args = [a.format(tmp=tmp_path) for a in args]
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env={"COLUMNS": "80", "PATH": ""}
    )
    assert r.stderr.splitlines()[-1] == repr(want), r.stderr
    assert r.stdout


STDLIB_PROBE = import_probe("dataclasses", "datetime", "idna", "inspect", "re", "typing")


@pytest.mark.parametrize(
    ("fmt", "want"),
    [([], []), (["--format", "tsv"], []), (["--json"], ["re"])],  # the json module imports re itself
    ids=repr,
)
def test_check_tlsrpt_record_loads_no_heavy_stdlib(fmt, want):
    """`check tlsrpt --record` must stay within 2x a bare Python start (issue 13): dataclasses
    (with inspect), typing, re, datetime and idna each cost a sizeable part of that. Run
    without site (-S) and from the source tree, as an editable install's import hook loads re."""
    r = subprocess.run(
        [sys.executable, "-S", "-c", STDLIB_PROBE, "check", "tlsrpt", "--record", VALID, *fmt],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert r.stderr.splitlines()[-1] == repr(want), r.stderr
    assert "mailto:" in r.stdout


def test_hand_written_value_classes_keep_their_dataclass_semantics():
    """Domain and Record are no longer dataclasses (start-up): still equal by value, hashable,
    ordered (Domain), immutable; Record's equality ignores invalid_rua as before."""
    d = parse_domain("Straße.Example")  # idna is imported lazily, for such names only
    assert (d.ascii, d.unicode) == ("xn--strae-oqa.example", "straße.example")
    assert parse_domain("mail.example.org") == Domain("mail.example.org")
    assert parse_domain("mail.example.org") != Domain("mail.example.org", "x")
    assert sorted([Domain("b.example"), Domain("a.example")]) == [Domain("a.example"), Domain("b.example")]
    assert len({Domain("a.example"), Domain("a.example")}) == 1
    assert repr(Domain("a.example")) == "Domain(ascii='a.example', unicode='')"
    with pytest.raises(AttributeError):
        d.ascii = "x"  # type: ignore[misc]
    r = parse_record(VALID)
    assert r == Record(ruas=(("mailto:tls-reports@example.org",),))
    assert r == Record(ruas=r.ruas, invalid_rua=(("x", "bad"),))
    assert r != Record(ruas=r.ruas, extensions=(("k", "v"),))
    assert hash(r) == hash(Record(ruas=r.ruas))
    with pytest.raises(AttributeError):
        r.ruas = ()  # type: ignore[misc]


_SECONDS = re.compile(r'("seconds": |seconds: |; )[0-9.]+( s\))?')


def _same_run(out: str) -> str:
    """Output with the run's own duration taken out."""
    return _SECONDS.sub(r"\1N\2", out)


@pytest.fixture
def data_dirs(tmp_path):
    """Two identical data directories (one for each path: --fix changes them), and a file."""
    good = tmp_path / "good"
    generate(good)
    bad = tmp_path / "bad"
    generate(bad)
    (bad / "queue" / "a" / "77").write_bytes(b"unreferenced")  # beyond the sequence: a warning
    (bad / "accounts" / "test1" / "msg" / "a" / "1").unlink()  # a problem: exit 1
    (tmp_path / "file").write_text("x")
    return tmp_path


DATA_CALLS = [
    ["verifydata", "{d}/good"],
    ["verifydata", "{d}/good", "--json"],
    ["verifydata", "--json", "{d}/good"],
    ["--data", "{d}/good", "verifydata"],
    ["--data={d}/good", "--log-level", "error", "verifydata", "--json"],
    ["--log-level=debug", "verifydata", "{d}/good", "--fix"],
    ["verifydata", "{d}/bad"],
    ["verifydata", "{d}/bad", "--json"],
    ["verifydata", "{d}/bad", "--fix", "--json"],
    ["verifydata", "{d}/missing"],
    ["verifydata", "{d}/missing", "--json"],
    ["--data", "{d}/missing", "verifydata", "{d}/good"],
    ["--data", "{d}/missing", "verifydata"],
    ["verifydata"],  # MOXCLI_DATA
    ["gentestdata", "{d}/new"],
    ["gentestdata", "{d}/new", "--json"],
    ["gentestdata", "{d}/good"],
    ["gentestdata", "--json", "{d}/good"],
    ["--data", "{d}/missing", "gentestdata", "{d}/new/deeper"],
]


@pytest.mark.parametrize("args", DATA_CALLS, ids=repr)
def test_data_tools_are_the_commands_output(data_dirs, runner, capsys, monkeypatch, args):
    """verifydata and gentestdata without click: the click command's output, errors, exit code
    and effect, each on its own copy of the data."""
    monkeypatch.setenv("MOXCLI_DATA", str(data_dirs / "click" / "good"))
    shutil.copytree(data_dirs, data_dirs / "click", ignore=shutil.ignore_patterns("click"))
    r = runner.invoke(cli, [a.format(d=data_dirs / "click") for a in args])
    monkeypatch.setenv("MOXCLI_DATA", str(data_dirs / "good"))
    code, out, err = _fast(capsys, [a.format(d=data_dirs) for a in args])
    assert code == r.exit_code, (r.stdout, r.stderr)
    click_out = (
        r.stdout.replace(str(data_dirs / "click"), str(data_dirs)),
        r.stderr.replace(str(data_dirs / "click"), str(data_dirs)),
    )
    assert (_same_run(out), err) == (_same_run(click_out[0]), click_out[1])
    assert sorted(p.relative_to(data_dirs) for p in data_dirs.rglob("*") if "click" not in p.parts) == sorted(
        p.relative_to(data_dirs / "click") for p in (data_dirs / "click").rglob("*")
    )


@pytest.mark.parametrize(
    "args",
    [
        ["verifydata", "--help"],
        ["verifydata", "a", "b"],
        ["verifydata", "--json", "--json"],
        ["verifydata", "-"],
        ["verifydata", "--bogus"],
        ["verifydata", "{d}/file"],
        ["gentestdata"],
        ["gentestdata", "{d}/x", "--fix"],
        ["gentestdata", "{d}/x", "--messages", "5"],
        ["gentestdata", "{d}/x", "--seed=2"],
        ["--config", "{d}/c.toml", "verifydata"],
        ["--data", "{d}/file", "verifydata", "{d}/good"],
        ["--data", "", "verifydata", "{d}/good"],
        ["--data", "a", "--data", "b", "verifydata"],
        ["--log-level", "loud", "verifydata"],
        ["--data"],
        ["--", "verifydata"],
        ["verifydatax"],
    ],
    ids=repr,
)
def test_other_data_tool_shapes_go_to_click(data_dirs, capsys, args):
    assert fast.run([a.format(d=data_dirs) for a in args]) is None
    assert capsys.readouterr() == ("", "")
    assert not (data_dirs / "x").exists()


@pytest.mark.parametrize(("var", "value"), [("MOXCLI_DATA", "{d}/file"), ("MOXCLI_CONFIG", "{d}")])
def test_data_tools_leave_bad_environment_values_to_click(data_dirs, capsys, monkeypatch, var, value):
    """click checks --data and --config given by the environment too (usage error, exit 2)."""
    monkeypatch.setenv(var, value.format(d=data_dirs))
    assert fast.run(["verifydata", str(data_dirs / "good")]) is None
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "args",
    [
        ["verifydata", "{d}/good"],
        ["--data", "{d}/good", "verifydata"],
        ["gentestdata", "{d}/new"],
        ["verifydata", "{d}/good", "--json"],
    ],
    ids=repr,
)
def test_data_tools_leave_unreadable_paths_to_click(data_dirs, runner, capsys, monkeypatch, args):
    """click.Path refuses an existing path the user cannot read (exit 2): the fast path leaves
    it to click. (root reads everything, so os.access is made to say no for the directory.)"""
    import os

    denied = str(data_dirs / "good")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **kw: str(p) != denied and real_access(p, mode, *a, **kw))
    argv = [a.format(d=data_dirs) for a in args]
    if args[0] == "gentestdata":
        monkeypatch.setenv("MOXCLI_DATA", denied)
    assert fast.run(argv) is None
    assert capsys.readouterr() == ("", "")
    r = runner.invoke(cli, argv)
    assert r.exit_code == 2 and "is not readable" in r.stderr, r.stderr
    assert not (data_dirs / "new").exists()


def test_data_tools_leave_an_unreadable_config_to_click(data_dirs, runner, capsys, monkeypatch):
    import os

    config = data_dirs / "good" / "moxcli.toml"
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, *a, **kw: str(p) != str(config) and real_access(p, mode, *a, **kw)
    )
    monkeypatch.setenv("MOXCLI_CONFIG", str(config))
    argv = ["verifydata", str(data_dirs / "good")]
    assert fast.run(argv) is None
    assert capsys.readouterr() == ("", "")
    r = runner.invoke(cli, argv)
    assert r.exit_code == 2 and "is not readable" in r.stderr, r.stderr

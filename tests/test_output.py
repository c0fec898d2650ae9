"""Output helpers (docs/json.md): times, days, tables off a terminal, TSV/CSV, one-line usage errors."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from moxcli.cli import cli, output


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (datetime(2026, 12, 3, 4, 5, 6, tzinfo=UTC), "2026-12-03T04:05:06Z"),
        (datetime(2026, 12, 3, 4, 5, 6, 999999, tzinfo=UTC), "2026-12-03T04:05:06Z"),
        (datetime(2026, 12, 3, 5, 5, 6, tzinfo=timezone(timedelta(hours=1))), "2026-12-03T04:05:06Z"),
        (datetime(2026, 12, 3, 4, 5, 6), "2026-12-03T04:05:06Z"),
        (1796270706, "2026-12-03T04:05:06Z"),
        (1796270706.75, "2026-12-03T04:05:06Z"),
        (None, None),
    ],
)
def test_rfc3339(value, want):
    assert output.rfc3339(value) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [("20261202", "2026-12-02"), ("2026-12-02", "2026-12-02"), (date(2026, 12, 2), "2026-12-02"), (None, None)],
)
def test_day(value, want):
    assert output.day(value) == want


@pytest.mark.parametrize("bad", ["2026122", "yesterday", "2026/12/02"])
def test_day_rejects_other_forms(bad):
    with pytest.raises(ValueError):
        output.day(bad)


def test_error_and_finding_objects():
    assert output.error_object("usage", "bad") == {"error": {"code": "usage", "message": "bad"}}
    assert output.finding("dane-mismatch", "no match", host="mx.example") == {
        "code": "dane-mismatch",
        "message": "no match",
        "host": "mx.example",
    }


def test_table_is_one_line_per_row_at_full_width():
    long = "recipient-domain-with-a-very-long-name." * 5
    rows = [(i, long, "x\ty\nz") for i in range(3)]
    text = output.format_table(["id", "recipient domain", "note"], rows)
    lines = text.splitlines()
    assert len(lines) == 4
    assert all(long in line for line in lines[1:])
    assert lines[1].endswith("x\\x09y\\x0az")
    # columns aligned: the second column starts at the same offset in every line
    assert len({line.index("recipient") if i == 0 else line.index(long) for i, line in enumerate(lines)}) == 1


def test_tsv_escapes_tabs_and_newlines():
    text = output.format_table(["a", "b"], [("1\t2", "3\n4"), (None, True)], "tsv")
    assert text == "a\tb\n1\\x092\t3\\x0a4\n\tyes\n"


def test_csv_round_trips():
    rows = [("a,b", 'say "hi"'), ("", "ok")]
    text = output.format_table(["x", "y"], rows, "csv")
    assert list(csv.reader(io.StringIO(text))) == [["x", "y"], *[list(r) for r in rows]]


def test_wide_characters_align():
    text = output.format_table(["name", "n"], [("☃☃", 1), ("ab", 2)])
    lines = text.splitlines()
    assert output._width(lines[1][: lines[1].index("1")]) == lines[2].index("2")
    assert output._width("日本") == 4


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert output.colour(Tty()) is True
    assert output.colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.colour(Tty()) is False


def test_usage_error_is_one_line_exit_2(runner):
    r = runner.invoke(cli, ["send-tlsreports", "--no-such-option"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("moxcli: send-tlsreports: no such option")
    assert "--no-such-option" in r.stderr


def test_usage_error_with_json_is_also_an_object_on_stdout(runner, monkeypatch):
    r = runner.invoke(cli, ["tlsreports", "list", "--json", "--no-such-option"])
    assert r.exit_code == 2
    obj = json.loads(r.stdout)
    assert obj["error"]["code"] == "usage"
    assert "--no-such-option" in obj["error"]["message"]
    assert r.stderr == f"moxcli: {obj['error']['message']}\n"


def test_failed_write_leaves_no_directories_behind(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    data = tmp_path / "new" / "data"
    r = runner.invoke(cli, ["--data", str(data), "tlsreports", "import", str(bad)])
    assert r.exit_code == 1
    assert not (tmp_path / "new").exists()


def test_failed_write_keeps_an_existing_store(runner, tmp_path):
    data = tmp_path / "data"
    r = runner.invoke(cli, ["--data", str(data), "suppress", "tls", "add", "a@example.org"])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert runner.invoke(cli, ["--data", str(data), "tlsreports", "import", str(bad)]).exit_code == 1
    r = runner.invoke(cli, ["--data", str(data), "suppress", "tls", "list", "--json"])
    assert [e["address"] for e in json.loads(r.stdout)] == ["a@example.org"]

"""`moxcli send-tlsreports` through click: output, --json keys, exit codes, error paths."""

from __future__ import annotations

import json

import pytest
from helpers.dkim import make_dkim_config
from helpers.tlsreports import DAY, SCENARIOS, load_rows, result_rows, secure_dns

from moxcli.cli import cli
from moxcli.config import load_config
from moxcli.dns import Resolver
from moxcli.reports import tls as rtls
from moxcli.store import Store, job_lock


@pytest.fixture
def setup(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    cfg, _ = make_dkim_config(tmp_path)
    with Store.open(data) as store:
        rows = result_rows("all 6")
        load_rows(store, rows)
    monkeypatch.setattr(Resolver, "from_config", classmethod(lambda cls, c: secure_dns(SCENARIOS[0]["dns_txt"])))
    return data, cfg.path


def run(runner, data, cfg, *args):
    return runner.invoke(
        cli, ["--data", str(data), "--config", str(cfg), "send-tlsreports", "--day", DAY, *args], env={"COLUMNS": "300"}
    )


def test_dry_run_text(runner, setup):
    data, cfg = setup
    r = run(runner, data, cfg, "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"# recipient-domain report for ☺.example ({DAY}) to tlsreports@xn--74h.example\n" in r.stdout
    assert "# host report for mailhost.☺.example" in r.stdout
    assert '"report-id": "20240301.mailhost.xn--74h.example@mox.example"' in r.stdout
    assert "2 report(s) would be queued" in r.stderr


def test_dry_run_output_equals_json_module(runner, setup):
    """The report JSON is written from templates; it must equal json.dumps of the report."""
    data, cfg = setup
    seen = []
    with Store.open(data) as store:
        rtls.send_tls_reports(
            store,
            data,
            load_config(cfg),
            resolver=secure_dns(SCENARIOS[0]["dns_txt"]),
            day=DAY,
            dry_run=True,
            on_report=lambda r: seen.append(r.to_json()),
        )
    assert len(seen) == 2 and all(o["report"]["policies"] for o in seen)
    lines = run(runner, data, cfg, "--dry-run", "--json").stdout.splitlines()
    assert lines[:-1] == [json.dumps({"type": "report", **o}, ensure_ascii=False) for o in seen]
    text = run(runner, data, cfg, "--dry-run").stdout
    for o in seen:
        assert "\n" + json.dumps(o["report"], ensure_ascii=False, indent=2) + "\n" in text


def test_json_ndjson_keys_and_second_run(runner, setup):
    data, cfg = setup
    r = run(runner, data, cfg, "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["report", "report", "summary"]
    assert set(lines[0]) == {
        "type",
        "day",
        "policy_domain",
        "kind",
        "report_id",
        "recipients",
        "suppressed",
        "queue_ids",
        "next_attempt",
        "policies",
    }
    assert lines[1]["recipients"] == [
        "tlsreports1@mailhost.xn--74h.example",
        "tlsreports2@mailhost.xn--74h.example",
        "tlsreports3@mailhost.xn--74h.example",
    ]
    assert len(lines[1]["queue_ids"]) == 3
    s = lines[-1]
    assert set(s) == {
        "type",
        "day",
        "dry_run",
        "disabled",
        "submitter",
        "reports",
        "skipped",
        "errors",
        "removed_rows",
        "stale_rows",
        "delivered",
        "warnings",
    }
    assert (s["reports"], s["submitter"], s["dry_run"], s["removed_rows"]) == (2, "mox.example", False, 6)
    assert {k["reason"] for k in s["skipped"]} == {"no-report-requested", "no-tlsrpt-record"}
    again = run(runner, data, cfg, "--json")
    assert again.exit_code == 0
    assert [json.loads(line)["type"] for line in again.stdout.splitlines()] == ["summary"]


def test_table_output(runner, setup):
    data, cfg = setup
    r = run(runner, data, cfg)
    assert r.exit_code == 0, r.output
    assert "tlsreports@xn--74h.example" in r.stdout and "recipient-domain" in r.stdout
    assert "2 report(s) queued" in r.stderr


def test_metrics_file(runner, setup, tmp_path):
    data, cfg = setup
    r = run(runner, data, cfg, "--metrics-file", str(tmp_path / "m.prom"))
    assert r.exit_code == 0
    assert "moxcli_tlsreports_messages_queued_total 4" in (tmp_path / "m.prom").read_text()


def test_lock_held_exit_3(runner, setup):
    data, cfg = setup
    with job_lock(data, rtls.LOCK_NAME):
        r = run(runner, data, cfg)
    assert r.exit_code == 3
    assert r.stderr.startswith("moxcli: send-tlsreports: another moxcli process")


def test_no_dkim_exit_2_nothing_sent(runner, setup, tmp_path):
    data, _ = setup
    d = tmp_path / "nodkim"
    d.mkdir()
    cfg, _ = make_dkim_config(d, sign=False)
    r = run(runner, data, cfg.path)
    assert r.exit_code == 2
    assert "no DKIM signing configured" in r.stderr and "Traceback" not in r.output
    with Store.open(data, readonly=True) as store, store.read() as tx:
        from moxcli.tlsrpt import resultsdb as tlsresults

        assert tlsresults.count(tx) == 6


def test_bad_day_exit_2(runner, setup):
    data, cfg = setup
    r = runner.invoke(cli, ["--data", str(data), "--config", str(cfg), "send-tlsreports", "--day", "yesterday"])
    assert r.exit_code == 2
    assert r.stderr == "moxcli: --day 'yesterday': expected a day as YYYY-MM-DD\n"


def test_day_in_both_forms(runner, setup):
    """--day takes the JSON contract's YYYY-MM-DD as every other --day does, and mox's YYYYMMDD."""
    data, cfg = setup
    outs = []
    for day in (f"{DAY[:4]}-{DAY[4:6]}-{DAY[6:]}", DAY):
        args = ["--data", str(data), "--config", str(cfg), "send-tlsreports", "--dry-run", "--json", "--day", day]
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    assert f'"day": "{DAY[:4]}-{DAY[4:6]}-{DAY[6:]}"' in outs[0]


def test_missing_config_exit_2(runner, tmp_path):
    r = runner.invoke(cli, ["--data", str(tmp_path / "d"), "send-tlsreports"])
    assert r.exit_code == 2 and "config file not found" in r.stderr


def test_local_error_exit_1(runner, setup, monkeypatch):
    data, cfg = setup

    def boom(*a, **k):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr("moxcli.delivery.queue.enqueue_in", boom)
    r = run(runner, data, cfg)
    assert r.exit_code == 1
    assert "2 report(s) could not be composed or queued" in r.stderr
    with Store.open(data, readonly=True) as store, store.read() as tx:
        from moxcli.tlsrpt import resultsdb as tlsresults

        # rows of the failed reports are kept for the next run
        assert {r.policy_domain for r in tlsresults.iter_rows(tx)} == {"☺.example", "mailhost.☺.example"}


def test_disk_full_stops_the_run_in_one_line(runner, setup, monkeypatch):
    """A full disk fails every report alike: the run stops at the first one (one line, exit 1)
    instead of logging the same error per report; the rows stay for the next run."""
    data, cfg = setup

    def full(*a, **k):
        raise OSError(28, "No space left on device", str(data / "queue" / "a" / "1"))

    monkeypatch.setattr("moxcli.delivery.queue.enqueue_in", full)
    r = run(runner, data, cfg)
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == f"moxcli: {data / 'queue' / 'a' / '1'}: No space left on device"
    assert "could not be composed" not in r.stderr
    with Store.open(data, readonly=True) as store, store.read() as tx:
        from moxcli.tlsrpt import resultsdb as tlsresults

        # nothing removed: the next run handles every domain again
        assert {"☺.example", "mailhost.☺.example"} <= {r.policy_domain for r in tlsresults.iter_rows(tx)}


def test_disabled_message(runner, tmp_path, setup):
    data, _ = setup
    d = tmp_path / "off"
    d.mkdir()
    cfg, _ = make_dkim_config(d, extra="no_outgoing_tls_reports = true\n")
    r = run(runner, data, cfg.path)
    assert r.exit_code == 0 and "turned off" in r.stderr


def test_deliver_now_with_queue_locked_keeps_reports_queued(runner, setup):
    data, cfg = setup
    from moxcli.delivery import queue as dq

    with job_lock(data, "queue"):
        r = run(runner, data, cfg, "--deliver-now", "--json")
    assert r.exit_code == 0, r.output
    assert "reports queued, not delivered now" in r.stderr
    with Store.open(data, readonly=True) as store:
        assert len(dq.list_messages(store)) == 4


def test_bad_rua_skipped_good_ones_kept(runner, setup, monkeypatch):
    """A record with one invalid rua URI still gets reports at its good addresses (as mox)."""
    data, cfg = setup
    txt = dict(SCENARIOS[0]["dns_txt"])
    txt["_smtp._tls.xn--74h.example."] = ["v=TLSRPTv1; rua=mailto:bad%zz@xn--74h.example,mailto:good@xn--74h.example"]
    monkeypatch.setattr(Resolver, "from_config", classmethod(lambda cls, c: secure_dns(txt)))
    r = run(runner, data, cfg, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    rcpt = next(x for x in lines if x["type"] == "report" and x["policy_domain"] == "xn--74h.example")
    assert rcpt["recipients"] == ["good@xn--74h.example"]
    summary = lines[-1]
    assert summary["errors"] == []
    assert summary["warnings"] == [
        {
            "day": f"{DAY[:4]}-{DAY[4:6]}-{DAY[6:]}",
            "policy_domain": "xn--74h.example",
            "kind": "recipient-domain",
            "code": "rua-invalid-uri",
            "message": "rua 'mailto:bad%zz@xn--74h.example': invalid URI: invalid percent-escape; skipped, "
            "the record's other addresses get the report",
            "rua": "mailto:bad%zz@xn--74h.example",
            "problem": "invalid percent-escape",
        }
    ]
    assert "mailto:bad%zz@xn--74h.example" in r.stderr and "l=warn" in r.stderr

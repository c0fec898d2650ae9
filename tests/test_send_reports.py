"""`moxcli send-reports`: DMARC every hour, TLS once a UTC day, remembered in the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from helpers.dmarc import vector_eval
from helpers.dns import FakeResolver

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.dmarc.db import record_evaluations
from moxcli.reports.schedule import run_due
from moxcli.store import Store

DAY = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
TYPICAL = "v=DMARC1; rua=mailto:dmarcrpt@sender.example; ri=3600"


def _config_text(tmp_path, extra=""):
    key = tmp_path / "dkim.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return (
        f'hostname = "mail.mox.example"\n{extra}[domains."mox.example".dkim.selectors.s1]\nprivate_key_file = "{key}"\n'
    )


@pytest.fixture
def env(tmp_path, monkeypatch):
    import moxcli.reports.dmarc as rd

    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(_config_text(tmp_path))
    cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
    r = FakeResolver({"_dmarc.sender.example": [TYPICAL]})
    monkeypatch.setattr(rd.Resolver, "from_config", classmethod(lambda cls, c: r))
    store = Store.open(data)
    yield data, cfg, store
    store.close()


def _jobs(res):
    return [(j.name, j.due, j.ran) for j in res.jobs]


def test_hourly_dmarc_daily_tls(env):
    data, cfg, store = env
    res = run_due(store, data, cfg, now=DAY + 90)
    assert _jobs(res) == [("dmarc", "2026-11-23T00:00:00Z", True), ("tls", "20261122", True)]
    assert res.exit_code == 0
    res = run_due(store, data, cfg, now=DAY + 1800)
    assert _jobs(res) == [("dmarc", "2026-11-23T00:00:00Z", False), ("tls", "20261122", False)]
    assert "already ran" in res.jobs[0].reason and "already ran" in res.jobs[1].reason
    res = run_due(store, data, cfg, now=DAY + 3600 + 60)
    assert _jobs(res) == [("dmarc", "2026-11-23T01:00:00Z", True), ("tls", "20261122", False)]
    res = run_due(store, data, cfg, now=DAY + 86400 + 30)
    assert next(j.due for j in res.jobs if j.name == "dmarc") == "2026-11-23T02:00:00Z"
    assert len([j for j in res.jobs if j.name == "dmarc"]) == 23  # catch-up of the missed hours
    assert _jobs(res)[-1] == ("tls", "20261123", True)


def test_catch_up_is_bounded_and_reports_are_sent(env):
    data, cfg, store = env
    run_due(store, data, cfg, now=DAY + 90)
    record_evaluations(store, cfg, [json.dumps(vector_eval(DAY + 5 * 3600))], now=DAY + 5 * 3600)
    res = run_due(store, data, cfg, now=DAY + 5 * 3600 + 10)
    dmarc = [j for j in res.jobs if j.name == "dmarc"]
    assert [j.due for j in dmarc] == [f"2026-11-23T0{h}:00:00Z" for h in (1, 2, 3, 4, 5)]
    assert [d.queued_to for j in dmarc for d in j.result.domains] == [["dmarcrpt@sender.example"]]
    res = run_due(store, data, cfg, now=DAY + 10 * 86400)
    assert len([j for j in res.jobs if j.name == "dmarc"]) == 24


def test_dry_run_remembers_nothing(env):
    data, cfg, store = env
    res = run_due(store, data, cfg, now=DAY + 90, dry_run=True)
    assert [j.ran for j in res.jobs] == [True, True]
    res = run_due(store, data, cfg, now=DAY + 90)
    assert [j.ran for j in res.jobs] == [True, True]


def test_disabled_jobs(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    cfg = parse_config("no_outgoing_dmarc_reports = true\nno_outgoing_tls_reports = true\n", data / "moxcli.toml")
    with Store.open(data) as store:
        res = run_due(store, data, cfg, now=DAY + 90)
    assert [j.ran for j in res.jobs] == [False, False]
    assert "no_outgoing_dmarc_reports" in res.jobs[0].reason and "no_outgoing_tls_reports" in res.jobs[1].reason


def test_cli_json_metrics_and_failed_job_exit_code(tmp_path, runner, monkeypatch):
    import moxcli.reports.dmarc as rd

    monkeypatch.setattr(rd.Resolver, "from_config", classmethod(lambda cls, c: FakeResolver({})))
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text('hostname = "mail.mox.example"\n')  # no DKIM: TLS reports refuse
    metrics = tmp_path / "m.prom"
    r = runner.invoke(cli, ["--data", str(data), "send-reports", "--json", "--metrics-file", str(metrics)])
    assert r.exit_code == 2, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"now", "dry_run", "jobs"}
    dmarc, tls = out["jobs"]
    assert set(dmarc) == {"name", "due", "ran", "reason", "result", "error", "exit_code"}
    assert dmarc["ran"] and not tls["ran"] and tls["error"] and tls["exit_code"] == 2
    text = metrics.read_text()
    assert 'moxcli_report_jobs_run_total{job="dmarc"} 1' in text and 'moxcli_report_jobs_run_total{job="tls"} 0' in text
    assert 'moxcli_dmarc_report_domains_total{status="queued"} 0' in text
    r = runner.invoke(cli, ["--data", str(data), "send-reports"])
    assert "dmarc: not run: already ran" in r.stderr and "tls: failed" in r.stderr


def test_cli_human_output(tmp_path, runner, monkeypatch):
    import moxcli.reports.dmarc as rd

    monkeypatch.setattr(rd.Resolver, "from_config", classmethod(lambda cls, c: FakeResolver({})))
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(_config_text(tmp_path))
    r = runner.invoke(cli, ["--data", str(data), "send-reports", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "dmarc: ran for" in r.stderr and "tls: ran for" in r.stderr

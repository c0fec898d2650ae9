"""CliRunner tests of `moxcli dmarc`, `send-dmarcreports` and `dmarcreports`."""

from __future__ import annotations

import json
import time

import pytest
from conftest import ROOT
from helpers.dmarc import hour, vector_eval
from helpers.dns import FakeResolver

from moxcli.cli import cli

TYPICAL = "v=DMARC1; rua=mailto:dmarcrpt@sender.example; ri=3600"


@pytest.fixture
def data(data_dir):
    (data_dir / "moxcli.toml").write_text('hostname = "mail.mox.example"\n')
    return data_dir


@pytest.fixture
def fake_dns(monkeypatch):
    import moxcli.reports.dmarc as rd

    r = FakeResolver({"_dmarc.sender.example": [TYPICAL]})
    monkeypatch.setattr(rd.Resolver, "from_config", classmethod(lambda cls, cfg: r))
    return r


def _invoke(runner, data, *args, input=None):
    return runner.invoke(cli, ["--data", str(data), *args], input=input, env={"COLUMNS": "250"})


def _lines(*evals):
    return "".join(json.dumps(e) + "\n" for e in evals)


def test_record_stdin_and_file(runner, data, tmp_path):
    end = hour()
    r = _invoke(runner, data, "dmarc", "record", "--json", input=_lines(vector_eval(end), vector_eval(end)))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"stored": 2, "ids": [1, 2]}
    f = tmp_path / "e.jsonl"
    f.write_text(_lines(vector_eval(end)))
    r = _invoke(runner, data, "dmarc", "record", str(f))
    assert r.exit_code == 0 and "stored 1 evaluation(s)" in r.stderr
    r = _invoke(runner, data, "dmarc", "list", "--json")
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == [1, 2, 3]
    assert set(rows[0]) >= {
        "id",
        "policy_domain",
        "evaluated",
        "optional",
        "interval_hours",
        "addresses",
        "policy_published",
        "source_ip",
        "disposition",
        "aligned_dkim_pass",
        "aligned_spf_pass",
        "override_reasons",
        "envelope_to",
        "envelope_from",
        "header_from",
        "dkim_results",
        "spf_results",
    }
    assert rows[0]["evaluated"].endswith("Z")
    r = _invoke(runner, data, "dmarc", "list", "--domain", "other.example", "--json")
    assert json.loads(r.stdout) == []
    r = _invoke(runner, data, "dmarc", "list")
    assert r.exit_code == 0 and "sender.example" in r.stdout


def test_record_bad_line_stores_nothing(runner, data):
    end = hour()
    bad = vector_eval(end, source_ip="not-an-ip")
    r = _invoke(runner, data, "dmarc", "record", "-", input=_lines(vector_eval(end), bad))
    assert r.exit_code == 2
    assert r.stderr.strip() == "moxcli: stdin: line 2: source_ip: invalid IP address 'not-an-ip'"
    # the failed run created the store and stored nothing, so it removed it again
    r = _invoke(runner, data, "dmarc", "list", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "no-data-dir"


def test_record_refused_when_disabled(runner, data):
    (data / "moxcli.toml").write_text("no_outgoing_dmarc_reports = true\n")
    r = _invoke(runner, data, "dmarc", "record", input=_lines(vector_eval(hour())))
    assert r.exit_code == 2 and "no_outgoing_dmarc_reports" in r.stderr
    r = _invoke(runner, data, "send-dmarcreports")
    assert r.exit_code == 2 and "no_outgoing_dmarc_reports" in r.stderr


def test_send_needs_config_with_hostname(runner, data_dir):
    r = _invoke(runner, data_dir, "send-dmarcreports")
    assert r.exit_code == 2 and "config file not found" in r.stderr
    (data_dir / "moxcli.toml").write_text("")
    r = _invoke(runner, data_dir, "send-dmarcreports")
    assert r.exit_code == 2 and "hostname is not set" in r.stderr


def test_record_missing_file(runner, data, tmp_path):
    r = _invoke(runner, data, "dmarc", "record", str(tmp_path / "nope.jsonl"))
    assert r.exit_code == 2 and "nope.jsonl" in r.stderr


def test_send_dry_run_then_real(runner, data, fake_dns, tmp_path):
    end = hour()
    _invoke(runner, data, "dmarc", "record", input=_lines(vector_eval(end)))
    r = _invoke(runner, data, "send-dmarcreports", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "# sender.example: report " in r.stdout and "<feedback>" in r.stdout
    r = _invoke(runner, data, "send-dmarcreports", "--dry-run", "--json")
    out = json.loads(r.stdout)
    assert set(out) == {"end", "intervals", "dry_run", "stale_removed", "domains", "delivered"}
    assert out["dry_run"] is True and out["domains"][0]["xml"].startswith("<?xml")
    assert list(out["domains"][0])[:1] + list(out["domains"][0])[-1:] == ["policy_domain", "xml"]
    metrics = tmp_path / "m.prom"
    r = _invoke(runner, data, "send-dmarcreports", "--json", "--metrics-file", str(metrics))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    d = out["domains"][0]
    # The order docs/dmarc-reports.md lists them in: the policy domain first, start before end.
    assert list(d) == [
        "policy_domain",
        "status",
        "evaluations",
        "records",
        "report_id",
        "start",
        "end",
        "queued_to",
        "error_report_to",
        "suppressed",
        "too_large",
        "errors",
        "kept",
        "size",
        "due",
        "queue_ids",
    ]
    assert d["status"] == "queued" and d["queued_to"] == ["dmarcrpt@sender.example"] and d["queue_ids"]
    text = metrics.read_text()
    assert 'moxcli_dmarc_report_domains_total{status="queued"} 1' in text
    assert 'moxcli_dmarc_report_domains_total{status="no-record"} 0' in text
    assert "moxcli_dmarc_reports_queued_total 1" in text
    assert 'moxcli_dmarc_report_recipients_skipped_total{reason="suppressed"} 0' in text
    r = _invoke(runner, data, "send-dmarcreports")
    assert r.exit_code == 0 and "sender.example" not in r.stdout


def test_send_explicit_end_and_bad_end(runner, data, fake_dns):
    end = hour() - 5 * 3600
    _invoke(runner, data, "dmarc", "record", input=_lines(vector_eval(end)))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end + 120))
    r = _invoke(runner, data, "send-dmarcreports", "--json", "--end", stamp)
    out = json.loads(r.stdout)
    assert out["end"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))
    assert out["domains"][0]["queued_to"] == ["dmarcrpt@sender.example"]
    r = _invoke(runner, data, "send-dmarcreports", "--end", "noon")
    assert r.exit_code == 2


def test_send_lock_held_exit_3(runner, data, fake_dns):
    from moxcli.store import job_lock

    with job_lock(data, "dmarcreports"):
        r = _invoke(runner, data, "send-dmarcreports")
    assert r.exit_code == 3 and "lock" in r.stderr


REAL = ROOT / "testdata" / "realworld" / "dmarc"


def test_import_list_show(runner, data):
    """Our own report files (testdata/realworld): a Google-style zip message, an RFC 9990 XML
    file and a saved .xml.gz."""
    google = REAL / "google-zip-only.eml"
    r9990 = REAL / "harbor.example!rfc9990.xml"
    gz = REAL / "mailru-saved.xml.gz"
    r = _invoke(runner, data, "dmarcreports", "import", "--json", str(google), str(r9990), str(gz))
    assert r.exit_code == 0, r.output
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in out[:3]] == [1, 2, 3] and [x["outcome"] for x in out[:3]] == ["imported"] * 3
    assert out[3]["type"] == "summary" and out[3]["imported"] == 3
    r = _invoke(runner, data, "dmarcreports", "import", str(google))
    assert r.exit_code == 0 and "0 imported, 1 duplicate" in r.stderr
    r = _invoke(runner, data, "dmarcreports", "list", "--json")
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == [3, 2, 1]
    assert set(rows[0]) == {
        "id",
        "imported",
        "policy_domain",
        "organization_name",
        "report_id",
        "start",
        "end",
        "schema",
        "records",
        "messages",
        "dmarc_pass",
        "dmarc_fail",
    }
    g = rows[2]
    assert (g["policy_domain"], g["messages"], g["dmarc_pass"], g["schema"]) == ("lakeside.example", 13, 12, "rfc7489")
    r = _invoke(runner, data, "dmarcreports", "list", "--domain", "harbor.example", "--json")
    assert [x["id"] for x in json.loads(r.stdout)] == [2]
    r = _invoke(runner, data, "dmarcreports", "show", "2", "--json")
    out = json.loads(r.stdout)
    assert out["report"]["schema"] == "rfc9990" and out["report"]["records"][0]["count"] == 37
    r = _invoke(runner, data, "dmarcreports", "show", "1")
    assert r.exit_code == 0 and "google.com" in r.stdout and "198.51.100.7" in r.stdout
    r = _invoke(runner, data, "dmarcreports", "list")
    assert r.exit_code == 0 and "lakeside.example" in r.stdout


def test_import_bad_file_rejected_alone(runner, data, tmp_path):
    good = tmp_path / "good.xml"
    from moxcli.dmarc.report import Feedback, Metadata, Published, Record, build_xml

    good.write_bytes(
        build_xml(
            Feedback(
                Metadata("o", "e@o.example", "r1", 1, 2),
                Published("example.org", "none", "none", "100"),
                [Record("192.0.2.1", 1, "none", "pass", "pass", "example.org")],
            )
        )
    )
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b'<!DOCTYPE x [<!ENTITY a "b">]><feedback>&a;</feedback>')
    r = _invoke(runner, data, "dmarcreports", "import", str(good), str(bad))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{bad}: rejected: could not parse report: XML document type declarations" in r.stderr
    assert "2 message(s): 1 imported, 0 duplicate, 0 not a report, 1 rejected" in r.stderr
    r = _invoke(runner, data, "dmarcreports", "list", "--json")
    assert [x["report_id"] for x in json.loads(r.stdout)] == ["r1"]
    nodomain = tmp_path / "nodomain.xml"
    nodomain.write_bytes(good.read_bytes().replace(b"<domain>example.org</domain>", b"<domain>not a domain</domain>"))
    r = _invoke(runner, data, "dmarcreports", "import", str(nodomain))
    assert r.exit_code == 1 and "could not parse domain in published policy" in r.stderr
    future = tmp_path / "future.xml"
    future.write_bytes(good.read_bytes().replace(b"<end>2</end>", f"<end>{int(time.time()) + 3600}</end>".encode()))
    r = _invoke(runner, data, "dmarcreports", "import", str(future))
    assert r.exit_code == 1 and "end date in the future" in r.stderr


def test_show_unknown(runner, data):
    _invoke(runner, data, "dmarc", "record", input="")
    r = _invoke(runner, data, "dmarcreports", "show", "99")
    assert r.exit_code == 2 and r.stderr == "moxcli: DMARC report 99: no such report\n"


def test_lookup(runner, data, fake_dns):
    fake_dns.add(
        {
            "_dmarc.ext.example": [
                "v=DMARC1; p=none; rua=mailto:a@ext.example!1m,mailto:b@other.example,mailto:c@temp.example,https://x.example/r,bad"
            ],
            "ext.example._report._dmarc.other.example": ["v=DMARC1"],
            "ext.example._report._dmarc.temp.example": "TEMP",
        }
    )
    r = _invoke(runner, data, "dmarc", "lookup", "--json", "mail.ext.example")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"domain", "found_at", "record", "dnssec", "interval_hours", "rua"}
    assert (out["domain"], out["found_at"], out["dnssec"], out["interval_hours"]) == (
        "mail.ext.example",
        "ext.example",
        False,
        24,
    )
    assert [x["status"] for x in out["rua"]] == [
        "same-organization",
        "authorized",
        "temporary-error",
        "ignored",
        "invalid",
    ]
    assert out["rua"][0]["destinations"] == [
        {"uri": "mailto:a@ext.example", "address": "a@ext.example", "max_size": 1 << 20}
    ]
    assert out["rua"][1]["verification_name"] == "ext.example._report._dmarc.other.example"
    assert set(out["rua"][0]) == {"rua", "status", "destinations", "errors", "verification_name", "fix"}
    r = _invoke(runner, data, "dmarc", "lookup", "ext.example")
    assert r.exit_code == 0 and "authorized" in r.stdout


@pytest.mark.parametrize(
    "txt,code",
    [
        ({}, 1),
        ({"_dmarc.x.example": ["v=DMARC1; rua=mailto:r@elsewhere.example"]}, 1),
        ({"_dmarc.x.example": ["v=DMARC1; rua=mailto:r@t.example"], "x.example._report._dmarc.t.example": "TEMP"}, 3),
        ({"_dmarc.x.example": "TEMP"}, 3),
    ],
)
def test_lookup_exit_codes(runner, data, fake_dns, txt, code):
    fake_dns.records.clear()
    fake_dns.add(txt)
    r = _invoke(runner, data, "dmarc", "lookup", "x.example")
    assert r.exit_code == code, r.output
    r = _invoke(runner, data, "dmarc", "lookup", "not a domain")
    assert r.exit_code == 2


def test_list_stats_vector(runner, data):
    """dmarc_reports.json evaluation_stats_example (mox TestEvaluations)."""
    from helpers.dmarc import vectors

    v = vectors()["evaluation_stats_example"]
    end = hour()
    lines = []
    for e in v["evaluations"]:
        changes = {"policy_domain": e["PolicyDomain"], "optional": e["Optional"]}
        if "SourceIP" in e:
            changes["source_ip"] = e["SourceIP"]
        lines.append(vector_eval(end, **changes))
    assert _invoke(runner, data, "dmarc", "record", input=_lines(*lines)).exit_code == 0
    r = _invoke(runner, data, "dmarc", "list", "--stats", "--json")
    got = json.loads(r.stdout)
    want = {
        d: {"count": x["Count"], "dispositions": x["Dispositions"], "send_report": x["SendReport"]}
        for d, x in v["expect"].items()
    }
    assert {s.pop("policy_domain"): s for s in got} == want
    r = _invoke(runner, data, "dmarc", "list", "--stats")
    assert r.exit_code == 0 and "sender2.example" in r.stdout


def test_record_endless_line_is_refused(runner, data):
    r = _invoke(runner, data, "dmarc", "record", input="{" + " " * 200_000)
    assert r.exit_code == 2 and "line 1: line longer than 65536 bytes" in r.stderr


@pytest.mark.parametrize(
    ("dkim", "spf", "cell"),
    [
        (
            ("example.org", "pass", "s1"),
            ("example.org", "pass", "mfrom"),
            "dkim example.org/s1: pass; spf example.org (mfrom): pass",
        ),
        (("example.org", "pass", ""), ("example.org", "pass", ""), "dkim example.org: pass; spf example.org: pass"),
        (None, ("spoof.example", "fail", ""), "spf spoof.example: fail"),
    ],
)
def test_show_auth_results_leave_out_what_the_report_does_not_give(runner, data, tmp_path, dkim, spf, cell):
    """A DKIM selector or SPF scope the report lacks is left out, not shown as `/` or `()`."""
    from moxcli.dmarc.report import DKIMAuth, Feedback, Metadata, Published, Record, SPFAuth, build_xml

    rec = Record("192.0.2.1", 1, "none", "pass", "pass", "example.org")
    rec.dkim_auth = [DKIMAuth(*dkim)] if dkim else []
    rec.spf_auth = [SPFAuth(*spf)]
    f = tmp_path / "r.xml"
    f.write_bytes(
        build_xml(
            Feedback(Metadata("o", "e@o.example", "r1", 1, 2), Published("example.org", "none", "none", "100"), [rec])
        )
    )
    assert _invoke(runner, data, "dmarcreports", "import", str(f)).exit_code == 0
    r = _invoke(runner, data, "dmarcreports", "show", "1", "--format", "tsv")
    assert r.exit_code == 0, r.output
    (row,) = [line.split("\t") for line in r.stdout.splitlines() if line.startswith("192.0.2.1")]
    assert row[7] == cell

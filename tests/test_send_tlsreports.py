"""moxcli.reports.tls: the daily TLS report job, the six scenarios of docs/behaviour-notes.md §2.9 and more.

The fake resolver of tests/helpers/dns.py serves the scenario's TLSRPT records; the queued
messages are read back, DKIM-verified and their gzip JSON compared per address, field by field.
"""

from __future__ import annotations

import copy
import email
import email.policy
import gzip
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT
from helpers.dkim import make_dkim_config, verify_all
from helpers.tlsreports import DAY, NOW, SCENARIOS, load_rows, result_rows, secure_dns, subst
from rfc8460_form import rfc8460_form

from moxcli.delivery import queue as dq
from moxcli.errors import ConfigError, LockHeld
from moxcli.reports import tls as rtls
from moxcli.store import Store, job_lock
from moxcli.store import suppress as sp
from moxcli.tlsrpt import resultsdb as tstore


def queued_reports(store: Store, data_dir: Path, dns: dict | None = None) -> dict[str, list[dict]]:
    """Queued report JSON per recipient (queue order); checks flags and DKIM on the way."""
    out: dict[str, list[dict]] = {}
    for m in sorted(dq.list_messages(store), key=lambda m: m.id):
        assert (m.is_tls_report, m.require_tls, m.max_attempts, m.mail_from) == (
            True,
            False,
            5,
            "postmaster@mox.example",
        )
        raw = dq.message_bytes(data_dir, m)
        if dns is not None:
            verify_all(m.prefix, raw[len(m.prefix) :], dns)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        att = next(iter(msg.iter_attachments()))
        out.setdefault(m.recipient, []).append(json.loads(gzip.decompress(att.get_content())))
    return out


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cfg, dns = make_dkim_config(tmp_path)
    store = Store.open(data)
    yield SimpleNamespace(data=data, cfg=cfg, dkim_dns=dns, store=store, tmp=tmp_path)
    store.close()


def _add_suppress(store: Store, entries: list[dict]) -> None:
    offsets = {"now-1min": -60, "now+1min": 60, "now+31days": 31 * 86400}
    with store.write() as tx:
        for e in entries:
            sp.add(tx, "tls", e["ReportingAddress"], until=NOW + offsets[e["Until"]], now=NOW - 10)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(env, scenario):
    idx = SCENARIOS.index(scenario)
    success_only = idx >= 4
    dns_txt = scenario.get("dns_txt") or SCENARIOS[0]["dns_txt"]
    suppress_entries = scenario["suppress"] if isinstance(scenario["suppress"], list) else SCENARIOS[3]["suppress"]
    all_success = bool(scenario.get("outgoing_tls_reports_for_all_success"))
    if all_success:
        d = env.tmp / "allsuccess"
        d.mkdir()
        cfg, dkim_dns = make_dkim_config(d, extra="outgoing_tls_reports_for_all_success = true\n")
    else:
        cfg, dkim_dns = env.cfg, env.dkim_dns
    load_rows(env.store, result_rows(scenario["results"], success_only))
    _add_suppress(env.store, suppress_entries)
    resolver = secure_dns(dns_txt)
    summary = rtls.send_tls_reports(env.store, env.data, cfg, resolver=resolver, now=NOW)
    assert summary.day_utc == DAY
    assert summary.errors == []
    got = queued_reports(env.store, env.data, dkim_dns)
    want = rfc8460_form(subst(scenario["expect_reports_by_recipient"]))
    assert sorted(got) == sorted(want)
    for addr, reports in want.items():
        assert len(got[addr]) == len(reports), addr
        for g, w in zip(got[addr], reports, strict=True):
            # field by field, so a failure names the field
            assert list(g) == list(w)
            for k in w:
                assert g[k] == w[k], (addr, k)
    # everything reported or not reportable is gone, except rows kept for a broken record
    with env.store.read() as tx:
        left = [(r.policy_domain, r.recipient_domain) for r in tstore.iter_rows(tx)]
    assert all(p == "mailhost.norua.example" for p, _ in left), left
    # a second run for the same day sends nothing
    n = len(dq.list_messages(env.store))
    again = rtls.send_tls_reports(env.store, env.data, cfg, resolver=resolver, now=NOW)
    assert again.reports == [] and len(dq.list_messages(env.store)) == n


def test_scenario1_details(env):
    load_rows(env.store, result_rows("all 6"))
    resolver = secure_dns(SCENARIOS[0]["dns_txt"])
    summary = rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=resolver, now=NOW)
    kinds = [(r.kind, r.policy_domain) for r in summary.reports]
    assert kinds == [("recipient-domain", "☺.example"), ("host", "mailhost.☺.example")]
    # staggered due times: 2 reports asked for by 3 keys -> 4h/3 capped at 5 min
    msgs = sorted(dq.list_messages(env.store), key=lambda m: m.id)
    dues = sorted({m.next_attempt for m in msgs})
    assert dues[0] == NOW and all(0 < b - a <= 300 for a, b in itertools.pairwise(dues))
    reasons = {(s["policy_domain"], s["reason"]) for s in summary.skipped}
    assert ("mailhost.noreport.example", "no-report-requested") in reasons
    assert ("mailhost.notlsrpt.example", "no-tlsrpt-record") in reasons
    # the norua row only has SendReport=false rows: not even looked up
    assert "_smtp._tls.mailhost.norua.example" not in resolver.queries
    assert "_smtp._tls.mailhost.notlsrpt.example" in resolver.queries  # the others were
    # message format of docs/behaviour-notes.md §2.7
    raw = dq.message_bytes(env.data, msgs[0])
    head = raw[len(msgs[0].prefix) :].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("From: <postmaster@mox.example>\r\nTo: <tlsreports@xn--74h.example>\r\n")
    assert (
        "Subject: Report Domain: xn--74h.example Submitter: mox.example Report-ID: "
        f"\r\n\t<{DAY}.xn--74h.example@mox.example>\r\n" in head
    )
    assert "\r\nTLS-Report-Domain: xn--74h.example\r\nTLS-Report-Submitter: mox.example\r\nTLS-Required: No\r\n" in head
    host_msg = next(m for m in msgs if m.recipient == "tlsreports1@mailhost.xn--74h.example")
    hraw = dq.message_bytes(env.data, host_msg).decode()
    assert (
        "To: "
        "<tlsreports1@mailhost.xn--74h.example>,\r\n\t<tlsreports2@mailhost.xn--74h.example>,\r\n\t<tlsreports3@mailhost.xn--74h.example>\r\n"
        in hraw
    )
    assert "filename=mox.example!mailhost.xn--74h.example!1709251200!1709337599.json.gz" in hraw
    text = (
        email.message_from_string(hraw, policy=email.policy.default)
        .get_body(("plain",))
        .get_content()
        .replace("\r\n", "\n")
    )
    assert "Policy Domain: mailhost.☺.example/mailhost.xn--74h.example\nSubmitter: mox.example\n" in text
    assert (
        f"Report-ID: {DAY}.mailhost.xn--74h.example@mox.example\nPeriod: 2024-03-01 00:00:00 - "
        "2024-03-02 00:00:00 UTC\n" in text
    )
    with env.store.read() as tx:
        assert tstore.count(tx) == 0


def test_temporary_dns_error_drops_rows_syntax_error_keeps(env):
    rows = [r for r in result_rows("all 6") if r["PolicyDomain"] in ("mailhost.notlsrpt.example",)]
    rows.append({**rows[0], "PolicyDomain": "mailhost.broken.example", "RecipientDomain": "broken.example"})
    load_rows(env.store, rows)
    resolver = secure_dns(
        {"_smtp._tls.mailhost.broken.example.": ["v=TLSRPTv1;"]}, temporary={"_smtp._tls.mailhost.notlsrpt.example."}
    )
    summary = rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=resolver, now=NOW)
    assert {(e["policy_domain"], e["reason"]) for e in summary.errors} == {
        ("mailhost.notlsrpt.example", "dns-temporary"),
        ("mailhost.broken.example", "record-invalid"),
    }
    with env.store.read() as tx:
        assert [r.policy_domain for r in tstore.iter_rows(tx)] == ["mailhost.broken.example"]


def test_stale_rows_removed(env):
    rows = result_rows("all 6")
    old = []
    for day in ("20240226", "20240227", "20240228"):
        for r in rows[:1]:
            old.append({**r, "DayUTC": day, "SendReport": False})
    load_rows(env.store, old)
    rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), now=NOW, dry_run=True)
    with env.store.read() as tx:
        assert sorted({r.day_utc for r in tstore.iter_rows(tx)}) == ["20240226", "20240227", "20240228"]
    s = rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), now=NOW, day="20240226")
    # --day 20240226: end 27th 00:00, stale before 24th: nothing stale; rows through the 26th processed
    assert s.stale_rows == 0
    with env.store.read() as tx:
        assert sorted({r.day_utc for r in tstore.iter_rows(tx)}) == ["20240227", "20240228"]
    s = rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), now=NOW + 2 * 86400)
    # run on the 4th: stale cutoff is YYYYMMDD(4th 00:00 - 60h) = 20240301
    assert s.stale_rows == 2
    with env.store.read() as tx:
        assert tstore.count(tx) == 0


def test_dry_run_changes_nothing(env):
    load_rows(env.store, result_rows("all 6"))
    seen = []
    s = rtls.send_tls_reports(
        env.store,
        env.data,
        env.cfg,
        resolver=secure_dns(SCENARIOS[0]["dns_txt"]),
        now=NOW,
        dry_run=True,
        on_report=lambda r: seen.append(r.to_json()),
    )
    assert [r["policy_domain"] for r in seen] == ["xn--74h.example", "mailhost.xn--74h.example"]
    assert seen[0]["report"]["report-id"] == f"{DAY}.xn--74h.example@mox.example"
    assert seen[1]["recipients"] == [
        "tlsreports1@mailhost.xn--74h.example",
        "tlsreports2@mailhost.xn--74h.example",
        "tlsreports3@mailhost.xn--74h.example",
    ]
    assert s.removed_rows == 0 and dq.list_messages(env.store) == []
    with env.store.read() as tx:
        assert tstore.count(tx) == 6


def test_no_dkim_nothing_sent_results_kept(env):
    d = env.tmp / "nodkim"
    d.mkdir()
    cfg, _ = make_dkim_config(d, sign=False)
    load_rows(env.store, result_rows("all 6"))
    with pytest.raises(ConfigError, match=r"mox\.example.*no DKIM signing configured"):
        rtls.send_tls_reports(env.store, env.data, cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW)
    cfg2, _ = make_dkim_config(d, hostname="mail.elsewhere.example")
    with pytest.raises(ConfigError, match=r"no configured domain for hostname mail\.elsewhere\.example"):
        rtls.send_tls_reports(env.store, env.data, cfg2, resolver=secure_dns({}), now=NOW)
    (env.tmp / "ed.pem").write_text("broken")
    with pytest.raises(ConfigError, match=r"ed\.pem"):
        rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), now=NOW)
    assert dq.list_messages(env.store) == []
    with env.store.read() as tx:
        assert tstore.count(tx) == 6


def test_disabled(env):
    d = env.tmp / "off"
    d.mkdir()
    cfg, _ = make_dkim_config(d, extra="no_outgoing_tls_reports = true\n")
    load_rows(env.store, result_rows("all 6"))
    s = rtls.send_tls_reports(env.store, env.data, cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW)
    assert s.disabled and s.reports == []
    with env.store.read() as tx:
        assert tstore.count(tx) == 6


def test_lock_held(env):
    with job_lock(env.data, rtls.LOCK_NAME), pytest.raises(LockHeld):
        rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), now=NOW)


def test_metrics_file(env):
    load_rows(env.store, result_rows("all 6"))
    path = env.tmp / "tls.prom"
    rtls.send_tls_reports(
        env.store, env.data, env.cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW, metrics_file=path
    )
    text = path.read_text()
    assert 'moxcli_tlsreports_reports_queued_total{kind="recipient-domain"} 1\n' in text
    assert 'moxcli_tlsreports_reports_queued_total{kind="host"} 1\n' in text
    assert "moxcli_tlsreports_messages_queued_total 4\n" in text
    # 3 (certificate-expired) in report1; validation-failure 1 in report1 + 2 in report2
    assert 'moxcli_tlsreports_failure_sessions_total{result_type="certificate-expired"} 3\n' in text
    assert 'moxcli_tlsreports_failure_sessions_total{result_type="validation-failure"} 3\n' in text
    assert 'moxcli_tlsreports_failure_sessions_total{result_type="dane-required"} 0\n' in text
    assert 'moxcli_tlsreports_errors_total{reason="local"} 0\n' in text
    assert 'moxcli_tlsreports_skipped_total{reason="no-tlsrpt-record"} 1\n' in text
    assert "# TYPE moxcli_tlsreports_last_run_timestamp_seconds gauge" in text
    assert not [p for p in env.tmp.iterdir() if p.name.startswith(".tls.prom")]


CRASH = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {tests!r})
    from moxcli.store import Store
    from moxcli.reports import tls as rtls
    from moxcli.tlsrpt import resultsdb as tstore
    from moxcli.delivery import queue as dq
    from moxcli.config import load_config
    from pathlib import Path
    from helpers.tlsreports import secure_dns, SCENARIOS, NOW
    point = sys.argv[1]
    if point == "after-queue":
        real = dq.enqueue_in
        def enqueue_in(*a, **k):
            real(*a, **k)
            os._exit(9)
        dq.enqueue_in = enqueue_in
    elif point == "before-cleanup":
        tstore.delete_policy_domain = lambda *a: os._exit(9)
    elif point == "after-first-commit":
        real_update = Store.update
        n = [0]
        def update(self, fn):
            r = real_update(self, fn)
            n[0] += 1
            if n[0] == 2:  # stale cleanup, then the first report
                os._exit(9)
            return r
        Store.update = update
    cfg = load_config(Path(sys.argv[3]))
    with Store.open(Path(sys.argv[2])) as store:
        rtls.send_tls_reports(store, Path(sys.argv[2]), cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW)
    """
)


@pytest.mark.parametrize("point", ["after-queue", "after-first-commit", "before-cleanup"])
def test_crash_neither_loses_nor_duplicates(env, point):
    load_rows(env.store, result_rows("all 6"))
    cfg_file = env.cfg.path
    script = env.tmp / "crash.py"
    script.write_text(CRASH.format(tests=str(ROOT / "tests")))
    r = subprocess.run(
        [sys.executable, str(script), point, str(env.data), str(cfg_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 9, r.stderr
    rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW)
    got = queued_reports(env.store, env.data)
    assert {a: len(v) for a, v in got.items()} == {
        "tlsreports@xn--74h.example": 1,
        "tlsreports1@mailhost.xn--74h.example": 1,
        "tlsreports2@mailhost.xn--74h.example": 1,
        "tlsreports3@mailhost.xn--74h.example": 1,
    }
    with env.store.read() as tx:
        assert [r.policy_domain for r in tstore.iter_rows(tx)] == []


def test_day_option_and_bad_day(env):
    from moxcli.errors import UsageError

    with pytest.raises(UsageError, match="invalid day"):
        rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns({}), day="2024-03-01")
    rows = copy.deepcopy(result_rows("all 6"))
    for r in rows:
        r["DayUTC"] = "20240215"
    load_rows(env.store, rows)
    s = rtls.send_tls_reports(
        env.store, env.data, env.cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW, day="20240215"
    )
    assert [r.report_id for r in s.reports] == [
        "20240215.xn--74h.example@mox.example",
        "20240215.mailhost.xn--74h.example@mox.example",
    ]
    got = queued_reports(env.store, env.data)
    assert got["tlsreports@xn--74h.example"][0]["date-range"] == {
        "start-datetime": "2024-02-15T00:00:00Z",
        "end-datetime": "2024-02-15T23:59:59Z",
    }


def test_mailto_recipients():
    addrs, ruas = rtls.mailto_recipients(
        (
            ("mailto:a@x.example", "https://h.example/", "MAILTO:b@☺.example?subject=x"),
            ("mailto:bad", "mailto:c@x.example", "mailto:" + "l" * 65 + "@x.example"),
            ("ftp://x",),
        )
    )
    assert addrs == ["a@x.example", "b@xn--74h.example", "c@x.example"]
    assert ruas == ["mailto:a@x.example", "MAILTO:b@☺.example?subject=x", "mailto:c@x.example"]


def _unicode_names(obj):
    """The vectors' rows with every A-label name written as U-labels (☺ for xn--74h)."""
    return json.loads(json.dumps(obj, ensure_ascii=False).replace("xn--74h", "☺"))


def test_sent_reports_carry_a_labels_whatever_form_results_were_stored_in(env):
    """RFC 8460 4.4: policy-domain, mx-host and receiving-mx-hostname are domain names; as
    mox does, the report we produce writes them as A-labels, also when the results were
    recorded with U-labels."""
    rows = _unicode_names(result_rows("all 6"))
    assert "☺.example" in json.dumps(rows, ensure_ascii=False)
    load_rows(env.store, rows)
    rtls.send_tls_reports(env.store, env.data, env.cfg, resolver=secure_dns(SCENARIOS[0]["dns_txt"]), now=NOW)
    got = queued_reports(env.store, env.data, env.dkim_dns)
    text = json.dumps(got, ensure_ascii=False)
    assert "☺" not in text
    domains = {p["policy"]["policy-domain"] for reports in got.values() for r in reports for p in r["policies"]}
    assert domains == {"xn--74h.example", "mailhost.xn--74h.example", "sharedsender.example"}
    mx = {h for reports in got.values() for r in reports for p in r["policies"] for h in p["policy"]["mx-host"]}
    assert mx == {"*.xn--74h.example", "mailhost.xn--74h.example"}
    hosts = {
        d["receiving-mx-hostname"]
        for reports in got.values()
        for r in reports
        for p in r["policies"]
        for d in p.get("failure-details", [])
    }
    assert hosts == {"mailhost.xn--74h.example"}

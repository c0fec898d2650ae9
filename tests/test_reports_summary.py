"""`tlsreports summary` and `dmarcreports summary`: groupings, day filling, filters, formats."""

from __future__ import annotations

import json

import pytest

from moxcli.cli import cli
from moxcli.config import Config
from moxcli.reports import incoming
from moxcli.reports.insight import dmarc_summary, parse_day, sparkline, tls_summary
from moxcli.store import Store

NOW = 1800000000.0


def _tls(org, rid, day, domain, ok, failures):
    details = [
        {"result-type": t, "receiving-mx-hostname": mx, "receiving-ip": ip, "failed-session-count": n}
        for t, mx, ip, n in failures
    ]
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"},
            "contact-info": "x@example.com",
            "report-id": rid,
            "policies": [
                {
                    "policy": {"policy-type": "sts", "policy-domain": domain, "mx-host": ["mx1." + domain]},
                    "summary": {
                        "total-successful-session-count": ok,
                        "total-failure-session-count": sum(f[3] for f in failures),
                    },
                    "failure-details": details,
                }
            ],
        }
    ).encode()


def _dmarc(org, rid, begin, domain, rows):
    recs = "".join(
        f"<record><row><source_ip>{ip}</source_ip><count>{n}</count><policy_evaluated><disposition>{disp}"
        f"</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>"
        f"<identifiers><header_from>{domain}</header_from></identifiers></record>"
        for ip, n, disp, dkim, spf in rows
    )
    return (
        f"<feedback><report_metadata><org_name>{org}</org_name><email>r@{org}</email><report_id>{rid}</report_id>"
        f"<date_range><begin>{begin}</begin><end>{begin + 86399}</end></date_range></report_metadata>"
        f"<policy_published><domain>{domain}</domain><p>reject</p></policy_published>{recs}</feedback>"
    ).encode()


D1, D3 = "2026-11-01", "2026-11-03"
B1, B3 = 1793491200, 1793664000  # 2026-11-01 and 2026-11-03 00:00 UTC


@pytest.fixture
def data(data_dir):
    """A data dir holding three TLS and three DMARC reports (the store is closed again)."""
    reports = [
        _tls("A", "a1", D1, "example.org", 10, [("certificate-expired", "mx1.example.org", "192.0.2.1", 2)]),
        _tls("B", "b1", D1, "example.net", 5, []),
        _tls("A", "a3", D3, "example.org", 7, [("starttls-not-supported", "mx2.example.org", "192.0.2.2", 1)]),
        _dmarc("g.example", "g1", B1, "example.org", [("192.0.2.9", 10, "none", "pass", "pass")]),
        _dmarc(
            "m.example",
            "m3",
            B3,
            "example.org",
            [("192.0.2.9", 4, "none", "pass", "fail"), ("198.51.100.1", 3, "reject", "fail", "fail")],
        ),
        _dmarc("g.example", "g3", B3, "example.net", [("203.0.113.5", 2, "none", "fail", "pass")]),
    ]
    msgs = [incoming.Message(f"m{i}", r) for i, r in enumerate(reports)]
    with Store.open(data_dir) as st:
        summary = incoming.import_messages(st, Config(), msgs, now=NOW)
    assert summary.counts["imported"] == 6
    return data_dir


@pytest.fixture
def store(data):
    with Store.open(data, readonly=True) as st:
        yield st


def test_tls_summary(store):
    s = tls_summary(store)
    assert (s.reports, s.successful_sessions, s.failed_sessions) == (3, 22, 3)
    assert s.days == [
        {"day": D1, "reports": 2, "successful_sessions": 15, "failed_sessions": 2},
        {"day": "2026-11-02", "reports": 0, "successful_sessions": 0, "failed_sessions": 0},
        {"day": D3, "reports": 1, "successful_sessions": 7, "failed_sessions": 1},
    ]
    assert s.organizations == [
        {"organization_name": "A", "reports": 2, "successful_sessions": 17, "failed_sessions": 3},
        {"organization_name": "B", "reports": 1, "successful_sessions": 5, "failed_sessions": 0},
    ]
    assert s.result_types == [
        {"result_type": "certificate-expired", "failed_sessions": 2},
        {"result_type": "starttls-not-supported", "failed_sessions": 1},
    ]
    assert s.failing_hosts[0] == {
        "receiving_mx_hostname": "mx1.example.org",
        "receiving_ip": "192.0.2.1",
        "result_type": "certificate-expired",
        "failed_sessions": 2,
    }
    assert [p["policy_domain"] for p in s.policy_domains] == ["example.org", "example.net"]
    only = tls_summary(store, domain="example.net")
    assert (only.reports, only.successful_sessions, only.failed_sessions) == (1, 5, 0)
    late = tls_summary(store, since=parse_day("--since", D3))
    assert [d["day"] for d in late.days] == [D3] and late.reports == 1
    assert tls_summary(store, until=parse_day("--until", "2026-10-31")).reports == 0


def test_dmarc_summary(store):
    s = dmarc_summary(store)
    assert (s.reports, s.messages, s.dmarc_pass) == (3, 19, 16)
    assert [(d["day"], d["messages"], d["dmarc_fail"], d["pass_rate"]) for d in s.days] == [
        (D1, 10, 0, 1.0),
        ("2026-11-02", 0, 0, None),
        (D3, 9, 3, round(6 / 9, 4)),
    ]
    assert s.source_ips[0] == {"source_ip": "198.51.100.1", "messages": 3, "dmarc_pass": 0, "dmarc_fail": 3}
    assert s.dispositions == [{"disposition": "none", "messages": 16}, {"disposition": "reject", "messages": 3}]
    assert s.alignment == {"dkim_and_spf": 10, "dkim_only": 4, "spf_only": 2, "neither": 3}
    assert s.organizations == [
        {"organization_name": "m.example", "reports": 1, "messages": 7, "dmarc_pass": 4, "dmarc_fail": 3},
        {"organization_name": "g.example", "reports": 2, "messages": 12, "dmarc_pass": 12, "dmarc_fail": 0},
    ]
    org = dmarc_summary(store, domain="example.org")
    assert (org.reports, org.messages) == (2, 17)
    early = dmarc_summary(store, until=parse_day("--until", D1))
    assert [d["day"] for d in early.days] == [D1] and (early.reports, early.messages) == (1, 10)
    assert dmarc_summary(store, top=1).source_ips == [s.source_ips[0]]


def test_sparkline():
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁" and sparkline([]) == ""


def _run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), *args])


def test_cli(runner, data):
    data_dir = data
    r = _run(runner, data_dir, "tlsreports", "summary")
    assert r.exit_code == 0, r.output
    assert "3 report(s), 22 successful and 3 failed session(s)" in r.stdout
    assert f"failed sessions per day: {D1} █▁▅ {D3}" in r.stdout
    assert "certificate-expired" in r.stdout and "mx2.example.org" in r.stdout
    r = _run(runner, data_dir, "tlsreports", "summary", "--json", "--domain", "EXAMPLE.org")
    out = json.loads(r.stdout)
    assert out["domain"] == "example.org" and out["reports"] == 2 and out["since"] is None
    assert set(out) == {
        "since",
        "until",
        "domain",
        "reports",
        "successful_sessions",
        "failed_sessions",
        "days",
        "organizations",
        "result_types",
        "policy_domains",
        "failing_hosts",
    }
    r = _run(runner, data_dir, "tlsreports", "summary", "--format", "tsv")
    assert r.stdout.splitlines() == [
        "day\treports\tsuccessful sessions\tfailed sessions",
        f"{D1}\t2\t15\t2",
        "2026-11-02\t0\t0\t0",
        f"{D3}\t1\t7\t1",
    ]
    r = _run(runner, data_dir, "dmarcreports", "summary", "--since", D3)
    assert r.exit_code == 0 and "2 report(s), 9 message(s): 6 DMARC pass, 3 fail" in r.stdout
    assert "neither (DMARC fail)" in r.stdout
    r = _run(runner, data_dir, "dmarcreports", "summary", "--json")
    assert json.loads(r.stdout)["alignment"]["neither"] == 3
    r = _run(runner, data_dir, "dmarcreports", "summary", "--since", "November")
    assert r.exit_code == 2 and "--since 'November': expected YYYY-MM-DD" in r.stderr
    r = _run(runner, data_dir, "tlsreports", "summary", "--domain", "not a domain")
    assert r.exit_code == 2 and "invalid domain" in r.stderr

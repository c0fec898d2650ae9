"""send-tlsreports against the lab: real TLSRPT lookups, real delivery engine, lab Postfix.

Results for sts.test (TLSRPT rua mailto:tlsrpt@reports.test) and its MX host mx.sts.test
(rua mailto:mx-tlsrpt@reports.test) are sent with --deliver-now; the messages are read back
from LAB_MAILDIR, DKIM-verified with dkimpy and their gzip JSON parsed.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import json
import mailbox
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import lab_config_text
from helpers.dkim import make_dkim_config, verify_all

from moxcli.cli import cli
from moxcli.store import Store
from moxcli.tlsrpt import report as rp
from moxcli.tlsrpt import resultsdb as tstore

pytestmark = pytest.mark.lab


def _wait_messages(maildir: str, submitter: str, n: int, timeout: float = 15.0) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        found = []
        md = mailbox.Maildir(maildir, factory=None, create=False)
        for key in md.iterkeys():
            try:
                raw = md.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue
            if f"TLS-Report-Submitter: {submitter}\n".encode() in raw.replace(b"\r\n", b"\n"):
                found.append(raw)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_deliver_now_to_lab(lab, runner, tmp_path):
    tag = "r" + secrets.token_hex(4)
    submitter = f"{tag}.moxcli.test"
    cfg, dkim_dns = make_dkim_config(
        tmp_path, hostname=f"mail.{submitter}", domain=submitter, extra=lab_config_text(lab).split("\n", 1)[1]
    )
    data = tmp_path / "data"
    data.mkdir()
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
    sts = rp.Result(
        rp.Policy(
            "sts", ["version: STSv1", "mode: enforce", "mx: mx.sts.test", "max_age: 86400"], "sts.test", ["mx.sts.test"]
        ),
        5,
        1,
    )
    sts.add(
        0, 0, rp.FailureDetails("certificate-expired", "127.0.0.1", "mx.sts.test", "mx.sts.test ESMTP", "127.0.0.1", 1)
    )
    host = rp.make_result("no-policy-found", "mx.sts.test")
    host.add(5, 0)
    with Store.open(data) as store, store.write() as tx:
        tstore.add_results(
            tx,
            day,
            "sts.test",
            [
                {"policy_domain": "sts.test", "is_host": False, "send_report": True, "results": [sts]},
                {"policy_domain": "mx.sts.test", "is_host": True, "send_report": False, "results": [host]},
            ],
        )
        failed = rp.make_result(
            "no-policy-found",
            "mx.sts.test",
            rp.FailureDetails("starttls-not-supported", "", "mx.sts.test", "", "127.0.0.1", 1),
        )
        failed.add(0, 1)
        tstore.add_results(
            tx,
            day,
            "other.test",
            [{"policy_domain": "mx.sts.test", "is_host": True, "send_report": True, "results": [failed]}],
        )
    r = runner.invoke(
        cli, ["--data", str(data), "--config", str(cfg.path), "send-tlsreports", "--deliver-now", "--json"]
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    summary = lines[-1]
    assert summary["errors"] == [] and summary["reports"] == 2
    assert [d["outcome"] for d in summary["delivered"]] == ["delivered", "delivered"], summary["delivered"]

    msgs = _wait_messages(lab["LAB_MAILDIR"], submitter, 2)
    assert len(msgs) == 2
    by_rcpt = {}
    for raw in msgs:
        # Postfix prepends Return-Path/Delivered-To/Received; our prefix is the DKIM-Signature lines
        crlf = raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")
        verify_all(b"", crlf, dkim_dns)
        m = email.message_from_bytes(raw, policy=email.policy.default)
        assert m["TLS-Required"] == "No" and m.get_content_type() == "multipart/report"
        att = next(m.iter_attachments())
        assert att.get_content_type() == "application/tlsrpt+gzip"
        by_rcpt[m["TLS-Report-Domain"]] = (m, json.loads(gzip.decompress(att.get_content())))
    m1, rep1 = by_rcpt["sts.test"]
    assert "tlsrpt@reports.test" in m1["To"] and m1["TLS-Report-Submitter"] == submitter
    assert rep1["report-id"] == f"{day}.sts.test@{submitter}" and rep1["contact-info"] == f"postmaster@{submitter}"
    assert [(p["policy"]["policy-type"], p["policy"]["policy-domain"]) for p in rep1["policies"]] == [
        ("sts", "sts.test"),
        ("no-policy-found", "mx.sts.test"),
    ]
    assert rep1["policies"][0]["failure-details"][0]["receiving-mx-helo"] == "mx.sts.test ESMTP"
    m2, rep2 = by_rcpt["mx.sts.test"]
    assert "mx-tlsrpt@reports.test" in m2["To"]
    assert [(p["policy"]["policy-domain"], p["policy"]["mx-host"]) for p in rep2["policies"]] == [
        ("other.test", ["mx.sts.test"]),
        ("sts.test", ["mx.sts.test"]),
    ]

    # a second run for the same day sends nothing; the rows are gone
    r = runner.invoke(
        cli, ["--data", str(data), "--config", str(cfg.path), "send-tlsreports", "--deliver-now", "--json"]
    )
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[-1])["reports"] == 0
    with Store.open(data, readonly=True) as store, store.read() as tx:
        # only the results of delivering the reports themselves (today, send_report false)
        rows = list(tstore.iter_rows(tx))
    assert rows and all(not row.send_report and row.day_utc != day for row in rows)

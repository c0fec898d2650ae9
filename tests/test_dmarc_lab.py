"""DMARC reports through the delivery engine to the lab's Postfix, read back from its maildir.

The lab zones publish no `_dmarc` records, so the DMARC record lookup of the report job is
answered by a scripted resolver; delivery (MX, TLSA, STARTTLS, SMTP) uses the real lab.
"""

from __future__ import annotations

import json
import mailbox
import time
from pathlib import Path

import pytest
from conftest import lab_config_text
from helpers.dmarc import hour, report_xml, vector_eval
from helpers.dns import FakeResolver

from moxcli.config import parse_config
from moxcli.delivery.deliver import run_queue
from moxcli.dmarc.db import record_evaluations
from moxcli.dmarc.parse import parse_message
from moxcli.dmarc.schema import validate
from moxcli.reports.dmarc import send_dmarc_reports
from moxcli.store import Store
from moxcli.store import mail as mstore

pytestmark = pytest.mark.lab


def _wait_for(maildir: str, needle: bytes, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = mailbox.Maildir(maildir, create=False)
        for key in md.iterkeys():
            try:
                raw = md.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue
            if needle in raw:
                return raw
        time.sleep(0.1)
    raise AssertionError(f"no message with {needle!r} in {maildir}")


def _setup(lab, tmp_path: Path, policy_domain: str, rua: str):
    data = tmp_path / "data"
    data.mkdir()
    text = lab_config_text(lab)
    (data / "moxcli.toml").write_text(text)
    cfg = parse_config(text, data / "moxcli.toml")
    end = hour()
    ev = vector_eval(
        end,
        policy_domain=policy_domain,
        addresses=[rua],
        policy_published={"domain": policy_domain, "p": "reject", "adkim": "r", "aspf": "r"},
        header_from=policy_domain,
        envelope_from=policy_domain,
    )
    store = Store.open(data)
    record_evaluations(store, cfg, [json.dumps(ev)])
    resolver = FakeResolver({f"_dmarc.{policy_domain}": [f"v=DMARC1; p=reject; rua={rua}; ri=3600"]})
    return data, cfg, store, end, resolver


def test_report_round_trip_to_lab_postfix(lab, tmp_path):
    data, cfg, store, end, resolver = _setup(lab, tmp_path, "reports.test", "mailto:dmarc-reports@reports.test")
    with store:
        run = send_dmarc_reports(store, data, cfg, now=end + 60, resolver=resolver, deliver_now=True)
        d = run.domains[0]
        assert d.status == "queued" and d.queued_to == ["dmarc-reports@reports.test"]
        assert [(a["outcome"], a["tls"]) for a in run.delivered] == [("delivered", "pkix")], run.delivered
    raw = _wait_for(lab["LAB_MAILDIR"], d.report_id.encode())
    fb = parse_message(raw)
    assert fb.metadata.report_id == d.report_id and fb.policy.domain == "reports.test"
    assert fb.metadata.org_name == "mail.moxcli.test" and fb.records[0].count == 1
    assert validate(report_xml(raw), "rfc7489") == []
    assert b"Delivered-To: dmarc-reports@reports.test" in raw
    assert b"with ESMTPS" in raw  # delivered over STARTTLS (no plaintext fallback for DMARC reports)


def test_failed_report_dsn_goes_quietly_to_postmaster_dmarc(lab, tmp_path):
    data, cfg, store, end, resolver = _setup(lab, tmp_path, "nosuchdomain.test", "mailto:r@nosuchdomain.test")
    with store:
        run = send_dmarc_reports(store, data, cfg, now=end + 60, resolver=resolver)
        ids = run.domains[0].queue_ids
        results = []
        for _ in range(5):
            results = run_queue(store, data, cfg, ids=ids)
            if not results or results[-1].outcome == "failed":
                break
        assert results and results[-1].outcome == "failed" and results[-1].dsn, [r.to_json() for r in results]
        with store.read() as tx:
            mb = mstore.get_mailbox(tx, cfg.postmaster.account, f"{cfg.postmaster.mailbox}/dmarc")
            assert mb is not None, "no DSN mailbox Postmaster/dmarc"
            msgs = list(mstore.list_messages(tx, cfg.postmaster.account, mb.id))
            inbox = mstore.get_mailbox(tx, cfg.postmaster.account, "Inbox")
    assert len(msgs) == 1
    assert "\\Seen" in msgs[0].flags
    assert inbox is None  # the DSN went to Postmaster/dmarc only: no Inbox was made for it


def test_lookup_against_lab_dns(lab_data, runner):
    """The real resolver path: reports.test publishes a DMARC record, notls.test none."""
    from moxcli.cli import cli

    r = runner.invoke(cli, ["--data", str(lab_data), "dmarc", "lookup", "reports.test"])
    assert r.exit_code == 0, r.stderr
    assert "v=DMARC1; p=reject; rua=mailto:dmarc@reports.test" in r.stdout
    r = runner.invoke(cli, ["--data", str(lab_data), "dmarc", "lookup", "notls.test"])
    assert r.exit_code == 1
    assert "no DMARC record for notls.test" in r.stderr

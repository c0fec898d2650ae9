"""Our own files with real senders' quirks (testdata/realworld/, made by
scripts/make-realworld-testdata.py): TLS reports shaped like Google's and Microsoft's, DMARC
reports shaped like Google's, Yahoo's, Outlook.com's, mail.ru's and xs4all's, an RFC 9990
report, and mailboxes as Thunderbird and Dovecot leave them. Expected values come from the
generator's inputs (expect.json), not from an earlier run of the parser."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from helpers.dmarc import expected_summary, report_summary

from moxcli.cli import cli
from moxcli.dmarc.parse import parse_file, parse_message
from moxcli.mail.importer import import_maildir, import_mbox
from moxcli.reports import incoming_tls as inc
from moxcli.store import Store
from moxcli.store import mail as store_mail

REAL = ROOT / "testdata" / "realworld"
TLS_EXPECT = json.loads((REAL / "tlsrpt" / "expect.json").read_text())
DMARC_EXPECT = json.loads((REAL / "dmarc" / "expect.json").read_text())
IMPORT_EXPECT = json.loads((REAL / "import" / "expect.json").read_text())


@pytest.mark.parametrize("name", sorted(TLS_EXPECT))
def test_tls_report_shapes(name):
    want = TLS_EXPECT[name]
    pf = inc.parse_report_bytes((REAL / "tlsrpt" / name).read_bytes(), name)
    assert pf.report.organization_name == want["organization"]
    assert len(pf.report.policies) == want["policies"]
    assert pf.report.policies[0].policy.domain == "lakeside.example"
    assert len(pf.warnings) == len(want["warnings"]), pf.warnings
    for fragment, warning in zip(want["warnings"], pf.warnings, strict=True):
        assert fragment in warning


def test_tls_report_microsoft_times_taken_as_utc():
    pf = inc.parse_report_bytes((REAL / "tlsrpt" / "microsoft-no-timezone.eml").read_bytes(), "m.eml")
    assert (pf.report.start.isoformat(), pf.report.end.isoformat()) == (
        "2026-03-02T00:00:00+00:00",
        "2026-03-02T23:59:59+00:00",
    )


def test_tls_report_bare_lf_same_report_as_crlf():
    crlf = inc.parse_report_bytes((REAL / "tlsrpt" / "google-multipart.eml").read_bytes(), "a.eml")
    lf = inc.parse_report_bytes((REAL / "tlsrpt" / "google-bare-lf.eml").read_bytes(), "b.eml")
    assert lf.report == crlf.report


@pytest.mark.parametrize("name", sorted(DMARC_EXPECT))
def test_dmarc_report_shapes(name):
    case = DMARC_EXPECT[name]
    fb = parse_message((REAL / "dmarc" / name).read_bytes())
    assert report_summary(fb) == expected_summary(case)


def test_dmarc_rfc9990_report():
    fb = parse_file((REAL / "dmarc" / "harbor.example!rfc9990.xml").read_bytes())
    assert fb.schema == "rfc9990"
    assert fb.metadata.generator == "Harbor DMARC reporter 0.9"
    assert (fb.policy.domain, fb.policy.p, fb.policy.discovery_method) == ("harbor.example", "reject", "treewalk")
    assert [(r.source_ip, r.count) for r in fb.records] == [("198.51.100.61", 37)]


def test_dmarc_saved_gzip_file():
    fb = parse_file((REAL / "dmarc" / "mailru-saved.xml.gz").read_bytes())
    assert (fb.metadata.org_name, fb.metadata.report_id) == ("Mail.Ru", "77777000001772236800")
    assert [(r.source_ip, r.count) for r in fb.records] == [("203.0.113.89", 2)]


def _imported(data_dir, account, mailbox):
    with Store.open(data_dir, readonly=True) as st, st.read() as tx:
        mb = store_mail.get_mailbox(tx, account, mailbox)
        return list(store_mail.list_messages(tx, account, mb.id))


def _summary(msgs):
    return [{"flags": sorted(m.flags), "keywords": m.keywords, "received": m.received} for m in msgs]


def test_import_thunderbird_style_mbox(data_dir):
    res = import_mbox(data_dir, "bob", "Inbox", [str(REAL / "import" / "lakeside.mbox")])
    assert res.messages == 2 and res.warnings == []
    want = [dict(m, flags=sorted(m["flags"])) for m in IMPORT_EXPECT["mbox"]["messages"]]
    assert _summary(_imported(data_dir, "bob", "Inbox")) == want


def test_import_dovecot_style_maildir(data_dir):
    res = import_maildir(data_dir, "bob", "Lake", REAL / "import" / "lakeside.maildir")
    assert res.messages == 2 and res.warnings == []
    want = [dict(m, flags=sorted(m["flags"])) for m in IMPORT_EXPECT["maildir"]["messages"]]
    assert sorted(_summary(_imported(data_dir, "bob", "Lake")), key=lambda m: m["received"]) == want


def test_imported_mailboxes_verify(runner, data_dir):
    """Both mailboxes imported through the CLI pass verifydata with nothing to warn about."""
    from moxcli.datatools.verify import verify_data

    for kind, mailbox, src in (("mbox", "Archive", "lakeside.mbox"), ("maildir", "Maildir", "lakeside.maildir")):
        r = runner.invoke(cli, ["--data", str(data_dir), "import", kind, "alice", mailbox, str(REAL / "import" / src)])
        assert r.exit_code == 0, r.output
    res = verify_data(data_dir)
    assert res.ok and res.warnings == [], (res.problems, res.warnings)
    assert res.counts["message"] == res.counts["message_files"] == 4

"""Importing report mail: sources (files, directories, maildir, mbox), per-message outcomes,
dedupe, batches, the `reports import` sorting, the schema-2 migration of dedupe keys."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT
from helpers import reportmail as rm
from helpers.proc import moxcli_peak_rss

from moxcli.cli import cli
from moxcli.config import Config, parse_config
from moxcli.reports import incoming
from moxcli.reports import incoming_dmarc as idmarc
from moxcli.reports import incoming_tls as itls
from moxcli.store import Store
from moxcli.store import dmarc as dstore
from moxcli.store import tlsreports as tstore

NOW = rm.BASE + 400 * rm.DAY


def _run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), *args], env={"COLUMNS": "200"})


def _ndjson(text):
    return [json.loads(line) for line in text.splitlines()]


def _maildir(path, mails):
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True)
    for i, m in enumerate(mails):
        sub = "new" if i % 2 else "cur"
        (path / sub / f"{1700000000 + i}.M{i}P1.host{':2,S' if sub == 'cur' else ''}").write_bytes(m)
    return path


def _mbox(path, mails):
    with open(path, "wb") as f:
        for m in mails:
            f.write(b"From reports@example.org Sun Jan 11 06:00:00 2026\n" + m.replace(b"\r\n", b"\n") + b"\n")
    return path


def _messages(mails):
    return [incoming.Message(f"m{i}", m) for i, m in enumerate(mails)]


def test_outcomes_in_order_one_bad_message_does_not_stop_the_others(data_dir):
    mails = [rm.tls_mail("google", 1), rm.plain_mail(1), rm.broken_tls_mail(2), rm.tls_mail("google", 1)]
    mails += [rm.dmarc_mail("microsoft", 1)]
    got = []
    with Store.open(data_dir) as store:
        summary = incoming.import_messages(store, Config(), _messages(mails), on_outcome=got.append, now=NOW)
        assert [o.outcome for o in got] == ["imported", "not-a-report", "rejected", "duplicate", "imported"]
        assert [o.source for o in got] == ["m0", "m1", "m2", "m3", "m4"]
        assert got[3].id == got[0].id and got[3].kind == "tls" and got[4].kind == "dmarc"
        assert "invalid gzip data" in got[2].reason and got[2].id is None and got[2].reason_code == "invalid-report"
        assert summary.counts == {"imported": 2, "duplicate": 1, "not-a-report": 1, "rejected": 1}
        assert summary.imported_by_kind == {"tls": 1, "dmarc": 1} and not summary.ok
        assert [r.id for r in itls.list_reports(store)] == [got[0].id]
        assert [r.report_id for r in idmarc.list_reports(store)] == ["microsoft-1"]


@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_batches_give_the_same_outcomes(data_dir, batch_size):
    mails = rm.mailbox(8) + rm.mailbox(3)  # the last 3 repeat the first 3
    got = []
    with Store.open(data_dir) as store:
        incoming.import_messages(
            store, Config(), _messages(mails), on_outcome=got.append, now=NOW, batch_size=batch_size
        )
        assert [o.outcome for o in got] == ["imported"] * 8 + ["duplicate"] * 3
        assert [o.id for o in got[8:]] == [o.id for o in got[:3]]
        with store.read() as tx:
            assert tx.count(tstore.TLS_REPORT_IN) == 4 and tx.count(dstore.DMARC_REPORT_IN) == 4


def test_batch_gives_the_ids_of_one_transaction_per_report(tmp_path):
    """Ids reserved once per batch are the ones a transaction per report hands out, and the
    sequences end where they would."""
    mails = rm.mailbox(8) + rm.mailbox(3) + [rm.plain_mail(1), rm.broken_tls_mail(2)] + rm.mailbox(12)[8:]
    runs = {}
    for batch_size in (1, 500):
        got = []
        with Store.open(tmp_path / f"data-{batch_size}") as store:
            incoming.import_messages(
                store, Config(), _messages(mails), on_outcome=got.append, now=NOW, batch_size=batch_size
            )
            with store.read() as tx:
                seqs = (tx.peek_id(tstore.SEQUENCE), tx.peek_id(dstore.REPORT_SEQUENCE))
        runs[batch_size] = ([(o.outcome, o.kind, o.id) for o in got], seqs)
    assert runs[1] == runs[500]
    outcomes, seqs = runs[500]
    assert [o for o, _, _ in outcomes].count("imported") == 12 and seqs == (6, 6)
    assert [i for _, k, i in outcomes if k == "tls"][:4] == [1, 2, 3, 4]


def test_dedupe_key_parts(data_dir):
    """Same id and organisation but another day or another policy domain: another report."""
    base = rm.tls_json("google", 1)
    other_day = json.loads(base)
    other_day["date-range"]["end-datetime"] = "2026-01-12T00:00:00Z"
    other_domain = rm.tls_json("google", 1, domain="example.net")
    other_org = json.loads(base)
    other_org["organization-name"] = "Not Google"
    inputs = [base, json.dumps(other_day).encode(), other_domain, json.dumps(other_org).encode(), base]
    got = []
    with Store.open(data_dir) as store:
        incoming.import_messages(store, Config(), _messages(inputs), ("tls",), got.append, now=NOW)
    assert [o.outcome for o in got] == ["imported"] * 4 + ["duplicate"]

    x = [rm.dmarc_xml("google", 1), rm.dmarc_xml("google", 2), rm.dmarc_xml("google", 1, domain="example.net")]
    x.append(rm.dmarc_xml("google", 1).replace(b"<org_name>google.com", b"<org_name>other.example"))
    x.append(rm.dmarc_xml("google", 1))
    got = []
    with Store.open(data_dir) as store:
        incoming.import_messages(store, Config(), _messages(x), ("dmarc",), got.append, now=NOW)
    assert [o.outcome for o in got] == ["imported"] * 4 + ["duplicate"]


def test_kind_restriction_and_domains(tmp_path, data_dir):
    text = 'hostname = "mail.example.org"\n[domains."example.org"]\n'
    cfg = parse_config(text, tmp_path / "moxcli.toml")
    mails = [rm.dmarc_mail("google", 1), rm.tls_mail("google", 1, domain="other.example")]
    mails.append(rm.dmarc_mail("google", 2, domain="other.example"))
    got = []
    with Store.open(data_dir) as store:
        incoming.import_messages(store, cfg, _messages(mails), ("tls",), got.append, now=NOW)
        assert [o.outcome for o in got] == ["not-a-report", "rejected", "not-a-report"]
        assert got[1].reason == "no domains in report recognized (other.example)"
        assert got[1].reason_code == "not-our-domain"
        got.clear()
        incoming.import_messages(store, cfg, _messages(mails), ("dmarc", "tls"), got.append, now=NOW)
        assert [o.outcome for o in got] == ["imported", "rejected", "rejected"]
        assert got[2].reason == "published policy domain unrecognized: other.example"
        assert got[2].reason_code == "not-our-domain"


def test_future_report_rejected(data_dir):
    got = []
    with Store.open(data_dir) as store:
        incoming.import_messages(
            store, Config(), _messages([rm.dmarc_mail("google", 1)]), on_outcome=got.append, now=rm.BASE
        )
    assert got[0].outcome == "rejected" and got[0].reason.startswith("report has end date in the future")
    assert got[0].reason_code == "future-report"


def test_cli_maildir_mbox_directory(runner, data_dir, tmp_path):
    md = _maildir(tmp_path / "Maildir", [*rm.mailbox(6), rm.plain_mail(1)])
    (md / "tmp" / "in-progress").write_bytes(rm.tls_mail("google", 99))  # tmp/ is never read
    mbox = _mbox(tmp_path / "reports.mbox", rm.mailbox(8))  # 6 duplicates, 2 new
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "r.json").write_bytes(rm.tls_json("microsoft", 50))
    (d / ".hidden").write_bytes(b"junk")
    r = _run(runner, data_dir, "reports", "import", "--json", str(d), "--maildir", str(md), "--mbox", str(mbox))
    assert r.exit_code == 0, r.output
    out = _ndjson(r.stdout)
    msgs, summary = out[:-1], out[-1]
    assert msgs[0]["source"] == str(d / "sub" / "r.json") and msgs[0]["outcome"] == "imported"
    assert sorted(m["outcome"] for m in msgs[1:8]) == ["imported"] * 6 + ["not-a-report"]
    assert all(m["source"].startswith(f"{md}/new/") for m in msgs[1:4])
    assert [m["outcome"] for m in msgs[8:]] == ["duplicate"] * 6 + ["imported"] * 2
    assert msgs[8]["source"] == f"{mbox}:1"
    assert summary["messages"] == 16 and summary["duplicate"] == 6 and summary["not_a_report"] == 1
    assert summary["imported_by_kind"] == {"tls": 5, "dmarc": 4}
    r = _run(runner, data_dir, "tlsreports", "import", "--maildir", str(md))
    assert r.exit_code == 0
    assert r.stdout == "" and r.stderr == "7 message(s): 0 imported, 4 duplicate, 3 not a report, 0 rejected\n"
    r = _run(runner, data_dir, "dmarcreports", "import", "--mbox", str(mbox), "--list")
    assert r.exit_code == 0 and r.stdout.count("duplicate") == 4 and r.stdout.count("not-a-report") == 4
    assert r.stderr == "8 message(s): 0 imported, 4 duplicate, 4 not a report, 0 rejected\n"
    r = _run(runner, data_dir, "dmarcreports", "import", "--mbox", str(mbox), "--list", "--format", "tsv")
    assert r.stdout.splitlines()[0].split("\t")[:2] == ["source", "outcome"] and len(r.stdout.splitlines()) == 9


def test_cli_exit_codes_and_usage_errors(runner, data_dir, tmp_path):
    bad = tmp_path / "bad.eml"
    bad.write_bytes(rm.broken_tls_mail(1))
    good = tmp_path / "good.eml"
    good.write_bytes(rm.tls_mail("google", 1))
    r = _run(runner, data_dir, "reports", "import", str(good), str(bad))
    assert r.exit_code == 1 and f"warning: {bad}: rejected: application/tlsrpt+gzip: invalid gzip" in r.stderr
    assert r.stderr.endswith("2 message(s): 1 imported, 0 duplicate, 0 not a report, 1 rejected\n")
    for args, msg in [
        ((str(tmp_path / "nope"),), "no such file or directory"),
        (("--maildir", str(tmp_path)), "not a maildir"),
        (("--mbox", str(good)), 'first line does not start with "From "'),
        ((str(good), "--archive-folder", "A"), "apply to --imap only"),
        ((), "nothing to import"),
        (("--imap", "imaps://:pw@host/INBOX"), "no password in the URL"),
        (("--imap", "ftp://u@host/"), "not an imap:// or imaps:// URL"),
        (("--imap", "imaps://u@host/INBOX"), "no IMAP password"),
    ]:
        r = _run(runner, data_dir, "reports", "import", *args)
        assert r.exit_code == 2 and msg in r.stderr and "Traceback" not in r.output, (args, r.output)


def test_too_large_input_rejected(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(incoming, "MAX_INPUT", 1000)
    f = tmp_path / "big.eml"
    f.write_bytes(rm.tls_mail("google", 1) + b"x" * 1000)
    (o,) = itls.import_files(Store.open(data_dir), Config(), [f])
    assert o.outcome == "rejected" and o.reason == "larger than 1000 bytes, refused" and o.reason_code == "too-large"


def test_v1_store_gets_dedupe_keys(data_dir, tmp_path):
    """The schema-1 fixture's stored report (it has one DMARC report) is indexed by the migration."""
    with tarfile.open(ROOT / "testdata" / "upgrade" / "v1.tar.gz") as t:
        t.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    with Store.open(data) as store:
        dm = idmarc.list_reports(store)
        assert len(dm) == 1
        with store.read() as tx:
            rec = dstore.get_report(tx, dm[0].id)
            assert rec is not None
            assert dstore.find_duplicate_report(tx, rec.dedupe_key()) == dm[0].id


def test_migration_keeps_every_copy_of_a_report_stored_twice(data_dir, monkeypatch):
    from moxcli.store import migrate, schema

    rec = tstore.StoredTLSReport(
        imported=1.0,
        source="r.json",
        from_domain="",
        policy_domains=("example.org",),
        host_report=False,
        warnings=(),
        report=json.loads(rm.tls_json("google", 1)),
    )
    with Store.open(data_dir) as store, store.write() as tx:
        ids = [tstore.add(tx, rec), tstore.add(tx, rec)]
        tx.delete(schema.TLS_REPORT_IN_BY_KEY, rec.dedupe_key())
        tx.set_meta("schema_version", schema.SCHEMA_VERSION - 1)  # the schema before dedupe keys
    assert migrate.MIGRATIONS[schema.SCHEMA_VERSION - 1].__name__ == "_v2_report_dedupe_keys"
    with Store.open(data_dir) as store, store.read() as tx:
        assert tx.meta("schema_version") == schema.SCHEMA_VERSION
        assert [r.id for r in tstore.scan(tx, newest_first=False)] == ids
        assert tstore.find_duplicate(tx, rec.dedupe_key()) == ids[0]


def test_imap_password_config(tmp_path, monkeypatch):
    from moxcli.errors import ConfigError
    from moxcli.reports.imap import parse_url, password

    (tmp_path / "pw").write_text("s3cret\n")
    cfg = parse_config('[imap]\npassword_file = "pw"\n', tmp_path / "moxcli.toml")
    assert password(cfg) == "s3cret"
    cfg = parse_config('[imap]\npassword_env = "MOXCLI_TEST_PW"\n', tmp_path / "moxcli.toml")
    with pytest.raises(ConfigError, match="MOXCLI_TEST_PW"):
        password(cfg)
    monkeypatch.setenv("MOXCLI_TEST_PW", "from-env")
    assert password(cfg) == "from-env"
    with pytest.raises(ConfigError, match="not both"):
        parse_config('[imap]\npassword_file = "pw"\npassword_env = "X"\n', tmp_path / "moxcli.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config('[imap]\npassword = "x"\n', tmp_path / "moxcli.toml")
    u = parse_url("imap://reports%40example.org@127.0.0.1:1143/Reports%20In")
    assert (u.tls, u.user, u.host, u.port, u.mailbox) == (
        "starttls",
        "reports@example.org",
        "127.0.0.1",
        1143,
        "Reports In",
    )
    assert parse_url("imaps://u@h").port == 993 and parse_url("imaps://u@h").mailbox == "INBOX"


def test_dmarc_show_json_pct_is_a_number(runner, data_dir, tmp_path):
    with_pct = tmp_path / "a.xml"
    with_pct.write_bytes(rm.dmarc_xml("google", 1))
    without = tmp_path / "b.xml"
    without.write_bytes(rm.dmarc_xml("google", 2).replace(b"<pct>100</pct>", b""))
    r = _run(runner, data_dir, "dmarcreports", "import", str(with_pct), str(without))
    assert r.exit_code == 0, r.output
    pcts = [json.loads(_run(runner, data_dir, "dmarcreports", "show", i, "--json").stdout) for i in ("1", "2")]
    assert [p["report"]["policy"]["pct"] for p in pcts] == [100, None]


KILL_CHILD = """
import os, signal, sys
from moxcli.reports import incoming_tls
add = incoming_tls.add
calls = [0]
def killing_add(tx, prepared, rid):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)  # in the middle of the second batch's transaction
    return add(tx, prepared, rid)
incoming_tls.add = killing_add
from moxcli.cli import cli
cli.main(args=sys.argv[1:], prog_name="moxcli")
"""


def test_killed_import_keeps_committed_batches(tmp_path):
    """SIGKILL inside a batch's transaction: the batches before it stay, the store verifies,
    and importing again stores the rest and calls the stored ones duplicates."""
    import os
    import signal

    from moxcli.datatools.verify import verify_data
    from moxcli.reports.incoming import BATCH_SIZE

    total = BATCH_SIZE * 2 + 100
    md = _maildir(tmp_path / "md", [rm.tls_mail("google", i, day=i % 300) for i in range(total)])
    data = tmp_path / "data"
    args = ["--data", str(data), "tlsreports", "import", "--maildir", str(md)]
    env = {**os.environ, "KILL_AT": str(BATCH_SIZE + 200), "MOXCLI_QUIET_PERMISSIONS": "1"}
    r = subprocess.run([sys.executable, "-c", KILL_CHILD, *args], env=env, capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL
    with Store.open(data, readonly=True) as store, store.read() as tx:
        assert tx.count(tstore.TLS_REPORT_IN) == BATCH_SIZE
    assert verify_data(data).ok
    r = subprocess.run([sys.executable, "-m", "moxcli", *args, "--json"], env=env, capture_output=True, timeout=300)
    summary = json.loads(r.stdout.splitlines()[-1])
    assert (summary["imported"], summary["duplicate"]) == (total - BATCH_SIZE, BATCH_SIZE)


def _large_tls_report(n: int, details: int) -> bytes:
    """A TLS report of about ``details`` * 200 bytes of JSON: many failure details."""
    rep = json.loads(rm.tls_json("google", n))
    pol = rep["policies"][0]
    pol["failure-details"] = [
        {
            "result-type": "certificate-expired",
            "sending-mta-ip": f"192.0.2.{j % 250}",
            "receiving-mx-hostname": f"mx{j}.example.org",
            "failed-session-count": 1,
            "failure-reason-code": "x" * 40,
        }
        for j in range(details)
    ]
    pol["summary"]["total-failure-session-count"] = details
    return json.dumps(rep).encode()


def test_importing_many_large_reports_keeps_memory_flat(data_dir, tmp_path):
    """300 reports of 100 KB (30 MB): each batch's records are let go after its commit, so the
    peak RSS is that of a few reports, not of all of them (docs/tls-reports.md, "Memory")."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(300):
        (src / f"r{i:03d}.json").write_bytes(_large_tls_report(i, 500))
    r = moxcli_peak_rss("--data", str(data_dir), "tlsreports", "import", str(src), timeout=600)
    assert r.returncode == 0, r.stderr
    assert b"300 message(s): 300 imported, 0 duplicate, 0 not a report, 0 rejected" in r.stderr
    with Store.open(data_dir) as store, store.read() as tx:
        assert tx.count(tstore.TLS_REPORT_IN) == 300
    # Peak RSS of the CLI (KiB): 45 MB measured; 16 MiB batches without letting go: 99 MB.
    assert int(r.stdout) < 75 << 10, int(r.stdout)


@pytest.mark.parametrize(
    "data,kind,reason",
    [
        (gzip.compress(b'{"organization-name": "' + b" " * (2 << 20) + b'"}'), "tls", "gzip TLS report: expands"),
        (gzip.compress(b"\xef\xbb\xbf \r\n[" + b" " * (2 << 20) + b"]"), "tls", "gzip TLS report: expands"),
        (gzip.compress(b"<feedback>" + b" " * (2 << 20) + b"</feedback>"), "dmarc", "could not parse report: gzip:"),
    ],
)
def test_reports_import_names_the_kind_of_a_gzip_bomb(runner, data_dir, tmp_path, data, kind, reason):
    """`reports import` sorts a gzip file by its decompressed start: a TLS bomb is refused by
    the TLS parser (its reason), a DMARC bomb by the DMARC parser; kind says which."""
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(data)
    r = _run(runner, data_dir, "reports", "import", "--json", str(bomb))
    assert r.exit_code == 1
    (msg, _summary) = _ndjson(r.stdout)
    assert msg["outcome"] == "rejected" and msg["reason_code"] == "decompression-bomb"
    assert msg["kind"] == kind and msg["reason"].startswith(reason) and "a decompression bomb" in msg["reason"]


def test_rejected_outcome_names_the_kind_that_refused_it(data_dir):
    got = []
    mails = [rm.broken_tls_mail(1), rm.dmarc_mail("google", 1).replace(b"Content-Transfer-Encoding", b"X-No")]
    with Store.open(data_dir) as store:
        incoming.import_messages(store, Config(), _messages(mails), on_outcome=got.append, now=NOW)
    assert [(o.outcome, o.kind) for o in got] == [("rejected", "tls"), ("rejected", "dmarc")]

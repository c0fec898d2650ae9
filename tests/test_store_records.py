"""Typed store records: what they write is the documented on-disk map (no migration needed),
and what they read back is the record they wrote."""

from __future__ import annotations

import json

import pytest
from helpers.dmarc import hour, vector_eval

from moxcli.dmarc import db as evaldb
from moxcli.dmarc.evaluation import parse_lines
from moxcli.errors import StoreError
from moxcli.jsonfmt import Finding
from moxcli.store import Store, mail
from moxcli.store import dmarc as dstore
from moxcli.store import tlsreports as tstore
from moxcli.store.schema import (
    ACCOUNT,
    DMARC_EVAL,
    DMARC_REPORT_IN,
    MAILBOX,
    MESSAGE,
    TLS_REPORT_IN,
    TLS_RESULT,
    text_key,
    u64,
)
from moxcli.tlsrpt import report as rp
from moxcli.tlsrpt import resultsdb as tlsresults
from moxcli.values import replace

TLS_REPORT = {
    "organization-name": "Example Org",
    "date-range": {"start-datetime": "2024-02-26T00:00:00Z", "end-datetime": "2024-02-26T23:59:59Z"},
    "contact-info": "tlsrpt@example.net",
    "report-id": "r1",
    "policies": [],
}


def _tls_report(rid: int = 0) -> tstore.StoredTLSReport:
    return tstore.StoredTLSReport(
        imported=1_700_000_000.5,
        source="r.json",
        from_domain="example.net",
        policy_domains=("example.org", "ünicode.example"),
        host_report=True,
        warnings=(Finding("bare-lf", "bare LF"),),
        report=TLS_REPORT,
        id=rid,
    )


def test_tls_report_map_and_round_trip(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        rid = tstore.add(tx, _tls_report())
        raw = dict(tx.get(TLS_REPORT_IN, u64(rid)) or {})
        got = tstore.get(tx, rid)
    raw.pop("_v")
    assert raw == {
        "imported": 1_700_000_000.5,
        "source": "r.json",
        "from_domain": "example.net",
        "policy_domains": ["example.org", "ünicode.example"],
        "host_report": True,
        "warnings": [{"code": "bare-lf", "message": "bare LF"}],
        "report": TLS_REPORT,
        "id": rid,
    }
    assert got == _tls_report(rid)
    assert [w.code for w in got.warnings] == ["bare-lf"]
    assert got.to_json()["imported"] == "2023-11-14T22:13:20Z"
    assert got.to_json()["warnings"] == [{"code": "bare-lf", "message": "bare LF"}]


def test_tls_report_warnings_stored_as_text_read_as_unclassified(data_dir):
    """Records imported before moxcli 0.2.0 kept each warning's message only."""
    with Store.open(data_dir) as store, store.write() as tx:
        rec = {"id": 8, "policy_domains": ["example.org"], "warnings": ["bare LF"], "report": TLS_REPORT}
        tx.put(TLS_REPORT_IN, u64(8), rec)
        got = tstore.get(tx, 8)
    assert got.to_json()["warnings"] == [{"code": "unclassified", "message": "bare LF"}]


def test_tls_report_old_record_without_optional_fields(data_dir):
    """A record with only the fields every version wrote reads with empty defaults."""
    with Store.open(data_dir) as store, store.write() as tx:
        tx.put(TLS_REPORT_IN, u64(7), {"id": 7, "policy_domains": ["example.org"], "report": TLS_REPORT})
        got = tstore.get(tx, 7)
    assert got == tstore.StoredTLSReport(None, "", "", ("example.org",), False, (), TLS_REPORT, 7)
    assert got.to_json()["source"] is None and got.to_json()["from_domain"] is None


def test_tls_report_damaged_record_is_one_store_error(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        tx.put(TLS_REPORT_IN, u64(8), {"policy_domains": ["example.org"]})
        with pytest.raises(StoreError, match=r"table tlsreportin.*run moxcli verifydata"):
            tstore.get(tx, 8)


def _dmarc_report(rid: int = 0) -> dstore.StoredDMARCReport:
    return dstore.StoredDMARCReport(
        policy_domain="ünicode.example",
        org_name="Example Org",
        report_id="r1",
        begin=1_700_000_000,
        end=1_700_086_399,
        schema="rfc7489",
        source="r.xml",
        added=1_700_100_000.25,
        report={"records": []},
        id=rid,
    )


def test_dmarc_report_map_and_round_trip(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        rid = dstore.add_report(tx, _dmarc_report())
        raw = dict(tx.get(DMARC_REPORT_IN, u64(rid)) or {})
        got = dstore.get_report(tx, rid)
        listed = list(dstore.list_reports(tx, "ünicode.example"))
        assert dstore.find_duplicate_report(tx, _dmarc_report().dedupe_key()) == rid
    raw.pop("_v")
    assert raw == {
        "policy_domain": "ünicode.example",
        "org_name": "Example Org",
        "report_id": "r1",
        "begin": 1_700_000_000,
        "end": 1_700_086_399,
        "schema": "rfc7489",
        "source": "r.xml",
        "added": 1_700_100_000.25,
        "report": {"records": []},
        "id": rid,
    }
    assert got == _dmarc_report(rid) and listed == [got]


def test_dmarc_report_without_report_map_is_one_store_error(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        tx.put(DMARC_REPORT_IN, u64(3), {"id": 3, "policy_domain": "example.org", "report": "x"})
        with pytest.raises(StoreError, match=r"table dmarcreportin.*run moxcli verifydata"):
            dstore.get_report(tx, 3)


def test_dmarc_evaluations_map_and_round_trip(data_dir):
    """Evaluations are the DMARC feature's own records: Evaluation.to_record() on disk, keyed by
    policy domain and id; read back as Evaluations with their ids."""
    end = hour(1_700_000_000)
    lines = [
        json.dumps(vector_eval(end)),
        json.dumps(vector_eval(end, policy_domain="b.example")),
        json.dumps(vector_eval(end - 10 * 86400)),
    ]
    evals = parse_lines(lines, end)
    with Store.open(data_dir) as store, store.write() as tx:
        ids = evaldb.add_evaluations(tx, evals)
        raw = dict(tx.get(DMARC_EVAL, text_key(evals[0].policy_domain, ids[0])) or {})
        first = list(evaldb.evaluations(tx, evals[0].policy_domain))
        domains = evaldb.policy_domains(tx)
        removed = evaldb.delete_older_than(tx, end - 86400)
        left = [e.id for e in evaldb.evaluations(tx)]
    raw.pop("_v")
    assert raw == json.loads(json.dumps(evals[0].to_record()))  # msgpack stores tuples as arrays
    assert first == [replace(evals[0], id=ids[0]), replace(evals[2], id=ids[2])]
    assert domains == sorted({evals[0].policy_domain, "b.example"})
    assert (removed, sorted(left)) == (1, ids[:2])


def test_dmarc_evaluation_damaged_record_is_one_store_error(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        tx.put(DMARC_EVAL, text_key("example.org", 1), {"policy_domain": "example.org"})
        with pytest.raises(StoreError, match=r"table dmarceval.*run moxcli verifydata"):
            list(evaldb.evaluations(tx))
        with pytest.raises(StoreError, match=r"table dmarceval"):
            evaldb.delete_older_than(tx, 0)


def test_mail_records_map_and_round_trip(data_dir):
    """Account, mailbox and message records keep the data contract's maps (docs/development.md)."""
    with Store.open(data_dir) as store, store.write() as tx:
        acc, created = mail.ensure_account(tx, "alice", "alice@example.org")
        again, created_again = mail.ensure_account(tx, "alice", "a2@example.org")
        mb, _ = mail.ensure_mailbox(tx, "alice", "Lists/x", "\\Archive")
        msg = mail.add_message(tx, "alice", mb, 7, 100, 1_700_000_000.5, ["\\Seen"], ["work"])
        fresh_map = dict(tx.get(MAILBOX, text_key("alice", mb.id)) or {})
        mb.add_keywords(["work"])
        mail.put_mailbox(tx, "alice", mb)
        acc_map = dict(tx.get(ACCOUNT, b"alice") or {})
        mb_map = dict(tx.get(MAILBOX, text_key("alice", mb.id)) or {})
        msg_map = dict(tx.get(MESSAGE, text_key("alice", mb.id, msg.uid)) or {})
        names = [m.name for m in mail.list_mailboxes(tx, "alice")]
        assert mail.get_mailbox(tx, "alice", "Lists/x") == mb
        assert list(mail.list_messages(tx, "alice", mb.id)) == [msg]
        assert list(mail.list_accounts(tx)) == [again]
    for m in (fresh_map, acc_map, mb_map, msg_map):
        m.pop("_v")
    assert (created, created_again) == (True, False)
    assert acc_map == {"name": "alice", "created": acc.created, "addresses": ["alice@example.org", "a2@example.org"]}
    assert again.addresses == ("alice@example.org", "a2@example.org")
    assert "keywords" not in fresh_map  # a mailbox without keywords has no such field
    assert mb_map == {
        "id": mb.id,
        "name": "Lists/x",
        "special_use": "\\Archive",
        "uidvalidity": mb.uidvalidity,
        "uidnext": 2,
        "messages": 1,
        "size": 100,
        "created": mb.created,
        "keywords": ["work"],
    }
    assert msg_map == {
        "id": 7,
        "uid": 1,
        "mailbox_id": mb.id,
        "size": 100,
        "received": 1_700_000_000.5,
        "flags": ["\\Seen"],
        "keywords": ["work"],
    }
    assert names == ["Lists", "Lists/x"]


def test_import_record_value_and_ranges(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        mail.begin_import(tx, "bob", mail.ImportRecord(pid=42, started=5.0, account_dir_existed=False))
        first = mail.reserve_message_ids(tx, "bob", 10)
        second = mail.reserve_message_ids(tx, "bob", 5)
        value = tx.meta("import:bob")
        pending = list(mail.unfinished_imports(tx))
        mail.finish_import(tx, "bob", None)
        assert (mail.get_import(tx, "bob"), tx.meta("seq:message:bob")) == (None, None)
    assert value == {"pid": 42, "started": 5.0, "account_dir_existed": False, "ranges": [[1, 10], [11, 15]]}
    assert (first, second) == (1, 11)
    assert pending == [("bob", mail.ImportRecord(42, 5.0, False, ((1, 10), (11, 15))))]


def test_damaged_mailbox_record_is_one_store_error(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        tx.put(MAILBOX, text_key("alice", 1), {"id": 1, "name": "Inbox"})
        with pytest.raises(StoreError, match=r"table mailbox.*run moxcli verifydata"):
            list(mail.list_mailboxes(tx, "alice"))


def test_tls_result_packed_rows_keep_the_map(data_dir):
    """The report job's packed rows write back exactly the map ResultRow writes, with only the
    sent flags changed; unpacked they are the ResultRow."""
    result = rp.Result(rp.Policy("sts", ["version: STSv1"], "example.org", ["mx.example.org"]), 3, 1, [])
    row = {"policy_domain": "example.org", "is_host": False, "send_report": True, "results": [result]}
    with Store.open(data_dir) as store, store.write() as tx:
        tlsresults.add_results(tx, "20240301", "example.org", [row], now=100.0)
        key = text_key("20240301", "example.org", "example.org")
        before = dict(tx.get(TLS_RESULT, key) or {})
        (packed,) = tlsresults.packed_rows_for_recipient_domain(tx, "20240301", "example.org")
        (full,) = tlsresults.rows_for_policy_domain(tx, "20240301", "example.org")
        tlsresults.mark_sent_recipient_domain(tx, "20240301", "example.org", ["mailto:r@example.org"])
        tlsresults.mark_sent_policy_domain(tx, "20240301", "example.org")
        after = dict(tx.get(TLS_RESULT, key) or {})
    assert packed.to_record() == {k: v for k, v in before.items() if k != "_v"}
    assert packed.unpacked() == full and full.results == [result]
    assert after == {
        **before,
        "sent_to_recipient_domain": True,
        "recipient_domain_reporting_addresses": ["mailto:r@example.org"],
        "sent_to_policy_domain": True,
    }

"""moxcli.tlsrpt.resultsdb: insert-or-merge per attempt (docs/behaviour-notes.md §2.1), queries for the sender."""

from __future__ import annotations

import sys

from moxcli.store import Store
from moxcli.tlsrpt import report as rp
from moxcli.tlsrpt import resultsdb as tr


def _sts(success: int, failure: int, *details: rp.FailureDetails) -> rp.Result:
    return rp.Result(
        rp.Policy("sts", ["version: STSv1"], "xn--74h.example", ["*.xn--74h.example"]), success, failure, list(details)
    )


def _tlsa(success: int, failure: int) -> rp.Result:
    return rp.Result(rp.Policy("tlsa", ["3 1 1 aa"], "mailhost.xn--74h.example", []), success, failure, [])


EXPIRED = rp.FailureDetails("certificate-expired", "1.2.3.4", "mailhost.xn--74h.example", "", "4.3.2.1", 1)


def test_insert_then_merge(data_dir):
    with Store.open(data_dir) as store:
        with store.write() as tx:
            tr.add_results(
                tx,
                "20240301",
                "xn--74h.example",
                [
                    {
                        "policy_domain": "xn--74h.example",
                        "is_host": False,
                        "send_report": False,
                        "results": [_sts(1, 0)],
                    },
                    {
                        "policy_domain": "mailhost.xn--74h.example",
                        "is_host": True,
                        "send_report": False,
                        "results": [_tlsa(1, 0)],
                    },
                ],
                now=100.0,
            )
        with store.write() as tx:
            tr.add_results(
                tx,
                "20240301",
                "☺.example",
                [
                    {
                        "policy_domain": "☺.example",
                        "is_host": False,
                        "send_report": True,
                        "results": [_sts(0, 1, EXPIRED).to_json()],
                    }
                ],
                now=200.0,
            )
            tr.add_results(
                tx,
                "20240301",
                "☺.example",
                [
                    {
                        "policy_domain": "☺.example",
                        "is_host": False,
                        "send_report": False,
                        "results": [_sts(2, 1, EXPIRED)],
                    }
                ],
                now=300.0,
            )
        with store.read() as tx:
            rows = tr.rows_for_recipient_domain(tx, "20240301", "☺.example")
            assert [(r.policy_domain, r.recipient_domain) for r in rows] == [
                ("☺.example", "☺.example"),
                ("mailhost.☺.example", "☺.example"),
            ]
            sts = rows[0]
            assert sts.send_report is True  # OR-ed
            assert (sts.created, sts.updated) == (100.0, 300.0)
            assert len(sts.results) == 1
            r = sts.results[0]
            assert (r.success, r.failure) == (3, 2)
            assert [d.failed_session_count for d in r.details] == [2]
            assert tr.count(tx) == 2


def test_empty_policy_type_skipped(data_dir):
    with Store.open(data_dir) as store, store.write() as tx:
        tr.add_results(
            tx,
            "20240301",
            "a.example",
            [
                {
                    "policy_domain": "a.example",
                    "is_host": False,
                    "send_report": True,
                    "results": [rp.make_result("", "a.example")],
                }
            ],
        )
        assert tr.count(tx) == 0


def _fill(store: Store) -> None:
    with store.write() as tx:
        for day in ("20240228", "20240229", "20240301", "20240302"):
            tr.add_results(
                tx,
                day,
                "☺.example",
                [
                    {
                        "policy_domain": "☺.example",
                        "is_host": False,
                        "send_report": day == "20240301",
                        "results": [_sts(1, 0)],
                    },
                    {
                        "policy_domain": "mailhost.☺.example",
                        "is_host": True,
                        "send_report": False,
                        "results": [_tlsa(1, 0)],
                    },
                ],
            )
            tr.add_results(
                tx,
                day,
                "sharedsender.example",
                [
                    {
                        "policy_domain": "mailhost.☺.example",
                        "is_host": True,
                        "send_report": True,
                        "results": [_tlsa(1, 1)],
                    }
                ],
            )


def test_report_keys_partition_and_order(data_dir):
    with Store.open(data_dir) as store:
        _fill(store)
        with store.read() as tx:
            rcpt, host = tr.report_keys(tx, "20240301")
        assert rcpt == [
            tr.ReportKey("20240228", "☺.example", False),
            tr.ReportKey("20240229", "☺.example", False),
            tr.ReportKey("20240301", "☺.example", True),
        ]
        assert host == [tr.ReportKey(d, "mailhost.☺.example", True) for d in ("20240228", "20240229", "20240301")]
        with store.read() as tx:
            rows = tr.rows_for_policy_domain(tx, "20240301", "mailhost.xn--74h.example")
        # by recipient domain, byte-wise: sharedsender.example before ☺.example
        assert [r.recipient_domain for r in rows] == ["sharedsender.example", "☺.example"]


def test_mark_sent_and_delete(data_dir):
    with Store.open(data_dir) as store:
        _fill(store)
        with store.write() as tx:
            assert tr.mark_sent_recipient_domain(tx, "20240301", "☺.example", ["mailto:a@x.example"]) == 2
            assert tr.mark_sent_policy_domain(tx, "20240301", "mailhost.☺.example") == 2
        with store.read() as tx:
            rows = {(r.policy_domain, r.recipient_domain): r for r in tr.iter_rows(tx, day="20240301")}
        assert rows[("☺.example", "☺.example")].recipient_domain_reporting_addresses == ["mailto:a@x.example"]
        assert rows[("mailhost.☺.example", "☺.example")].sent_to_recipient_domain
        assert not rows[("mailhost.☺.example", "sharedsender.example")].sent_to_recipient_domain
        assert all(r.sent_to_policy_domain for (p, _), r in rows.items() if p == "mailhost.☺.example")
        with store.write() as tx:
            assert tr.delete_policy_domain(tx, "20240301", "mailhost.☺.example") == 2
            assert tr.delete_before(tx, "20240229") == 3
        with store.read() as tx:
            left = sorted((r.day_utc, r.policy_domain, r.recipient_domain) for r in tr.iter_rows(tx))
            rcpt, host = tr.report_keys(tx, "99999999")
        assert left == [
            ("20240229", "mailhost.☺.example", "sharedsender.example"),
            ("20240229", "mailhost.☺.example", "☺.example"),
            ("20240229", "☺.example", "☺.example"),
            ("20240301", "☺.example", "☺.example"),
            ("20240302", "mailhost.☺.example", "sharedsender.example"),
            ("20240302", "mailhost.☺.example", "☺.example"),
            ("20240302", "☺.example", "☺.example"),
        ]
        # the index follows the rows
        assert [k.day_utc for k in host] == ["20240229", "20240302"]
        assert [k.day_utc for k in rcpt] == ["20240229", "20240301", "20240302"]


def test_day_utc():
    assert tr.day_utc(0) == "19700101"
    assert tr.day_utc(1709337599) == "20240301"


def test_drop_read_pages_keeps_reads_working(data_dir):
    with Store.open(data_dir) as store:
        _fill(store)
        with store.read() as tx:
            before = [r.to_json() for r in tr.iter_rows(tx)]
            store.drop_read_pages()  # inside an open read transaction, too
            assert [r.to_json() for r in tr.iter_rows(tx)] == before
            rcpt, host = tr.report_keys(tx, "20240302", store)
        assert len(rcpt) == 4 and len(host) == 4


def test_report_keys_dropping_pages_as_it_scans(data_dir, monkeypatch):
    monkeypatch.setattr(tr, "_DROP_EVERY", 2)
    with Store.open(data_dir) as store:
        _fill(store)
        with store.read() as tx:
            if sys.platform == "linux":
                assert store.mapped_ranges()
            assert tr.report_keys(tx, "99999999", store) == tr.report_keys(tx, "99999999")

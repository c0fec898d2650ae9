"""The queue API: enqueue inside a caller's transaction, records, files, schedule."""

from __future__ import annotations

import os
import re

import pytest

from moxcli.delivery import queue as q
from moxcli.errors import UsageError
from moxcli.store import Store
from moxcli.store import queue as qstore
from moxcli.store.files import queue_file

MSG = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi there\r\n\r\nbody\r\n"


def test_enqueue_one_record_per_recipient(data_dir):
    with Store.open(data_dir) as st:
        ids = q.enqueue(
            st,
            data_dir,
            mail_from="a@example.org",
            recipients=["b@example.net", "c@Example.COM"],
            data=MSG,
            prefix=b"DKIM-Signature: x\r\n",
        )
        assert ids == [1, 2]
        msgs = q.list_messages(st)
    assert [(m.id, m.base_id, m.recipient, m.recipient_domain) for m in msgs] == [
        (1, 1, "b@example.net", "example.net"),
        (2, 1, "c@Example.COM", "example.com"),
    ]
    m = msgs[0]
    assert m.size == len(MSG) + len(b"DKIM-Signature: x\r\n")
    assert m.subject == "hi there"
    assert m.require_tls is None and m.attempts == 0 and not m.hold
    assert queue_file(data_dir, 1).read_bytes() == MSG
    assert os.stat(queue_file(data_dir, 1)).st_ino == os.stat(queue_file(data_dir, 2)).st_ino
    assert q.message_bytes(data_dir, m) == b"DKIM-Signature: x\r\n" + MSG


def test_enqueue_in_commits_with_caller_transaction(data_dir):
    with Store.open(data_dir) as st:
        with pytest.raises(RuntimeError), st.write() as tx:
            q.enqueue_in(
                tx,
                data_dir,
                mail_from="postmaster@example.org",
                recipients=["r@example.net"],
                data=MSG,
                is_tls_report=True,
                max_attempts=5,
                require_tls=False,
            )
            tx.set_meta("marker", 1)
            raise RuntimeError("caller fails after queueing")
        with st.read() as tx:
            assert qstore.ids(tx) == []
            assert tx.meta("marker") is None
        ids = q.enqueue(
            st,
            data_dir,
            mail_from="postmaster@example.org",
            recipients=["r@example.net"],
            data=b"other\r\n",
            is_tls_report=True,
            max_attempts=5,
            require_tls=False,
        )
        assert ids == [1]  # the id of the aborted transaction is handed out again
        assert queue_file(data_dir, 1).read_bytes() == b"other\r\n"
        m = q.get_message(st, 1)
        assert (m.is_tls_report, m.max_attempts, m.require_tls) == (True, 5, False)


@pytest.mark.parametrize(
    "addr,domain",
    [
        ("x@example.org", "example.org"),
        ("x@xn--74h.example", "☺.example"),
        ("x@☺.example", "☺.example"),
        ("x@[127.0.0.1]", "[127.0.0.1]"),
        ("x@[IPv6:::1]", "[::1]"),
        ('"a b"@example.org', None),
        ("nodomain", None),
        ("x@", None),
        ("x@bad..example", None),
        ("x@[300.1.1.1]", None),
    ],
)
def test_split_address(addr, domain):
    if domain is None:
        with pytest.raises(UsageError):
            q.split_address(addr)
    else:
        assert q.split_address(addr)[1] == domain


@pytest.mark.parametrize(
    "header,requiretls,expect",
    [
        (b"Subject: x\r\nTLS-Required: No\r\n\r\nbody", False, False),
        (b"tls-required:   no  \r\n\r\n", False, False),
        (b"TLS-Required: No\r\nTLS-Required: NO\r\n\r\n", False, False),  # mox quirk: repeats allowed
        (b"TLS-Required: No\r\nTLS-Required: yes\r\n\r\n", False, None),
        (b"TLS-Required:\r\n No\r\n\r\n", False, False),  # folded
        (b"Subject: x\r\n\r\nTLS-Required: No\r\n", False, None),  # in the body
        (b"Subject: x\n\nbody", False, None),
        (b"TLS-Required: No\r\n\r\n", True, True),  # REQUIRETLS wins (RFC 8689 4.1)
    ],
)
def test_require_tls_for(header, requiretls, expect):
    assert q.require_tls_for(header, requiretls) is expect


def test_backoff_schedule():
    # spec 2.8: +7.5 min, +15, +30, +1 h ... (cumulative about 1h52m after 5 attempts)
    assert [q.backoff(n) for n in range(1, 6)] == [450, 900, 1800, 3600, 7200]
    assert sum(q.backoff(n) for n in range(1, 5)) == 6750


def test_change_applies_to_all_ids_or_none(data_dir):
    """`queue hold|release|retry|drop ID...`: one transaction; a missing id changes nothing."""
    with Store.open(data_dir) as st:
        a, b = q.enqueue(st, data_dir, mail_from="", recipients=["a@example.net", "b@example.net"], data=MSG)
        q.change(st, data_dir, [a, b, a], "hold")  # an id given twice counts once
        assert [q.get_message(st, i).hold for i in (a, b)] == [True, True]
        with pytest.raises(UsageError, match="queue message 99: no such message") as exc:
            q.change(st, data_dir, [a, 99], "release")
        assert exc.value.code == "not-found"
        assert [q.get_message(st, i).hold for i in (a, b)] == [True, True]
        q.change(st, data_dir, [b], "retry", now=100.0)
        assert (q.get_message(st, b).hold, q.get_message(st, b).next_attempt) == (False, 100.0)
        with pytest.raises(UsageError, match="queue message 99: no such message"):
            q.change(st, data_dir, [a, 99], "drop")
        assert queue_file(data_dir, a).exists()
        q.change(st, data_dir, [a, b, b], "drop")
        assert not queue_file(data_dir, a).exists() and not queue_file(data_dir, b).exists()
        assert q.list_messages_and_domains(st) == []
        with pytest.raises(ValueError, match="unknown queue action 'bounce'"):
            q.change(st, data_dir, [], "bounce")


def test_hold_release_retry_drop(data_dir):
    with Store.open(data_dir) as st:
        (mid,) = q.enqueue(st, data_dir, mail_from="", recipients=["b@example.net"], data=MSG, next_attempt=5000.0)
        assert not q.is_due(q.get_message(st, mid), 4999.0)
        assert q.is_due(q.get_message(st, mid), 5000.0)
        assert q.hold(st, mid).hold
        assert not q.is_due(q.get_message(st, mid), 9999.0)
        assert not q.release(st, mid).hold
        m = q.retry(st, mid, now=100.0)
        assert m.next_attempt == 100.0
        q.hold(st, mid)
        assert not q.retry(st, mid).hold
        q.drop(st, data_dir, mid)
        assert not queue_file(data_dir, mid).exists()
        with pytest.raises(UsageError, match="queue message 1: no such message"):
            q.get_message(st, mid)
        with pytest.raises(UsageError):
            q.drop(st, data_dir, mid)


def test_enqueue_rejects_bad_input(data_dir):
    with Store.open(data_dir) as st:
        with pytest.raises(UsageError, match="no recipients"):
            q.enqueue(st, data_dir, mail_from="a@example.org", recipients=[], data=MSG)
        with pytest.raises(UsageError, match="invalid address 'bad'"):
            q.enqueue(st, data_dir, mail_from="a@example.org", recipients=["bad"], data=MSG)
        with pytest.raises(UsageError, match="max_attempts"):
            q.enqueue(st, data_dir, mail_from="a@example.org", recipients=["b@example.net"], data=MSG, max_attempts=0)
        # every message the engine queues (reports included) must be canonical
        for data, prefix, why in [
            (
                b"Subject: x\r\n\r\nA\n.\r\nMAIL FROM:<e@x>\r\n",
                b"",
                "bare LF (mixed with CRLF line ends) at byte offset 15",
            ),
            (b"Subject: x\n\nhi\n", b"", "bare LF at byte offset 10"),
            (MSG, b"DKIM-Signature: v=1\n", "bare LF (mixed with CRLF line ends) at byte offset 19"),
            (b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n", b"", "line longer than 998 octets (999)"),
        ]:
            with pytest.raises(UsageError, match=re.escape(f"message not queued: {why}")):
                q.enqueue(
                    st, data_dir, mail_from="a@example.org", recipients=["b@example.net"], data=data, prefix=prefix
                )
        assert q.list_messages(st) == []


@pytest.mark.parametrize(
    "addr,wire",
    [
        ("x@☺.example", "x@xn--74h.example"),
        ("x@Example.ORG", "x@example.org"),
        ("☺@☺.example", "☺@☺.example"),  # needs SMTPUTF8 anyway
        ("x@[127.0.0.1]", "x@[127.0.0.1]"),
        ("", ""),
    ],
)
def test_wire_address(addr, wire):
    assert q.wire_address(addr) == wire

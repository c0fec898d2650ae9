"""store_message: one message into an account's mailbox, following the message data contract."""

import pytest

from moxcli.errors import UsageError
from moxcli.mail.deliver import store_message
from moxcli.store import Store
from moxcli.store import mail as store_mail
from moxcli.store.files import message_file


def _mailbox(st, account, name):
    with st.read() as tx:
        mb = store_mail.get_mailbox(tx, account, name)
        return mb, list(store_mail.list_messages(tx, account, mb.id)) if mb else []


def test_creates_account_and_mailbox_and_counts(data_dir):
    with Store.open(data_dir) as st:
        r1 = store_message(
            st, data_dir, "postmaster", "Postmaster/dmarc", b"Subject: a\r\n\r\nx\r\n", flags=["\\seen"], received=100.5
        )
        r2 = store_message(
            st, data_dir, "postmaster", "Postmaster/dmarc", b"Subject: b\r\n\r\nyy\r\n", keywords=["Report"]
        )
        assert (r1.uid, r2.uid) == (1, 2)
        assert r1.id != r2.id
        assert r1.flags == ["\\Seen"] and r1.received == 100.5
        assert r2.keywords == ["report"] and r2.flags == []
        with st.read() as tx:
            assert store_mail.get_account(tx, "postmaster") is not None
            assert store_mail.get_mailbox(tx, "postmaster", "Postmaster") is not None
        mb, msgs = _mailbox(st, "postmaster", "Postmaster/dmarc")
        assert mb.messages == 2 and mb.size == sum(m.size for m in msgs)
        assert mb.uidnext == 3 and mb.keywords == ["report"]
        for m in msgs:
            f = message_file(data_dir, "postmaster", m.id)
            assert f.stat().st_size == m.size
        assert message_file(data_dir, "postmaster", r1.id).read_bytes() == b"Subject: a\r\n\r\nx\r\n"


def test_inside_callers_transaction_rolls_back_with_it(data_dir):
    with Store.open(data_dir) as st:
        with pytest.raises(RuntimeError), st.write() as tx:
            store_message(tx, data_dir, "acc", "Inbox", b"x\r\n")
            raise RuntimeError("caller failed")
        with st.read() as tx:
            assert store_mail.get_account(tx, "acc") is None
        with st.write() as tx:
            rec = store_message(tx, data_dir, "acc", "inbox", b"x\r\n")
        _mb, msgs = _mailbox(st, "acc", "Inbox")
        assert msgs == [rec]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mailbox": "a//b"},
        {"mailbox": "../x"},
        {"mailbox": "tab\tname"},
        {"flags": ["\\Bogus"]},
        {"keywords": ["a b"]},
        {"account": "../evil"},
    ],
)
def test_bad_input_is_usage_error_and_changes_nothing(data_dir, kwargs):
    args = {"account": "acc", "mailbox": "Inbox", **kwargs}
    with Store.open(data_dir) as st:
        with pytest.raises(UsageError):
            store_message(st, data_dir, args.pop("account"), args.pop("mailbox"), b"x\r\n", **args)
        with st.read() as tx:
            assert list(store_mail.list_accounts(tx)) == []
    assert not any((data_dir / "accounts").rglob("*"))  # no files (a missing directory has none)

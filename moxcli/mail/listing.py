"""Read-only views of accounts, mailboxes and messages (so scripts can check an import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moxcli import jsonfmt
from moxcli.errors import UsageError
from moxcli.mail.names import MailboxNameError, check_mailbox_name
from moxcli.store import Store, Txn
from moxcli.store import mail as store_mail
from moxcli.values import dataclass


def _open(data_dir: Path) -> Store | None:
    if not (Path(data_dir) / "store" / "data.mdb").exists():
        return None
    return Store.open(data_dir, readonly=True)


@dataclass(frozen=True)
class AccountSummary:
    """An account with its totals (``account list``)."""

    name: str
    addresses: tuple[str, ...]
    created: float
    mailboxes: int
    messages: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addresses": list(self.addresses),
            "created": jsonfmt.rfc3339(self.created),
            "mailboxes": self.mailboxes,
            "messages": self.messages,
            "bytes": self.bytes,
        }


def list_accounts(data_dir: Path) -> list[AccountSummary]:
    """Accounts with their totals: name, addresses, created, mailboxes, messages, bytes."""
    st = _open(data_dir)
    if st is None:
        return []
    out = []
    with st, st.read() as tx:
        for acc in store_mail.list_accounts(tx):
            mbs = list(store_mail.list_mailboxes(tx, acc.name))
            out.append(
                AccountSummary(
                    acc.name,
                    acc.addresses,
                    acc.created,
                    len(mbs),
                    sum(m.messages for m in mbs),
                    sum(m.size for m in mbs),
                )
            )
    return out


def list_mailboxes(data_dir: Path, account: str) -> list[store_mail.Mailbox]:
    """Mailboxes of an account, by name (with message and byte counts, uidvalidity, uidnext, keywords)."""
    with _account(data_dir, account) as tx:
        return sorted(store_mail.list_mailboxes(tx, account), key=lambda m: m.name)


def iter_messages(data_dir: Path, account: str, mailbox: str) -> Iterator[store_mail.Message]:
    """Messages of a mailbox in UID order."""
    try:
        name = check_mailbox_name(mailbox)
    except MailboxNameError as exc:
        raise UsageError(str(exc)) from None
    with _account(data_dir, account) as tx:
        mb = store_mail.get_mailbox(tx, account, name)
        if mb is None:
            raise UsageError(f"account {account}: no mailbox {name!r}", code="not-found")
        yield from store_mail.list_messages(tx, account, mb.id)


@contextmanager
def _account(data_dir: Path, account: str) -> Iterator[Txn]:
    """A read transaction on a store that has the account (else UsageError naming it)."""
    st = _open(data_dir)
    if st is None:
        raise UsageError(f"no account {account!r} (no store in {data_dir})")
    with st, st.read() as tx:
        if store_mail.get_account(tx, account) is None:
            raise UsageError(f"no account {account!r}", code="not-found")
        yield tx

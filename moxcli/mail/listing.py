"""Read-only views of accounts, mailboxes and messages (so scripts can check an import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moxcli.errors import UsageError
from moxcli.mail.names import MailboxNameError, check_mailbox_name
from moxcli.store import Store, Txn
from moxcli.store import mail as store_mail


def _open(data_dir: Path) -> Store | None:
    if not (Path(data_dir) / "store" / "data.mdb").exists():
        return None
    return Store.open(data_dir, readonly=True)


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_accounts(data_dir: Path) -> list[dict[str, Any]]:
    """Accounts with their totals: name, addresses, created, mailboxes, messages, bytes."""
    st = _open(data_dir)
    if st is None:
        return []
    out = []
    with st, st.read() as tx:
        for acc in store_mail.list_accounts(tx):
            mbs = list(store_mail.list_mailboxes(tx, acc.name))
            out.append(
                {
                    "name": acc.name,
                    "addresses": list(acc.addresses),
                    "created": _time(acc.created),
                    "mailboxes": len(mbs),
                    "messages": sum(m.messages for m in mbs),
                    "bytes": sum(m.size for m in mbs),
                }
            )
    return out


def list_mailboxes(data_dir: Path, account: str) -> list[dict[str, Any]]:
    """Mailboxes of an account, by name: name, messages, bytes, uidvalidity, uidnext, keywords."""
    with _account(data_dir, account) as tx:
        mbs = sorted(store_mail.list_mailboxes(tx, account), key=lambda m: m.name)
        return [
            {
                "name": m.name,
                "messages": m.messages,
                "bytes": m.size,
                "uidvalidity": m.uidvalidity,
                "uidnext": m.uidnext,
                "keywords": list(m.keywords),
                "special_use": m.special_use,
            }
            for m in mbs
        ]


def iter_messages(data_dir: Path, account: str, mailbox: str) -> Iterator[dict[str, Any]]:
    """Messages of a mailbox in UID order: uid, id, size, received (UTC), flags, keywords."""
    try:
        name = check_mailbox_name(mailbox)
    except MailboxNameError as exc:
        raise UsageError(str(exc)) from None
    with _account(data_dir, account) as tx:
        mb = store_mail.get_mailbox(tx, account, name)
        if mb is None:
            raise UsageError(f"account {account}: no mailbox {name!r}")
        for m in store_mail.list_messages(tx, account, mb.id):
            yield {
                "uid": m.uid,
                "id": m.id,
                "size": m.size,
                "received": _time(m.received),
                "flags": list(m.flags),
                "keywords": list(m.keywords),
            }


@contextmanager
def _account(data_dir: Path, account: str) -> Iterator[Txn]:
    """A read transaction on a store that has the account (else UsageError naming it)."""
    st = _open(data_dir)
    if st is None:
        raise UsageError(f"no account {account!r} (no store in {data_dir})")
    with st, st.read() as tx:
        if store_mail.get_account(tx, account) is None:
            raise UsageError(f"no account {account!r}")
        yield tx

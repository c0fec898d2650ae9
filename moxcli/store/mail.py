"""Accounts and mailboxes in the store (messages are added by moxcli.mail).

Account record: {name, created, addresses}. Mailbox record: {id, name, special_use,
uidvalidity, uidnext, messages, size, created}; a name index maps names to ids.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from moxcli.store.env import Txn
from moxcli.store.files import check_account_name
from moxcli.store.schema import ACCOUNT, MAILBOX, MAILBOX_BY_NAME, from_u64, prefix_key, text_key, u64


def get_account(tx: Txn, name: str) -> dict[str, Any] | None:
    return tx.get(ACCOUNT, name.encode())


def ensure_account(tx: Txn, name: str, address: str | None = None) -> tuple[dict[str, Any], bool]:
    """The account, created if missing; the bool says whether it was created."""
    check_account_name(name)
    acc = get_account(tx, name)
    if acc is not None:
        if address and address not in acc["addresses"]:
            acc["addresses"].append(address)
            tx.put(ACCOUNT, name.encode(), acc)
        return acc, False
    acc = {"name": name, "created": time.time(), "addresses": [address] if address else []}
    tx.put(ACCOUNT, name.encode(), acc)
    return acc, True


def list_accounts(tx: Txn) -> Iterator[dict[str, Any]]:
    for _, rec in tx.scan(ACCOUNT):
        yield rec


def get_mailbox(tx: Txn, account: str, name: str) -> dict[str, Any] | None:
    raw = tx.get_raw(MAILBOX_BY_NAME, text_key(account, name))
    return None if raw is None else tx.get(MAILBOX, text_key(account, from_u64(raw)))


def ensure_mailbox(tx: Txn, account: str, name: str, special_use: str | None = None) -> tuple[dict[str, Any], bool]:
    """The mailbox, created (with parents of a hierarchical name) if missing."""
    existing = get_mailbox(tx, account, name)
    if existing is not None:
        return existing, False
    if "/" in name:
        ensure_mailbox(tx, account, name.rsplit("/", 1)[0])
    mb_id = tx.next_id(f"mailbox:{account}")
    mb = {
        "id": mb_id,
        "name": name,
        "special_use": special_use,
        "uidvalidity": tx.next_id(f"uidvalidity:{account}"),
        "uidnext": 1,
        "messages": 0,
        "size": 0,
        "created": time.time(),
    }
    tx.put(MAILBOX, text_key(account, mb_id), mb)
    tx.put_raw(MAILBOX_BY_NAME, text_key(account, name), u64(mb_id))
    return mb, True


def put_mailbox(tx: Txn, account: str, mailbox: dict[str, Any]) -> None:
    tx.put(MAILBOX, text_key(account, mailbox["id"]), mailbox)


def list_mailboxes(tx: Txn, account: str) -> Iterator[dict[str, Any]]:
    for _, rec in tx.scan(MAILBOX, prefix_key(account)):
        yield rec

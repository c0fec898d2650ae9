"""Accounts, mailboxes and messages in the store (files and flags are moxcli.mail's).

Account record: {name, created, addresses}. Mailbox record: {id, name, special_use,
uidvalidity, uidnext, messages, size, created, keywords?}; a name index maps names to ids.
Message record: {id, uid, mailbox_id, size, received, flags, keywords}.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator
from typing import Any

from moxcli.errors import StoreError
from moxcli.store.env import Txn
from moxcli.store.files import check_account_name
from moxcli.store.schema import ACCOUNT, MAILBOX, MAILBOX_BY_NAME, MESSAGE, META, from_u64, prefix_key, text_key, u64


def get_account(tx: Txn, name: str) -> dict[str, Any] | None:
    return tx.get(ACCOUNT, name.encode())


def ensure_account(tx: Txn, name: str, address: str | None = None) -> tuple[dict[str, Any], bool]:
    """The account, created if missing; the bool says whether it was created.

    Names are NFC (callers normalise user input): é typed as one or as two code points must
    not become two accounts."""
    check_account_name(name)
    if unicodedata.normalize("NFC", name) != name:
        raise StoreError(f"account name {name!r} is not NFC-normalised")
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
    parts = name.split("/")
    for depth in range(1, len(parts)):  # parents first, without recursion (names can be deep)
        parent = "/".join(parts[:depth])
        if get_mailbox(tx, account, parent) is None:
            _create_mailbox(tx, account, parent, None)
    return _create_mailbox(tx, account, name, special_use), True


def _create_mailbox(tx: Txn, account: str, name: str, special_use: str | None) -> dict[str, Any]:
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
    return mb


def put_mailbox(tx: Txn, account: str, mailbox: dict[str, Any]) -> None:
    tx.put(MAILBOX, text_key(account, mailbox["id"]), mailbox)


def list_mailboxes(tx: Txn, account: str) -> Iterator[dict[str, Any]]:
    for _, rec in tx.scan(MAILBOX, prefix_key(account)):
        yield rec


# Messages: key text_key(account, mailbox_id, uid); fields id, uid, mailbox_id, size, received,
# flags, keywords (docs/development.md "Data contracts").


def message_prefix(account: str, mailbox_id: int) -> bytes:
    return prefix_key(account, mailbox_id)


def add_message(
    tx: Txn,
    account: str,
    mailbox: dict[str, Any],
    msg_id: int,
    size: int,
    received: float,
    flags: list[str],
    keywords: list[str],
) -> dict[str, Any]:
    """Store a message record with the mailbox's next UID and count it in the mailbox dict.

    The caller writes the mailbox back with :func:`put_mailbox` once (bulk imports add many).
    """
    uid = mailbox["uidnext"]
    mailbox["uidnext"] = uid + 1
    mailbox["messages"] += 1
    mailbox["size"] += size
    rec = {
        "id": msg_id,
        "uid": uid,
        "mailbox_id": mailbox["id"],
        "size": size,
        "received": received,
        "flags": flags,
        "keywords": keywords,
    }
    tx.put(MESSAGE, text_key(account, mailbox["id"], uid), rec)
    return rec


def list_messages(tx: Txn, account: str, mailbox_id: int) -> Iterator[dict[str, Any]]:
    """Messages of a mailbox in UID order."""
    for _, rec in tx.scan(MESSAGE, prefix_key(account, mailbox_id)):
        yield rec


def account_size(tx: Txn, account: str) -> int:
    """Bytes of all messages of an account (sum of its mailbox counters)."""
    return sum(mb["size"] for mb in list_mailboxes(tx, account))


# An import in progress reserves message ids in committed blocks before it writes files, so
# a killed import leaves a record naming the files to remove (meta "import:<account>").
# The import's own commit deletes the record in the same transaction as its messages.

_IMPORT = "import:"


def begin_import(tx: Txn, account: str, info: dict[str, Any]) -> None:
    tx.set_meta(_IMPORT + account, {**info, "ranges": []})


def reserve_message_ids(tx: Txn, account: str, count: int) -> int:
    """Reserve ``count`` ids of the account's message sequence for the running import; returns the first."""
    seq = "seq:message:" + account
    first = int(tx.meta(seq, 0)) + 1
    tx.set_meta(seq, first + count - 1)
    info = tx.meta(_IMPORT + account)
    if info is None:
        raise StoreError(f"account {account}: no import in progress to reserve message ids for")
    info["ranges"].append([first, first + count - 1])
    tx.set_meta(_IMPORT + account, info)
    return first


def get_import(tx: Txn, account: str) -> dict[str, Any] | None:
    return tx.meta(_IMPORT + account)


def unfinished_imports(tx: Txn) -> Iterator[tuple[str, dict[str, Any]]]:
    """(account, record) of every import that has not committed or cleaned up (yet)."""
    for key, rec in tx.scan(META, _IMPORT.encode()):
        yield key.decode()[len(_IMPORT) :], rec.get("value", {})


def finish_import(tx: Txn, account: str, last_used: int | None) -> None:
    """Delete the import record; give back reserved ids past ``last_used`` (None: all of them)
    when no one has taken ids after them, so an aborted import leaves the sequence as it was."""
    info = get_import(tx, account)
    tx.delete(META, (_IMPORT + account).encode())
    if not info or not info.get("ranges"):
        return
    seq = "seq:message:" + account
    ranges = info["ranges"]
    if int(tx.meta(seq, 0)) != ranges[-1][1]:
        return
    if last_used is not None:
        tx.set_meta(seq, last_used)
        return
    first = ranges[-1][0]
    for lo, hi in reversed(ranges[:-1]):
        if hi + 1 != first:
            break
        first = lo
    if first == 1:
        tx.delete(META, seq.encode())
    else:
        tx.set_meta(seq, first - 1)

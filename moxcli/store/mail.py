"""Accounts, mailboxes and messages in the store (files and flags are moxcli.mail's).

Account record: {name, created, addresses}. Mailbox record: {id, name, special_use,
uidvalidity, uidnext, messages, size, created, keywords?}; a name index maps names to ids.
Message record: {id, uid, mailbox_id, size, received, flags, keywords}. Each is handed out as
its dataclass (:class:`Account`, :class:`Mailbox`, :class:`Message`); an import in progress
as :class:`ImportRecord`.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from moxcli import jsonfmt
from moxcli.errors import StoreError
from moxcli.store.env import Txn, record_reader
from moxcli.store.files import check_account_name
from moxcli.store.schema import ACCOUNT, MAILBOX, MAILBOX_BY_NAME, MESSAGE, META, from_u64, prefix_key, text_key, u64
from moxcli.values import dataclass, field, replace


@dataclass(frozen=True)
class Account:
    """An account: its name (NFC), creation time and the addresses that deliver to it."""

    name: str
    created: float
    addresses: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "addresses": list(self.addresses)}

    @classmethod
    @record_reader(ACCOUNT)
    def from_record(cls, rec: Mapping[str, Any]) -> Account:
        return cls(rec["name"], float(rec["created"]), tuple(rec.get("addresses") or ()))


@dataclass(slots=True)
class Mailbox:
    """A mailbox with its counters; :func:`add_message` counts messages in it and the caller
    writes it back with :func:`put_mailbox` once (a bulk import adds many)."""

    id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    messages: int
    size: int
    created: float
    keywords: list[str] = field(default_factory=list)  # not in the record while there are none

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "special_use": self.special_use,
            "uidvalidity": self.uidvalidity,
            "uidnext": self.uidnext,
            "messages": self.messages,
            "size": self.size,
            "created": self.created,
        }
        if self.keywords:
            rec["keywords"] = list(self.keywords)
        return rec

    @classmethod
    @record_reader(MAILBOX)
    def from_record(cls, rec: Mapping[str, Any]) -> Mailbox:
        return cls(
            id=int(rec["id"]),
            name=rec["name"],
            special_use=rec.get("special_use"),
            uidvalidity=int(rec["uidvalidity"]),
            uidnext=int(rec["uidnext"]),
            messages=int(rec["messages"]),
            size=int(rec["size"]),
            created=float(rec["created"]),
            keywords=list(rec.get("keywords") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """``mailbox list --json``."""
        return {
            "name": self.name,
            "messages": self.messages,
            "bytes": self.size,
            "uidvalidity": self.uidvalidity,
            "uidnext": self.uidnext,
            "keywords": list(self.keywords),
            "special_use": self.special_use,
        }

    def add_keywords(self, keywords: list[str] | set[str]) -> None:
        """Remember keywords used by its messages (sorted, each once)."""
        if keywords:
            self.keywords = sorted(set(self.keywords) | set(keywords))


@dataclass(slots=True)
class Message:
    """A message of a mailbox (its file is ``files.message_file(data_dir, account, id)``).
    Not frozen: imports make hundreds of thousands, and a frozen init costs 4 times as much."""

    id: int
    uid: int
    mailbox_id: int
    size: int
    received: float
    flags: list[str]
    keywords: list[str]

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uid": self.uid,
            "mailbox_id": self.mailbox_id,
            "size": self.size,
            "received": self.received,
            "flags": self.flags,
            "keywords": self.keywords,
        }

    def to_json(self) -> dict[str, Any]:
        """``message list --json``: the time received as RFC 3339."""
        return {
            "uid": self.uid,
            "id": self.id,
            "size": self.size,
            "received": jsonfmt.rfc3339(self.received),
            "flags": list(self.flags),
            "keywords": list(self.keywords),
        }

    @classmethod
    @record_reader(MESSAGE)
    def from_record(cls, rec: Mapping[str, Any]) -> Message:
        return cls(
            int(rec["id"]),
            int(rec["uid"]),
            int(rec["mailbox_id"]),
            int(rec["size"]),
            float(rec["received"]),
            list(rec.get("flags") or ()),
            list(rec.get("keywords") or ()),
        )


@dataclass(frozen=True)
class ImportRecord:
    """An import in progress (meta ``import:<account>``): who runs it, whether the account
    directory existed before, and the message id blocks it reserved (``(first, last)``)."""

    pid: int = 0
    started: float = 0.0
    account_dir_existed: bool = True
    ranges: tuple[tuple[int, int], ...] = ()

    def to_value(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "started": self.started,
            "account_dir_existed": self.account_dir_existed,
            "ranges": [[lo, hi] for lo, hi in self.ranges],
        }

    @classmethod
    @record_reader(META)
    def from_value(cls, value: Mapping[str, Any]) -> ImportRecord:
        return cls(
            int(value.get("pid", 0)),
            float(value.get("started", 0.0)),
            bool(value.get("account_dir_existed", True)),
            tuple((int(lo), int(hi)) for lo, hi in value.get("ranges", ())),
        )


def get_account(tx: Txn, name: str) -> Account | None:
    rec = tx.get(ACCOUNT, name.encode())
    return None if rec is None else Account.from_record(rec)


def ensure_account(tx: Txn, name: str, address: str | None = None) -> tuple[Account, bool]:
    """The account, created if missing; the bool says whether it was created.

    Names are NFC (callers normalise user input): é typed as one or as two code points must
    not become two accounts."""
    check_account_name(name)
    if unicodedata.normalize("NFC", name) != name:
        raise StoreError(f"account name {name!r} is not NFC-normalised")
    acc = get_account(tx, name)
    if acc is not None:
        if address and address not in acc.addresses:
            acc = replace(acc, addresses=(*acc.addresses, address))
            tx.put(ACCOUNT, name.encode(), acc.to_record())
        return acc, False
    acc = Account(name, time.time(), (address,) if address else ())
    tx.put(ACCOUNT, name.encode(), acc.to_record())
    return acc, True


def list_accounts(tx: Txn) -> Iterator[Account]:
    for _, rec in tx.scan(ACCOUNT):
        yield Account.from_record(rec)


def get_mailbox(tx: Txn, account: str, name: str) -> Mailbox | None:
    raw = tx.get_raw(MAILBOX_BY_NAME, text_key(account, name))
    if raw is None:
        return None
    rec = tx.get(MAILBOX, text_key(account, from_u64(raw)))
    return None if rec is None else Mailbox.from_record(rec)


def ensure_mailbox(tx: Txn, account: str, name: str, special_use: str | None = None) -> tuple[Mailbox, bool]:
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


def _create_mailbox(tx: Txn, account: str, name: str, special_use: str | None) -> Mailbox:
    mb_id = tx.next_id(f"mailbox:{account}")
    mb = Mailbox(
        id=mb_id,
        name=name,
        special_use=special_use,
        uidvalidity=tx.next_id(f"uidvalidity:{account}"),
        uidnext=1,
        messages=0,
        size=0,
        created=time.time(),
    )
    tx.put(MAILBOX, text_key(account, mb_id), mb.to_record())
    tx.put_raw(MAILBOX_BY_NAME, text_key(account, name), u64(mb_id))
    return mb


def put_mailbox(tx: Txn, account: str, mailbox: Mailbox) -> None:
    tx.put(MAILBOX, text_key(account, mailbox.id), mailbox.to_record())


def list_mailboxes(tx: Txn, account: str) -> Iterator[Mailbox]:
    for _, rec in tx.scan(MAILBOX, prefix_key(account)):
        yield Mailbox.from_record(rec)


# Messages: key text_key(account, mailbox_id, uid); fields id, uid, mailbox_id, size, received,
# flags, keywords (docs/development.md "Data contracts").


def message_prefix(account: str, mailbox_id: int) -> bytes:
    return prefix_key(account, mailbox_id)


def add_message(
    tx: Txn,
    account: str,
    mailbox: Mailbox,
    msg_id: int,
    size: int,
    received: float,
    flags: list[str],
    keywords: list[str],
) -> Message:
    """Store a message record with the mailbox's next UID and count it in ``mailbox``.

    The caller writes the mailbox back with :func:`put_mailbox` once (bulk imports add many).
    """
    uid = mailbox.uidnext
    mailbox.uidnext = uid + 1
    mailbox.messages += 1
    mailbox.size += size
    msg = Message(msg_id, uid, mailbox.id, size, received, flags, keywords)
    tx.put(MESSAGE, text_key(account, mailbox.id, uid), msg.to_record())
    return msg


def list_messages(tx: Txn, account: str, mailbox_id: int) -> Iterator[Message]:
    """Messages of a mailbox in UID order."""
    for _, rec in tx.scan(MESSAGE, prefix_key(account, mailbox_id)):
        yield Message.from_record(rec)


def account_size(tx: Txn, account: str) -> int:
    """Bytes of all messages of an account (sum of its mailbox counters)."""
    return sum(mb.size for mb in list_mailboxes(tx, account))


# An import in progress reserves message ids in committed blocks before it writes files, so
# a killed import leaves a record naming the files to remove (meta "import:<account>").
# The import's own commit deletes the record in the same transaction as its messages.

_IMPORT = "import:"


def begin_import(tx: Txn, account: str, record: ImportRecord) -> None:
    tx.set_meta(_IMPORT + account, replace(record, ranges=()).to_value())


def reserve_message_ids(tx: Txn, account: str, count: int) -> int:
    """Reserve ``count`` ids of the account's message sequence for the running import; returns the first."""
    seq = "seq:message:" + account
    first = int(tx.meta(seq, 0)) + 1
    tx.set_meta(seq, first + count - 1)
    info = get_import(tx, account)
    if info is None:
        raise StoreError(f"account {account}: no import in progress to reserve message ids for")
    info = replace(info, ranges=(*info.ranges, (first, first + count - 1)))
    tx.set_meta(_IMPORT + account, info.to_value())
    return first


def get_import(tx: Txn, account: str) -> ImportRecord | None:
    value = tx.meta(_IMPORT + account)
    return None if value is None else ImportRecord.from_value(value)


def unfinished_imports(tx: Txn) -> Iterator[tuple[str, ImportRecord]]:
    """(account, record) of every import that has not committed or cleaned up (yet)."""
    for key, rec in tx.scan(META, _IMPORT.encode()):
        yield key.decode()[len(_IMPORT) :], ImportRecord.from_value(rec.get("value", {}))


def finish_import(tx: Txn, account: str, last_used: int | None) -> None:
    """Delete the import record; give back reserved ids past ``last_used`` (None: all of them)
    when no one has taken ids after them, so an aborted import leaves the sequence as it was."""
    info = get_import(tx, account)
    tx.delete(META, (_IMPORT + account).encode())
    if info is None or not info.ranges:
        return
    seq = "seq:message:" + account
    ranges = info.ranges
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

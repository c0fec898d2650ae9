"""Data directories of the tests, written as the data contract describes them (no tests here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from moxcli.delivery.queue import enqueue
from moxcli.store import Store, schema
from moxcli.store import mail as store_mail
from moxcli.store.files import message_file, write_file
from moxcli.store.mail import ensure_account, ensure_mailbox, put_mailbox


def add_message(tx, data: Path, account: str, mailbox: str, body: bytes, flags=(), keywords=()) -> int:
    """A message as the data contract describes it (docs/development.md)."""
    mb, _ = ensure_mailbox(tx, account, mailbox)
    msg_id = tx.next_id(f"message:{account}")
    uid = mb.uidnext
    write_file(message_file(data, account, msg_id), body, sync=False)
    tx.put(
        schema.MESSAGE,
        schema.text_key(account, mb.id, uid),
        {
            "id": msg_id,
            "uid": uid,
            "mailbox_id": mb.id,
            "size": len(body),
            "received": 1.0e9 + msg_id,
            "flags": list(flags),
            "keywords": list(keywords),
        },
    )
    mb.uidnext = uid + 1
    mb.messages += 1
    mb.size += len(body)
    put_mailbox(tx, account, mb)
    return msg_id


def make_data_dir(data: Path, messages: int = 5) -> Path:
    """Two accounts with messages, a queue with two recipients (hard-linked files)."""
    with Store.open(data) as st:

        def fill(tx):
            ensure_account(tx, "alice", "alice@example.org")
            ensure_account(tx, "bob", "bob@example.org")
            ensure_mailbox(tx, "bob", "Sent", "\\Sent")
            for i in range(messages):
                add_message(
                    tx,
                    data,
                    "alice",
                    "Inbox" if i % 2 else "Archive",
                    f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(),
                    flags=["\\Seen"] if i % 3 else [],
                    keywords=["$Forwarded"] if i == 1 else [],
                )
            add_message(tx, data, "bob", "Inbox", b"Subject: hi\r\n\r\nhello\r\n")

        st.update(fill)
        enqueue(
            st,
            data,
            mail_from="alice@example.org",
            recipients=["x@example.net", "y@example.com"],
            data=b"Subject: q\r\n\r\nqueued\r\n",
            prefix=b"DKIM-Signature: v=1\r\n",
        )
    (data / "moxcli.toml").write_text('hostname = "mail.example.org"\n')
    return data


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    """Names, modes and contents of everything under root except LMDB's lock file."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.name == "lock.mdb" or p.relative_to(root).parts[0] in skip:
            continue
        st = p.lstat()
        h.update(f"{p.relative_to(root)} {st.st_mode}\n".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def mailbox_messages(st, data, account, mailbox):
    """(record, file bytes) of every message in a mailbox; [] if the mailbox does not exist."""
    with st.read() as tx:
        mb = store_mail.get_mailbox(tx, account, mailbox)
        if mb is None:
            return []
        return [
            (m, message_file(data, account, m.id).read_bytes()) for m in store_mail.list_messages(tx, account, mb.id)
        ]

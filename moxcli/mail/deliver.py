"""Add one message to an account's mailbox: DSNs into local accounts, reports for the postmaster.

Bulk imports go through moxcli.mail.importer instead (one sync and one commit for all).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from moxcli.errors import UsageError
from moxcli.mail.flags import flag_names, flags_mask, is_keyword
from moxcli.mail.names import MailboxNameError, check_mailbox_name
from moxcli.store import Store, Txn
from moxcli.store import mail as store_mail
from moxcli.store.files import PathError, message_file, unlink_files, write_file


def store_message(
    store_or_tx: Store | Txn,
    data_dir: Path,
    account: str,
    mailbox: str,
    data: bytes,
    flags: Iterable[str] = (),
    keywords: Iterable[str] = (),
    received: float | None = None,
) -> store_mail.Message:
    """Add ``data`` as a new message (account and mailbox created if missing); returns its record.

    With a Txn the message becomes visible when the caller commits; the file is written and
    synced first, so a commit never points at a missing file. With a Store it is committed
    here, and the file is removed again if the transaction fails.
    """
    try:
        mailbox = check_mailbox_name(mailbox)
    except MailboxNameError as exc:
        raise UsageError(str(exc)) from None
    try:
        mask = flags_mask(list(flags))
    except ValueError as exc:
        raise UsageError(f"account {account}, mailbox {mailbox}: {exc}") from None
    kws = sorted({k.lower() for k in keywords})
    for k in kws:
        if not is_keyword(k):
            raise UsageError(f"account {account}, mailbox {mailbox}: invalid keyword {k!r}")
    when = time.time() if received is None else float(received)
    if isinstance(store_or_tx, Txn):
        return _add(store_or_tx, data_dir, account, mailbox, data, flag_names(mask), kws, when, [])
    written: list[Path] = []
    try:
        return store_or_tx.update(
            lambda tx: _add(tx, data_dir, account, mailbox, data, flag_names(mask), kws, when, written)
        )
    except BaseException:
        unlink_files(data_dir, written)
        raise


def _add(
    tx: Txn,
    data_dir: Path,
    account: str,
    mailbox: str,
    data: bytes,
    flags: list[str],
    keywords: list[str],
    received: float,
    written: list[Path],
) -> store_mail.Message:
    try:
        store_mail.ensure_account(tx, account)
    except PathError as exc:
        raise UsageError(str(exc)) from None
    mb, _ = store_mail.ensure_mailbox(tx, account, mailbox)
    msg_id = tx.next_id(f"message:{account}")
    path = message_file(data_dir, account, msg_id)
    write_file(path, data, sync=True, root=data_dir)
    written.append(path)
    rec = store_mail.add_message(tx, account, mb, msg_id, len(data), received, flags, keywords)
    mb.add_keywords(keywords)
    store_mail.put_mailbox(tx, account, mb)
    return rec

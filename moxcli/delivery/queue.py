"""The outgoing queue: enqueue, inspect, hold, drop; due times and mox's retry schedule.

API for other features:

- ``enqueue_in(tx, data_dir, *, mail_from, recipients, data, prefix=b"", require_tls=None,
  is_tls_report=False, is_dmarc_report=False, max_attempts=None, next_attempt=None,
  sender_account=None) -> list[int]`` queues a message inside the CALLER's write
  transaction, so that e.g. "mark TLS results sent" and "queue the report" commit together.
  It creates **one queue record per recipient** (like mox), all sharing ``base_id`` (the first
  id). The message file is written, synced and renamed before the records are put; further
  recipients get hard links to it. If the caller's transaction aborts, the files stay behind
  without records; the ids are handed out again by the next enqueue, which overwrites them.
- ``enqueue(store, data_dir, **same) -> list[int]``: the same in a transaction of its own.
- Delivery is ``moxcli.delivery.deliver.run_queue(store, data_dir, config, ids=None,
  domain=None, now=None) -> list[AttemptResult]`` (one result per queue record; the due
  records of one ``base_id`` and recipient domain share one SMTP transaction).

``require_tls``: None follows the recipient's policies, True is REQUIRETLS (RFC 8689 §2),
False is ``TLS-Required: No`` (RFC 8689 §3; report messages are queued with False).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from moxcli.addrlimits import MAX_DOMAIN, MAX_LOCALPART, MAX_PATH
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.smtp import msgdata
from moxcli.store import Store, domaintls
from moxcli.store import queue as qstore
from moxcli.store.domaintls import DomainTLS
from moxcli.store.env import Txn
from moxcli.store.files import link_file, queue_file, sync_dir, unlink_files, write_file
from moxcli.store.queue import QueueMsg
from moxcli.values import dataclass

# mox's schedule (docs/behaviour-notes.md §2.8): first attempt at once, then 7.5 min doubling each time.
FIRST_BACKOFF = 450.0
DEFAULT_MAX_ATTEMPTS = 8


def backoff(attempts: int) -> float:
    """Seconds to wait after the given number of failed attempts (1 -> 7.5 min, 2 -> 15 min, ...)."""
    return FIRST_BACKOFF * (2 ** max(attempts - 1, 0))


def max_attempts_of(msg: QueueMsg) -> int:
    return msg.max_attempts or DEFAULT_MAX_ATTEMPTS


def _shown(address: str) -> str:
    """The address for an error line: at most 80 characters of it (docs/behaviour-notes.md: capped echoes)."""
    return repr(address) if len(address) <= 80 else repr(address[:80]) + f"... ({len(address)} characters)"


def split_address(address: str) -> tuple[str, str]:
    """(localpart, domain) of ``local@domain``; the domain as Unicode name or ``[ip]``.

    Addresses moxcli sends must fit RFC 5321 4.5.3.1's limits (a longer one may be refused or
    cut by any server on the way): a UsageError names the limit."""
    local, sep, dom = address.strip().rpartition("@")
    # RFC 5321 4.5.3.1.1 and 4.5.3.1.2, checked first so a huge input is not parsed further.
    if len(local.encode("utf-8", "surrogateescape")) > MAX_LOCALPART:
        raise UsageError(
            f"invalid address {_shown(address)}: local-part longer than {MAX_LOCALPART} octets (RFC 5321 4.5.3.1.1)"
        )
    if len(dom.encode("utf-8", "surrogateescape")) > MAX_DOMAIN:
        raise UsageError(
            f"invalid address {_shown(address)}: domain longer than {MAX_DOMAIN} octets (RFC 5321 4.5.3.1.2)"
        )
    if not sep or not local or not dom or any(c in address for c in "<> \t\r\n"):
        raise UsageError(f"invalid address {_shown(address)}: expected localpart@domain")
    if dom.startswith("[") and dom.endswith("]"):
        literal = dom[1:-1]
        if literal.lower().startswith("ipv6:"):
            literal = literal[5:]
        try:
            ip = ipaddress.ip_address(literal)
        except ValueError:
            raise UsageError(f"invalid address {_shown(address)}: bad address literal") from None
        parts = local, f"[{ip}]"
    else:
        try:
            parts = local, parse_domain(dom).name
        except DomainError as exc:
            raise UsageError(f"invalid address {_shown(address)}: {exc}") from None
    # RFC 5321 4.5.3.1.3: the path as sent, "<" and ">" included.
    if len(wire_address(address.strip()).encode("utf-8", "surrogateescape")) + 2 > MAX_PATH:
        raise UsageError(f"invalid address {_shown(address)}: path longer than {MAX_PATH} octets (RFC 5321 4.5.3.1.3)")
    return parts


def sendable(address: str) -> bool:
    """Whether queueing for ``address`` would accept it (split_address): report senders drop
    an rua address that is not, rather than fail the report for every address."""
    try:
        split_address(address)
    except UsageError:
        return False
    return True


def wire_address(address: str) -> str:
    """The address as sent in MAIL/RCPT: an IDN domain in A-labels when the localpart is
    ASCII, so that SMTPUTF8 is only needed for non-ASCII localparts (RFC 6531 §3.2)."""
    if not address:
        return address
    local, _, dom = address.rpartition("@")
    if not local.isascii() or dom.startswith("["):
        return address
    try:
        return f"{local}@{parse_domain(dom).ascii}"
    except DomainError:
        return address


_HEADER_END = re.compile(rb"\r?\n\r?\n")


def tls_required_no(data: bytes) -> bool:
    """True if the header has TLS-Required fields and every one says ``No`` (RFC 8689 §3).

    mox quirk, followed when reading what others send: repeated fields are tolerated as long
    as all say no.
    """
    m = _HEADER_END.search(data)
    head = data[: m.start()] if m else data
    values: list[str] = []
    current: list[bytes] | None = None
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            values.append(b"".join(current).decode("latin-1"))
            current = None
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"tls-required":
            current = [value]
    if current is not None:
        values.append(b"".join(current).decode("latin-1"))
    return bool(values) and all(v.strip().lower() == "no" for v in values)


def require_tls_for(data: bytes, requiretls: bool) -> bool | None:
    """The queue's tri-state: REQUIRETLS wins and the header is then ignored (RFC 8689 §4.1)."""
    if requiretls:
        return True
    return False if tls_required_no(data) else None


def _subject(data: bytes) -> str:
    m = _HEADER_END.search(data)
    head = (data[: m.start()] if m else data).decode("utf-8", errors="replace")
    found = re.search(r"(?im)^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", head)
    return re.sub(r"\r?\n[ \t]+", " ", found.group(1)).strip()[:200] if found else ""


def enqueue_in(
    tx: Txn,
    data_dir: Path,
    *,
    mail_from: str,
    recipients: list[str],
    data: bytes,
    prefix: bytes = b"",
    require_tls: bool | None = None,
    is_tls_report: bool = False,
    is_dmarc_report: bool = False,
    max_attempts: int | None = None,
    next_attempt: float | None = None,
    sender_account: str | None = None,
) -> list[int]:
    """Queue ``data`` for each recipient inside ``tx``; returns the new ids (one per recipient).

    ``prefix + data`` must be canonical (:func:`moxcli.smtp.msgdata.check`): every message
    the engine queues, an operator's file or a report it composed, passes the same check.
    """
    try:
        msgdata.check(prefix + data)
    except msgdata.MessageDataError as exc:
        raise UsageError(f"message not queued: {exc}") from None
    if not recipients:
        raise UsageError("no recipients to queue for")
    if mail_from:
        split_address(mail_from)
    parsed = [(r.strip(), split_address(r)[1]) for r in recipients]
    if max_attempts is not None and max_attempts < 1:
        raise UsageError(f"max_attempts must be at least 1, got {max_attempts}")
    now = time.time()
    due = now if next_attempt is None else next_attempt
    subject = _subject(data)
    ids: list[int] = []
    first_path: Path | None = None
    linked_dirs: set[Path] = set()
    for rcpt, dom in parsed:
        msg_id = tx.next_id(qstore.SEQUENCE)
        path = queue_file(data_dir, msg_id)
        if first_path is None:
            write_file(path, data, root=data_dir)
            first_path = path
        else:
            link_file(first_path, path, data_dir)
            linked_dirs.add(path.parent)
        ids.append(msg_id)
        qstore.put(
            tx,
            QueueMsg(
                id=msg_id,
                base_id=ids[0],
                mail_from=mail_from,
                recipient=rcpt,
                recipient_domain=dom,
                created=now,
                size=len(prefix) + len(data),
                prefix=prefix,
                require_tls=require_tls,
                is_tls_report=is_tls_report,
                is_dmarc_report=is_dmarc_report,
                sender_account=sender_account,
                max_attempts=max_attempts or 0,
                next_attempt=due,
                subject=subject,
            ),
        )
    for d in linked_dirs:  # the links are durable before the caller commits the records
        sync_dir(d)
    return ids


@dataclass(frozen=True)
class Submitted:
    """What `queue add` did: queue ids, the TLS tri-state, and how the bytes were changed."""

    ids: list[int]
    require_tls: bool | None
    converted_lf: bool  # bare-LF line ends were converted to CRLF
    added_headers: tuple[str, ...]
    size: int


def submit(
    store: Store,
    data_dir: Path,
    *,
    hostname: str,
    mail_from: str,
    recipients: list[str],
    data: bytes,
    requiretls: bool = False,
    max_attempts: int | None = None,
    sender_account: str | None = None,
    source: str = "message",
    now: float | None = None,
) -> Submitted:
    """Queue a message file as a submission agent would (`queue add`).

    The bytes are made canonical (:func:`moxcli.smtp.msgdata.normalize`: bare-LF files get
    CRLF; bare CR, mixed line ends, NUL, lines over 998 octets are refused with
    :class:`UsageError` naming ``source``, offset and line); ``Date:`` and ``Message-ID:`` are
    added when missing (RFC 6409 §8.2-§8.3) and a ``Received:`` line for this hop is prepended.
    """
    try:
        canonical = msgdata.normalize(data)
    except msgdata.MessageDataError as exc:
        raise UsageError(f"{source}: {exc}; nothing queued") from None
    t = time.time() if now is None else now
    try:
        host = parse_domain(hostname).ascii
    except DomainError:
        host = hostname
    from email.utils import format_datetime  # not at import: enqueue alone needs no email package

    stamp = format_datetime(datetime.fromtimestamp(t, UTC))
    done = msgdata.complete_header(
        canonical,
        hostname=host,
        date=stamp,
        message_id=base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),  # docs/behaviour-notes.md §0.4
        received=f"by {host} (moxcli queue add, from userid {os.getuid()}); {stamp}",
    )
    require_tls = require_tls_for(done.data, requiretls)
    ids = enqueue(
        store,
        data_dir,
        mail_from=mail_from,
        recipients=recipients,
        data=done.data,
        require_tls=require_tls,
        max_attempts=max_attempts,
        sender_account=sender_account,
    )
    converted = b"\n" in data and b"\r\n" not in data
    return Submitted(ids, require_tls, converted, done.added, len(done.data))


MAX_MESSAGE_SIZE = 100 << 20  # mox's default maximum message size (config MaxMessageSize)


def read_message(path: Path) -> bytes:
    """A message to queue from a regular file or ``-`` (stdin), at most MAX_MESSAGE_SIZE bytes."""
    from moxcli.inputs import read_regular

    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_MESSAGE_SIZE + 1)
        if len(data) > MAX_MESSAGE_SIZE:
            raise UsageError(f"stdin: message larger than {MAX_MESSAGE_SIZE} bytes, refused")
        return data
    return read_regular(path, MAX_MESSAGE_SIZE, "message")


def enqueue(store: Store, data_dir: Path, **kwargs: object) -> list[int]:
    """:func:`enqueue_in` in a write transaction of its own."""
    return store.update(lambda tx: enqueue_in(tx, data_dir, **kwargs))  # type: ignore[arg-type]


def message_bytes(data_dir: Path, msg: QueueMsg) -> bytes:
    """What goes after DATA: the stored prefix (DKIM signatures) and the file."""
    return msg.prefix + queue_file(data_dir, msg.id).read_bytes()


def list_messages(store: Store) -> list[QueueMsg]:
    with store.read() as tx:
        return list(qstore.scan(tx))


def list_messages_and_domains(store: Store) -> list[tuple[QueueMsg, DomainTLS | None]]:
    """Every queued message with what deliveries learned about its recipient domain (None:
    nothing yet), read in one transaction."""
    with store.read() as tx:
        known: dict[str, DomainTLS | None] = {}
        out = []
        for m in qstore.scan(tx):
            if m.recipient_domain not in known:
                known[m.recipient_domain] = domaintls.get(tx, m.recipient_domain)
            out.append((m, known[m.recipient_domain]))
        return out


def get_message(store: Store, msg_id: int) -> QueueMsg:
    with store.read() as tx:
        msg = qstore.get(tx, msg_id)
    if msg is None:
        raise UsageError(f"queue message {msg_id}: no such message", code="not-found")
    return msg


def get_message_and_domain(store: Store, msg_id: int) -> tuple[QueueMsg, DomainTLS | None]:
    """A queued message and what deliveries learned about its recipient domain (None: nothing)."""
    with store.read() as tx:
        msg = qstore.get(tx, msg_id)
        known = None if msg is None else domaintls.get(tx, msg.recipient_domain)
    if msg is None:
        raise UsageError(f"queue message {msg_id}: no such message", code="not-found")
    return msg, known


def known_domains(store: Store, domain: str | None = None) -> list[DomainTLS]:
    """The recipient domains deliveries went to, with their last STARTTLS/REQUIRETLS support."""
    with store.read() as tx:
        if domain is None:
            return list(domaintls.scan(tx))
        try:
            name = parse_domain(domain).name
        except DomainError as exc:
            raise UsageError(f'parsing domain "{domain}": {exc}', code="bad-domain") from None
        found = domaintls.get(tx, name)
        return [] if found is None else [found]


def forget_domain(store: Store, domain: str) -> str:
    """Drop what deliveries learned about a recipient domain (its Unicode name is returned),
    so that a domain that no longer does STARTTLS gets mail in plaintext again. Nothing
    recorded is a usage error."""
    try:
        name = parse_domain(domain).name
    except DomainError as exc:
        raise UsageError(f'parsing domain "{domain}": {exc}', code="bad-domain") from None
    with store.write() as tx:
        if not domaintls.delete(tx, name):
            raise UsageError(f"domain {name}: nothing recorded", code="not-found")
    return name


def remove_in(tx: Txn, data_dir: Path, msg_id: int) -> Path:
    """Delete the record; returns the file to unlink once the transaction has committed (the
    id is noted until :func:`forget_unlinked`, see ``moxcli.store.queue.note_removed``)."""
    qstore.delete(tx, msg_id)
    qstore.note_removed(tx, [msg_id])
    return queue_file(data_dir, msg_id)


def forget_unlinked(tx: Txn, msg_ids: list[int]) -> None:
    """In a later transaction: the files of these removed records are gone."""
    qstore.unlinked(tx, msg_ids)


def unlink_leftovers(store: Store, data_dir: Path) -> None:
    """Delete the files that a process killed between removing records and unlinking their
    files left behind (the noted ids), and forget them."""
    with store.read() as tx:
        ids = qstore.unlinking(tx)
    gone = []
    for msg_id in ids:
        try:
            unlink_files(data_dir, [queue_file(data_dir, msg_id)])
        except OSError:
            continue  # stays noted, tried again next time
        gone.append(msg_id)
    if gone:
        store.update(lambda tx: forget_unlinked(tx, gone))


def drop(store: Store, data_dir: Path, msg_id: int) -> QueueMsg:
    """Remove a message from the queue without delivering it (and without a DSN)."""

    def fn(tx: Txn) -> tuple[QueueMsg, Path]:
        msg = qstore.get(tx, msg_id)
        if msg is None:
            raise UsageError(f"queue message {msg_id}: no such message", code="not-found")
        return msg, remove_in(tx, data_dir, msg_id)

    msg, path = store.update(fn)
    unlink_files(data_dir, [path])
    store.update(lambda tx: forget_unlinked(tx, [msg_id]))
    return msg


def _modify(store: Store, msg_id: int, **changes: object) -> QueueMsg:
    def fn(tx: Txn) -> QueueMsg:
        msg = qstore.get(tx, msg_id)
        if msg is None:
            raise UsageError(f"queue message {msg_id}: no such message", code="not-found")
        for k, v in changes.items():
            setattr(msg, k, v)
        qstore.put(tx, msg)
        return msg

    return store.update(fn)


ACTIONS = ("drop", "hold", "release", "retry")


def change(store: Store, data_dir: Path, msg_ids: list[int], action: str, now: float | None = None) -> None:
    """Apply ``action`` (one of ACTIONS) to every message in one transaction: when one id does
    not exist nothing is changed, and the error names it (docs/json.md, `not-found`). An id
    given twice counts once."""
    if action not in ACTIONS:
        raise ValueError(f"unknown queue action {action!r}")
    at = time.time() if now is None else now
    ids = list(dict.fromkeys(msg_ids))

    def fn(tx: Txn) -> list[Path]:
        msgs = []
        for msg_id in ids:
            msg = qstore.get(tx, msg_id)
            if msg is None:
                raise UsageError(f"queue message {msg_id}: no such message", code="not-found")
            msgs.append(msg)
        if action == "drop":
            return [remove_in(tx, data_dir, m.id) for m in msgs]
        for m in msgs:
            m.hold = action == "hold"
            if action == "retry":
                m.next_attempt = at
            qstore.put(tx, m)
        return []

    paths = store.update(fn)
    if paths:
        unlink_files(data_dir, paths)
        store.update(lambda tx: forget_unlinked(tx, ids))


def hold(store: Store, msg_id: int) -> QueueMsg:
    """Keep a message in the queue without attempting it until released."""
    return _modify(store, msg_id, hold=True)


def release(store: Store, msg_id: int) -> QueueMsg:
    return _modify(store, msg_id, hold=False)


def retry(store: Store, msg_id: int, now: float | None = None) -> QueueMsg:
    """Make a message due now (released from hold too); the attempt count is kept."""
    return _modify(store, msg_id, hold=False, next_attempt=time.time() if now is None else now)


def is_due(msg: QueueMsg, now: float) -> bool:
    return not msg.hold and msg.next_attempt <= now

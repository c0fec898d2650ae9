"""Queue records: one outgoing message for one recipient (table QUEUE, key u64(id)).

The message body lives in ``files.queue_file(data_dir, id)``; the record keeps the DKIM
signature headers as ``prefix`` (prepended when sending, docs/behaviour-notes.md §0.5), so ``size`` =
len(prefix) + file size. Times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import META, QUEUE, from_u64, u64
from moxcli.values import dataclass, field, fields

SEQUENCE = "queue"
# Meta record: ids whose queue records are deleted and whose files may still exist (they are
# unlinked after the commit; a kill in between leaves them, see note_removed()).
UNLINK = "queue:unlink"


@dataclass
class QueueMsg:
    """One queued message for one recipient; ``base_id`` groups the copies of one submission."""

    id: int
    base_id: int
    mail_from: str
    recipient: str
    recipient_domain: str  # Unicode name, or "[ip]" for an address literal
    created: float
    size: int
    prefix: bytes = b""
    require_tls: bool | None = None
    is_tls_report: bool = False
    is_dmarc_report: bool = False
    sender_account: str | None = None
    max_attempts: int = 0  # 0: the default schedule's limit
    attempts: int = 0
    next_attempt: float = 0.0
    last_attempt: float | None = None
    last_error: str = ""
    last_code: int = 0
    last_enhanced: str = ""
    hold: bool = False
    in_progress: float | None = None  # set while an attempt runs; a crash leaves it set
    dialed_ips: dict[str, list[str]] = field(default_factory=dict)
    subject: str = ""
    delayed_dsn: float | None = None  # when the "delayed" DSN was stored (it is sent once)

    def to_record(self) -> dict[str, Any]:
        # Shallow (the record is encoded at once): dataclasses.asdict deep-copies every field,
        # which was a tenth of queue run's CPU time at hundreds of messages per second.
        return {name: getattr(self, name) for name in fields(QueueMsg)}

    @classmethod
    @record_reader(QUEUE)
    def from_record(cls, rec: dict[str, Any]) -> QueueMsg:
        known = {k: v for k, v in rec.items() if k in fields(cls)}
        return cls(**known)


def put(tx: Txn, msg: QueueMsg) -> None:
    tx.put(QUEUE, u64(msg.id), msg.to_record())


def get(tx: Txn, msg_id: int) -> QueueMsg | None:
    rec = tx.get(QUEUE, u64(msg_id))
    return None if rec is None else QueueMsg.from_record(rec)


def delete(tx: Txn, msg_id: int) -> bool:
    return tx.delete(QUEUE, u64(msg_id))


def scan(tx: Txn) -> Iterator[QueueMsg]:
    """All queued messages in id order."""
    for _key, rec in tx.scan(QUEUE):
        yield QueueMsg.from_record(rec)


def ids(tx: Txn) -> list[int]:
    return [from_u64(k) for k, _ in tx.scan_raw(QUEUE)]


def note_removed(tx: Txn, msg_ids: list[int]) -> None:
    """Note ids whose records ``tx`` deletes and whose files are unlinked once it has committed.

    A kill between the commit and the unlink leaves files without a record: noted, they are
    known leftovers (verifydata warns, the next queue run deletes them), not lost records.
    Ids come from a sequence and are never handed out again, so deleting such a file later is safe.
    """
    tx.set_meta(UNLINK, [*unlinking(tx), *msg_ids])


def unlinking(tx: Txn) -> list[int]:
    """The ids noted by :func:`note_removed` whose files are not known to be gone."""
    value = tx.meta(UNLINK, [])
    return [i for i in value if isinstance(i, int) and not isinstance(i, bool)] if isinstance(value, list) else []


def unlinked(tx: Txn, msg_ids: list[int]) -> None:
    """Forget noted ids whose files have been unlinked."""
    gone = set(msg_ids)
    before = unlinking(tx)
    left = [i for i in before if i not in gone]
    if left:
        tx.set_meta(UNLINK, left)
    elif before or tx.meta(UNLINK) is not None:
        tx.delete(META, UNLINK.encode())

"""Delivery status notifications (RFC 3464) for messages the queue gives up on.

The DSN goes into the sender's local account (Inbox) rather than out through the queue, as
mox does. Report messages are handled quietly (spec §2.8, §6.8): the DSN of a DMARC report
goes to ``<postmaster mailbox>/dmarc`` and that of a TLS report to
``<postmaster mailbox>/tlsrpt`` of the postmaster account, both flagged ``\\Seen``.
A message with the null sender gets no DSN (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from moxcli import log
from moxcli.config import Config
from moxcli.store.env import Txn
from moxcli.store.queue import QueueMsg

_log = log.get("dsn")

_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Destination:
    """Where a DSN is stored: account, mailbox, and whether it is flagged seen."""

    account: str
    mailbox: str
    seen: bool


def destination(config: Config, msg: QueueMsg) -> Destination | None:
    """The local mailbox for the DSN of ``msg``, None for the null sender."""
    pm = config.postmaster
    if msg.is_dmarc_report:
        return Destination(pm.account, f"{pm.mailbox}/dmarc", True)
    if msg.is_tls_report:
        return Destination(pm.account, f"{pm.mailbox}/tlsrpt", True)
    if not msg.mail_from:
        return None
    return Destination(msg.sender_account or pm.account, "Inbox", False)


def _header_block(original: bytes) -> bytes:
    m = _HEADER_END.search(original)
    head = original[: m.start()] if m else original
    if b"\r\n" not in head:
        head = head.replace(b"\n", b"\r\n")
    return head + b"\r\n"


def _dt(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, UTC))


def compose(
    config: Config,
    msg: QueueMsg,
    original: bytes,
    error: str,
    remote_host: str,
    code: int,
    enhanced: str,
    permanent: bool,
    now: float | None = None,
    delayed_until: float | None = None,
) -> bytes:
    """A DSN: multipart/report with text, message/delivery-status and the original header
    (RFC 3464 §2, RFC 6522). Produced per the RFC: CRLF line ends, 7-bit.

    With ``delayed_until`` it is a "delayed" DSN (Action: delayed, RFC 3464 §2.3.3): the
    message stays queued and is tried until then.
    """
    t = time.time() if now is None else now
    host = config.hostname
    boundary = os.urandom(20).hex()
    msgid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    status = enhanced or ("5.0.0" if permanent else "4.0.0")
    safe_error = re.sub(r"[\r\n]+", " ", error).encode("ascii", "replace").decode()
    rcpt = msg.recipient
    if delayed_until is None:
        action, subject = "failed", f"mail delivery failed: {rcpt}"
        text = (
            f"Delivery has failed permanently for:\r\n\r\n\t{rcpt}\r\n\r\n"
            f"after {msg.attempts} attempt(s). The last error was:\r\n\r\n\t{safe_error}\r\n\r\n"
            f"The message has been removed from the queue of {host}.\r\n"
        )
    else:
        action, subject = "delayed", f"mail delivery delayed: {rcpt}"
        status = enhanced if enhanced.startswith("4.") else "4.0.0"
        text = (
            f"Delivery has been delayed for:\r\n\r\n\t{rcpt}\r\n\r\n"
            f"after {msg.attempts} attempt(s). The last error was:\r\n\r\n\t{safe_error}\r\n\r\n"
            f"{host} keeps trying until {_dt(delayed_until)}; you need not resend the message.\r\n"
        )
    per_msg = f"Reporting-MTA: dns; {host}\r\nArrival-Date: {_dt(msg.created)}\r\n"
    per_rcpt = f"Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n"
    if remote_host:
        per_rcpt += f"Remote-MTA: dns; {remote_host}\r\n"
    reply_at = safe_error.find(f"{code} ") if code else -1
    if reply_at >= 0:
        per_rcpt += f"Diagnostic-Code: smtp; {safe_error[reply_at:][:900]}\r\n"
    if msg.last_attempt:
        per_rcpt += f"Last-Attempt-Date: {_dt(msg.last_attempt)}\r\n"
    if delayed_until is not None:
        per_rcpt += f"Will-Retry-Until: {_dt(delayed_until)}\r\n"
    to = msg.mail_from or f"postmaster@{host}"
    parts = [
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@{host}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Message-Id: <{msgid}@{host}>",
        f"Date: {_dt(t)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-formatted delivery status notification.",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        text,
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        per_msg + "\r\n" + per_rcpt,
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    body = "\r\n".join(parts).encode("utf-8") + b"\r\n" + _header_block(original)
    return body + f"\r\n--{boundary}--\r\n".encode()


def failure_dsn_in(
    tx: Txn,
    data_dir: Path,
    config: Config,
    msg: QueueMsg,
    original: bytes,
    error: str,
    remote_host: str,
    code: int,
    enhanced: str,
    permanent: bool,
    delayed_until: float | None = None,
) -> bool:
    """Compose and store the DSN for ``msg`` in ``tx``; False when there is none to store."""
    dest = destination(config, msg)
    if dest is None:
        return False
    data = compose(config, msg, original, error, remote_host, code, enhanced, permanent, delayed_until=delayed_until)
    try:
        from moxcli.mail import deliver as mail_deliver
    except ImportError:
        _log.warn("no mail store to put the dsn in", id=msg.id, account=dest.account, mailbox=dest.mailbox)
        return False
    mail_deliver.store_message(tx, data_dir, dest.account, dest.mailbox, data, flags=["\\Seen"] if dest.seen else [])
    return True

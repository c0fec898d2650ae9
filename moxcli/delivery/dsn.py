"""Delivery status notifications (RFC 3464) for messages the queue gives up on.

The DSN goes into the sender's local account (Inbox) rather than out through the queue, as
mox does. Report messages are handled quietly (docs/behaviour-notes.md §2.8, §6.8): the DSN of a DMARC report
goes to ``<postmaster mailbox>/dmarc`` and that of a TLS report to
``<postmaster mailbox>/tlsrpt`` of the postmaster account, both flagged ``\\Seen``.
A message with the null sender gets no DSN (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import base64
import os
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from moxcli import log
from moxcli.config import Config
from moxcli.smtp import msgdata
from moxcli.store.env import Txn
from moxcli.store.queue import QueueMsg
from moxcli.values import dataclass

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
    """The original header with CRLF line ends, whatever the stored bytes are (a queue file
    of an older version may not be canonical): any CR/LF ends a line, NUL goes, lines are cut
    at 998 octets, so the DSN itself is always canonical."""
    m = _HEADER_END.search(original)
    head = original[: m.start()] if m else original
    lines = re.split(rb"\r\n|\r|\n", head.replace(b"\0", b"").rstrip(b"\r\n"))
    return b"".join(ln[: msgdata.MAX_LINE] + b"\r\n" for ln in lines)


def _dt(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, UTC))


def _needs_utf8(*values: str) -> bool:
    return not all(v.isascii() for v in values)


def _subject(text: str) -> str:
    # RFC 2047 encoded word for a non-ASCII recipient in the subject (the DSN header stays ASCII)
    if text.isascii():
        return text
    from email.header import Header

    return Header(text, "utf-8").encode()


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
    remote_reply: str = "",
) -> bytes:
    """A DSN: multipart/report with text, delivery status and the original header
    (RFC 3464 §2, RFC 6522), CRLF line ends.

    ``remote_reply`` is the reply as the remote server sent it, "" when the failure is our own
    (DNS, TLS, policy, a refusal before sending): only then are ``Remote-MTA`` and a
    ``Diagnostic-Code`` of type ``smtp`` given (RFC 3464 §2.3.5-§2.3.6: both name what the
    remote MTA reported); our own errors get ``Diagnostic-Code: X-moxcli; ...`` and no
    ``Remote-MTA``, so a DSN never attributes to a server a code it did not send.

    A non-ASCII recipient (RFC 6533 §3) makes the status part
    ``message/global-delivery-status`` with address type ``utf-8``, and a non-ASCII original
    header is returned as ``message/global-headers`` (RFC 6533 §6.3); an ASCII DSN keeps the
    RFC 3464 types (``message/delivery-status``, ``rfc822``, ``text/rfc822-headers``).

    With ``delayed_until`` it is a "delayed" DSN (Action: delayed, RFC 3464 §2.3.3): the
    message stays queued and is tried until then.
    """
    t = time.time() if now is None else now
    host = config.hostname
    boundary = os.urandom(20).hex()
    msgid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    status = enhanced or ("5.0.0" if permanent else "4.0.0")
    safe_error = re.sub(r"[\r\n]+", " ", error).encode("ascii", "replace").decode()[:900]
    safe_reply = re.sub(r"[\r\n]+", " ", remote_reply).encode("ascii", "replace").decode()[:900]
    rcpt = msg.recipient
    utf8 = _needs_utf8(rcpt, msg.mail_from)
    if safe_reply:
        last = f"The last error was (the reply of {remote_host or 'the remote server'})"
    else:
        last = f"The last error was (found by {host}, not a reply of a remote server)"
    if delayed_until is None:
        action, subject = "failed", f"mail delivery failed: {rcpt}"
        text = (
            f"Delivery has failed permanently for:\r\n\r\n\t{rcpt}\r\n\r\n"
            f"after {msg.attempts} attempt(s). {last}:\r\n\r\n\t{safe_error}\r\n\r\n"
            f"The message has been removed from the queue of {host}.\r\n"
        )
    else:
        action, subject = "delayed", f"mail delivery delayed: {rcpt}"
        status = enhanced if enhanced.startswith("4.") else "4.0.0"
        text = (
            f"Delivery has been delayed for:\r\n\r\n\t{rcpt}\r\n\r\n"
            f"after {msg.attempts} attempt(s). {last}:\r\n\r\n\t{safe_error}\r\n\r\n"
            f"{host} keeps trying until {_dt(delayed_until)}; you need not resend the message.\r\n"
        )
    per_msg = f"Reporting-MTA: dns; {host}\r\nArrival-Date: {_dt(msg.created)}\r\n"
    addr_type = "utf-8" if utf8 else "rfc822"  # RFC 6533 3: utf-8-addr in a global DSN
    per_rcpt = f"Final-Recipient: {addr_type}; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n"
    if safe_reply:
        if remote_host:
            per_rcpt += f"Remote-MTA: dns; {remote_host}\r\n"
        per_rcpt += f"Diagnostic-Code: smtp; {safe_reply}\r\n"
    else:
        per_rcpt += f"Diagnostic-Code: X-moxcli; {safe_error}\r\n"
    if msg.last_attempt:
        per_rcpt += f"Last-Attempt-Date: {_dt(msg.last_attempt)}\r\n"
    if delayed_until is not None:
        per_rcpt += f"Will-Retry-Until: {_dt(delayed_until)}\r\n"
    headers = _header_block(original)
    to = msg.mail_from or f"postmaster@{host}"
    parts = [
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@{host}>",
        f"To: <{to}>",
        f"Subject: {_subject(subject)}",
        f"Message-Id: <{msgid}@{host}>",
        f"Date: {_dt(t)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f"Content-Type: multipart/report; report-type={'global-delivery-status' if utf8 else 'delivery-status'};"
        f' boundary="{boundary}"',
        "",
        "This is a MIME-formatted delivery status notification.",
        f"--{boundary}",
        f"Content-Type: text/plain; charset={'utf-8' if utf8 else 'us-ascii'}",
        *(["Content-Transfer-Encoding: 8bit"] if utf8 else []),
        "",
        text,
        f"--{boundary}",
        f"Content-Type: message/{'global-delivery-status' if utf8 else 'delivery-status'}",
        *(["Content-Transfer-Encoding: 8bit"] if utf8 else []),
        "",
        per_msg + "\r\n" + per_rcpt,
        f"--{boundary}",
        "Content-Type: " + ("text/rfc822-headers" if headers.isascii() else "message/global-headers"),
        *([] if headers.isascii() else ["Content-Transfer-Encoding: 8bit"]),
        "",
    ]
    body = "\r\n".join(parts).encode("utf-8") + b"\r\n" + headers
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
    remote_reply: str = "",
) -> bool:
    """Compose and store the DSN for ``msg`` in ``tx``; False when there is none to store.

    The DSN passes the same check as every queued message (:func:`msgdata.check`).
    """
    dest = destination(config, msg)
    if dest is None:
        return False
    data = compose(
        config,
        msg,
        original,
        error,
        remote_host,
        code,
        enhanced,
        permanent,
        delayed_until=delayed_until,
        remote_reply=remote_reply,
    )
    try:
        msgdata.check(data)
    except msgdata.MessageDataError as exc:  # a bug in compose: keep the queue run going
        _log.error("composed dsn is not canonical, not stored", id=msg.id, err=str(exc))
        return False
    try:
        from moxcli.mail import deliver as mail_deliver
    except ImportError:
        _log.warn("no mail store to put the dsn in", id=msg.id, account=dest.account, mailbox=dest.mailbox)
        return False
    mail_deliver.store_message(tx, data_dir, dest.account, dest.mailbox, data, flags=["\\Seen"] if dest.seen else [])
    return True

"""A synchronous SMTP client for delivery (RFC 5321) with STARTTLS (RFC 3207).

The caller owns the socket and the TLS policy: :class:`Client` speaks the protocol on a
connected socket, :meth:`Client.starttls` sends the command and swaps in the TLS socket the
caller made (``moxcli.tlsconn`` does the handshake and verification), and
:meth:`Client.transaction` sends one message and returns one :class:`RcptResult` per
recipient (RFC 5321 §4.2: each RCPT has its own reply; DATA fails them all).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterator

from moxcli import log, stop
from moxcli.config import DeliveryConfig
from moxcli.smtp import msgdata
from moxcli.values import dataclass, field

_log = log.get("smtp")

MAX_LINE = 2048  # RFC 5321 4.5.3.1.5 says 512 for replies; be liberal with what servers send
RECV_SIZE = 4096  # bytes per recv(): with MAX_LINE it bounds the read buffer
SEND_SIZE = 65536  # bytes per send() of message data (one "data block", RFC 5321 4.5.3.2.5)


def _quit_grace(default: float = 1.0) -> float:
    """Seconds for QUIT (or a final reply) when a stop is requested.

    MOXCLI_TEST_QUIT_GRACE (test-only, docs/development.md "Stop tests") widens it, so that
    a test on a loaded machine sends its second signal inside the grace for sure; a value
    that is not a number above 0 and at most 600 is ignored.
    """
    try:
        value = float(os.environ.get("MOXCLI_TEST_QUIT_GRACE", ""))
    except ValueError:
        return default
    return value if 0 < value <= 600 else default


QUIT_GRACE = _quit_grace()

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


@dataclass
class Reply:
    """A (possibly multi-line) reply: code, enhanced status code (RFC 3463) and text lines."""

    code: int
    lines: list[str]
    enhanced: str = ""
    # True for an outcome moxcli decided itself before or instead of asking the server: a DSN
    # must not attribute it to the remote MTA (RFC 3464 2.3.5, 2.3.6).
    local: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SMTPError(Exception):
    """A failed step: ``reply`` when the server answered, ``permanent`` decides retry or bounce."""

    def __init__(
        self,
        msg: str,
        reply: Reply | None = None,
        permanent: bool = False,
        tls: bool = False,
        timeout: bool = False,
        limit: bool = False,
    ) -> None:
        super().__init__(msg)
        self.reply = reply
        self.permanent = permanent
        self.tls = tls  # a STARTTLS/TLS failure: the caller may fall back to plaintext (docs/behaviour-notes.md §3.7)
        self.timeout = timeout  # a deadline passed (RFC 5321 4.5.3.2)
        self.limit = limit  # the server sent more than a reply may hold

    @property
    def code(self) -> int:
        return self.reply.code if self.reply else 0

    @property
    def enhanced(self) -> str:
        return self.reply.enhanced if self.reply else ""


class SessionGone(SMTPError):
    """A reused session could not start a new transaction: no reply, or a refused RSET. Nothing
    was delivered; the caller closes it and connects again."""


@dataclass
class RcptResult:
    """The outcome for one recipient of a transaction."""

    recipient: str
    ok: bool
    reply: Reply | None
    permanent: bool = False

    @property
    def error(self) -> str:
        return "" if self.ok or self.reply is None else str(self.reply)


@dataclass
class Extensions:
    """EHLO keywords recognized case-insensitively (docs/behaviour-notes.md §3.5)."""

    names: set[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)  # as announced, in the server's order
    size: int = 0
    auth: list[str] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.names

    @classmethod
    def parse(cls, lines: list[str]) -> Extensions:
        ext = cls()
        for line in lines[1:]:  # the first line is the server's greeting name
            words = line.split()
            if not words:
                continue
            kw = words[0].upper()
            ext.names.add(kw)
            ext.keywords.append(kw)
            if kw == "SIZE" and len(words) > 1 and words[1].isdigit():
                ext.size = int(words[1])
            elif kw == "AUTH":
                ext.auth = [w.upper() for w in words[1:]]
            elif kw == "LIMITS":
                for w in words[1:]:
                    k, _, v = w.partition("=")
                    ext.limits[k.upper()] = v
        return ext

    @property
    def rcpt_max(self) -> int:
        """LIMITS RCPTMAX (RFC 9422), 0 when not announced."""
        v = self.limits.get("RCPTMAX", "")
        return int(v) if v.isdigit() else 0


def parse_reply_line(line: str) -> tuple[int, bool, str]:
    """(code, is_last, text) of one reply line; ValueError when malformed."""
    if len(line) < 3 or not line[:3].isdigit() or line[0] not in "12345":
        raise ValueError(f"malformed reply line {line[:40]!r}")
    sep = line[3:4]
    if sep not in ("", " ", "-"):
        raise ValueError(f"malformed reply line {line[:40]!r}")
    return int(line[:3]), sep != "-", line[4:]


def enhanced_code(code: int, text: str) -> str:
    """The RFC 3463 status code at the start of the text if its class matches the reply code."""
    m = _ENHANCED.match(text)
    if m and m.group(1) == str(code)[0]:
        return f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
    return ""


class Client:
    """One SMTP session on a connected socket.

    Every reply has a deadline for all of its lines (RFC 5321 §4.5.3.2, ``limits``), however
    slowly it trickles in, and a cap on its lines and bytes; a server that breaks one gets an
    :class:`SMTPError` with ``timeout``/``limit`` set, never unbounded time or memory. The
    client also knows when the session may still be ended with QUIT (:meth:`abort`), for a
    stop in the middle of a session.
    """

    def __init__(self, sock: socket.socket, ehlo_name: str, limits: DeliveryConfig | None = None) -> None:
        self.sock = sock
        self.ehlo_name = ehlo_name
        self.limits = limits or DeliveryConfig()
        self.extensions = Extensions()
        self.greeting: Reply | None = None
        self.starttls_reply: Reply | None = None
        self.tls = False
        self.transactions = 0  # transactions started on this connection
        self._buf = b""
        self._session_deadline = time.monotonic() + self.limits.session_timeout
        # What the server is in the middle of, for abort(): replies we still wait for, a
        # write that may be incomplete, message data after its 354.
        self._awaiting = 0
        self._writing = False
        self._in_data = False

    # -- low level -------------------------------------------------------------------------

    def _deadline(self, timeout: float) -> float:
        return min(time.monotonic() + timeout, self._session_deadline)

    def time_left(self, timeout: float) -> float:
        """``timeout``, or less when the session deadline comes first (for steps outside the
        client, such as the TLS handshake after STARTTLS)."""
        return max(min(timeout, self._session_deadline - time.monotonic()), 0.0)

    def _remaining(self, deadline: float, what: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SMTPError(f"timeout {what}", timeout=True)
        return left

    def _readline(self, deadline: float, what: str) -> str:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1 :]
                if len(line) > MAX_LINE:
                    raise SMTPError("reply line too long", limit=True)
                text = line.rstrip(b"\r").decode("utf-8", errors="replace")
                _log.debug("S: " + text[:512])  # --log-level debug: the dialogue, replies
                return text
            if len(self._buf) > MAX_LINE:
                raise SMTPError("reply line too long", limit=True)
            self.sock.settimeout(self._remaining(deadline, what))
            try:
                chunk = self.sock.recv(RECV_SIZE)
            except TimeoutError:
                raise SMTPError(f"timeout {what}", timeout=True) from None
            except OSError as exc:
                raise SMTPError(f"reading reply: {exc}", tls=self.tls and _is_tls_error(exc)) from exc
            if not chunk:
                raise SMTPError("connection closed by server")
            self._buf += chunk

    def read_reply(self, timeout: float | None = None, what: str = "") -> Reply:
        """One reply, complete within ``timeout`` seconds (default: the command timeout)."""
        t = self.limits.command_timeout if timeout is None else timeout
        deadline = self._deadline(t)
        what = f"waiting {t:g} s for the {what or 'reply'}"
        lines: list[str] = []
        size = 0
        code = 0
        while True:
            raw = self._readline(deadline, what)
            size += len(raw) + 2
            if len(lines) >= self.limits.max_reply_lines:
                raise SMTPError(f"reply has more than {self.limits.max_reply_lines} lines", limit=True)
            if size > self.limits.max_reply_bytes:
                raise SMTPError(f"reply is larger than {self.limits.max_reply_bytes} bytes", limit=True)
            try:
                c, last, text = parse_reply_line(raw)
            except ValueError as exc:
                raise SMTPError(str(exc)) from None
            if lines and c != code:
                raise SMTPError(f"inconsistent codes in multi-line reply ({code}, {c})")
            code = c
            lines.append(text)
            if last:
                break
        self._awaiting = max(self._awaiting - 1, 0)
        return Reply(code, lines, enhanced_code(code, lines[0]))

    def send(self, data: bytes, timeout: float | None = None, replies: int = 0) -> None:
        """Write ``data`` (commands expecting ``replies``) within ``timeout`` (default: command)."""
        deadline = self._deadline(self.limits.command_timeout if timeout is None else timeout)
        self._awaiting += replies
        self._write(data, deadline, "writing command")

    def _write(self, data: bytes, deadline: float, what: str, block_timeout: float | None = None) -> None:
        self._writing = True
        view = memoryview(data)
        try:
            for start in range(0, len(view), SEND_SIZE):
                # RFC 5321 4.5.3.2.5: each block must be taken within the block timeout; the
                # overall deadline keeps a peer that takes a byte now and then from holding us.
                left = self._remaining(deadline, what)
                self.sock.settimeout(left if block_timeout is None else min(left, block_timeout))
                self.sock.sendall(view[start : start + SEND_SIZE])
        except TimeoutError:
            raise SMTPError(f"timeout {what}", timeout=True) from None
        except OSError as exc:
            raise SMTPError(f"{what}: {exc}", tls=self.tls and _is_tls_error(exc)) from exc
        self._writing = False

    def send_data(self, data: bytes) -> None:
        """The message data after the 354 (dot-stuffed, with its terminating dot), with the
        data block timeout per block and a floor of ``min_send_rate`` bytes/s overall."""
        lim = self.limits
        deadline = self._deadline(lim.data_block_timeout + len(data) / lim.min_send_rate)
        self._awaiting += 1
        self._write(data, deadline, f"sending {len(data)} bytes of message data", lim.data_block_timeout)

    def command(self, line: str, timeout: float | None = None, what: str = "") -> Reply:
        stop.check()  # no new command once a stop is requested (QUIT goes through quit())
        # Commands only (the message body goes through send_data()); an AUTH argument is never logged.
        _log.debug("C: " + ("AUTH ***" if line[:5].upper() == "AUTH " else line))
        self.send(line.encode("utf-8") + b"\r\n", timeout, replies=1)
        return self.read_reply(timeout, what or f"reply to {line.split(' ', 1)[0]}")

    # -- session ---------------------------------------------------------------------------

    def read_greeting(self) -> Reply:
        """The 220 greeting (docs/behaviour-notes.md §3.5); its text is the TLSRPT receiving-mx-helo."""
        self._awaiting = 1
        r = self.read_reply(self.limits.greeting_timeout, "greeting")
        self.greeting = r
        if r.code != 220:
            raise SMTPError(f"greeting: {r}", r, permanent=r.permanent)
        return r

    def ehlo(self, helo_fallback: bool = True) -> Reply:
        """EHLO, falling back to HELO on 500-504 before TLS only (docs/behaviour-notes.md §3.5);
        a probe that only wants to know about STARTTLS does without the fallback."""
        r = self.command(f"EHLO {self.ehlo_name}")
        if r.code == 250:
            self.extensions = Extensions.parse(r.lines)
            return r
        if helo_fallback and r.code in (500, 501, 502, 503, 504) and not self.tls:
            r = self.command(f"HELO {self.ehlo_name}")
            if r.code == 250:
                self.extensions = Extensions()
                return r
        raise SMTPError(f"ehlo: {r}", r, permanent=r.permanent)

    def starttls(self, wrap: Callable[[socket.socket], socket.socket]) -> Reply:
        """Send STARTTLS; on 220 let ``wrap`` make the TLS socket, then EHLO again (RFC 3207)."""
        r = self.command("STARTTLS")
        self.starttls_reply = r
        if r.code != 220:
            raise SMTPError(f"starttls: {r}", r, permanent=r.permanent, tls=True)
        if self._buf:
            # RFC 3207 / CVE-2011-0411: data pipelined before the handshake must not be trusted.
            raise SMTPError("server sent data after its STARTTLS reply", tls=True)
        self._writing = True  # mid-handshake the session cannot be ended with QUIT
        self.sock = wrap(self.sock)
        self._writing = False
        self.tls = True
        return r

    def transaction(
        self,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        requiretls: bool = False,
        reset: bool = False,
    ) -> list[RcptResult]:
        """MAIL, RCPT per recipient, DATA; pipelined when the server offers PIPELINING (RFC 2920).

        ``reset`` starts with RSET (RFC 5321 §4.1.1.5), for a session that carried a transaction
        before; with PIPELINING in the same write as MAIL (RFC 2920 §3.1 allows RSET inside a
        group), which saves a round trip per message on a reused connection. A session that
        does not answer it with 250 raises :class:`SessionGone`.
        """
        stop.check()
        self.transactions += 1
        lim = self.limits
        ext = self.extensions

        def refuse(code: int, enhanced: str, text: str) -> list[RcptResult]:
            r = Reply(code, [f"{enhanced} {text}"], enhanced, local=True)
            return [RcptResult(rc, False, r, True) for rc in recipients]

        try:
            wire = msgdata.dot_stuff(data)  # checks the bytes first
        except msgdata.MessageDataError as exc:
            # Never put non-canonical bytes on the wire: a bare CR or LF could end DATA early
            # at a lenient server (SMTP smuggling, RFC 5321 2.3.8 and 4.1.1.4).
            return refuse(554, "5.6.0", f"message not sent: {exc}")
        params = []
        if ext.size:
            if len(data) > ext.size:
                return refuse(552, "5.3.4", f"message size {len(data)} exceeds server limit {ext.size}")
            params.append(f"SIZE={len(data)}")
        if msgdata.is_8bit(data):
            # RFC 6152 3: 8-bit data only to a server that announces 8BITMIME, with BODY=8BITMIME.
            # As mox, no conversion to 7 bit: the message fails with 5.6.3 (RFC 3463:
            # "conversion required but not supported").
            if "8BITMIME" not in ext:
                return refuse(554, "5.6.3", "message has 8-bit data and the server does not announce 8BITMIME")
            params.append("BODY=8BITMIME")
        if not (mail_from + "".join(recipients)).isascii():
            if "SMTPUTF8" not in ext:
                return refuse(553, "5.6.7", "non-ASCII addresses and server lacks SMTPUTF8")
            params.append("SMTPUTF8")
        if requiretls:
            params.append("REQUIRETLS")
        mail_cmd = f"MAIL FROM:<{mail_from}>" + "".join(" " + p for p in params)
        rcpt_cmds = [f"RCPT TO:<{r}>" for r in recipients]
        pipelining = "PIPELINING" in ext
        if pipelining:
            group = ["RSET"] if reset else []
            group += [mail_cmd, *rcpt_cmds, "DATA"]
            for c in group:
                _log.debug("C: " + c, pipelined=True)
            with self._reset_guard(reset):
                self.send(("\r\n".join(group) + "\r\n").encode("utf-8"), replies=len(group))
                if reset:
                    self._check_reset(self.read_reply(what="reply to RSET"))
            mail_reply = self.read_reply(what="reply to MAIL")
            rcpt_replies = [self.read_reply(what="reply to RCPT") for _ in rcpt_cmds]
            data_reply = self.read_reply(lim.data_init_timeout, "reply to DATA")
        else:
            if reset:
                with self._reset_guard(True):
                    self._check_reset(self.command("RSET"))
            mail_reply = self.command(mail_cmd)
            rcpt_replies = []
            data_reply = None
            if mail_reply.code == 250:
                rcpt_replies = [self.command(c) for c in rcpt_cmds]
                if any(r.code in (250, 251) for r in rcpt_replies):
                    data_reply = self.command("DATA", lim.data_init_timeout)
        if mail_reply.code != 250:
            if pipelining and data_reply is not None and data_reply.code == 354:
                self._abort_data()
            raise SMTPError(f"mail from: {mail_reply}", mail_reply, permanent=mail_reply.permanent)
        results = [
            RcptResult(rc, rr.code in (250, 251), rr, rr.permanent)
            for rc, rr in zip(recipients, rcpt_replies, strict=True)
        ]
        accepted = [r for r in results if r.ok]
        if not accepted:
            if data_reply is not None and data_reply.code == 354:
                self._abort_data()
            else:
                self._reset()
            return results
        assert data_reply is not None
        if data_reply.code != 354:
            self._reset()
            return [
                r if not r.ok else RcptResult(r.recipient, False, data_reply, data_reply.permanent) for r in results
            ]
        _log.debug("C: (message data not shown)", bytes=len(data))
        self._in_data = True
        self.send_data(wire)
        final = self._final_reply()
        self._in_data = False
        if final.code != 250:
            return [r if not r.ok else RcptResult(r.recipient, False, final, final.permanent) for r in results]
        return [r if not r.ok else RcptResult(r.recipient, True, final) for r in results]

    @contextlib.contextmanager
    def _reset_guard(self, reset: bool) -> Iterator[None]:
        """SMTP errors up to the RSET reply of a reused session mean the session is gone."""
        if not reset:
            yield
            return
        try:
            yield
        except SessionGone:
            raise
        except SMTPError as exc:
            raise SessionGone(f"rset: {exc}", exc.reply) from exc

    @staticmethod
    def _check_reset(r: Reply) -> None:
        if r.code != 250:
            # The rest of a pipelined group may have been taken: only closing ends it safely.
            raise SessionGone(f"rset: {r}", r)

    def _reset(self) -> None:
        # RFC 5321 §4.1.1.5: end the unfinished transaction so another MAIL may follow.
        self.command("RSET")

    def _abort_data(self) -> None:
        # The server accepted DATA though no recipient was accepted: end with an empty message.
        self._in_data = True
        self.send(b".\r\n", replies=1)
        self.read_reply(self.limits.data_end_timeout, "reply to the message data")
        self._in_data = False

    def _final_reply(self) -> Reply:
        try:
            return self.read_reply(self.limits.data_end_timeout, "reply to the message data")
        except stop.Interrupted as exc:
            # The data is complete and the server may be delivering it: give its reply a
            # moment, so that a delivery is recorded as one instead of repeated by the next run.
            try:
                return self.read_reply(QUIT_GRACE, "reply to the message data")
            except (SMTPError, OSError):
                raise exc from None

    def quit(self, timeout: float | None = None) -> None:
        """QUIT and close; errors are ignored (the transaction already has its outcome)."""
        t = QUIT_GRACE if stop.requested() else min(timeout or self.limits.command_timeout, self.limits.command_timeout)
        try:
            self.send(b"QUIT\r\n", t, replies=1)
            self.read_reply(t, "reply to QUIT")
        except (SMTPError, OSError):
            pass
        self.close()

    def abort(self, wait: bool = True) -> None:
        """End the session after a stop, within about 2 s: read the replies still due, then QUIT
        (RFC 5321 4.1.1.10) when the server waits for a command; in the middle of a write or of
        message data anything sent would be taken as data, so then just close. Without
        ``wait`` (an idle session) QUIT is sent and the connection closed at once."""
        try:
            pending = 0 if self._writing or self._in_data else self._awaiting
            for _ in range(pending):
                if self.read_reply(QUIT_GRACE, "pending reply").code == 354:
                    self._in_data = True
                    break
            if not (self._writing or self._in_data):
                self.send(b"QUIT\r\n", QUIT_GRACE, replies=1)
                if wait:
                    self.read_reply(QUIT_GRACE, "reply to QUIT")
        except (SMTPError, OSError):
            pass
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _is_tls_error(exc: OSError) -> bool:
    import ssl

    return isinstance(exc, ssl.SSLError)

"""A synchronous SMTP client for delivery (RFC 5321) with STARTTLS (RFC 3207).

The caller owns the socket and the TLS policy: :class:`Client` speaks the protocol on a
connected socket, :meth:`Client.starttls` sends the command and swaps in the TLS socket the
caller made (``moxcli.tlsconn`` does the handshake and verification), and
:meth:`Client.transaction` sends one message and returns one :class:`RcptResult` per
recipient (RFC 5321 §4.2: each RCPT has its own reply; DATA fails them all).
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from moxcli import log
from moxcli.smtp import msgdata

_log = log.get("smtp")

MAX_LINE = 2048  # RFC 5321 4.5.3.1.5 says 512 for replies; be liberal with what servers send
LINE_TIMEOUT = 30.0  # mox: each line read or write has a 30 s deadline (spec §3.5)

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

    def __init__(self, msg: str, reply: Reply | None = None, permanent: bool = False, tls: bool = False) -> None:
        super().__init__(msg)
        self.reply = reply
        self.permanent = permanent
        self.tls = tls  # a STARTTLS/TLS failure: the caller may fall back to plaintext (spec §3.7)

    @property
    def code(self) -> int:
        return self.reply.code if self.reply else 0

    @property
    def enhanced(self) -> str:
        return self.reply.enhanced if self.reply else ""


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
    """EHLO keywords recognized case-insensitively (spec §3.5)."""

    names: set[str] = field(default_factory=set)
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
    """One SMTP session on a connected socket."""

    def __init__(self, sock: socket.socket, ehlo_name: str, timeout: float = LINE_TIMEOUT) -> None:
        self.sock = sock
        self.ehlo_name = ehlo_name
        self.timeout = timeout
        self.extensions = Extensions()
        self.greeting: Reply | None = None
        self.tls = False
        self._buf = b""
        self.sock.settimeout(timeout)

    # -- low level -------------------------------------------------------------------------

    def _readline(self) -> str:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1 :]
                text = line.rstrip(b"\r").decode("utf-8", errors="replace")
                _log.debug("S: " + text[:512])  # --log-level debug: the dialogue, replies
                return text
            if len(self._buf) > MAX_LINE:
                raise SMTPError("reply line too long")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise SMTPError("timeout reading reply") from None
            except OSError as exc:
                raise SMTPError(f"reading reply: {exc}", tls=self.tls and _is_tls_error(exc)) from exc
            if not chunk:
                raise SMTPError("connection closed by server")
            self._buf += chunk

    def read_reply(self) -> Reply:
        lines: list[str] = []
        code = 0
        while True:
            raw = self._readline()
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
        return Reply(code, lines, enhanced_code(code, lines[0]))

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise SMTPError("timeout writing command") from None
        except OSError as exc:
            raise SMTPError(f"writing command: {exc}", tls=self.tls and _is_tls_error(exc)) from exc

    def command(self, line: str) -> Reply:
        # Commands only (the message body goes through send()); an AUTH argument is never logged.
        _log.debug("C: " + ("AUTH ***" if line[:5].upper() == "AUTH " else line))
        self.send(line.encode("utf-8") + b"\r\n")
        return self.read_reply()

    # -- session ---------------------------------------------------------------------------

    def read_greeting(self) -> Reply:
        """The 220 greeting (spec §3.5); its text is the TLSRPT receiving-mx-helo."""
        r = self.read_reply()
        self.greeting = r
        if r.code != 220:
            raise SMTPError(f"greeting: {r}", r, permanent=r.permanent)
        return r

    def ehlo(self) -> Reply:
        """EHLO, falling back to HELO on 500-504 before TLS only (spec §3.5)."""
        r = self.command(f"EHLO {self.ehlo_name}")
        if r.code == 250:
            self.extensions = Extensions.parse(r.lines)
            return r
        if r.code in (500, 501, 502, 503, 504) and not self.tls:
            r = self.command(f"HELO {self.ehlo_name}")
            if r.code == 250:
                self.extensions = Extensions()
                return r
        raise SMTPError(f"ehlo: {r}", r, permanent=r.permanent)

    def starttls(self, wrap: Callable[[socket.socket], socket.socket]) -> Reply:
        """Send STARTTLS; on 220 let ``wrap`` make the TLS socket, then EHLO again (RFC 3207)."""
        r = self.command("STARTTLS")
        if r.code != 220:
            raise SMTPError(f"starttls: {r}", r, permanent=r.permanent, tls=True)
        if self._buf:
            # RFC 3207 / CVE-2011-0411: data pipelined before the handshake must not be trusted.
            raise SMTPError("server sent data after its STARTTLS reply", tls=True)
        self.sock = wrap(self.sock)
        self.sock.settimeout(self.timeout)
        self.tls = True
        return r

    def transaction(
        self,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        requiretls: bool = False,
    ) -> list[RcptResult]:
        """MAIL, RCPT per recipient, DATA; pipelined when the server offers PIPELINING (RFC 2920)."""
        ext = self.extensions

        def refuse(code: int, enhanced: str, text: str) -> list[RcptResult]:
            r = Reply(code, [f"{enhanced} {text}"], enhanced, local=True)
            return [RcptResult(rc, False, r, True) for rc in recipients]

        try:
            msgdata.check(data)
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
            for c in (mail_cmd, *rcpt_cmds, "DATA"):
                _log.debug("C: " + c, pipelined=True)
            self.send(("\r\n".join([mail_cmd, *rcpt_cmds, "DATA"]) + "\r\n").encode("utf-8"))
            mail_reply = self.read_reply()
            rcpt_replies = [self.read_reply() for _ in rcpt_cmds]
            data_reply = self.read_reply()
        else:
            mail_reply = self.command(mail_cmd)
            rcpt_replies = []
            data_reply = None
            if mail_reply.code == 250:
                rcpt_replies = [self.command(c) for c in rcpt_cmds]
                if any(r.code in (250, 251) for r in rcpt_replies):
                    data_reply = self.command("DATA")
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
        self.send(msgdata.dot_stuff(data))
        final = self.read_reply()
        if final.code != 250:
            return [r if not r.ok else RcptResult(r.recipient, False, final, final.permanent) for r in results]
        return [r if not r.ok else RcptResult(r.recipient, True, final) for r in results]

    def _reset(self) -> None:
        # RFC 5321 §4.1.1.5: end the unfinished transaction so another MAIL may follow.
        self.command("RSET")

    def _abort_data(self) -> None:
        # The server accepted DATA though no recipient was accepted: end with an empty message.
        self.send(b".\r\n")
        self.read_reply()

    def quit(self) -> None:
        """QUIT and close; errors are ignored (the transaction already has its outcome)."""
        try:
            self.send(b"QUIT\r\n")
            self.read_reply()
        except (SMTPError, OSError):
            pass
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _is_tls_error(exc: OSError) -> bool:
    import ssl

    return isinstance(exc, ssl.SSLError)

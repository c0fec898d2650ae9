"""Report mail from an IMAP mailbox (RFC 9051 / RFC 3501): fetch, then archive or flag.

``imaps://user@host[:port]/MAILBOX`` uses implicit TLS (RFC 8314 §3.2), ``imap://`` requires
STARTTLS (RFC 3501 §6.2.1; a server without it is refused, the password is never sent in the
clear). Certificates are verified against the system roots plus ``[tls] ca_files``. The
password comes from ``[imap] password_file`` or the environment variable named by
``[imap] password_env``, never from the command line.

Messages are fetched one at a time with BODY.PEEK (so fetching sets no \\Seen flag), the
first 20 MiB + 1 byte only, so memory stays bounded. After each committed batch, the messages
that were imported or were duplicates are flagged \\Seen (``--mark-seen``) and/or moved to the
archive folder (``--archive-folder``, created when missing; UID MOVE of RFC 6851 when the
server has it, else COPY + \\Deleted + UID EXPUNGE of RFC 4315). Messages that were rejected or
are not reports stay where they are, for a person to look at.
"""

from __future__ import annotations

import imaplib
import os
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from moxcli import log
from moxcli.config import Config
from moxcli.errors import ConfigError, TemporaryError, UsageError
from moxcli.reports.incoming import DUPLICATE, IMPORTED, MAX_INPUT, Message, Outcome
from moxcli.values import dataclass

_log = log.get("imap")

TIMEOUT = 30.0
UID_BATCH = 200  # UIDs per STORE/MOVE command


@dataclass(frozen=True)
class ImapURL:
    tls: str  # "implicit" or "starttls"
    user: str
    host: str
    port: int
    mailbox: str

    def display(self) -> str:
        scheme = "imaps" if self.tls == "implicit" else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.mailbox}"


def parse_url(url: str) -> ImapURL:
    """``imaps://user@host[:port]/MAILBOX`` or ``imap://...`` (RFC 5092 syntax, no password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise UsageError(f"{url}: not an imap:// or imaps:// URL")
    if parts.password is not None:
        raise UsageError(f"{url}: no password in the URL; set [imap] password_file or password_env in the config")
    if not parts.username or not parts.hostname:
        raise UsageError(f"{url}: needs a user and a host, as in imaps://user@host/INBOX")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise UsageError(f"{url}: invalid port") from None
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapURL(
        "implicit" if parts.scheme == "imaps" else "starttls", unquote(parts.username), parts.hostname, port, mailbox
    )


def password(config: Config) -> str:
    """The IMAP password named by the config (a file, or an environment variable)."""
    imap = config.imap
    if imap.password_file is not None:
        try:
            return imap.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{imap.password_file}: cannot read the IMAP password: {exc.strerror}") from None
    if imap.password_env:
        value = os.environ.get(imap.password_env)
        if value is None:
            raise ConfigError(f"environment variable {imap.password_env} (the config's [imap] password_env) is not set")
        return value
    raise ConfigError("no IMAP password: set [imap] password_file or password_env in the config")


def tls_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    for f in config.tls.ca_files:
        ctx.load_verify_locations(cafile=str(f))
    return ctx


def quote(name: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3); mailbox names are sent as UTF-8 (RFC 6855 not needed for ASCII)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _client_line(data: bytes) -> str:
    """A command as the transcript shows it: LOGIN and AUTHENTICATE without their secrets."""
    line = data.decode("utf-8", "replace").rstrip("\r\n")
    tag, _, rest = line.partition(" ")
    verb = rest.split(" ", 1)[0].upper()
    if verb in ("LOGIN", "AUTHENTICATE"):
        return f"{tag} {verb} ***"
    return line


class _Transcript:
    """C:/S: lines of the IMAP dialogue at --log-level debug (docs/dane-posture.md, Transcripts): each
    command sent and each response line read. Message bodies are literals, read apart from the
    lines, so they never appear; LOGIN/AUTHENTICATE arguments are masked."""

    def send(self, data: Any) -> None:
        if _log.enabled("debug"):
            _log.debug("C: " + _client_line(bytes(data)))
        super().send(data)  # type: ignore[misc]

    def _get_line(self) -> bytes:
        line: bytes = super()._get_line()  # type: ignore[misc]
        if _log.enabled("debug"):
            _log.debug("S: " + line.decode("utf-8", "replace"))
        return line


class _IMAP4(_Transcript, imaplib.IMAP4):
    pass


class _IMAP4_SSL(_Transcript, imaplib.IMAP4_SSL):
    pass


class ImapSource:
    """One mailbox of one server, for the duration of an import (use as a context manager)."""

    def __init__(
        self,
        url: ImapURL,
        config: Config,
        archive_folder: str | None = None,
        mark_seen: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url = url
        self.config = config
        self.archive_folder = archive_folder
        self.mark_seen = mark_seen
        self.timeout = timeout
        self.conn: imaplib.IMAP4 | None = None
        self.moved = 0
        self.flagged = 0

    def _fail(self, what: str, exc: BaseException) -> TemporaryError:
        return TemporaryError(f"{self.url.display()}: {what}: {exc}")

    def __enter__(self) -> ImapSource:
        secret = password(self.config)
        ctx = tls_context(self.config)
        try:
            if self.url.tls == "implicit":
                conn: imaplib.IMAP4 = _IMAP4_SSL(self.url.host, self.url.port, ssl_context=ctx, timeout=self.timeout)
            else:
                conn = _IMAP4(self.url.host, self.url.port, timeout=self.timeout)
                if "STARTTLS" not in conn.capabilities:
                    conn.shutdown()
                    raise TemporaryError(
                        f"{self.url.display()}: server does not offer STARTTLS; not sending a password"
                    )
                conn.starttls(ssl_context=ctx)
        except ssl.SSLCertVerificationError as exc:
            raise TemporaryError(f"{self.url.display()}: TLS certificate not trusted: {exc.verify_message}") from None
        except (TimeoutError, OSError, imaplib.IMAP4.error) as exc:
            raise self._fail("cannot connect", exc) from None
        try:
            conn.login(self.url.user, secret)
        except imaplib.IMAP4.error as exc:
            conn.shutdown()
            raise ConfigError(f"{self.url.display()}: login failed: {_text(exc)}") from None
        # The capabilities after login (RFC 3501 §6.2.3: they may change; MOVE and UIDPLUS do).
        typ, caps = conn.capability()
        if typ == "OK" and caps and isinstance(caps[-1], bytes):
            conn.capabilities = tuple(caps[-1].decode("ascii", "replace").upper().split())
        typ, data = conn.select(quote(self.url.mailbox))
        if typ != "OK":
            conn.logout()
            raise UsageError(f"{self.url.display()}: cannot select mailbox: {_text(data)}")
        self.conn = conn
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.logout()
            except (OSError, imaplib.IMAP4.error):
                self.conn.shutdown()
            self.conn = None

    def _uid(self, *args: str) -> list[object]:
        assert self.conn is not None
        try:
            typ, data = self.conn.uid(*args)
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise self._fail(f"UID {args[0]}", exc) from None
        if typ != "OK":
            raise TemporaryError(f"{self.url.display()}: UID {args[0]} failed: {_text(data)}")
        return list(data)

    def messages(self) -> Iterator[Message]:
        """Every message of the mailbox (at the time of the search), in UID order."""
        data = self._uid("SEARCH", "ALL")
        first = data[0] if data else None
        uids = [int(u) for u in first.split()] if isinstance(first, bytes) else []
        for uid in sorted(uids):
            source = f"{self.url.display()};UID={uid}"
            fetched = self._uid("FETCH", str(uid), f"(UID BODY.PEEK[]<0.{MAX_INPUT + 1}>)")
            body = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if not isinstance(body, bytes):
                continue  # expunged meanwhile
            if len(body) > MAX_INPUT:
                yield Message(source, None, f"larger than {MAX_INPUT} bytes, refused", ref=uid, error_code="too-large")
            else:
                yield Message(source, body, ref=uid)

    def after_batch(self, outcomes: list[Outcome]) -> None:
        """Flag and/or move the batch's imported and duplicate messages."""
        uids = [str(o.ref) for o in outcomes if o.outcome in (IMPORTED, DUPLICATE) and o.ref is not None]
        if not uids or not (self.mark_seen or self.archive_folder):
            return
        for i in range(0, len(uids), UID_BATCH):
            chunk = ",".join(uids[i : i + UID_BATCH])
            if self.mark_seen:
                self._uid("STORE", chunk, "+FLAGS.SILENT", "(\\Seen)")
                self.flagged += len(uids[i : i + UID_BATCH])
            if self.archive_folder:
                self._move(chunk)
                self.moved += len(uids[i : i + UID_BATCH])

    def _move(self, uid_set: str) -> None:
        assert self.conn is not None and self.archive_folder is not None
        folder = quote(self.archive_folder)
        self.conn.create(folder)  # NO when it exists: fine
        if "MOVE" in self.conn.capabilities:
            self._uid("MOVE", uid_set, folder)  # RFC 6851
            return
        self._uid("COPY", uid_set, folder)
        self._uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self.conn.capabilities:
            self._uid("EXPUNGE", uid_set)  # RFC 4315 §2.1: only these messages
        else:
            self.conn.expunge()


def _text(data: object) -> str:
    if isinstance(data, list | tuple) and data:
        data = data[0]
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    if isinstance(data, BaseException) and data.args:
        return _text(data.args[0])
    return str(data)

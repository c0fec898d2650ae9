"""A small SMTP server on loopback whose behaviour per connection is scripted: well-behaved,
stalling at a chosen point, or hostile (endless multi-line banner, one byte at a time).

Events tell a test where the server is (``reached[name]``), so a signal or an assertion is
timed by what happened, never by a sleep. Every thread and socket it starts, ``close()`` stops.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

NORMAL = "normal"
ONE_MESSAGE = "one-message"  # well-behaved, but closes the connection after one message
STALL_BANNER = "stall-banner"  # accept, never greet
STALL_AFTER_DOT = "stall-after-dot"  # take the whole message, never answer the final dot
STALL_MID_DATA = "stall-mid-data"  # after 354 read a little of the data, then stop reading
ENDLESS_BANNER = "endless-banner"  # "220-xxx..." lines forever
DRIP_BANNER = "drip-banner"  # the greeting one byte at a time, ``drip`` seconds apart
STALL_MAIL = "stall-mail"  # never answer MAIL
DRIP_MAIL = "drip-mail"  # well-behaved until MAIL, whose reply drips
FAT_LINE_BANNER = "fat-line-banner"  # one endless line without LF
# Announces STARTTLS, answers it with 220, then drips a TLS record that never completes, one
# byte every ``drip`` seconds, for at most DRIP_TLS_FOR seconds (then closes: a client with a
# timeout per read, not one deadline for the handshake, sees the connection closed instead).
DRIP_TLS = "drip-tls"
REFUSE_RSET = "refuse-rset"  # well-behaved, but answers RSET with 502
DRIP_TLS_FOR = 20.0
STARTTLS_454 = "starttls-454"  # announces STARTTLS, answers it with 454 (then plaintext goes on)
STARTTLS_GARBAGE = "starttls-garbage"  # announces STARTTLS, answers 220, then plain text, not TLS


class StubSMTP:
    """Serves connection N with ``modes[N]`` (the last mode for every further connection)."""

    def __init__(self, modes: list[str], drip: float = 1.0, starttls: bool = False) -> None:
        self.modes = modes
        self.drip = drip
        self.messages: list[bytes] = []  # message data of transactions answered with 250
        self.connections = 0
        self.commands: list[bytes] = []  # command verbs received, in order, over all connections
        self.reached = {
            name: threading.Event()
            for name in ("connected", "mail", "mid-data", "after-dot", "client-closed", "dripping")
        }
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self.listener = socket.socket()
        # A small receive buffer (inherited by accepted sockets): a client sending to a stub
        # that stops reading blocks after a few MB at most.
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        self._closing.set()
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.listener.close()
        with self._lock:
            for s in self._socks:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        for t in self._threads:
            t.join(10)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.modes[min(self.connections, len(self.modes) - 1)]
                self.connections += 1
                self._socks.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, mode), daemon=True)
            t.start()
            self._threads.append(t)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless closing; False when closing."""
        return not self._closing.wait(seconds)

    def _serve(self, conn: socket.socket, mode: str) -> None:
        try:
            self._session(conn, mode)
        except OSError:
            pass
        finally:
            conn.close()

    def _session(self, conn: socket.socket, mode: str) -> None:
        self.reached["connected"].set()
        if mode == STALL_BANNER:
            self._until_closed(conn)
            return
        if mode == ENDLESS_BANNER:
            line = b"220-" + b"x" * 200 + b"\r\n"
            while not self._closing.is_set():
                conn.sendall(line * 50)
            return
        if mode == FAT_LINE_BANNER:
            while not self._closing.is_set():
                conn.sendall(b"220 " + b"x" * 65536)
            return
        if mode == DRIP_BANNER:
            self._drip(conn, b"220 stub.test ESMTP at a snail's pace\r\n")
            return
        conn.sendall(b"220 stub.test ESMTP\r\n")
        f = conn.makefile("rb")
        while True:
            line = f.readline(4096)
            if not line:
                self.reached["client-closed"].set()
                return
            cmd = line.strip().upper()
            with self._lock:
                self.commands.append(cmd.split(b":")[0].split(b" ")[0])
            if cmd.startswith(b"EHLO"):
                tls = b"250-STARTTLS\r\n" if mode in (DRIP_TLS, STARTTLS_454, STARTTLS_GARBAGE) else b""
                conn.sendall(b"250-stub.test\r\n" + tls + b"250-PIPELINING\r\n250 8BITMIME\r\n")
            elif cmd == b"STARTTLS" and mode == DRIP_TLS:
                conn.sendall(b"220 2.0.0 go ahead\r\n")
                # A TLS handshake record header announcing 16 KiB that never all arrive.
                self._drip(conn, b"\x16\x03\x03\x40\x00" + b"\x02" * 16384, DRIP_TLS_FOR)
                return
            elif cmd == b"STARTTLS" and mode == STARTTLS_454:
                conn.sendall(b"454 4.7.0 TLS not available now\r\n")
            elif cmd == b"STARTTLS" and mode == STARTTLS_GARBAGE:
                conn.sendall(b"220 2.0.0 go ahead\r\n")
                conn.recv(4096)  # the ClientHello
                conn.sendall(b"this is not a TLS record\r\n")
                self._until_closed(conn)
                return
            elif cmd.startswith(b"MAIL") and mode == STALL_MAIL:
                self.reached["mail"].set()
                self._until_closed(conn)
                return
            elif cmd.startswith(b"MAIL") and mode == DRIP_MAIL:
                self._drip(conn, b"250 2.1.0 ok, eventually\r\n")
                return
            elif cmd == b"RSET" and mode == REFUSE_RSET:
                conn.sendall(b"502 5.5.1 no RSET today\r\n")
            elif cmd.startswith((b"MAIL", b"RCPT", b"RSET", b"HELO", b"NOOP")):
                conn.sendall(b"250 ok\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                if mode == STALL_MID_DATA:
                    f.read(1024)
                    self.reached["mid-data"].set()
                    self._until_closed(conn, read=False)
                    return
                data = self._read_data(f)
                if data is None:
                    self.reached["client-closed"].set()
                    return
                if mode == STALL_AFTER_DOT:
                    self.reached["after-dot"].set()
                    self._until_closed(conn)
                    return
                with self._lock:
                    self.messages.append(data)
                    self.commands.append(b"(data)")
                conn.sendall(b"250 2.0.0 queued\r\n")
                if mode == ONE_MESSAGE:
                    return
            elif cmd == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 unknown command\r\n")

    @staticmethod
    def _read_data(f) -> bytes | None:  # type: ignore[no-untyped-def]
        lines = []
        while True:
            line = f.readline(65536)
            if not line:
                return None
            if line == b".\r\n":
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b"..") else line)

    def _drip(self, conn: socket.socket, text: bytes, limit: float | None = None) -> None:
        """Send ``text`` one byte every ``drip`` seconds, again and again (for ``limit`` seconds)."""
        self.reached["dripping"].set()
        end = None if limit is None else time.monotonic() + limit
        while not self._closing.is_set():
            for b in text:
                conn.sendall(bytes([b]))
                if not self._wait(self.drip) or (end is not None and time.monotonic() > end):
                    return

    def _until_closed(self, conn: socket.socket, read: bool = True) -> None:
        """Say nothing until the client closes (or the stub is closed). Without ``read`` the
        client's writes fill the socket buffers and block it, until the stub is closed."""
        if not read:
            self._closing.wait()
            return
        conn.settimeout(0.2)
        while not self._closing.is_set():
            try:
                if conn.recv(65536) == b"":
                    self.reached["client-closed"].set()
                    return
            except TimeoutError:
                continue


@contextmanager
def stub(modes: list[str], **kwargs: float) -> Iterator[StubSMTP]:
    s = StubSMTP(modes, **kwargs)  # type: ignore[arg-type]
    try:
        yield s
    finally:
        s.close()

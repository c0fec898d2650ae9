"""A TLS server for mta-sts.sts.test (the lab's certificate) that never finishes an answer:
the peer of the MTA-STS fetch deadline tests (issue 18)."""

from __future__ import annotations

import socket
import threading


class HostileHTTPS:
    """A TLS server with the lab's certificate for mta-sts.sts.test that never finishes:
    ``handshake`` drips TLS bytes, ``headers`` drips header bytes, ``body`` sends headers
    and then an endless body, one byte every 0.3 s; ``flood`` an endless body at full speed."""

    def __init__(self, lab, mode: str) -> None:
        import ssl

        self.mode = mode
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(f"{lab['LAB_DIR']}/ca/https.chain.pem", f"{lab['LAB_DIR']}/ca/https.key")
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _drip(self, conn, data: bytes) -> None:
        for i in range(len(data)):
            if self.stop.wait(0.3):
                return
            conn.sendall(data[i : i + 1])

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.srv.accept()
            except OSError:
                continue
            try:
                if self.mode == "handshake":
                    self._drip(raw, b"\x16\x03\x03" + b"\x00" * 10000)
                    continue
                raw.settimeout(5)
                conn = self.ctx.wrap_socket(raw, server_side=True)
                conn.recv(4096)
                if self.mode == "headers":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    self._drip(conn, b"X-Slow: " + b"a" * 10000)
                elif self.mode == "flood":  # an endless body, as fast as the client reads
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\n")
                    while not self.stop.is_set():
                        conn.sendall(b"#" * 65536)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 60000\r\n\r\n")
                    self._drip(conn, b"version: STSv1\n" + b"#" * 60000)
            except OSError:
                pass
            finally:
                raw.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.srv.close()

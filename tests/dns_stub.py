"""A tiny authoritative DNS server for tests: TXT records from a dict, NXDOMAIN for the rest.

For programs that only use the system resolver (opendkim-testmsg): the test points a private
/etc/resolv.conf at it. UDP only, loopback only, one thread; stopped by the context manager.
"""

from __future__ import annotations

import secrets
import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DNSStub:
    """``with DNSStub(host, port, {"name.": b"txt value"}) as stub:`` serves those TXT records."""

    def __init__(self, host: str, port: int, txt: dict[str, bytes]) -> None:
        self.host, self.port = host, port
        self.txt = {k.lower().rstrip(".") + ".": v for k, v in txt.items()}
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @classmethod
    def on_free_loopback(cls, port: int, txt: dict[str, bytes]) -> DNSStub:
        """A stub bound to ``port`` of a random 127.53.x.y address that is free."""
        for _ in range(50):
            stub = cls(f"127.53.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}", port, txt)
            try:
                stub._sock.bind((stub.host, port))
            except OSError:
                stub._sock.close()
                continue
            return stub
        raise OSError(f"no free 127.53.x.y address for port {port}")

    def __enter__(self) -> DNSStub:
        if self._sock.getsockname()[1] == 0:
            self._sock.bind((self.host, self.port))
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _answer(self, wire: bytes) -> bytes:
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        question = q.question[0]
        name = question.name.to_text().lower()
        self.queries.append(name)
        value = self.txt.get(name)
        if value is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            # TXT character-strings are at most 255 bytes (RFC 1035 §3.3.14)
            chunks = " ".join('"' + value[i : i + 255].decode() + '"' for i in range(0, len(value), 255))
            r.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, chunks))
        return r.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, addr = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._sock.sendto(self._answer(wire), addr)
            except Exception:  # a malformed query gets no answer, like a real server under load
                continue

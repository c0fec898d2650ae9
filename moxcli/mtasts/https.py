"""The HTTPS exchange of an MTA-STS policy fetch (RFC 8461 §3.3; moxcli.mtasts.fetch does the
DNS part): PKIX verification, no redirects, a 64 KiB cap and one deadline kept by a watchdog.

A module of its own so that what only reads or stores policies (the cache, gentestdata) does
not import http.client and ssl (start-up).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
from pathlib import Path

from moxcli import log
from moxcli.mtasts.errors import NoPolicy, PolicyFetch, PolicySyntax
from moxcli.mtasts.fetch import MAX_POLICY_SIZE, PATH, Fetched, FetchOptions
from moxcli.mtasts.policy import PolicyParseError, lint, parse_policy

_log = log.get("mtasts")

# OpenSSL X509_V_ERR_* codes -> RFC 8460 §4.3.1 result types.
_EXPIRED = {9, 10}  # not yet valid, expired
_HOST_MISMATCH = {62}
_NOT_TRUSTED = {2, 18, 19, 20, 21, 27, 28}


def _tls_context(ca_files: tuple[Path, ...]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    for f in ca_files:
        try:
            ctx.load_verify_locations(cafile=str(f))
        except (OSError, ssl.SSLError) as exc:
            raise PolicyFetch(f"CA file {f}: {exc}") from None
    return ctx


def _tls_failure(exc: ssl.SSLCertVerificationError) -> tuple[str, str]:
    code = exc.verify_code
    if code in _EXPIRED:
        return "certificate-expired", ""
    if code in _HOST_MISMATCH:
        return "certificate-host-mismatch", ""
    if code in _NOT_TRUSTED:
        return "certificate-not-trusted", ""
    return "validation-failure", (exc.verify_message or "").replace(" ", "-")


class _Connection(http.client.HTTPSConnection):
    """Connects to a given address, but speaks TLS and HTTP for the policy host name."""

    def __init__(self, host: str, address: str, port: int, ctx: ssl.SSLContext, deadline: float) -> None:
        super().__init__(host, port, timeout=max(deadline - time.monotonic(), 0.01), context=ctx)
        self.address = address
        self.ctx = ctx
        self.deadline = deadline
        self.fd = -1  # of the TCP socket; wrap_socket() detaches the Python object from it
        self.done = False
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        """The deadline passed: end whatever read or handshake is blocked on the socket.

        shutdown() on a duplicate of the descriptor acts on the shared TCP socket, so the
        blocked SSL read in the other thread sees end-of-file at once."""
        with self._lock:
            self.expired.set()
            if self.fd >= 0 and not self.done:
                with contextlib.suppress(OSError):
                    dup = socket.socket(fileno=os.dup(self.fd))
                    try:
                        dup.shutdown(socket.SHUT_RDWR)
                    finally:
                        dup.close()

    def connect(self) -> None:
        _log.debug("https connect", address=self.address, port=self.port, sni=self.host)
        raw = socket.create_connection((self.address, self.port), timeout=max(self.deadline - time.monotonic(), 0.01))
        with self._lock:
            self.fd = raw.fileno()
            if self.expired.is_set():
                raw.close()
                raise TimeoutError("deadline passed while connecting")
        try:
            self.sock = self.ctx.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        cipher = self.sock.cipher()
        _log.debug("tls handshake", sni=self.host, version=self.sock.version(), cipher=cipher[0] if cipher else "")

    def close(self) -> None:
        with self._lock:  # the descriptor may be reused once closed: the watchdog must not touch it
            self.done = True
        self._watchdog.cancel()
        super().close()


def fetch(host: str, url: str, addresses: list[str], options: FetchOptions, deadline: float) -> Fetched:
    """GET the policy from the first of ``addresses`` that answers, by ``deadline``."""
    ctx = _tls_context(options.ca_files)
    port_note = "" if options.https_port == 443 else f" (port {options.https_port})"
    last: Exception | None = None
    for address in addresses:
        if deadline - time.monotonic() <= 0:
            break
        conn = _Connection(host, address, options.https_port, ctx, deadline)
        try:
            return _get(conn, url, deadline)
        except (OSError, http.client.HTTPException) as exc:
            if conn.expired.is_set():
                last = TimeoutError()
                break
            if isinstance(exc, ssl.SSLCertVerificationError):
                result, reason = _tls_failure(exc)
                raise PolicyFetch(
                    f"{url}: TLS certificate verification failed: {exc.verify_message}", result, reason
                ) from None
            last = exc
            if isinstance(exc, (ssl.SSLError, http.client.HTTPException, TimeoutError)):
                break  # the server answered badly or too slowly: other addresses won't help in time
        finally:
            conn.close()
    if last is None or isinstance(last, TimeoutError):
        what = f"timeout: no complete answer within {options.timeout:g} s (one deadline for the whole fetch)"
    else:
        what = f"{type(last).__name__}: {last}"
    raise PolicyFetch(f"{url}{port_note}: {what}")


def _get(conn: _Connection, url: str, deadline: float) -> Fetched:
    # RFC 8461 §3.3: no HTTP caching, no redirects; Host is the policy host without a port.
    conn.request(
        "GET",
        PATH,
        headers={"Host": conn.host, "Connection": "close", "Cache-Control": "no-cache", "User-Agent": "moxcli"},
    )
    resp = conn.getresponse()
    _log.debug("https response", url=url, status=resp.status, content_type=resp.getheader("Content-Type") or "-")
    if resp.status == 404:
        raise NoPolicy(f"{url}: HTTP 404 not found")
    if resp.status != 200:
        location = resp.getheader("Location")
        extra = (
            f", redirect to {location} not followed (RFC 8461 §3.3)" if 300 <= resp.status < 400 and location else ""
        )
        raise PolicyFetch(f"{url}: HTTP status {resp.status} while status 200 is required{extra}")
    body = bytearray()
    while len(body) <= MAX_POLICY_SIZE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("reading the policy took too long")
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        chunk = resp.read1(MAX_POLICY_SIZE + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if conn.expired.is_set():
        # The watchdog ended the connection: what was read is a fragment, not the policy.
        raise TimeoutError("the deadline passed while reading the policy")
    content_type = resp.getheader("Content-Type") or ""
    text = body[:MAX_POLICY_SIZE].decode("utf-8", errors="replace")
    if len(body) > MAX_POLICY_SIZE:
        raise PolicySyntax(f"{url}: policy is larger than {MAX_POLICY_SIZE} bytes", text)
    try:
        policy = parse_policy(text)
    except PolicyParseError as exc:
        raise PolicySyntax(f"{url}: policy syntax error: {exc}", text) from None
    return Fetched(policy, text, url, content_type, lint(policy, content_type))

"""One TLS handshake -> the peer chain; PKIX verdict by us; failures as RFC 8460 result types.

The TLS library is told not to verify (CERT_NONE), as mox does (docs/behaviour-notes.md §3.6): from the one
chain read off the connection we compute both the PKIX verdict (here, with
``cryptography.x509.verification``) and the DANE verdict (:mod:`moxcli.dane.verify`).

Interfaces used by delivery and posture checks:

- ``handshake(sock, server_name, timeout) -> (ssl_sock, TLSInfo)``: wrap an already connected
  socket (after STARTTLS), TLS >= 1.2, SNI = ``server_name`` (none for IP addresses). Raises
  :class:`TLSHandshakeError` carrying ``result_type``/``reason`` (docs/behaviour-notes.md §1.4, items 7-9).
- ``pkix_verify(chain, hostname, ca_files, now) -> PKIXVerdict`` with ``ok``, ``result_type``,
  ``reason``, ``message`` (docs/behaviour-notes.md §1.4 items 1-6; RFC 8461 §4.2 for what PKIX means for MTA-STS).

The SMTP dialogue around the handshake is :mod:`moxcli.smtp`'s: the delivery client
(:mod:`moxcli.smtp.client`) and the posture probes (:mod:`moxcli.smtp.probe`) both call
:func:`handshake` from their STARTTLS step. With ``--log-level debug`` each handshake is
logged with a summary.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509 import verification as xv

from moxcli import log
from moxcli.errors import MoxcliError
from moxcli.values import dataclass

_log = log.get("tls")

# RFC 8460 §4.3 result types used here.
STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
CERTIFICATE_EXPIRED = "certificate-expired"
CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
VALIDATION_FAILURE = "validation-failure"

# TLS alert names as mox (Go) prints them, spaces as dashes (docs/behaviour-notes.md §1.4; RFC 8446 §6).
ALERT_NAMES = {
    0: "close-notify",
    10: "unexpected-message",
    20: "bad-record-MAC",
    21: "decryption-failed",
    22: "record-overflow",
    30: "decompression-failure",
    40: "handshake-failure",
    42: "bad-certificate",
    43: "unsupported-certificate",
    44: "revoked-certificate",
    45: "expired-certificate",
    46: "unknown-certificate",
    47: "illegal-parameter",
    48: "unknown-certificate-authority",
    49: "access-denied",
    50: "error-decoding-message",
    51: "error-decrypting-message",
    60: "export-restriction",
    70: "protocol-version-not-supported",
    71: "insufficient-security-level",
    80: "internal-error",
    86: "inappropriate-fallback",
    90: "user-canceled",
    100: "no-renegotiation",
    109: "missing-extension",
    110: "unsupported-extension",
    111: "certificate-unobtainable",
    112: "unrecognized-name",
    113: "bad-certificate-status-response",
    114: "bad-certificate-hash-value",
    115: "unknown-PSK-identity",
    116: "certificate-required",
    120: "no-application-protocol",
    121: "ECH-required",
}

# OpenSSL reason strings for alerts *received* from the peer -> alert number.
_OPENSSL_ALERTS = {
    "SSLV3_ALERT_CLOSE_NOTIFY": 0,
    "SSLV3_ALERT_UNEXPECTED_MESSAGE": 10,
    "SSLV3_ALERT_BAD_RECORD_MAC": 20,
    "TLSV1_ALERT_DECRYPTION_FAILED": 21,
    "TLSV1_ALERT_RECORD_OVERFLOW": 22,
    "SSLV3_ALERT_DECOMPRESSION_FAILURE": 30,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": 40,
    "SSLV3_ALERT_NO_CERTIFICATE": 41,
    "SSLV3_ALERT_BAD_CERTIFICATE": 42,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": 43,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": 44,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46,
    "SSLV3_ALERT_ILLEGAL_PARAMETER": 47,
    "TLSV1_ALERT_UNKNOWN_CA": 48,
    "TLSV1_ALERT_ACCESS_DENIED": 49,
    "TLSV1_ALERT_DECODE_ERROR": 50,
    "TLSV1_ALERT_DECRYPT_ERROR": 51,
    "TLSV1_ALERT_EXPORT_RESTRICTION": 60,
    "TLSV1_ALERT_PROTOCOL_VERSION": 70,
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": 71,
    "TLSV1_ALERT_INTERNAL_ERROR": 80,
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": 86,
    "TLSV1_ALERT_USER_CANCELLED": 90,
    "TLSV1_ALERT_NO_RENEGOTIATION": 100,
    "TLSV13_ALERT_MISSING_EXTENSION": 109,
    "TLSV1_UNSUPPORTED_EXTENSION": 110,
    "TLSV1_CERTIFICATE_UNOBTAINABLE": 111,
    "TLSV1_UNRECOGNIZED_NAME": 112,
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": 113,
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE": 114,
    "TLSV1_ALERT_UNKNOWN_PSK_IDENTITY": 115,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": 120,
}


def alert_reason(prefix: str, number: int) -> str:
    """`tls-remote-alert-70-protocol-version-not-supported` style codes (docs/behaviour-notes.md §1.4 item 7, 9)."""
    name = ALERT_NAMES.get(number)
    return f"{prefix}-{number}-{name}" if name else f"{prefix}-{number}"


class TLSHandshakeError(MoxcliError):
    """The handshake failed; ``result_type``/``reason`` are the RFC 8460 failure detail."""

    def __init__(self, server: str, msg: str, result_type: str = VALIDATION_FAILURE, reason: str = "") -> None:
        super().__init__(f"tls handshake with {server}: {msg}")
        self.result_type = result_type
        self.reason = reason


@dataclass(frozen=True)
class TLSInfo:
    """What one handshake yields: the chain as sent (leaf first), version, cipher, SNI."""

    server_name: str
    version: str
    cipher: str
    chain: tuple[x509.Certificate, ...]
    group: str | None = None  # key-exchange group: only where ssl has SSLSocket.group() (CPython gh-136306)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "server_name": self.server_name,
            "version": self.version,
            "cipher": self.cipher,
            "group": self.group,
            "chain": [cert_summary(c) for c in self.chain],
        }


def classify_handshake_error(exc: BaseException) -> tuple[str, str]:
    """(result type, reason) for an exception raised during the handshake (docs/behaviour-notes.md §1.4 7-9)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return VALIDATION_FAILURE, "io-timeout-during-handshake"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if reason in _OPENSSL_ALERTS:
            return VALIDATION_FAILURE, alert_reason("tls-remote-alert", _OPENSSL_ALERTS[reason])
        if "ALERT" in reason:
            return VALIDATION_FAILURE, "tls-remote-error"
        if reason in ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"):
            return VALIDATION_FAILURE, "tls-record-header-error"
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or "EOF" in reason:
            return VALIDATION_FAILURE, "connection-closed-during-handshake"
        if reason in ("UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"):
            return VALIDATION_FAILURE, alert_reason("tls-local-alert", 70)
        return VALIDATION_FAILURE, ""
    if isinstance(exc, (ConnectionError, EOFError)):
        return VALIDATION_FAILURE, "connection-closed-during-handshake"
    return VALIDATION_FAILURE, ""


@functools.lru_cache(maxsize=1)
def _client_context() -> ssl.SSLContext:
    """One context for every handshake of the process: creating one costs more than a
    handshake's own CPU on loopback, and wrap_socket on a shared context is thread-safe."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we verify ourselves: PKIX and DANE from one chain (docs/behaviour-notes.md §3.6)
    # docs/behaviour-notes.md §3.5: RFC 7672 §8.1 asks for >= 1.0; mox uses 1.2
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def peer_chain(tls: ssl.SSLSocket) -> tuple[x509.Certificate, ...]:
    """The certificates the peer sent, leaf first, unverified."""
    getter = getattr(tls, "get_unverified_chain", None)  # public from Python 3.13
    raw = getter() if getter is not None else tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    out = []
    for c in raw or ():
        der = c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
        out.append(x509.load_der_x509_certificate(der))
    return tuple(out)


def handshake(sock: socket.socket, server_name: str, timeout: float = 60.0) -> tuple[ssl.SSLSocket, TLSInfo]:
    """Wrap a connected socket in TLS (after STARTTLS) and read the peer chain.

    ``timeout`` is a deadline for the **whole** handshake, not for each read (Python >= 3.5
    applies the socket timeout so, see ``ssl.SSLSocket.do_handshake``): a peer that sends a
    byte now and then cannot hold the caller longer (the rule of RFC 5321 §4.5.3.2 for replies).
    ``server_name`` is sent as SNI unless it is empty or an IP address (RFC 6066 §3).
    No verification happens here: call :func:`pkix_verify` and/or DANE verify on the chain.
    """
    sni = server_name if server_name and not _is_ip(server_name) else None
    sock.settimeout(timeout)
    try:
        tls = _client_context().wrap_socket(sock, server_hostname=sni)
    except (OSError, ssl.SSLError) as exc:
        rt, reason = classify_handshake_error(exc)
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            msg = f"timeout: no complete handshake within {timeout:g} s"
        raise TLSHandshakeError(server_name or "server", msg, rt, reason) from None
    chain = peer_chain(tls)
    if not chain:
        tls.close()
        raise TLSHandshakeError(server_name or "server", "server sent no certificate", VALIDATION_FAILURE, "")
    cipher = tls.cipher()
    group_of = getattr(tls, "group", None)
    info = TLSInfo(
        server_name or "", tls.version() or "", cipher[0] if cipher else "", chain, group_of() if group_of else None
    )
    _log.debug(
        "tls handshake",
        sni=sni or "-",
        version=info.version,
        cipher=info.cipher,
        group=info.group or "unknown",
        subject=info.leaf.subject.rfc4514_string(),
        chain=len(chain),
    )
    return tls, info


# ---------------------------------------------------------------- PKIX


@dataclass(frozen=True)
class PKIXVerdict:
    """``ok``, or the RFC 8460 result type and failure-reason-code of the failure (docs/behaviour-notes.md §1.4)."""

    ok: bool
    result_type: str = ""
    reason: str = ""
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "result_type": self.result_type or None,
            "reason": self.reason or None,
            "message": self.message or None,
        }


def _system_ca_file() -> str | None:
    paths = ssl.get_default_verify_paths()
    for p in (
        paths.cafile,
        paths.openssl_cafile,
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ):
        if p and Path(p).is_file():
            return p
    return None


@functools.lru_cache(maxsize=8)
def load_roots(ca_files: tuple[Path, ...] = ()) -> tuple[x509.Certificate, ...]:
    """System roots plus config [tls] ca_files (mox: system pool extended by TLS.CA)."""
    certs: list[x509.Certificate] = []
    files = [f for f in (_system_ca_file(),) if f] + [str(p) for p in ca_files]
    for f in files:
        try:
            with warnings.catch_warnings():  # some system roots have non-positive serials
                warnings.simplefilter("ignore")
                certs.extend(x509.load_pem_x509_certificates(Path(f).read_bytes()))
        except (OSError, ValueError) as exc:
            if str(f) in map(str, ca_files):
                raise MoxcliError(f"{f}: cannot read CA certificates: {exc}") from None
    return tuple(certs)


@functools.lru_cache(maxsize=8)
def _store(roots: tuple[x509.Certificate, ...]) -> xv.Store:
    return xv.Store(list(roots))


_last_store: list[tuple[tuple[x509.Certificate, ...], xv.Store]] = []


def _store_of(anchors: tuple[x509.Certificate, ...]) -> xv.Store:
    """The verifier store of ``anchors``; the same tuple as last time (load_roots returns
    one tuple per run) is found by identity: hashing ~150 system roots for the lru_cache
    key cost 0.3 ms per verification."""
    last = _last_store[:1]
    if last and last[0][0] is anchors:
        return last[0][1]
    store = _store(anchors)
    _last_store[:] = [(anchors, store)]
    return store


def _utc(now: _dt.datetime | None) -> _dt.datetime:
    if now is None:
        return _dt.datetime.now(_dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=_dt.UTC)


def _subject(name: str) -> xv.DNSName | xv.IPAddress:
    try:
        return xv.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return xv.DNSName(name.rstrip(".").lower())


def verify_chain(
    chain: Sequence[x509.Certificate],
    hostname: str,
    anchors: Sequence[x509.Certificate],
    now: _dt.datetime | None = None,
) -> list[x509.Certificate]:
    """Validate ``chain[0]`` for ``hostname`` to ``anchors`` (raises VerificationError).

    Returns the validated path (leaf first). Used for PKIX and for DANE-TA, where the anchors
    are the certificates matched by the TLSA records (RFC 7671 §5.2).
    """
    builder = xv.PolicyBuilder().store(_store_of(tuple(anchors))).time(_utc(now))
    verifier = builder.build_server_verifier(_subject(hostname))
    return verifier.verify(chain[0], list(chain[1:]))


def dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(x509.DNSName)


def _expired(cert: x509.Certificate, now: _dt.datetime) -> bool:
    return not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc)


def _not_trusted_reason(message: str) -> str:
    """Map verifier text to mox's x509 invalid reasons (docs/behaviour-notes.md §1.4 item 2); "" = unknown authority."""
    m = message.lower()
    if "candidates exhausted" in m:
        return ""
    if "maximum" in m and "depth" in m:
        return "too-many-intermediates"
    if "name constraint" in m:
        return "ca-not-authorized-for-this-name"
    if "extended key usage" in m or "eku" in m:
        return "incompatible-key-usage"
    if "basicconstraints" in m or "keycertsign" in m or "not a ca" in m:
        return "not-authorized-to-sign"
    return ""


def pkix_verify(
    chain: Sequence[x509.Certificate],
    hostname: str,
    ca_files: Sequence[Path] = (),
    now: _dt.datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
) -> PKIXVerdict:
    """PKIX-validate the chain for ``hostname`` against system roots + ``ca_files``.

    Failures are classified in mox's order (docs/behaviour-notes.md §1.4): expired, other X.509 problem,
    host name mismatch, unknown authority, no roots.
    """
    if not chain:
        return PKIXVerdict(False, VALIDATION_FAILURE, "", "no certificate")
    at = _utc(now)
    pool = tuple(roots) if roots is not None else load_roots(tuple(Path(p) for p in ca_files))
    if not pool:
        return PKIXVerdict(False, CERTIFICATE_NOT_TRUSTED, "no-system-roots", "no trusted root certificates available")
    try:
        verify_chain(chain, hostname, pool, at)
        return PKIXVerdict(True)
    except xv.VerificationError as exc:
        message = str(exc)
    except ValueError as exc:
        return PKIXVerdict(False, VALIDATION_FAILURE, "unknown-go-certificate-verification-error", str(exc))
    expired = next((c for c in chain if _expired(c, at)), None)
    if expired is not None or "not valid at validation time" in message:
        which = expired or chain[0]
        return PKIXVerdict(
            False,
            CERTIFICATE_EXPIRED,
            "",
            f"certificate {which.subject.rfc4514_string()} valid from "
            f"{which.not_valid_before_utc:%Y-%m-%d} until {which.not_valid_after_utc:%Y-%m-%d}",
        )
    # Is the chain fine for a name the certificate does carry? Then only the name is wrong;
    # otherwise that second attempt tells what is wrong with the chain (Go builds the chain
    # before it checks the name, so an untrusted chain wins over a wrong name).
    own = [n.replace("*.", "wildcard.", 1) for n in dns_sans(chain[0])]
    if own and own[0].rstrip(".").lower() != hostname.rstrip(".").lower():
        try:
            verify_chain(chain, own[0], pool, at)
            return PKIXVerdict(
                False,
                CERTIFICATE_HOST_MISMATCH,
                "",
                f"certificate is for {', '.join(dns_sans(chain[0]))}, not {hostname}",
            )
        except xv.VerificationError as exc:
            message = str(exc)
        except ValueError:
            pass
    elif "no matching subjectaltname" in message.lower():
        return PKIXVerdict(False, CERTIFICATE_HOST_MISMATCH, "", message)
    return PKIXVerdict(False, CERTIFICATE_NOT_TRUSTED, _not_trusted_reason(message), message)


def cert_summary(cert: x509.Certificate) -> dict[str, Any]:
    """Subject, SANs, issuer and validity for display."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": dns_sans(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
    }

"""Fix hints for DANE: what a server's certificate chain would need in DNS. Pure: no I/O.

What posttls-finger and ``ldns-dane create`` print: the SHA-256 of the leaf's SPKI and of the
whole certificate, and the TLSA records that would match the chain as served: ``3 1 1`` for
the leaf (DANE-EE, what RFC 7672 §3.1.1 recommends: survives renewals with the same key)
and ``2 1 1`` for the issuer the server sends (DANE-TA, RFC 7671 §5.2: the server MUST send
the anchor, so only a sent issuer can be pinned).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from moxcli.jsonfmt import Finding


def spki_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo (TLSA selector 1, matching type 1)."""
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the whole DER certificate (TLSA selector 0, matching type 1)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def cert_facts(cert: x509.Certificate) -> dict[str, Any]:
    """Subject, issuer, not-after and both hashes of one certificate."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc,
        "spki_sha256": spki_sha256(cert),
        "cert_sha256": cert_sha256(cert),
    }


def matching_records(chain: Sequence[x509.Certificate]) -> list[str]:
    """TLSA records (record form) that match this chain: `3 1 1` leaf, `2 1 1` issuer if sent."""
    records = [f"3 1 1 {spki_sha256(chain[0])}"]
    if len(chain) > 1:
        records.append(f"2 1 1 {spki_sha256(chain[1])}")
    return records


def tlsa_name(port: int, base: str) -> str:
    """`_PORT._tcp.BASE` (RFC 6698 §3)."""
    return f"_{port}._tcp.{base}"


def dane_fix(chain: Sequence[x509.Certificate], name: str, published: Sequence[str]) -> dict[str, Any]:
    """The ``fix`` object: the records to publish at ``name`` next to what is published."""
    would = matching_records(chain)
    return {
        "tlsa_name": name,
        "published": list(published),
        "would_match": would,
        "publish": [f"{name}. IN TLSA {r}" for r in would],
        "certificate": cert_facts(chain[0]),
        "issuer_certificate": cert_facts(chain[1]) if len(chain) > 1 else None,
    }


def expiry_warning(cert: x509.Certificate, days: int, now: _dt.datetime | None = None) -> Finding | None:
    """A warning when the certificate has expired or expires within ``days`` days."""
    now = now or _dt.datetime.now(_dt.UTC)
    left = cert.not_valid_after_utc - now
    when = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if left.total_seconds() <= 0:
        return Finding("certificate-expired", f"certificate expired at {when}")
    if left <= _dt.timedelta(days=days):
        return Finding("certificate-expiring", f"certificate expires in {left.days} day(s), at {when}")
    return None

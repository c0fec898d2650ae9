"""DKIM signing of report messages with dkimpy, using the config's ``[domains.X.dkim]`` selectors.

- ``sign_message(domain_config, message, extra_headers=()) -> bytes``: one ``DKIM-Signature``
  header per selector of the domain's ``sign`` list, concatenated (CRLF-terminated), to be
  stored as the queue message prefix (docs/behaviour-notes.md §0.5: signatures are prepended, not written into
  the file). Each selector signs its configured header list (or :data:`DEFAULT_HEADERS`)
  plus ``extra_headers`` (TLS reports pass ``TLS-Report-Domain`` and ``TLS-Report-Submitter``,
  RFC 8460 §5.3). Raises ConfigError when the domain has no selectors or a key is unusable.
- ``check_keys(domain_config)``: load every signing key (ConfigError naming the file).
- ``walk_configured_domain(config) -> DomainConfig | None``: the first configured domain
  found walking up from the mail hostname (docs/behaviour-notes.md §2.5 step 1, §6.6); the caller decides what
  a missing or unsigned domain means (TLS reports: not sent; DMARC reports: sent unsigned).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from moxcli.config import MAX_KEY_SIZE, Config, DKIMSelector, DomainConfig
from moxcli.errors import ConfigError, UsageError
from moxcli.inputs import read_regular
from moxcli.perms import check_private

# mox's default signed header set (RFC 6376 §5.4.1 recommendations), without Bcc, which
# RFC 6376 §5.4 says SHOULD NOT be signed (dkimpy refuses it).
DEFAULT_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "References",
    "In-Reply-To",
    "Subject",
    "Date",
    "Message-Id",
    "Content-Type",
)


def walk_configured_domain(config: Config) -> DomainConfig | None:
    """Hostname, then each parent, until a configured domain (``mail.x.example`` -> ``x.example``)."""
    labels = config.hostname.split(".")
    for i in range(len(labels)):
        d = config.domains.get(".".join(labels[i:]))
        if d is not None:
            return d
    return None


def _private_key(sel: DKIMSelector) -> bytes:
    """The key in the form dkimpy takes: PEM for RSA, base64 of the raw 32-byte seed for ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    path: Path = sel.private_key_file
    try:
        pem = read_regular(path, MAX_KEY_SIZE, "DKIM key", too_large=ConfigError)
    except UsageError as exc:
        raise ConfigError(f"cannot read DKIM key of selector {sel.name}: {exc}") from None
    check_private(path, "DKIM private key")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: invalid DKIM private key of selector {sel.name}: {exc}") from None
    if sel.algorithm == "ed25519":
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{path}: selector {sel.name} is ed25519 but the key is not")
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return base64.b64encode(raw)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{path}: selector {sel.name} is rsa but the key is not")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def check_keys(domain: DomainConfig) -> None:
    """Load every signing key of the domain now, so a job fails before it changes anything."""
    for name in domain.dkim.sign:
        _private_key(domain.dkim.selectors[name])


def sign_message(domain: DomainConfig, message: bytes, extra_headers: Sequence[str] = ()) -> bytes:
    """DKIM-Signature headers for ``message`` by every selector in the domain's sign list."""
    import dkim

    if not domain.dkim.sign:
        raise ConfigError(f"domain {domain.name}: no DKIM selectors configured for signing")
    out = b""
    for name in domain.dkim.sign:
        sel = domain.dkim.selectors[name]
        headers = list(sel.headers or DEFAULT_HEADERS)
        for h in extra_headers:
            if h.lower() not in (x.lower() for x in headers):
                headers.append(h)
        header_canon, _, body_canon = sel.canonicalization.partition("/")
        algorithm = b"ed25519-sha256" if sel.algorithm == "ed25519" else b"rsa-sha256"
        try:
            sig = dkim.sign(
                message,
                sel.name.encode(),
                domain.name.encode(),
                _private_key(sel),
                canonicalize=(header_canon.encode(), (body_canon or header_canon).encode()),
                signature_algorithm=algorithm,
                include_headers=[h.encode() for h in headers],
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise ConfigError(f"domain {domain.name}: DKIM signing with selector {name} failed: {exc}") from None
        out += sig
    return out

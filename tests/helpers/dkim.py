"""A config with DKIM keys for report tests, and verifying every DKIM signature of a message
(with dkimpy, an independent implementation)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from moxcli.config import parse_config


def make_dkim_config(
    tmp: Path, hostname: str = "mail.mox.example", domain: str = "mox.example", extra: str = "", sign: bool = True
) -> tuple:
    """A config with an ed25519 and an rsa selector for ``domain``; returns (config, dns TXT map)."""
    ed = ed25519.Ed25519PrivateKey.generate()
    rs = rsa.generate_private_key(65537, 2048)

    def pem(k):
        return k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    (tmp / "ed.pem").write_bytes(pem(ed))
    (tmp / "rsa.pem").write_bytes(pem(rs))
    ed_pub = base64.b64encode(
        ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    rsa_pub = base64.b64encode(
        rs.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    dkim_cfg = (
        f"""
[domains."{domain}".dkim]
sign = ["s1", "s2"]
[domains."{domain}".dkim.selectors.s1]
algorithm = "ed25519"
private_key_file = "ed.pem"
[domains."{domain}".dkim.selectors.s2]
algorithm = "rsa"
private_key_file = "rsa.pem"
headers = ["From", "To", "Subject", "Date", "Message-Id"]
"""
        if sign
        else f'\n[domains."{domain}"]\n'
    )
    text = f'hostname = "{hostname}"\n' + extra + dkim_cfg
    (tmp / "moxcli.toml").write_text(text)
    cfg = parse_config(text, tmp / "moxcli.toml")
    dns = {
        f"s1._domainkey.{domain}.": f"v=DKIM1; k=ed25519; p={ed_pub}".encode(),
        f"s2._domainkey.{domain}.": f"v=DKIM1; k=rsa; p={rsa_pub}".encode(),
    }
    return cfg, dns


def verify_all(prefix: bytes, data: bytes, dns: dict) -> list[bytes]:
    """Verify every DKIM-Signature of prefix+data; returns the signed header lists (h=)."""
    full = prefix + data
    n = len(re.findall(rb"(?im)^DKIM-Signature:", full))
    d = dkim.DKIM(full)
    signed = []
    for i in range(n):
        assert d.verify(
            idx=i, dnsfunc=lambda name, timeout=5: dns[name.decode() if isinstance(name, bytes) else name]
        ), f"signature {i} fails"
        signed.append(d.signed_headers)
    return signed

"""Test certificates made with cryptography: a CA, an intermediate, leaves (tests/test_dane_pki.py
checks their shapes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    sans: tuple[str, ...] = (),
    not_before: dt.datetime = NOW - dt.timedelta(days=30),
    not_after: dt.datetime = NOW + dt.timedelta(days=60),
) -> x509.Certificate:
    issuer_name = issuer[0].subject if issuer else _name(cn)
    signing_key = issuer[1] if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return b.sign(signing_key, hashes.SHA256())


@dataclass
class PKI:
    ca: x509.Certificate
    inter: x509.Certificate
    leaf: x509.Certificate  # for localhost and mail.example, issued by inter
    expired: x509.Certificate  # same key as leaf, expired
    other_ca: x509.Certificate
    other_leaf: x509.Certificate  # for localhost, issued by other_ca
    wild: x509.Certificate  # *.example.org, issued by inter

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.leaf, self.inter, self.ca]


_PKI: PKI | None = None


def make_pki() -> PKI:
    """One PKI per test session (EC keys are cheap, but there is no need to redo them)."""
    global _PKI
    if _PKI is None:
        k = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "inter", "leaf", "oca", "oleaf", "wild")}
        ca = make_cert("Test Root", k["ca"], ca=True, not_after=NOW + dt.timedelta(days=3650))
        inter = make_cert("Test Intermediate", k["inter"], (ca, k["ca"]), ca=True)
        leaf = make_cert("localhost", k["leaf"], (inter, k["inter"]), sans=("localhost", "mail.example"))
        expired = make_cert(
            "localhost",
            k["leaf"],
            (inter, k["inter"]),
            sans=("localhost",),
            not_before=NOW - dt.timedelta(days=400),
            not_after=NOW - dt.timedelta(days=35),
        )
        oca = make_cert("Other Root", k["oca"], ca=True)
        oleaf = make_cert("localhost", k["oleaf"], (oca, k["oca"]), sans=("localhost",))
        wild = make_cert("wild", k["wild"], (inter, k["inter"]), sans=("*.example.org",))
        _PKI = PKI(ca, inter, leaf, expired, oca, oleaf, wild)
    return _PKI

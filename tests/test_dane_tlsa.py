"""dane.tlsa: usable records, text forms, matching, makerecord, allowed DANE-TA names (docs/behaviour-notes.md §5)."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import VECTORS
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from helpers.pki import make_pki
from hypothesis import given
from hypothesis import strategies as st

from moxcli.dane import tlsa as t

VEC = json.loads((VECTORS / "dane_cases.json").read_text())


def _data(spec: str) -> bytes:
    """Association data for the vector placeholders."""
    pki = make_pki()
    return {
        "<32 bytes>": b"\x01" * 32,
        "<64 bytes>": b"\x02" * 64,
        "<16 bytes>": b"\x03" * 16,
        "<...>": b"\x04" * 32,
        "<DER certificate>": pki.leaf.public_bytes(Encoding.DER),
        "<DER SPKI>": t.spki_der(pki.leaf),
        "<garbage>": b"garbage",
        "<empty>": b"",
    }[spec]


@pytest.mark.parametrize("case", VEC["usable_records"]["cases"], ids=lambda c: c["record"])
def test_usable_vectors(case):
    u, s, m, data = case["record"].split(" ", 3)
    r = t.TLSA(int(u), int(s), int(m), _data(data))
    assert t.is_usable(r) is case["usable"]


@pytest.mark.parametrize(
    "rec,usable",
    [
        (t.TLSA(2, 1, 0, b"x"), False),  # SPKI that does not parse
        (t.TLSA(2, 1, 2, b"\0" * 64), True),
        (t.TLSA(3, 0, 1, b"\0" * 33), False),
        (t.TLSA(3, 1, 255, b"\0" * 32), False),
    ],
)
def test_usable_extra(rec, usable):
    assert t.is_usable(rec) is usable
    assert t.usable([rec]) == ([rec] if usable else [])


@pytest.mark.parametrize(
    "rec,record,descriptive",
    [
        (t.TLSA(3, 1, 1, b"\x13\x3b"), "3 1 1 133b", "dane-ee(3) spki(1) sha2-256(1) 133b"),
        (t.TLSA(2, 0, 0, b"\xab"), "2 0 0 ab", "dane-ta(2) cert(0) full(0) ab"),
        (t.TLSA(0, 0, 2, b""), "0 0 2 ", "pkix-ta(0) cert(0) sha2-512(2) "),
        (t.TLSA(9, 7, 5, b"\x00"), "9 7 5 00", "(unknown)(9) (unknown)(7) (unknown)(5) 00"),
    ],
)
def test_text_forms(rec, record, descriptive):
    assert rec.record() == record and rec.descriptive() == descriptive


@pytest.mark.parametrize(
    "text,want",
    [
        ("3 1 1 0a0B", t.TLSA(3, 1, 1, b"\x0a\x0b")),
        ("2 0 1 0a 0b", t.TLSA(2, 0, 1, b"\x0a\x0b")),
        ("3 1 1", t.TLSA(3, 1, 1, b"")),
    ],
)
def test_parse_record(text, want):
    assert t.parse_record(text) == want


@pytest.mark.parametrize("text", ["", "3 1", "a b c 00", "3 1 1 zz", "256 1 1 00", "3 1 1 0"])
def test_parse_record_errors(text):
    with pytest.raises(t.TLSAError):
        t.parse_record(text)


@given(st.text(max_size=60))
def test_parse_record_hostile(text):
    try:
        r = t.parse_record(text)
    except t.TLSAError:
        return
    assert t.parse_record(r.record()) == r


def test_matching_types():
    pki = make_pki()
    spki = t.spki_der(pki.leaf)
    der = pki.leaf.public_bytes(Encoding.DER)
    assert t.matches(t.TLSA(3, 1, 1, hashlib.sha256(spki).digest()), pki.leaf)
    assert t.matches(t.TLSA(3, 1, 2, hashlib.sha512(spki).digest()), pki.leaf)
    assert t.matches(t.TLSA(3, 1, 0, spki), pki.leaf)
    assert t.matches(t.TLSA(3, 0, 1, hashlib.sha256(der).digest()), pki.leaf)
    assert t.matches(t.TLSA(3, 0, 0, der), pki.leaf)
    assert not t.matches(t.TLSA(3, 1, 1, hashlib.sha256(spki).digest()[:16]), pki.leaf)
    assert not t.matches(t.TLSA(3, 2, 1, hashlib.sha256(spki).digest()), pki.leaf)
    assert not t.matches(t.TLSA(3, 1, 3, hashlib.sha256(spki).digest()), pki.leaf)
    assert not t.matches(t.TLSA(3, 1, 1, hashlib.sha256(spki).digest()), pki.inter)


@pytest.mark.parametrize(
    "text,want,warning",
    [("dane-ee", 3, False), ("DANE-TA", 2, False), ("0", 0, False), ("pkix-ee", 1, False), ("200", 200, True)],
)
def test_parse_usage(text, want, warning):
    n, w = t.parse_usage(text)
    assert n == want and bool(w) is warning


@pytest.mark.parametrize("text", ["bogus", "-1", "70000", "300"])
def test_parse_usage_errors(text):
    with pytest.raises(t.TLSAError):
        t.parse_usage(text)


def test_parse_selector_mtype():
    assert t.parse_selector("SPKI") == 1 and t.parse_selector("0") == 0
    assert t.parse_mtype("sha2-512") == 2 and t.parse_mtype("1") == 1
    with pytest.raises(t.TLSAError, match="bad selector"):
        t.parse_selector("2")
    with pytest.raises(t.TLSAError, match="bad matchtype"):
        t.parse_mtype("sha1")


def _pem(cert) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def test_makerecord_cert_and_spki():
    pki = make_pki()
    spki = t.spki_der(pki.leaf)
    r, notes = t.make_record(3, 1, 1, _pem(pki.leaf))
    assert r.record() == f"3 1 1 {hashlib.sha256(spki).hexdigest()}" and notes == []
    r, _ = t.make_record(2, 0, 2, _pem(pki.ca) + _pem(pki.leaf))
    assert r.data == hashlib.sha512(pki.ca.public_bytes(Encoding.DER)).digest()


def test_makerecord_keys():
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs8 = key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    sec1 = key.private_bytes(Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    pub = key.public_key().public_bytes(Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for pem in (pkcs8, sec1, pub):
        r, _ = t.make_record(3, 1, 1, pem)
        assert r.data == hashlib.sha256(spki).digest()
    rsakey = rsa.generate_private_key(65537, 2048)
    pkcs1 = rsakey.public_key().public_bytes(Encoding.PEM, serialization.PublicFormat.PKCS1)
    r, _ = t.make_record(3, 1, 0, pkcs1)
    assert r.data == rsakey.public_key().public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # selector cert: keys are skipped, and with nothing else there is no record
    with pytest.raises(t.TLSAError, match=r"^no certificate found in pem file$"):
        t.make_record(3, 0, 1, pkcs8)
    r, notes = t.make_record(3, 0, 1, pkcs8 + _pem(make_pki().leaf))
    assert notes == ['skipping pem type "PRIVATE KEY", certificate is required']


@pytest.mark.parametrize(
    "pem,selector,message",
    [
        (b"", 1, "no certificate or public or private key found in pem file"),
        (b"junk\n", 1, "no certificate or public or private key found in pem file (with leftover data from pem file)"),
        (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", 0, "no certificate found in pem file"),
    ],
)
def test_makerecord_errors(pem, selector, message):
    with pytest.raises(t.TLSAError) as exc:
        t.make_record(3, selector, 1, pem)
    assert str(exc.value) == message


@pytest.mark.parametrize("case", VEC["gather_tlsa_names"]["cases"])
def test_allowed_names_vectors(case):
    d = VEC["gather_tlsa_names"]["domains"]
    got = t.allowed_names(case["haveMX"], case["nexthopExpAuth"], case["baseExpAuth"], d["a"], d["b"], d["c"], d["d"])
    assert got == case["expect"]


def test_allowed_names_same_names():
    assert t.allowed_names(True, True, True, "d.example", "d.example", "mx.d.example", "mx.d.example") == [
        "mx.d.example",
        "d.example",
    ]
    assert t.allowed_names(False, False, True, "h.example", "h.example", "h.example", "h.example") == ["h.example"]

"""TLSA helpers: parameter parsing, makerecord notes and errors, record forms, pinned exactly.

Written from the survivors of scripts/mutation.sh on moxcli/dane/tlsa.py.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from helpers.pki import make_pki

from moxcli.dane import tlsa as t

P = make_pki()
CERT = P.leaf.public_bytes(Encoding.PEM)
KEY = ec.generate_private_key(ec.SECP256R1())
PUB = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
PRIV = KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
FOO = b"-----BEGIN FOO-----\nx\n-----END FOO-----\n"
CERT_HASH = hashlib.sha256(P.leaf.public_bytes(Encoding.DER)).digest()
KEY_HASH = hashlib.sha256(KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()

MAKE_OK = [
    # (id, pem, selector, data, notes)
    ("text-before", b"x" + CERT, 0, CERT_HASH, []),
    ("text-after", CERT + b"x", 0, CERT_HASH, []),
    ("unknown-then-cert", FOO + CERT, 0, CERT_HASH, ['skipping unrecognized pem type "FOO"']),
    ("unknown-then-key", FOO + PUB, 1, KEY_HASH, ['skipping unrecognized pem type "FOO"']),
    ("key-then-cert", PUB + CERT, 0, CERT_HASH, ['skipping pem type "PUBLIC KEY", certificate is required']),
    ("public-key", PUB, 1, KEY_HASH, []),
    ("private-key", PRIV, 1, KEY_HASH, []),
]


@pytest.mark.parametrize("cid,pem,selector,data,notes", MAKE_OK, ids=[m[0] for m in MAKE_OK])
def test_make_record(cid, pem, selector, data, notes):
    r, got_notes = t.make_record(3, selector, 1, pem)
    assert r == t.TLSA(3, selector, 1, data)
    assert got_notes == notes


MAKE_ERRORS = [
    # (id, pem, selector, mtype, message, notes)
    (
        "unterminated-head",
        b"-----BEGIN CERTIFICATE",
        0,
        1,
        "no certificate found in pem file (with leftover data from pem file)",
        [],
    ),
    (
        "no-end",
        b"-----BEGIN CERTIFICATE-----\nabc",
        0,
        1,
        "no certificate found in pem file (with leftover data from pem file)",
        [],
    ),
    (
        "private-key-for-cert",
        PRIV,
        0,
        1,
        "no certificate found in pem file",
        ['skipping pem type "PRIVATE KEY", certificate is required'],
    ),
    ("empty-cert", b"", 0, 1, "no certificate found in pem file", []),
    ("empty-spki", b"", 1, 1, "no certificate or public or private key found in pem file", []),
    ("selector-2", CERT, 2, 1, "no certificate or public or private key found in pem file", []),
    (
        "second-head-instead-of-end",
        b"-----BEGIN CERTIFICATE-----\nabc\n-----BEGIN CERTIFICATE-----\n",
        0,
        1,
        "no certificate found in pem file (with leftover data from pem file)",
        [],
    ),
    (
        "empty-type",
        b"-----BEGIN -----\nabc\n-----END -----\n",
        0,
        1,
        "no certificate found in pem file",
        ['skipping unrecognized pem type ""'],
    ),
    (
        "non-ascii-type",
        b"-----BEGIN \xff-----\nabc\n-----END \xef\xbf\xbd-----\n",
        0,
        1,
        "no certificate found in pem file",
        ['skipping unrecognized pem type "\ufffd"'],
    ),
    ("mtype-7", CERT, 0, 7, "bad matchtype 7", []),
]


@pytest.mark.parametrize("cid,pem,selector,mtype,message,notes", MAKE_ERRORS, ids=[m[0] for m in MAKE_ERRORS])
def test_make_record_errors(cid, pem, selector, mtype, message, notes):
    with pytest.raises(t.TLSAError) as exc:
        t.make_record(3, selector, mtype, pem)
    assert str(exc.value) == message
    assert exc.value.notes == notes


def test_broken_certificate_block_names_the_block():
    with pytest.raises(t.TLSAError) as exc:
        t.make_record(3, 0, 1, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert str(exc.value).startswith('parsing pem block "CERTIFICATE": ')


def test_pem_blocks_and_leftover():
    assert t._pem_blocks(b"a-----BEGIN X-----y-----END X-----b") == (
        [("X", b"-----BEGIN X-----y-----END X-----")],
        True,
    )
    assert t._pem_blocks(b"-----BEGIN X-----y-----END X-----\n") == (
        [("X", b"-----BEGIN X-----y-----END X-----")],
        False,
    )
    assert t._pem_blocks(b"") == ([], False)
    # text before the first block alone is leftover too
    assert t._pem_blocks(b"a-----BEGIN X-----y-----END X-----") == ([("X", b"-----BEGIN X-----y-----END X-----")], True)
    # a type that is not ASCII is read with replacement characters
    assert t._pem_blocks(b"-----BEGIN \xff-----y-----END \xef\xbf\xbd-----") == (
        [("\ufffd", b"-----BEGIN \xff-----y-----END \xef\xbf\xbd-----")],
        False,
    )


def _block(kind: str) -> bytes:
    return f"-----BEGIN {kind}-----\nAAAA\n-----END {kind}-----\n".encode()


@pytest.mark.parametrize(
    "kind,note",
    [
        ("PUBLIC KEY", 'skipping pem type "PUBLIC KEY", certificate is required'),
        ("EC PRIVATE KEY", 'skipping pem type "EC PRIVATE KEY", certificate is required'),
        ("RSA PRIVATE KEY", 'skipping pem type "RSA PRIVATE KEY", certificate is required'),
        ("RSA PUBLIC KEY", 'skipping pem type "RSA PUBLIC KEY", certificate is required'),
        ("PRIVATE KEY", 'skipping pem type "PRIVATE KEY", certificate is required'),
        ("DH PARAMETERS", 'skipping unrecognized pem type "DH PARAMETERS"'),
    ],
)
def test_key_blocks_when_a_certificate_is_required(kind, note):
    """Selector cert: keys are named as keys in the note (mox), other types as unrecognized."""
    r, notes = t.make_record(3, 0, 1, _block(kind) + CERT)
    assert (r.data, notes) == (CERT_HASH, [note])


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_HASH = hashlib.sha256(RSA.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()


@pytest.mark.parametrize(
    "pem",
    [
        RSA.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
        RSA.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        RSA.public_key().public_bytes(Encoding.PEM, PublicFormat.PKCS1),
        RSA.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    ],
    ids=["RSA PRIVATE KEY", "PRIVATE KEY", "RSA PUBLIC KEY", "PUBLIC KEY"],
)
def test_rsa_key_forms_for_spki(pem):
    assert pem.startswith(b"-----BEGIN ")
    r, notes = t.make_record(3, 1, 1, pem)
    assert (r.data, notes) == (RSA_HASH, [])


def test_records_are_values():
    """Frozen: usable in sets and as keys (equal records are one)."""
    a, b = t.TLSA(3, 1, 1, b"\x01"), t.TLSA(3, 1, 1, b"\x01")
    assert {a, b} == {a} and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.usage = 2  # type: ignore[misc]


def test_matches_is_false_for_an_unknown_selector():
    assert t.matches(t.TLSA(3, 7, 1, b"\x01"), P.leaf) is False


USAGES = [
    ("3", (3, "")),
    ("DANE-EE ", (3, "")),
    (" 2", (2, "")),
    ("dane-ta", (2, "")),
    ("pkix-ta", (0, "")),
    ("pkix-ee", (1, "")),
    ("255", (255, "continuing with unrecognized tlsa usage 255")),
    ("4", (4, "continuing with unrecognized tlsa usage 4")),
]


@pytest.mark.parametrize("text,want", USAGES, ids=[u[0] for u in USAGES])
def test_parse_usage(text, want):
    assert t.parse_usage(text) == want


@pytest.mark.parametrize(
    "text,message",
    [
        ("256", "bad usage '256': a TLSA usage is one byte (RFC 6698 §2.1.1)"),
        ("65535", "bad usage '65535': a TLSA usage is one byte (RFC 6698 §2.1.1)"),
        ("65536", "bad usage '65536'"),
        ("x1", "bad usage 'x1'"),
        ("", "bad usage ''"),
    ],
)
def test_parse_usage_errors(text, message):
    with pytest.raises(t.TLSAError) as exc:
        t.parse_usage(text)
    assert str(exc.value) == message


PARAMS = [
    # (text, selector or error, mtype or error)
    ("cert", 0, "bad matchtype 'cert'"),
    ("CERT", 0, "bad matchtype 'CERT'"),
    ("spki", 1, "bad matchtype 'spki'"),
    (" 1 ", 1, 1),
    ("0", 0, 0),
    ("01", 1, 1),
    ("2", "bad selector '2'", 2),
    ("full", "bad selector 'full'", 0),
    ("sha2-256", "bad selector 'sha2-256'", 1),
    ("SHA2-512", "bad selector 'SHA2-512'", 2),
    ("3", "bad selector '3'", "bad matchtype '3'"),
]


@pytest.mark.parametrize("text,selector,mtype", PARAMS, ids=[p[0] for p in PARAMS])
def test_parse_selector_and_mtype(text, selector, mtype):
    for fn, want in ((t.parse_selector, selector), (t.parse_mtype, mtype)):
        if isinstance(want, int):
            assert fn(text) == want
        else:
            with pytest.raises(t.TLSAError) as exc:
                fn(text)
            assert str(exc.value) == want


def test_record_forms_and_limits():
    r = t.TLSA(3, 1, 1, b"\x01")
    assert r.to_json() == {"usage": 3, "selector": 1, "mtype": 1, "data": "01", "record": "3 1 1 01"}
    assert str(r) == "3 1 1 01"
    assert t.parse_record("255 255 255 ff") == t.TLSA(255, 255, 255, b"\xff")
    assert t.parse_record("0 0 0") == t.TLSA(0, 0, 0, b"")
    with pytest.raises(t.TLSAError) as exc:
        t.parse_record("-1 1 1 00")
    assert str(exc.value) == "tlsa record '-1 1 1 00': field out of range 0-255"
    with pytest.raises(t.TLSAError) as exc:
        t.parse_record("3 1")
    assert str(exc.value) == "tlsa record '3 1': need usage, selector, matching type and data"
    with pytest.raises(t.TLSAError) as exc:
        t.parse_record("3 1 x 00")
    assert str(exc.value) == "tlsa record '3 1 x 00': not numbers and hex"


def test_selected_and_association():
    der = P.leaf.public_bytes(Encoding.DER)
    assert t.selected(P.leaf, 0) == der
    assert t.selected(P.leaf, 1) == P.leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert t.selected(P.leaf, 2) is None
    assert t.association(b"x", 0) == b"x"
    assert t.association(b"x", 1) == hashlib.sha256(b"x").digest()
    assert t.association(b"x", 2) == hashlib.sha512(b"x").digest()
    assert t.association(b"x", 3) is None


USABLE = [
    (t.TLSA(2, 0, 0, P.ca.public_bytes(Encoding.DER)), True),
    (t.TLSA(2, 0, 0, b"junk"), False),
    (t.TLSA(3, 1, 0, t.spki_der(P.leaf)), True),
    (t.TLSA(3, 1, 0, b"junk"), False),
    (t.TLSA(3, 1, 1, b"\0" * 32), True),
    (t.TLSA(3, 1, 1, b"\0" * 31), False),
    (t.TLSA(3, 1, 2, b"\0" * 64), True),
    (t.TLSA(3, 1, 2, b"\0" * 32), False),
    (t.TLSA(1, 1, 1, b"\0" * 32), False),
    (t.TLSA(0, 1, 1, b"\0" * 32), False),
    (t.TLSA(4, 1, 1, b"\0" * 32), False),
    (t.TLSA(3, 2, 1, b"\0" * 32), False),
]


@pytest.mark.parametrize("rec,ok", USABLE, ids=[f"{r.usage}{r.selector}{r.mtype}-{len(r.data)}" for r, _ in USABLE])
def test_is_usable(rec, ok):
    assert t.is_usable(rec) is ok

"""dane.verify against generated chains: the `dial` cases of dane_cases.json without the network.

Chain as in mox's test: the server presents [leaf, intermediate, root]; the leaf is for
`localhost` and `mail.example`.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from helpers.pki import NOW, make_pki

from moxcli.dane.tlsa import TLSA, TLSAError, spki_der
from moxcli.dane.verify import verify

P = make_pki()
LEAF_SPKI = spki_der(P.leaf)
CA_DER = P.ca.public_bytes(Encoding.DER)
EE_256 = TLSA(3, 1, 1, hashlib.sha256(LEAF_SPKI).digest())
EE_512 = TLSA(3, 1, 2, hashlib.sha512(LEAF_SPKI).digest())
EE_FULL = TLSA(3, 1, 0, LEAF_SPKI)
TA_256 = TLSA(2, 0, 1, hashlib.sha256(CA_DER).digest())
TA_FULL = TLSA(2, 0, 0, CA_DER)
TA_INTER = TLSA(2, 1, 1, hashlib.sha256(spki_der(P.inter)).digest())
PKIX_EE = TLSA(1, 1, 1, hashlib.sha256(LEAF_SPKI).digest())
PKIX_TA = TLSA(0, 0, 1, hashlib.sha256(CA_DER).digest())
ZERO_EE = TLSA(3, 1, 1, b"\0" * 32)
ZERO_TA = TLSA(2, 0, 1, b"\0" * 32)
CHAIN = [P.leaf, P.inter, P.ca]

EE_EXPIRED = TLSA(3, 1, 1, hashlib.sha256(spki_der(P.expired)).digest())
CASES = [
    # (id, records, chain, names, roots, verified, record, depth)
    ("ee-sha256", [EE_256], CHAIN, ["localhost"], [], True, EE_256, 0),
    ("ta-mismatch-then-ee", [ZERO_TA, EE_256], CHAIN, ["localhost"], [], True, EE_256, 0),
    ("ta-cert-sha256", [TA_256], CHAIN, ["localhost"], [], True, TA_256, 2),
    ("ta-intermediate-spki", [TA_INTER], CHAIN, ["localhost"], [], True, TA_INTER, 1),
    ("ee-all-zero", [ZERO_EE], CHAIN, ["localhost"], [], False, None, None),
    ("ee-sha512", [EE_512], CHAIN, ["localhost"], [], True, EE_512, 0),
    ("ee-full", [EE_FULL], CHAIN, ["localhost"], [], True, EE_FULL, 0),
    ("ta-full", [TA_FULL], CHAIN, ["localhost"], [], True, TA_FULL, 2),
    ("ta-not-in-chain", [ZERO_TA], CHAIN, ["localhost"], [], False, None, None),
    ("ta-name-check", [TA_256], CHAIN, ["example"], [], False, None, None),
    ("ta-second-name", [TA_256], CHAIN, ["example", "mail.example"], [], True, TA_256, 2),
    ("ta-expired-leaf", [TA_256], [P.expired, P.inter, P.ca], ["localhost"], [], False, None, None),
    ("ee-expired-leaf", [EE_EXPIRED], [P.expired, P.inter], ["x"], [], True, EE_EXPIRED, 0),
    ("ee-ignores-name", [EE_256], CHAIN, ["wrong.example"], [], True, EE_256, 0),
    ("ee-truncated", [TLSA(3, 1, 1, EE_256.data[:16])], CHAIN, ["localhost"], [], False, None, None),
    ("ee-truncated-then-valid", [TLSA(3, 1, 1, EE_256.data[:16]), EE_256], CHAIN, ["localhost"], [], True, EE_256, 0),
    ("usage-10", [TLSA(10, 1, 1, EE_256.data)], CHAIN, ["localhost"], [], False, None, None),
    ("usage-10-then-ee", [TLSA(10, 1, 1, EE_256.data), EE_256], CHAIN, ["localhost"], [], True, EE_256, 0),
    ("ta-full-unparsable", [TLSA(2, 0, 0, CA_DER[1:])], CHAIN, ["localhost"], [], False, None, None),
    ("ta-full-not-sent", [TA_FULL], [P.leaf, P.inter], ["localhost"], [], True, TA_FULL, 2),
    ("pkix-ee-no-roots", [PKIX_EE], CHAIN, ["localhost"], [], False, None, None),
    ("pkix-ta-no-roots", [PKIX_TA], CHAIN, ["localhost"], [], False, None, None),
    ("pkix-ee-roots", [PKIX_EE], CHAIN, ["localhost"], [P.ca], True, PKIX_EE, 0),
    ("pkix-ta-roots", [PKIX_TA], CHAIN, ["localhost"], [P.ca], True, PKIX_TA, 2),
    ("ta-other-ca", [TA_256], [P.other_leaf, P.other_ca], ["localhost"], [], False, None, None),
]


# The reason of each case that fails: "+errors" when checking a record gave errors (an expired
# or unverifiable chain, a failed name check), not only mismatches.
REASONS = {
    "ta-not-in-chain": "dane-no-match",
    "ee-truncated": "dane-no-match",
    "ta-other-ca": "dane-no-match",
    "pkix-ee-no-roots": "dane-no-match+errors",
    "ta-expired-leaf": "dane-no-match+errors",
    "ta-full-unparsable": "dane-no-match",
    "usage-10": "dane-no-match",
    "pkix-ta-no-roots": "dane-no-match+errors",
    "ta-name-check": "dane-no-match+errors",
    "ee-all-zero": "dane-no-match",
}


@pytest.mark.parametrize("cid,records,chain,names,roots,verified,record,depth", CASES, ids=[c[0] for c in CASES])
def test_verify(cid, records, chain, names, roots, verified, record, depth):
    v = verify(chain, records, names, roots, NOW)
    assert v.verified is verified
    if verified:
        assert (v.depth, v.record) == (depth, record)
        assert v.result_type == "" and v.reason == ""
    else:
        assert v.result_type == "validation-failure"
        assert v.reason == REASONS[cid]


def test_failure_reasons():
    assert verify(CHAIN, [ZERO_EE], ["localhost"], now=NOW).reason == "dane-no-match"
    v = verify([P.expired, P.inter, P.ca], [TA_256], ["localhost"], now=NOW)
    assert v.reason == "dane-no-match+errors" and "not valid" in v.errors[0] and v.errors[0].startswith("dane-ta(2)")


def test_zero_records_is_an_error():
    with pytest.raises(TLSAError, match="at least one tlsa record"):
        verify(CHAIN, [], ["localhost"])


def test_json_shape():
    assert verify(CHAIN, [EE_256], ["localhost"], now=NOW).to_json() == {
        "verified": True,
        "record": EE_256.record(),
        "depth": 0,
        "result_type": None,
        "reason": None,
        "errors": [],
    }

"""DANE verification and TLSA helpers: exact verdicts, including the failure details.

Written from the survivors of scripts/mutation.sh on moxcli/dane/verify.py and tlsa.py
(the empty certificate chain could be flipped to success without any test noticing).
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from helpers.pki import NOW, make_pki

from moxcli.dane import tlsa as t
from moxcli.dane.verify import DANEVerdict, verify

P = make_pki()
LEAF_SPKI = t.spki_der(P.leaf)
CA_DER = P.ca.public_bytes(Encoding.DER)
EE = t.TLSA(3, 1, 1, hashlib.sha256(LEAF_SPKI).digest())
TA = t.TLSA(2, 0, 1, hashlib.sha256(CA_DER).digest())
TA_FULL = t.TLSA(2, 0, 0, CA_DER)
PKIX_EE = t.TLSA(1, 1, 1, hashlib.sha256(LEAF_SPKI).digest())
PKIX_TA = t.TLSA(0, 0, 1, hashlib.sha256(CA_DER).digest())
ZERO = t.TLSA(3, 1, 1, b"\0" * 32)


def test_empty_chain_never_verifies():
    v = verify([], [EE], ["localhost"], now=NOW)
    assert v == DANEVerdict(False, None, None, "validation-failure", "dane-no-match", ["no certificate"])


FAILURES = [
    # (id, records, chain, names, roots, reason, number of errors)
    ("ee-mismatch", [ZERO], P.chain, ["localhost"], [], "dane-no-match", 0),
    ("ta-name", [TA], P.chain, ["example"], [], "dane-no-match+errors", 1),
    ("ta-two-names", [TA], P.chain, ["example", "other.example"], [], "dane-no-match+errors", 2),
    ("ta-expired", [TA], [P.expired, P.inter, P.ca], ["localhost"], [], "dane-no-match+errors", 1),
    ("pkix-ee-no-roots", [PKIX_EE], P.chain, ["localhost"], [], "dane-no-match+errors", 1),
    ("pkix-ee-other-leaf", [PKIX_EE], [P.other_leaf, P.other_ca], ["localhost"], [P.other_ca], "dane-no-match", 0),
    ("pkix-ta-wrong-anchor", [t.TLSA(0, 0, 1, b"\1" * 32)], P.chain, ["localhost"], [P.ca], "dane-no-match", 0),
    ("pkix-ta-name", [PKIX_TA], P.chain, ["wrong.example"], [P.ca], "dane-no-match+errors", 1),
    ("ta-other-ca", [TA], [P.other_leaf, P.other_ca], ["localhost"], [], "dane-no-match", 0),
    # "2 0 0" with only the leaf sent: the intermediate between leaf and anchor is missing
    ("ta-full-leaf-only", [TA_FULL], [P.leaf], ["localhost"], [], "dane-no-match+errors", 1),
]


@pytest.mark.parametrize("cid,records,chain,names,roots,reason,nerrors", FAILURES, ids=[c[0] for c in FAILURES])
def test_failure_details(cid, records, chain, names, roots, reason, nerrors):
    v = verify(chain, records, names, roots, NOW)
    assert (v.verified, v.record, v.depth, v.result_type, v.reason) == (
        False,
        None,
        None,
        "validation-failure",
        reason,
    )
    assert len(v.errors) == nerrors
    for err, name in zip(v.errors, names, strict=False):
        assert err.startswith(f"{records[0].descriptive()}: {name}: ")


def test_failure_json():
    assert verify(P.chain, [ZERO], ["localhost"], now=NOW).to_json() == {
        "verified": False,
        "record": None,
        "depth": None,
        "result_type": "validation-failure",
        "reason": "dane-no-match",
        "errors": [],
    }


SUCCESSES = [
    # (id, records, chain, names, roots, record, depth)
    ("ta-second-name", [TA], P.chain, ["example", "localhost"], [], TA, 2),
    ("ta-full-in-chain", [TA_FULL], P.chain, ["localhost"], [], TA_FULL, 2),
    ("errors-then-ee", [TA, EE], P.chain, ["example"], [], EE, 0),
    ("pkix-ta", [PKIX_TA], P.chain, ["localhost"], [P.ca], PKIX_TA, 2),
    ("pkix-ee", [PKIX_EE], P.chain, ["localhost"], [P.ca], PKIX_EE, 0),
    ("ee-leaf-only", [EE], [P.leaf], ["x"], [], EE, 0),
]


@pytest.mark.parametrize("cid,records,chain,names,roots,record,depth", SUCCESSES, ids=[c[0] for c in SUCCESSES])
def test_success_details(cid, records, chain, names, roots, record, depth):
    v = verify(chain, records, names, roots, NOW)
    assert v == DANEVerdict(True, record, depth)
    assert v.errors == []


def test_verify_without_records_raises():
    with pytest.raises(t.TLSAError) as exc:
        verify(P.chain, [], ["localhost"], now=NOW)
    assert str(exc.value) == "verify requires at least one tlsa record"

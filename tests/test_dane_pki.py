"""The test certificates of tests/helpers/pki.py have the shapes the other tests rely on."""

from __future__ import annotations

import pytest
from helpers.pki import NOW, PKI, make_pki


def test_pki_shapes():
    p = make_pki()
    assert p.leaf.issuer == p.inter.subject and p.inter.issuer == p.ca.subject
    assert p.expired.not_valid_after_utc < NOW < p.leaf.not_valid_after_utc


@pytest.fixture
def pki() -> PKI:
    return make_pki()

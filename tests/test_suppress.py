"""moxcli.store.suppress: suppression lists for TLS and DMARC report addresses."""

from __future__ import annotations

import pytest

from moxcli.errors import UsageError
from moxcli.store import Store
from moxcli.store import suppress as sp


@pytest.mark.parametrize(
    "address,want",
    [
        ("TLSReports@XN--74H.example", "tlsreports@xn--74h.example"),
        ("tlsreports@☺.example", "tlsreports@xn--74h.example"),
        (" a@b.example ", "a@b.example"),
    ],
)
def test_normalize(address, want):
    assert sp.normalize_address(address) == want


@pytest.mark.parametrize("bad", ["", "nobody", "@x.example", "a@", "a b@x.example", "<a@x.example>", "a@x..example"])
def test_normalize_invalid(bad):
    with pytest.raises(UsageError, match="invalid address"):
        sp.normalize_address(bad)


@pytest.mark.parametrize("kind", ["tls", "dmarc"])
def test_add_list_remove_expiry(data_dir, kind):
    with Store.open(data_dir) as store:
        with store.write() as tx:
            sp.add(tx, kind, "expired@x.example", until=900.0, now=100.0)
            sp.add(tx, kind, "future@x.example", until=2000.0, comment="asked", now=200.0)
            sp.add(tx, kind, "forever@x.example", now=300.0)
        with store.read() as tx:
            assert [e.address for e in sp.entries(tx, kind)] == [
                "forever@x.example",
                "future@x.example",
                "expired@x.example",
            ]
            assert not sp.is_suppressed(tx, kind, "expired@x.example", now=1000.0)
            assert sp.is_suppressed(tx, kind, "FUTURE@x.example", now=1000.0)
            assert not sp.is_suppressed(tx, kind, "future@x.example", now=2000.0)
            assert sp.is_suppressed(tx, kind, "forever@x.example", now=1e12)
            assert not sp.is_suppressed(tx, kind, "other@x.example", now=1000.0)
            assert not sp.is_suppressed(tx, kind, "not an address", now=1000.0)
            other = "dmarc" if kind == "tls" else "tls"
            assert sp.entries(tx, other) == []
        with store.write() as tx:
            assert sp.remove(tx, kind, "Future@X.example")
            assert not sp.remove(tx, kind, "future@x.example")
        with store.read() as tx:
            assert [e.address for e in sp.entries(tx, kind)] == ["forever@x.example", "expired@x.example"]


def test_suppress_after_failure(data_dir):
    with Store.open(data_dir) as store:
        with store.write() as tx:
            e = sp.suppress_after_failure(tx, "tls", "r@x.example", "550 5.1.1 no such user", now=1000.0)
        assert e.until == 1000.0 + 30 * 86400
        assert e.comment == "permanent delivery failure: 550 5.1.1 no such user"
        with store.read() as tx:
            assert sp.is_suppressed(tx, "tls", "r@x.example", now=1000.0 + 29 * 86400)
            assert not sp.is_suppressed(tx, "tls", "r@x.example", now=1000.0 + 31 * 86400)


def test_unknown_kind(data_dir):
    with (
        Store.open(data_dir) as store,
        store.read() as tx,
        pytest.raises(UsageError, match="unknown suppression list"),
    ):
        sp.entries(tx, "spam")

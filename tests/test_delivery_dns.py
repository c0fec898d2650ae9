"""The per-run DNS cache of the delivery engine."""

from __future__ import annotations

import pytest

from moxcli.delivery.deliver import CachingResolver
from moxcli.dns import Answer, NotFound, Resolver, TemporaryDNSError


def test_caching_resolver(monkeypatch):
    calls = []

    def fake_query(self, name, rdtype):
        calls.append((name, rdtype))
        if name == "missing.example":
            raise NotFound(name, rdtype, True, True)
        if name == "flaky.example":
            raise TemporaryDNSError(name, rdtype, "timeout")
        return Answer(name, rdtype, [], True, name, ttl=300 if name == "long.example" else 0)

    monkeypatch.setattr(Resolver, "query", fake_query)
    r = CachingResolver([("127.0.0.1", 53)])
    clock = [1000.0]
    monkeypatch.setattr("moxcli.delivery.deliver.time.monotonic", lambda: clock[0])
    r.query("long.example", "MX")
    r.query("LONG.example.", "MX")  # same name, other spelling
    assert calls == [("long.example", "MX")]
    r.query("long.example", "TXT")  # other type: looked up
    r.query("zero.example", "MX")
    r.query("zero.example", "MX")  # TTL 0: not kept
    assert calls.count(("zero.example", "MX")) == 2
    for _ in range(2):
        with pytest.raises(NotFound):
            r.query("missing.example", "A")
    assert calls.count(("missing.example", "A")) == 1  # negative answers are cached
    for _ in range(2):
        with pytest.raises(TemporaryDNSError):
            r.query("flaky.example", "A")
    assert calls.count(("flaky.example", "A")) == 2  # errors are not
    clock[0] += 61  # beyond the 60 s cap
    r.query("long.example", "MX")
    assert calls.count(("long.example", "MX")) == 2

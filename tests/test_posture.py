"""posture: the shared host cache and the indicator rules, without the network."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from moxcli.dane.lookup import TLSAResult
from moxcli.dane.tlsa import TLSA
from moxcli.posture.check import DomainPosture, HostCache, HostPosture, _indicators, apply_delivery_memory

USABLE = TLSA(3, 1, 1, b"\0" * 32)
UNUSABLE = TLSA(0, 0, 0, b"")


def test_host_cache_computes_once():
    cache = HostCache()
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.05)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", work))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8 and calls == [1]
    assert cache.get("other", lambda: 7) == 7


def _sts(mode=None, errors=(), record=True, temporary=False):
    policy = SimpleNamespace(mode=mode, mx=[], max_age=1) if mode else None
    return SimpleNamespace(
        policy=policy,
        record=object() if record else None,
        record_text="v=STSv1; id=1;" if record else "",
        errors=list(errors),
        warnings=[],
        temporary=temporary,
    )


def _rpt(valid=True, record=True, temporary=False, dnssec="secure", texts=None):
    return SimpleNamespace(
        valid=valid,
        record=object() if record and valid else None,
        temporary=temporary,
        dnssec=dnssec,
        texts=texts if texts is not None else (["v=TLSRPTv1; rua=mailto:a@b"] if record else []),
        errors=[],
        warnings=[],
        record_text="",
    )


def _host(tlsa=None, applies=True, matching=None, requiretls=None, sts_match=None):
    h = HostPosture(
        "mx.example", 10, ips=["192.0.2.1"], ips_dnssec="secure", dane_applies=applies, tlsa=tlsa, sts_match=sts_match
    )
    if requiretls is not None or matching is not None:
        probe = SimpleNamespace(tls=object(), requiretls=bool(requiretls), greeting="220", starttls_offered=True)
        dane = SimpleNamespace(verified=matching) if matching is not None else None
        h.addresses.append(SimpleNamespace(probe=probe, dane=dane, pkix=None))
    return h


@pytest.mark.parametrize(
    "posture,want",
    [
        (
            DomainPosture(
                "a",
                mx_dnssec="secure",
                mtasts=_sts("enforce"),
                tlsrpt=_rpt(),
                hosts=[_host(TLSAResult("mx", [USABLE], True), matching=True, requiretls=True, sts_match=True)],
            ),
            {
                "mtasts": "implemented",
                "mx_dnssec": "implemented",
                "dane": "implemented",
                "tlsrpt": "implemented",
                "requiretls": "implemented",
            },
        ),
        (
            DomainPosture(
                "b",
                mx_dnssec="insecure",
                mtasts=_sts(record=False, errors=["no MTA-STS record at _mta-sts.b"]),
                tlsrpt=_rpt(valid=False, record=False),
                hosts=[_host(None, applies=False, requiretls=False)],
            ),
            {
                "mtasts": "not-implemented",
                "mx_dnssec": "not-implemented",
                "dane": "not-implemented",
                "tlsrpt": "not-implemented",
                "requiretls": "not-implemented",
            },
        ),
        (
            DomainPosture(
                "c",
                mx_dnssec="bogus",
                mtasts=_sts(errors=["fetch failed"]),
                tlsrpt=_rpt(valid=False),
                hosts=[_host(TLSAResult("mx", [UNUSABLE], True))],
            ),
            {"mtasts": "error", "mx_dnssec": "error", "dane": "error", "tlsrpt": "error", "requiretls": "unknown"},
        ),
        (
            DomainPosture(
                "d",
                mx_dnssec="secure",
                mtasts=_sts("testing"),
                tlsrpt=_rpt(temporary=True, valid=False, record=False),
                hosts=[_host(TLSAResult("mx", [USABLE], True), matching=False)],
            ),
            {
                "mtasts": "not-implemented",
                "mx_dnssec": "implemented",
                "dane": "error",
                "tlsrpt": "error",
                "requiretls": "not-implemented",
            },
        ),
        (
            DomainPosture("e", mx_dnssec="", mtasts=None, tlsrpt=None),
            {
                "mtasts": "unknown",
                "mx_dnssec": "unknown",
                "dane": "unknown",
                "tlsrpt": "unknown",
                "requiretls": "unknown",
            },
        ),
    ],
    ids=list("abcde"),
)
def test_indicators(posture, want):
    # The two "seen" indicators come from our deliveries (the store): unknown here.
    assert _indicators(posture) == {**want, "starttls_seen": "unknown", "requiretls_seen": "unknown"}


@pytest.mark.parametrize(
    "known,want",
    [
        (None, ("unknown", "unknown")),
        (SimpleNamespace(starttls_seen=1.0, requiretls_seen=None), ("implemented", "not-implemented")),
        (SimpleNamespace(starttls_seen=None, requiretls_seen=1.0), ("not-implemented", "implemented")),
        # the last delivery went in plaintext (TLS-Required: No): STARTTLS was still seen before
        (
            SimpleNamespace(starttls=False, requiretls=False, starttls_seen=1.0, requiretls_seen=None),
            ("implemented", "not-implemented"),
        ),
    ],
)
def test_seen_indicators_from_deliveries(known, want):
    p = DomainPosture("example.org")
    p.indicators = {"mtasts": "implemented"}
    apply_delivery_memory(p, known)
    assert (p.indicators["starttls_seen"], p.indicators["requiretls_seen"]) == want
    assert p.indicators["mtasts"] == "implemented"


def test_enforced_policy_not_covering_an_mx_is_an_error():
    p = DomainPosture("g", mx_dnssec="secure", mtasts=_sts("enforce"), tlsrpt=_rpt(), hosts=[_host(sts_match=False)])
    assert _indicators(p)["mtasts"] == "error"


def test_dane_lookup_error_is_error_indicator():
    p = DomainPosture(
        "f",
        mx_dnssec="secure",
        mtasts=_sts("enforce"),
        tlsrpt=_rpt(),
        hosts=[_host(TLSAResult("mx", [], True, error=Exception("bogus")))],
    )
    assert _indicators(p)["dane"] == "error"


def test_batch_survives_a_failing_domain(monkeypatch):
    from moxcli.posture import check as pc

    def boom(resolver, domain, opts, cache):
        if domain == "bad.example":
            raise OSError("network is unreachable")
        return DomainPosture(domain)

    monkeypatch.setattr(pc, "check_domain", boom)
    out = list(pc.check_domains(None, ["a.example", "bad.example", "c.example"], concurrency=2))
    assert [p.domain for p in out] == ["a.example", "bad.example", "c.example"]
    assert out[1].status == "temporary" and "network is unreachable" in out[1].findings[0].text
    assert out[1].indicators["dane"] == "unknown"

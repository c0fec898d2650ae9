"""dane.lookup with a table-driven fake resolver: the gather_* vectors of dane_cases.json."""

from __future__ import annotations

import json
from types import SimpleNamespace

import dns.name
import pytest
from conftest import VECTORS
from helpers.dns import FakeResolver

from moxcli.dane import lookup as lk
from moxcli.dns import NotFound, TemporaryDNSError

VEC = json.loads((VECTORS / "dane_cases.json").read_text())


def _resolver(records, cnames, servfail=(), inauthentic=(), authentic=True) -> FakeResolver:
    """The vectors' DNS: ``servfail`` and ``inauthentic`` as (rdtype, name) pairs."""
    return FakeResolver(
        records=records,
        cnames=cnames,
        temporary=servfail,
        dnssec={k: False for k in inauthentic},
        authentic=authentic,
    )


def _tlsa(data_name: str):
    selector = 1 if data_name == "list0" else 0
    return [SimpleNamespace(usage=3, selector=selector, mtype=1, cert=b"\0" * 32)]


def _split(entries):
    out = []
    for e in entries:
        t, name = e.split(" ", 1)
        for tt in t.split("/"):
            out.append(("IP" if tt == "IP" else tt, name))
    return out


def _expand_ip(entries):
    res = []
    for t, n in entries:
        res += [("A", n), ("AAAA", n)] if t == "IP" else [(t, n)]
    return res


def tlsa_resolver() -> FakeResolver:
    d = VEC["gather_tlsa"]["dns"]
    recs = {("TLSA", k): _tlsa(v) for k, v in d["tlsa"].items()}
    return _resolver(recs, d["cname"], _split(d["servfail"]), _split(d["inauthentic"]))


@pytest.mark.parametrize(
    "case", VEC["gather_tlsa"]["cases"], ids=lambda c: f"{c['host']}-{c['expanded_host']}-{c['expanded_authentic']}"
)
@pytest.mark.parametrize("fast", [False, True], ids=["mox", "fast"])
def test_gather_tlsa(case, fast):
    """``fast`` (posture checks: no separate CNAME query when the answer shows none) must
    give mox's result on every vector."""
    if fast and case["host"] == "temperror-cname.example":
        pytest.skip("a name whose CNAME query fails while its TLSA query is answered: no real resolver does that")
    r = lk.gather_tlsa(tlsa_resolver(), case["host"], case["expanded_authentic"], case["expanded_host"], fast=fast)
    assert r.dane_required is case["dane_required"]
    if "error" in case:
        assert r.error is not None
        if "cname" in case["error"]:
            assert "too many cname records" in str(r.error)
        return
    assert r.error is None
    want = _tlsa(case["records"]) if case["records"] else []
    assert [(x.usage, x.selector, x.mtype, x.data) for x in r.records] == [
        (w.usage, w.selector, w.mtype, w.cert) for w in want
    ]
    assert r.base == case["base"]


def test_gather_tlsa_usable_and_json():
    r = lk.gather_tlsa(tlsa_resolver(), "host0.example", False, "host0.example")
    assert [x.record() for x in r.usable] == ["3 1 1 " + "00" * 32]
    assert r.to_json()["usable"] == r.to_json()["records"]
    assert lk.gather_tlsa(tlsa_resolver(), "inauthentic.example", False, "inauthentic.example").insecure


def _mx(pairs):
    return [SimpleNamespace(preference=p, exchange=dns.name.from_text(h)) for p, h in pairs]


def _addr(a):
    return [SimpleNamespace(address=a)]


def dest_resolver(authentic: bool) -> FakeResolver:
    d = VEC["gather_destinations"]["dns"]
    recs = {("MX", k): _mx(v) for k, v in d["mx"].items()}
    recs.update({("A", k): _addr(v) for k, v in d["a"].items()})
    recs.update({("AAAA", k): _addr(v) for k, v in d["aaaa"].items()})
    cnames = {k: v for k, v in d["cname"].items() if "N" not in k}
    for i in range(17):
        cnames[f"cnamelimit{i}.example."] = f"cnamelimit{i + 1}.example."
    return _resolver(recs, cnames, _expand_ip(_split(d["servfail"])), _split(d["inauthentic"]), authentic)


@pytest.mark.parametrize("fast", [False, True], ids=["mox", "fast"])
@pytest.mark.parametrize("authentic", [False, True])
@pytest.mark.parametrize("case", VEC["gather_destinations"]["cases"], ids=lambda c: c["domain"])
def test_gather_destinations(case, authentic, fast):
    if case.get("all_authentic") and not authentic:
        pytest.skip("vector only defined with authentic responses")
    domain = case["domain"].split(" ")[0]
    d = lk.gather_destinations(dest_resolver(authentic), domain, fast=fast)
    if "error" in case:
        assert d.error is not None
        for word in ("cname loop", "too many cname records", "null MX"):
            if word in case["error"]:
                assert word in str(d.error)
        assert d.permanent is case.get("permanent", False)
        return
    assert d.error is None
    assert d.hosts == [tuple(h) for h in case["hosts"]]  # in MX preference order
    if case["expanded"]:
        assert d.expanded_next_hop == case["expanded"]
    if "origAuthentic" in case:
        assert d.orig_authentic is case["origAuthentic"]
        assert d.expanded_authentic is case["expandedAuthentic"]
    elif not case["domain"].startswith("10."):
        assert d.orig_authentic is authentic and d.expanded_authentic is authentic


def test_destinations_in_mx_preference_order():
    """RFC 5321 5.1: the lowest preference first, whatever order the answer lists them in."""
    mx = _mx([(20, "b.order.example."), (10, "c.order.example."), (30, "a.order.example."), (5, "d.order.example.")])
    d = lk.gather_destinations(_resolver({("MX", "order.example."): mx}, {}), "order.example")
    assert d.error is None
    assert d.hosts == [
        ("d.order.example", 5),
        ("c.order.example", 10),
        ("b.order.example", 20),
        ("a.order.example", 30),
    ]


def test_destinations_json():
    d = lk.gather_destinations(dest_resolver(True), "basic.example")
    assert d.to_json()["hosts"] == [{"host": "mail.basic.example", "preference": 10}] and d.have_mx


def ips_resolver(authentic: bool) -> FakeResolver:
    d = VEC["gather_ips"]["dns"]
    recs = {("A", k): _addr(v) for k, v in d["a"].items()}
    recs.update({("AAAA", k): _addr(v) for k, v in d["aaaa"].items()})
    return _resolver(recs, d["cname"], _expand_ip(_split(d["servfail"])), _split(d["inauthentic"]), authentic)


@pytest.mark.parametrize("fast", [False, True], ids=["mox", "fast"])
@pytest.mark.parametrize("authentic", [False, True])
@pytest.mark.parametrize("case", VEC["gather_ips"]["cases"], ids=lambda c: f"{c['host']}-{c.get('network', 'ip')}")
def test_gather_ips(case, authentic, fast):
    if case.get("all_authentic_mode") and not authentic:
        pytest.skip("vector only defined with authentic responses")
    h = lk.gather_ips(ips_resolver(authentic), case["host"], case.get("network", "ip"), fast=fast)
    if "error" in case:
        assert h.error is not None
        if "not found" in case["error"]:
            assert isinstance(h.error, NotFound)
        elif "temporary" in case["error"]:
            assert isinstance(h.error, TemporaryDNSError)
        else:
            assert "too many cname records" in str(h.error)
        return
    assert h.error is None and h.ips == case["ips"]
    assert h.dualstack is case.get("dualstack", False)
    if "expanded_host" in case:
        assert h.expanded_host == case["expanded_host"]
    if "authentic" in case:
        assert h.authentic is case["authentic"]
    if "expandedAuthentic" in case and case.get("all_authentic_mode"):
        assert h.expanded_authentic is case["expandedAuthentic"]
    if not case.get("all_authentic_mode"):
        assert h.authentic is authentic


@pytest.mark.parametrize(
    "orig,exp,have_mx,ips_auth,applies",
    [
        (True, True, True, True, True),
        (False, True, True, True, False),
        (True, False, True, True, False),
        (True, False, False, True, True),
        (True, True, True, False, False),
    ],
)
def test_dane_applies(orig, exp, have_mx, ips_auth, applies):
    dest = lk.Destinations("d.example", have_mx=have_mx, orig_authentic=orig, expanded_authentic=exp)
    ips = lk.HostIPs("mx.d.example", ["10.0.0.1"], ips_auth, ips_auth, "mx.d.example")
    assert lk.dane_applies(dest, ips) is applies


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _dial_resolver(cnames, tlsa, inauthentic=()):
    recs = {("A", "example."): _addr("127.0.0.1"), ("A", "localhost."): _addr("127.0.0.1")}
    recs.update({("TLSA", k): [SimpleNamespace(usage=3, selector=1, mtype=1, cert=b"\1" * 32)] for k in tlsa})
    return _resolver(recs, cnames, (), inauthentic)


@pytest.mark.parametrize(
    "cnames,tlsa,inauthentic,base,error",
    [
        ({}, ["_25._tcp.localhost."], (), "localhost", ""),
        ({"localhost.": "example."}, ["_25._tcp.example."], (), "example", ""),
        ({"localhost.": "example."}, ["_25._tcp.localhost."], (), "localhost", ""),  # falls back to the original
        ({}, ["_25._tcp.localhost."], [("CNAME", "localhost.")], None, "cname lookup for localhost insecure"),
        ({}, ["_25._tcp.localhost."], [("TLSA", "_25._tcp.localhost.")], "localhost", "not dnssec-signed"),
        ({}, [], (), "localhost", "no tlsa records"),
    ],
)
def test_verify_host_dns_rules(cnames, tlsa, inauthentic, base, error):
    """mox dane.Dial's DNS steps (dane_cases.json `dial`); the connection itself is refused here."""
    from moxcli.dane.check import verify_host

    rep = verify_host(_dial_resolver(cnames, tlsa, inauthentic), "localhost", _closed_port(), timeout=1)
    h = rep.hosts[0]
    if base is not None:
        assert h.tlsa.base == base
    if error:
        assert error in h.error and rep.status == "failed"
    else:
        assert h.records and h.names[0] == base
        assert rep.status == "temporary" and h.addresses[0].probe.error  # refused: retry later

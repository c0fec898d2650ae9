"""The one fake resolver of the tests: DNS answers from tables, no network.

It offers the interface of moxcli.dns.Resolver that the library uses (``query``, ``txt``,
``cname``, ``ips``, ``untrusted_reason``), raising NotFound, TemporaryDNSError and
BogusDNSError as the real one does, so the code under test cannot tell the difference. Tests
that need a real DNS server use the lab (nsd + unbound) instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import dns.name
import dns.rdata

from moxcli.dns import Answer, BogusDNSError, ExtendedError, NotFound, Resolver, TemporaryDNSError

Where = str | tuple[str, str]  # a name (every type) or (rdtype, name)


def _n(name: str) -> str:
    return name.rstrip(".").lower()


class _TXT:
    def __init__(self, text: str) -> None:
        self.strings = [text.encode()]


class _Address:
    def __init__(self, address: str) -> None:
        self.address = address


class _CNAME:
    def __init__(self, target: str) -> None:
        self.target = dns.name.from_text(target)


class FakeResolver:
    """Answers from tables; names with or without the final dot, in any case.

    ``txt``: {name: [texts] or text}; the text "TEMP" fails temporarily. ``records``:
    {(rdtype, name): [rdata]}, an rdata given as text is parsed as that type ("10 mx.example.").
    ``addresses``: {name: [IPv4 or IPv6]} as A and AAAA records; ``any_address``: the addresses of
    every name that has none of its own (a world where every host is on loopback). ``cnames``:
    {name: target}, followed for every other type as a stub resolver does. ``temporary`` and
    ``bogus``: names (every type) or (rdtype, name) pairs that fail with SERVFAIL, or with a
    DNSSEC validation failure (EDE 6). ``authentic`` is the DNSSEC status of every answer and
    denial, ``dnssec`` overrides it per (rdtype, name); an answer reached through CNAMEs is
    authentic only when every link is. A name with no records of any type is NXDOMAIN, one with
    records of other types NODATA. ``queries`` lists the names asked, without the final dot.
    """

    def __init__(
        self,
        txt: Mapping[str, list[str] | str] | None = None,
        *,
        records: Mapping[tuple[str, str], list[Any]] | None = None,
        addresses: Mapping[str, list[str]] | None = None,
        any_address: Iterable[str] = (),
        cnames: Mapping[str, str] | None = None,
        temporary: Iterable[Where] = (),
        bogus: Iterable[Where] = (),
        authentic: bool = False,
        dnssec: Mapping[tuple[str, str], bool] | None = None,
        ttl: int = 60,
    ) -> None:
        self.records: dict[tuple[str, str], list[Any]] = {}
        self.cnames = {_n(k): _n(v) for k, v in (cnames or {}).items()}
        self.temporary = {_where(w) for w in temporary}
        self.bogus = {_where(w) for w in bogus}
        self.authentic = authentic
        self.dnssec = {(t, _n(k)): v for (t, k), v in (dnssec or {}).items()}
        self.any_address = list(any_address)
        self.ttl = ttl
        self.untrusted_reason: str | None = None
        self.queries: list[str] = []
        self.add(txt or {}, records=records or {}, addresses=addresses or {})

    def add(
        self,
        txt: Mapping[str, list[str] | str],
        records: Mapping[tuple[str, str], list[Any]] | None = None,
        addresses: Mapping[str, list[str]] | None = None,
    ) -> None:
        """More records (replacing those of the same name and type)."""
        for name, v in txt.items():
            if v == "TEMP":
                self.temporary.add(("TXT", _n(name)))
            else:
                self.records[("TXT", _n(name))] = [_TXT(t) for t in ([v] if isinstance(v, str) else v)]
        for (rdtype, name), recs in (records or {}).items():
            self.records[(rdtype, _n(name))] = [
                dns.rdata.from_text("IN", rdtype, r) if isinstance(r, str) else r for r in recs
            ]
        for name, ips in (addresses or {}).items():
            for rdtype, version in (("A", 4), ("AAAA", 6)):
                mine = [_Address(ip) for ip in ips if ipaddress.ip_address(ip).version == version]
                if mine:
                    self.records[(rdtype, _n(name))] = mine

    def remove(self, name: str, rdtype: str = "TXT") -> None:
        """The records of that name and type gone."""
        del self.records[(rdtype, _n(name))]

    def set_failing(self, name: str, failing: bool = True) -> None:
        """Every query for ``name`` fails temporarily (or answers again)."""
        if failing:
            self.temporary.add(("*", _n(name)))
        else:
            self.temporary.discard(("*", _n(name)))

    def _auth(self, rdtype: str, name: str) -> bool:
        return self.dnssec.get((rdtype, name), self.authentic)

    def _fail(self, rdtype: str, name: str) -> None:
        if (rdtype, name) in self.temporary or ("*", name) in self.temporary:
            raise TemporaryDNSError(name, rdtype, "server failure")
        if (rdtype, name) in self.bogus or ("*", name) in self.bogus:
            raise BogusDNSError(name, rdtype, "server failure", [ExtendedError(6)])

    def _exists(self, name: str) -> bool:
        return bool(self.any_address) or name in self.cnames or any(n == name for _, n in self.records)

    def _records(self, rdtype: str, name: str) -> list[Any]:
        recs = self.records.get((rdtype, name), [])
        if not recs and rdtype in ("A", "AAAA") and not self._own_addresses(name):
            version = 4 if rdtype == "A" else 6
            recs = [_Address(ip) for ip in self.any_address if ipaddress.ip_address(ip).version == version]
        return recs

    def _own_addresses(self, name: str) -> bool:
        return ("A", name) in self.records or ("AAAA", name) in self.records

    def query(self, name: str, rdtype: str) -> Answer:
        asked = _n(name)
        self.queries.append(asked)
        if rdtype == "CNAME":
            target, authentic = self._cname(asked)
            return Answer(asked, rdtype, [_CNAME(target + ".")], authentic, asked, [], self.ttl)
        current, authentic, chain, seen = asked, True, [], set()
        while current in self.cnames and current not in seen:
            seen.add(current)
            authentic = authentic and self._auth("CNAME", current)
            current = self.cnames[current]
            chain.append(current)
        self._fail(rdtype, current)
        authentic = authentic and self._auth(rdtype, current)
        recs = self._records(rdtype, current)
        if not recs:
            exc = NotFound(asked, rdtype, not self._exists(current), authentic)
            exc.cnames = chain
            raise exc
        return Answer(asked, rdtype, list(recs), authentic, current, chain, self.ttl)

    def txt(self, name: str) -> Answer:
        return self.query(name, "TXT")

    def _cname(self, name: str) -> tuple[str, bool]:
        self._fail("CNAME", name)
        if name not in self.cnames:
            raise NotFound(name, "CNAME", not self._exists(name), self._auth("CNAME", name))
        return self.cnames[name], self._auth("CNAME", name)

    def cname(self, name: str) -> tuple[str, bool]:
        """The CNAME target of ``name`` (NotFound if it has none, even with other records)."""
        self.queries.append(_n(name))
        return self._cname(_n(name))

    # The real resolver's own ips(): it only asks self.query, which this class answers.
    ips = Resolver.ips


def _where(w: Where) -> tuple[str, str]:
    return ("*", _n(w)) if isinstance(w, str) else (w[0], _n(w[1]))


def loopback_dns(**kw: Any) -> FakeResolver:
    """The delivery tests' world: every name is at 127.0.0.1 (``any_address`` to change it) and
    has no CNAME, MX or TXT records unless given; insecure unless ``authentic``."""
    kw.setdefault("any_address", ["127.0.0.1"])
    return FakeResolver(**kw)


def example_org_mx() -> FakeResolver:
    """example.org has MX mx.example.org (insecure); every name is at 127.0.0.1."""
    return loopback_dns(records={("MX", "example.org"): ["10 mx.example.org."]})


def vector_dns(mock: dict[str, Any]) -> FakeResolver:
    """The mock DNS of a vector file (mox's lookup tests): ``dns_txt`` {name: [texts]},
    ``dns_cname`` {name: target} and ``dns_servfail`` ["TYPE name"]; nothing DNSSEC-secure."""
    servfail = [tuple(s.split(" ", 1)) for s in mock.get("dns_servfail", [])]
    return FakeResolver(mock.get("dns_txt", {}), cnames=mock.get("dns_cname", {}), temporary=servfail)  # type: ignore[arg-type]

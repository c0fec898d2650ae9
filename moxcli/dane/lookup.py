"""DNS gathering for DANE: destinations (MX), host addresses, TLSA with DNSSEC rules.

mox's smtpclient/gather.go as described in docs/behaviour-notes.md §3.2, §3.4 and §5.2 (RFC 7672 §2.1, §2.2).
All functions take a :class:`moxcli.dns.Resolver` (or anything with ``query``/``cname``/
``ips``) and return plain results; DNS failures are kept in the result (``error``) so that
callers can map them to TLSRPT result types.

For delivery:

- ``gather_destinations(resolver, domain) -> Destinations`` (docs/behaviour-notes.md §3.2)
- ``gather_ips(resolver, host) -> HostIPs`` (docs/behaviour-notes.md §3.4 step 1)
- ``dane_applies(dest, ips) -> bool`` (docs/behaviour-notes.md §3.4 step 2)
- ``gather_tlsa(resolver, host, expanded_authentic, expanded_host) -> TLSAResult`` (docs/behaviour-notes.md §5.2),
  with ``.usable`` records, ``.base`` domain, ``.dane_required`` and ``.error``;
  :func:`moxcli.dane.tlsa.allowed_names` gives the DANE-TA names (docs/behaviour-notes.md §5.4).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from moxcli.dane.tlsa import TLSA, usable
from moxcli.dns import Answer, DNSError, NotFound, Resolver, TemporaryDNSError
from moxcli.domain import DomainError, parse_domain
from moxcli.values import dataclass, field


class GatherError(DNSError):
    """A gathering failure that is not a single DNS response (cname loops, null MX)."""

    def __init__(self, name: str, msg: str, permanent: bool = False) -> None:
        super().__init__(name, "MX" if permanent else "CNAME", msg)
        self.permanent = permanent


def _ascii(name: str) -> str:
    return name.rstrip(".").lower()


def _same(a: str, b: str) -> bool:
    return _ascii(a) == _ascii(b)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@dataclass
class Destinations:
    """Result of MX gathering for a next-hop domain (docs/behaviour-notes.md §3.2)."""

    domain: str
    hosts: list[tuple[str, int]] = field(default_factory=list)
    have_mx: bool = False
    orig_authentic: bool = False
    expanded_authentic: bool = False
    expanded_next_hop: str = ""
    permanent: bool = False
    error: DNSError | None = None
    nxdomain: bool = False

    @property
    def status(self) -> str:
        """``ok``, ``nxdomain`` (the domain does not exist), ``nodata`` (no MX: the domain
        itself is the implicit MX), ``dnssec-bogus``, ``null-mx`` or ``dns-error``."""
        if self.nxdomain:
            return "nxdomain"
        if self.error is not None:
            if self.permanent and "null MX" in str(self.error):
                return "null-mx"
            return self.error.status if not isinstance(self.error, NotFound) else "dns-error"
        return "ok" if self.have_mx else "nodata"

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status,
            # RFC 5321 §5.1 implicit MX: no preference (mox uses -1 internally)
            "hosts": [{"host": h, "preference": p if p >= 0 else None} for h, p in self.hosts],
            "have_mx": self.have_mx,
            "orig_authentic": self.orig_authentic,
            "expanded_authentic": self.expanded_authentic,
            "expanded_next_hop": self.expanded_next_hop,
            "permanent": self.permanent,
            "error": str(self.error) if self.error else None,
        }


def gather_destinations(resolver: Resolver, domain: str, fast: bool = False) -> Destinations:
    """Follow CNAMEs of ``domain`` (at most 15 hops) and look up its MX (docs/behaviour-notes.md §3.2).

    A null MX (RFC 7505) is a permanent error; no MX means the domain itself with
    preference -1 (RFC 5321 §5.1). ``fast`` (posture checks, not delivery): ask for the MX
    first and skip mox's separate CNAME query when the answer shows no CNAME (see _direct).
    """
    if _is_ip(domain):
        return Destinations(domain, [(domain, -1)])
    d = Destinations(domain, orig_authentic=True, expanded_authentic=True)
    name = _ascii(domain)
    if fast:
        ans = _direct(resolver, name, "MX")
        if ans is not None:
            d.orig_authentic = d.expanded_authentic = ans.authentic
            d.expanded_next_hop = name
            return _mx_hosts(d, domain, ans)
    seen: set[str] = set()
    for i in range(17):
        if name in seen:
            d.error = GatherError(domain, "cname loop")
            return d
        if i == 16:
            d.error = GatherError(domain, "too many cname records")
            return d
        seen.add(name)
        try:
            target, authentic = resolver.cname(name)
        except NotFound as exc:
            target, authentic = "", exc.authentic
        except DNSError as exc:
            d.error = exc
            return d
        if i == 0:
            d.orig_authentic = d.orig_authentic and authentic
        d.expanded_authentic = d.expanded_authentic and authentic
        if target and not _same(target, name):
            try:
                name = parse_domain(target.rstrip(".")).ascii
            except DomainError as exc:
                d.error = TemporaryDNSError(name, "CNAME", f"bad cname target {target!r}: {exc}")
                return d
            continue
        break
    d.expanded_next_hop = name
    try:
        ans = resolver.query(name, "MX")
    except NotFound as exc:
        if i == 0:
            d.orig_authentic = d.orig_authentic and exc.authentic
        d.expanded_authentic = d.expanded_authentic and exc.authentic
        d.nxdomain = exc.nxdomain
        d.hosts = [(name, -1)]
        return d
    except DNSError as exc:
        d.error = exc
        return d
    if i == 0:
        d.orig_authentic = d.orig_authentic and ans.authentic
    d.expanded_authentic = d.expanded_authentic and ans.authentic
    return _mx_hosts(d, domain, ans)


def _direct(resolver: Resolver, name: str, rdtype: str) -> Any:
    """The answer for ``rdtype`` at ``name`` when it came without a CNAME, else None.

    A name that has a CNAME has no other data (RFC 1034 §3.6.2), so an answer without a
    CNAME chain proves there is none, with the same zone's DNSSEC status as the separate
    CNAME query mox makes first. Anything else (a CNAME, not found, an error) returns None
    and the caller takes mox's full path, so only the common case is shortened.
    """
    try:
        ans = resolver.query(name, rdtype)
    except DNSError:
        return None
    return None if ans.cnames else ans


def _mx_hosts(d: Destinations, domain: str, ans: Any) -> Destinations:
    d.have_mx = True
    mxs = sorted(ans.records, key=lambda r: r.preference)
    if len(mxs) == 1 and mxs[0].exchange.to_text() == ".":
        d.error = GatherError(domain, "domain does not accept email (null MX)", permanent=True)
        d.permanent = True
        return d
    for r in mxs:
        target = r.exchange.to_text(omit_final_dot=True)
        try:
            host = parse_domain(target, lax=True).ascii
        except DomainError as exc:
            d.error = GatherError(domain, f"bad mx host {target!r}: {exc}", permanent=True)
            d.permanent = True
            return d
        d.hosts.append((host, r.preference))
    return d


@dataclass
class HostIPs:
    """Addresses of an MX host after explicit CNAME following (docs/behaviour-notes.md §3.4 step 1)."""

    host: str
    ips: list[str] = field(default_factory=list)
    authentic: bool = False
    expanded_authentic: bool = False
    expanded_host: str = ""
    error: DNSError | None = None
    cname_authentic: bool = False

    @property
    def dualstack(self) -> bool:
        return any(":" in a for a in self.ips) and any(":" not in a for a in self.ips)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ips": self.ips,
            "authentic": self.authentic,
            "expanded_authentic": self.expanded_authentic,
            "expanded_host": self.expanded_host,
            "error": str(self.error) if self.error else None,
        }


def gather_ips(resolver: Resolver, host: str, network: str = "ip", fast: bool = False) -> HostIPs:
    """``authentic`` = first CNAME response AND the address response; ``expanded_authentic``
    = all responses (at most 11 CNAME hops); ``cname_authentic`` = the first CNAME response
    alone. ``network`` `ip4`/`ip6` keeps one family. ``fast``: as in gather_destinations."""
    if _is_ip(host):
        return HostIPs(host, [host], False, False, host)
    h = HostIPs(host, expanded_authentic=True, expanded_host=_ascii(host))
    name = _ascii(host)
    if fast and network == "ip":
        a = _direct(resolver, name, "A")
        if a is not None:
            h.authentic = h.cname_authentic = h.expanded_authentic = a.authentic
            h.ips = [r.address for r in a.records]
            try:
                aaaa = resolver.query(name, "AAAA")
            except NotFound as exc:
                h.authentic = h.expanded_authentic = h.authentic and exc.authentic
            except DNSError as exc:
                h.error = exc
                return h
            else:
                h.authentic = h.expanded_authentic = h.authentic and aaaa.authentic
                h.ips += [r.address for r in aaaa.records]
            return h
    seen: set[str] = set()
    for i in range(13):
        try:
            target, authentic = resolver.cname(name)
        except NotFound as exc:
            target, authentic = "", exc.authentic
        except DNSError as exc:
            h.error = exc
            return h
        if i == 0:
            h.authentic = h.cname_authentic = authentic
        h.expanded_authentic = h.expanded_authentic and authentic
        if not target or _same(target, name):
            break
        if i > 10 or _ascii(target) in seen:
            h.error = GatherError(host, "too many cname records")
            return h
        seen.add(name)
        name = _ascii(target)
        h.expanded_host = name
    try:
        ips, authentic, _ = resolver.ips(name)
    except DNSError as exc:
        h.error = exc
        return h
    h.authentic = h.authentic and authentic
    h.expanded_authentic = h.expanded_authentic and authentic
    if network in ("ip4", "ip6"):
        ips = [a for a in ips if (":" in a) == (network == "ip6")]
        if not ips:
            h.error = NotFound(name, "AAAA" if network == "ip6" else "A", False, authentic)
            return h
    h.ips = ips
    return h


def dane_applies(dest: Destinations, ips: HostIPs) -> bool:
    """DANE applies to an MX host only after secure MX and address lookups (docs/behaviour-notes.md §3.4 step 2).

    mox quirk (RFC 7672 §2.2.2 would still look at the unexpanded name when only later
    address records are insecure): the address response must be secure too.
    """
    return (
        ips.error is None
        and ips.authentic
        and dest.orig_authentic
        and (not dest.have_mx or dest.expanded_authentic)
        and not _is_ip(ips.host)
    )


@dataclass
class TLSAResult:
    """Outcome of the TLSA search (RFC 7672 §2.2): records, base domain, whether DANE is required.

    ``dane_required`` is true when records were found (even unusable ones) and when the
    lookup failed (RFC 7672 §2.1.2: treat the server as unreachable). ``secure`` is false
    when an insecure answer made the records irrelevant.
    """

    base: str
    records: list[TLSA] = field(default_factory=list)
    dane_required: bool = False
    error: DNSError | None = None
    insecure: bool = False

    @property
    def usable(self) -> list[TLSA]:
        return usable(self.records)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "records": [r.record() for r in self.records],
            "usable": [r.record() for r in self.usable],
            "dane_required": self.dane_required,
            "insecure": self.insecure,
            "error": str(self.error) if self.error else None,
        }


def _tlsa_of(rdata: Any) -> TLSA:
    return TLSA(int(rdata.usage), int(rdata.selector), int(rdata.mtype), bytes(rdata.cert))


def lookup_tlsa(resolver: Resolver, host: str, port: int = 25, fast: bool = False) -> TLSAResult:
    """TLSA at ``_<port>._tcp.<host>``, following CNAMEs explicitly (at most 10; docs/behaviour-notes.md §5.2).

    An insecure CNAME or TLSA answer means "no DANE" (RFC 7672 §2.1.3); a CNAME at the
    TLSA name does not change the base domain (RFC 7671 §7). ``fast``: ask for the TLSA
    first; a not-found or CNAME-free answer ends it as the full path would.
    """
    res = TLSAResult(_ascii(host))
    name = f"_{port}._tcp.{_ascii(host)}"
    if fast:
        try:
            ans = resolver.query(name, "TLSA")
        except NotFound as exc:
            if not exc.cnames:  # a denial at the name itself: what the full path ends with too
                res.insecure = not exc.authentic
                return res
            ans = None
        except DNSError as exc:
            res.error, res.dane_required = exc, True
            return res
        if ans is not None and not ans.cnames:
            return _with_answer(res, ans)
    for i in range(12):
        try:
            target, authentic = resolver.cname(name)
        except NotFound as exc:
            if not exc.authentic:
                res.insecure = True
                return res
            break
        except DNSError as exc:
            res.error, res.dane_required = exc, True
            return res
        if not authentic:
            res.insecure = True
            return res
        if i == 10:
            res.error, res.dane_required = GatherError(name, "too many cname records"), True
            return res
        name = _ascii(target)
    try:
        ans = resolver.query(name, "TLSA")
    except NotFound as exc:
        res.insecure = not exc.authentic
        return res
    except DNSError as exc:
        res.error, res.dane_required = exc, True
        return res
    return _with_answer(res, ans)


def _with_answer(res: TLSAResult, ans: Answer) -> TLSAResult:
    """The result of a TLSA answer: insecure means no DANE (RFC 7672 §2.1.3), else its records."""
    if not ans.authentic:
        res.insecure = True
        return res
    res.records = [_tlsa_of(r) for r in ans.records]
    res.dane_required = bool(res.records)
    return res


def gather_tlsa(
    resolver: Resolver, host: str, expanded_authentic: bool, expanded_host: str, port: int = 25, fast: bool = False
) -> TLSAResult:
    """mox GatherTLSA: the secure CNAME target first, then the original host (docs/behaviour-notes.md §5.2)."""
    if not expanded_authentic or _same(host, expanded_host):
        return lookup_tlsa(resolver, host, port, fast)
    res = lookup_tlsa(resolver, expanded_host, port, fast)
    if res.error is None and not res.records:
        return lookup_tlsa(resolver, host, port, fast)
    return res

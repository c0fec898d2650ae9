"""DNS lookups with DNSSEC status taken from the resolver's AD bit (docs/behaviour-notes.md §0.2, mox's model).

moxcli does no DNSSEC validation itself. Queries set AD (RFC 6840 §5.7) with EDNS0 but
without DO, as Go's stub resolver (and so mox) does: the validating resolver still
validates and sets AD, and answers carry no RRSIG/NSEC records, which makes them 3-5 times
smaller and cheaper to parse (the largest CPU cost of `check domain`). Not CD. An answer is
*secure* only if the resolver is trusted (every server on loopback, or ``trust_ad``) and
the AD bit is set; *bogus* is SERVFAIL carrying an authentication Extended DNS Error
(RFC 8914), or, from a resolver that sends no EDE, a SERVFAIL whose question the resolver
does answer when asked again with CD set (RFC 4035 3.2.2: the data is there, only its
validation failed); everything else is *insecure*. CNAME chains are followed as a stub
resolver does; ``authentic`` covers the whole answer.

Every question and answer is logged at debug level (``--log-level debug``): the transcript
an operator compares with ``dig``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from moxcli import dnswire, log
from moxcli.dnserrors import (
    AUTHENTICATION_EDE,
    EDE_NAMES,
    TEMPORARY_EDE,
    Answer,
    BogusDNSError,
    DNSError,
    ExtendedError,
    NotFound,
    TemporaryDNSError,
)
from moxcli.errors import TemporaryError
from moxcli.localzone import LocalZone

__all__ = [
    "AUTHENTICATION_EDE",
    "EDE_NAMES",
    "TEMPORARY_EDE",
    "Answer",
    "BogusDNSError",
    "DNSError",
    "ExtendedError",
    "NotFound",
    "Resolver",
    "TemporaryDNSError",
]

_log = log.get("dns")


def _fqdn(name: str) -> dns.name.Name:
    return dns.name.from_text(name if name.endswith(".") else name + ".")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Resolver:
    """A stub resolver over the configured (or system) name servers."""

    def __init__(
        self,
        servers: Sequence[tuple[str, int]] = (),
        trust_ad: bool = False,
        timeout: float = 5.0,
        local: LocalZone | None = None,
    ) -> None:
        self.local = local
        system_trust = False
        if not servers:
            try:
                from dns import resolver as dns_resolver  # here: it imports dns.query and its HTTP stack (DoH), 70 ms

                sys_resolver = dns_resolver.Resolver(configure=True)
            except dns_resolver.NoResolverConfiguration:
                sys_resolver = None
            if sys_resolver is not None:
                servers = [(str(s), sys_resolver.port or 53) for s in sys_resolver.nameservers]
                system_trust = bool((sys_resolver.flags or 0) & dns.flags.AD)
                system_trust = system_trust or _resolv_conf_trust_ad()
        self.servers = [(h, p) for h, p in servers]
        if not self.servers and local is None:
            raise TemporaryError("no DNS servers configured and none in /etc/resolv.conf")
        self.timeout = timeout
        all_loopback = bool(self.servers) and all(_is_loopback(h) for h, _ in self.servers)
        self.trusted = trust_ad or system_trust or all_loopback
        self.untrusted_reason = (
            None
            if self.trusted
            else "resolver is not on loopback and trust_ad is not set: DNSSEC status cannot be "
            "trusted, treated as insecure"
        )

    @classmethod
    def from_config(cls, cfg: Any) -> Resolver:
        """From a :class:`moxcli.config.DNSConfig` (with its local zone file, if any)."""
        local = None
        if getattr(cfg, "local_zone", None) is not None:
            from moxcli.localzone import load_local_zone

            local = load_local_zone(cfg.local_zone, cfg.local_zone_secure)
        return cls(cfg.resolvers, cfg.trust_ad, cfg.timeout, local=local)

    def _exchange(
        self,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        deadline: float,
        checking_disabled: bool = False,
        display: str = "",
    ) -> dnswire.Reply:
        """One question to the servers in turn, all within ``deadline`` (time.monotonic()):
        the UDP answer, the TCP retry after truncation and every server share it.

        Queries are built and ordinary answers parsed by :mod:`moxcli.dnswire`; anything
        else (truncation, EDNS options such as EDE, malformed bytes) goes through dnspython,
        as every answer used to."""
        flags = dns.flags.RD | (dns.flags.AD if self.trusted else 0) | (dns.flags.CD if checking_disabled else 0)
        display = display or qname.to_text(omit_final_dot=True)
        qtext = f"{display} {dns.rdatatype.to_text(rdtype)}"
        qkey = _key_of(display)
        qwire = dnswire.name_wire(qname)
        last: Exception | None = None
        for host, port in self.servers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                per_server = min(remaining, max(self.timeout / max(1, len(self.servers)), 0.5))
                _log.debug("dns question", q=qtext, server=f"{host}:{port}", cd=checking_disabled)
                qid = int.from_bytes(os.urandom(2), "big")
                wire = _udp(dnswire.build_query(qid, flags, qwire, rdtype), host, port=port, timeout=per_server)
                reply = dnswire.parse_reply(wire, qid, qkey, rdtype)
                if reply is None:
                    from dns import query as dns_query  # only here (TCP, BadResponse): it imports an HTTP stack for DoH

                    q = _query_message(qname, rdtype, qid, flags)
                    r = dns.message.from_wire(wire)
                    if not q.is_response(r):
                        raise dns_query.BadResponse
                    if r.flags & dns.flags.TC:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise dns.exception.Timeout
                        _log.debug("dns answer truncated, retrying over tcp", q=qtext, server=f"{host}:{port}")
                        r = dns_query.tcp(q, host, port=port, timeout=remaining)
                    reply = _reply_of(r)
                _log_answer(qtext, reply)
                return reply
            except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
                _log.debug("dns exchange failed", q=qtext, server=f"{host}:{port}", error=type(exc).__name__)
                last = exc
        raise TemporaryDNSError(
            display,
            dns.rdatatype.to_text(rdtype),
            f"no answer from {', '.join(f'{h}:{p}' for h, p in self.servers)} "
            f"({type(last).__name__ if last else 'timeout'})",
        )

    def _answers_with_cd(
        self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType, deadline: float, display: str
    ) -> bool:
        """True when the resolver answers the question with checking disabled (NOERROR or
        NXDOMAIN): its SERVFAIL was then a validation failure, not an outage."""
        try:
            r = self._exchange(qname, qtype, deadline, checking_disabled=True, display=display)
        except TemporaryDNSError:
            return False
        return r.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)

    def query(self, name: str, rdtype: str) -> Answer:
        """Look up ``name`` (ASCII) for ``rdtype``; raises NotFound, BogusDNSError, TemporaryDNSError.

        The whole lookup (including the CD re-ask) keeps one deadline of ``timeout`` seconds.
        """
        qname = _fqdn(name)
        qtype = dns.rdatatype.from_text(rdtype)
        display = qname.to_text(omit_final_dot=True)
        if self.local is not None and self.local.covers(qname.canonicalize()):
            return self._local_answer(qname, qtype, rdtype, display)
        if not self.servers:
            raise TemporaryDNSError(display, rdtype, "not in the local zone and no DNS servers configured")
        deadline = time.monotonic() + self.timeout
        r = self._exchange(qname, qtype, deadline, display=display)
        ede = tuple(ExtendedError(code, text) for code, text in r.ede)
        authentic = self.trusted and bool(r.flags & dns.flags.AD)
        rcode = r.rcode
        if rcode == dns.rcode.SERVFAIL:
            if any(e.is_authentication for e in ede):
                raise BogusDNSError(display, rdtype, "DNSSEC validation failed (bogus)" + _ede_text(ede), ede)
            # No EDE (unbound's default, BIND before 9.20): RFC 4035 3.2.2, with CD the
            # resolver hands out what it has without validating. An answer now means the
            # data exists and failed validation (bogus, exit 1); no answer is an outage (3).
            if self._answers_with_cd(qname, qtype, deadline, display):
                raise BogusDNSError(
                    display,
                    rdtype,
                    "DNSSEC validation failed (bogus: server failure, answered with checking disabled)"
                    + _ede_text(ede),
                    ede,
                    via_cd=True,
                )
            raise TemporaryDNSError(display, rdtype, "server failure" + _ede_text(ede), ede)
        if rcode != dns.rcode.NOERROR and rcode != dns.rcode.NXDOMAIN:
            raise TemporaryDNSError(
                display, rdtype, dns.rcode.to_text(dns.rcode.Rcode.make(rcode)) + _ede_text(ede), ede
            )
        key = _key_of(display)
        cnames = _cname_chain(r, key)
        if rcode == dns.rcode.NXDOMAIN:
            raise _not_found(display, rdtype, True, authentic, ede, cnames)
        target = _fqdn(cnames[-1]) if cnames else qname
        if qtype == dns.rdatatype.CNAME:
            rrset = r.find(key, qtype)
            if rrset is None:
                raise NotFound(display, rdtype, False, authentic, ede)
            return Answer(display, rdtype, list(rrset.records), authentic, display, [], rrset.ttl)
        rrset = r.find(target.to_text().lower() if cnames else key, qtype)
        if rrset is None:
            raise _not_found(display, rdtype, False, authentic, ede, cnames)
        canonical = target.to_text(omit_final_dot=True) if cnames else display
        return Answer(display, rdtype, list(rrset.records), authentic, canonical, cnames, rrset.ttl)

    def _local_answer(self, qname: dns.name.Name, qtype: int, rdtype: str, display: str) -> Answer:
        """The answer from the local zone file (followed CNAMEs may lead back to the resolver)."""
        assert self.local is not None
        name = qname.canonicalize()
        _log.debug("dns answer from local zone", q=f"{display} {rdtype}", file=str(self.local.path))
        authentic = self.local.secure
        target = self.local.cname(name)
        if target is not None and qtype != dns.rdatatype.CNAME:
            try:
                a = self.query(target.to_text(), rdtype)
            except NotFound as exc:
                exc.cnames = [target.to_text(True), *exc.cnames]  # the denial came after a CNAME
                raise
            return Answer(
                display,
                rdtype,
                a.records,
                authentic and a.authentic,
                a.canonical,
                [target.to_text(True), *a.cnames],
                a.ttl,
            )
        hit = self.local.lookup(name, qtype)
        assert hit is not None
        records, ttl = hit
        if not records:
            nxdomain = name not in self.local.owners
            raise NotFound(display, rdtype, nxdomain, authentic)
        return Answer(display, rdtype, records, authentic, display, [], ttl)

    def txt(self, name: str) -> Answer:
        return self.query(name, "TXT")

    def cname(self, name: str) -> tuple[str, bool]:
        """The CNAME target of ``name`` (NotFound if it has none, even with other records)."""
        a = self.query(name, "CNAME")
        return a.records[0].target.to_text(omit_final_dot=True), a.authentic

    def ips(self, name: str) -> tuple[list[str], bool, str]:
        """A and AAAA addresses: (addresses, authentic for all, canonical name).

        Not found only when neither type has records; a failure of one type is raised.
        """
        addrs: list[str] = []
        authentic = True
        canonical = name
        found = False
        nxdomain = False
        for rdtype in ("A", "AAAA"):
            try:
                a = self.query(name, rdtype)
            except NotFound as exc:
                authentic = authentic and exc.authentic
                nxdomain = nxdomain or exc.nxdomain
                continue
            found = True
            authentic = authentic and a.authentic
            canonical = a.canonical
            addrs.extend(r.address for r in a.records)
        if not found:
            raise NotFound(name, "A/AAAA", nxdomain, authentic)
        return addrs, authentic, canonical


def _not_found(
    name: str, rdtype: str, nxdomain: bool, authentic: bool, ede: Sequence[ExtendedError], cnames: list[str]
) -> NotFound:
    exc = NotFound(name, rdtype, nxdomain, authentic, ede)
    exc.cnames = cnames
    return exc


def _query_message(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, qid: int, flags: int) -> dns.message.Message:
    """The dnspython form of the query :func:`dnswire.build_query` sent: for matching an
    answer that only dnspython parses, and for the TCP retry."""
    q = dns.message.make_query(qname, rdtype, want_dnssec=False, use_edns=0, payload=dnswire.EDNS_PAYLOAD)
    q.id = qid
    q.flags = flags
    return q


def _reply_of(r: dns.message.Message) -> dnswire.Reply:
    """The answer section, rcode and EDE of a dnspython message, as :mod:`dnswire` gives them."""
    answer = [
        dnswire.RRset(s.name.to_text().lower(), int(s.rdtype), s.ttl, list(s)) for s in r.answer if s.rdclass == 1
    ]
    ede = [(int(o.code), o.text or "") for o in r.options if isinstance(o, dns.edns.EDEOption)]
    return dnswire.Reply(r.flags, int(r.rcode()), answer, ede)


def _udp(wire: bytes, where: str, port: int, timeout: float) -> bytes:
    """Send one datagram to ``where``:``port`` and return the first datagram from there within
    ``timeout`` seconds; datagrams from elsewhere are ignored (as dnspython's
    ``ignore_unexpected``). Raises dns.exception.Timeout, OSError, ValueError (not an address)."""
    family = dns.inet.af_for_address(where)
    expiration = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.sendto(wire, (where, port))
        while True:
            remaining = expiration - time.monotonic()
            if remaining <= 0:
                raise dns.exception.Timeout
            sock.settimeout(remaining)
            try:
                data, source = sock.recvfrom(65535)
            except TimeoutError:
                raise dns.exception.Timeout from None
            if source[1] == port and (source[0] == where or _same_address(source[0], where)):
                return data


def _same_address(a: str, b: str) -> bool:
    """Two spellings of one IP address (``::1`` and ``0::1``)."""
    try:
        return ipaddress.ip_address(a.partition("%")[0]) == ipaddress.ip_address(b.partition("%")[0])
    except ValueError:
        return False


def _log_answer(qtext: str, r: dnswire.Reply) -> None:
    """Debug transcript of one answer: rcode, AD, EDE, and each record with its TTL."""
    if not _log.enabled("debug"):
        return
    ede = [f"{code}" + (f" {text}" if text else "") for code, text in r.ede]
    _log.debug(
        "dns answer",
        q=qtext,
        rcode=dns.rcode.to_text(dns.rcode.Rcode.make(r.rcode)),
        ad=bool(r.flags & dns.flags.AD),
        cd=bool(r.flags & dns.flags.CD),
        ede="; ".join(ede) or "-",
        answers=len(r.answer),
    )
    for rrset in r.answer:
        for rd in rrset.records:
            if rrset.rdtype == dns.rdatatype.RRSIG:
                continue
            _log.debug(
                "dns record",
                name=rrset.name.rstrip(".") or ".",
                ttl=rrset.ttl,
                type=dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rrset.rdtype)),
                data=rd.to_text()[:200],
            )


def _key_of(display: str) -> str:
    """The lower-case name with its final dot (as :class:`dnswire.RRset` names are) of a name
    printed by ``to_text(omit_final_dot=True)`` (the root prints as ``.`` or ``@``)."""
    return "." if display in (".", "@") else display.lower() + "."


def _cname_chain(r: dnswire.Reply, key: str) -> list[str]:
    chain: list[str] = []
    current = key
    seen = set()
    while current not in seen:
        seen.add(current)
        rrset = r.find(current, dns.rdatatype.CNAME)
        if rrset is None or not rrset.records:
            break
        target = rrset.records[0].target
        current = target.to_text().lower()
        chain.append(target.to_text(omit_final_dot=True))
    return chain


def _ede_text(ede: Sequence[ExtendedError]) -> str:
    if not ede:
        return ""
    return " (" + "; ".join(f"extended error {e.code} {e.name}" + (f": {e.text}" if e.text else "") for e in ede) + ")"


def _resolv_conf_trust_ad() -> bool:
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            return any(line.split()[:1] == ["options"] and "trust-ad" in line.split() for line in f)
    except OSError:
        return False


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET

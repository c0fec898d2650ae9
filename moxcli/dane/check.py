"""`moxcli verify dane`: look up TLSA, connect to every address, verify DANE and PKIX.

Two entry points, mox's `dane dial` (spec §5.6) and `dane dialmx` (spec §5.8):
``verify_host(resolver, host, ...)`` and ``verify_mx(resolver, domain, ...)``. Each address
gets ONE STARTTLS handshake from which both the DANE verdict and the PKIX verdict come.
Unlike mox, every address is tried (an operator wants to know about each one).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moxcli.dane import lookup
from moxcli.dane.tlsa import TLSA, allowed_names
from moxcli.dane.verify import DANEVerdict, verify
from moxcli.dns import DNSError, NotFound, Resolver, TemporaryDNSError
from moxcli.tlsconn import PKIXVerdict, SMTPProbe, cert_summary, load_roots, pkix_verify, starttls_probe

VERIFIED, FAILED, TEMPORARY = "verified", "failed", "temporary"


@dataclass
class AddressResult:
    """One connection: STARTTLS, the certificate, and the two verdicts from its one handshake."""

    address: str
    port: int
    probe: SMTPProbe
    dane: DANEVerdict | None = None
    pkix: PKIXVerdict | None = None

    @property
    def status(self) -> str:
        if self.dane is not None:
            return VERIFIED if self.dane.verified else FAILED
        if self.probe.result_type:
            return FAILED  # STARTTLS missing or handshake failed: a finding, not an outage
        return TEMPORARY if self.probe.error else FAILED

    @property
    def result_type(self) -> str:
        if self.dane is not None and not self.dane.verified:
            return self.dane.result_type
        return self.probe.result_type

    @property
    def reason(self) -> str:
        if self.dane is not None and not self.dane.verified:
            return self.dane.reason
        return self.probe.reason

    def to_json(self) -> dict[str, Any]:
        tls = self.probe.tls
        return {
            "address": self.address,
            "port": self.port,
            "status": self.status,
            "starttls": self.probe.starttls_offered,
            "tls_version": tls.version if tls else None,
            "cipher": tls.cipher if tls else None,
            "certificate": cert_summary(tls.leaf) if tls else None,
            "chain": [cert_summary(c) for c in tls.chain] if tls else [],
            "dane": self.dane,
            "pkix": self.pkix,
            "result_type": self.result_type,
            "reason": self.reason,
            "error": self.probe.error,
        }


@dataclass
class HostResult:
    """DANE for one host name: addresses, TLSA records, the names a DANE-TA cert may carry."""

    host: str
    preference: int = -1
    expanded_host: str = ""
    ips: list[str] = field(default_factory=list)
    dnssec: bool = False
    tlsa: lookup.TLSAResult | None = None
    records: list[TLSA] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    addresses: list[AddressResult] = field(default_factory=list)
    error: str = ""
    result_type: str = ""
    reason: str = ""
    temporary: bool = False
    code: str = ""

    @property
    def status(self) -> str:
        if self.error:
            return TEMPORARY if self.temporary else FAILED
        states = {a.status for a in self.addresses}
        if not states:
            return FAILED
        if FAILED in states:
            return FAILED
        return TEMPORARY if TEMPORARY in states else VERIFIED

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "preference": self.preference if self.preference >= 0 else None,
            "expanded_host": self.expanded_host,
            "ips": self.ips,
            "dnssec": self.dnssec,
            "tlsa_base": self.tlsa.base if self.tlsa else None,
            "tlsa": [r.record() for r in self.tlsa.records] if self.tlsa else [],
            "records": [r.record() for r in self.records],
            "names": self.names,
            "status": self.status,
            "code": self.code or None,
            "error": self.error,
            "result_type": self.result_type,
            "reason": self.reason,
            "addresses": self.addresses,
        }


@dataclass
class DANEReport:
    """All hosts checked for one target (a host, or a domain's MX hosts)."""

    target: str
    mode: str
    hosts: list[HostResult] = field(default_factory=list)
    error: str = ""
    temporary: bool = False
    destinations: lookup.Destinations | None = None

    @property
    def status(self) -> str:
        """`verified` when every address verified; `failed` wins over `temporary`."""
        if self.error:
            return TEMPORARY if self.temporary else FAILED
        states = {h.status for h in self.hosts}
        if not states or FAILED in states:
            return FAILED
        return TEMPORARY if TEMPORARY in states else VERIFIED

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "status": self.status,
            "verified": self.status == VERIFIED,
            "error": self.error,
            "mx": self.destinations,
            "hosts": self.hosts,
        }


def _temporary(exc: DNSError) -> bool:
    """An outage (exit 3); not-found and DNSSEC-bogus answers are findings (exit 1)."""
    return not isinstance(exc, NotFound) and not exc.bogus


def _tlsa_error(host: HostResult, exc: DNSError) -> None:
    """RFC 7672 §2.1.2: a failed TLSA lookup makes the host unusable (spec §3.4 step 3)."""
    host.error = f"looking up tlsa records: {exc}"
    host.code = exc.code
    # A bogus answer is what is wrong with the host (exit 1); delivery would still only
    # defer (RFC 7672 §2.1.2). An outage stays temporary (exit 3).
    host.temporary = not exc.bogus
    if exc.bogus:
        host.result_type, host.reason = "dnssec-invalid", exc.bogus_reason("extended-dns-error")
    else:
        host.result_type = "tlsa-invalid"
        host.reason = f"extended-dns-error-{exc.ede[0].reason}" if exc.ede else ""


def _connect_all(
    host: HostResult,
    port: int,
    ehlo_name: str,
    timeout: float,
    roots: Sequence[Any],
    now: _dt.datetime | None,
    pkix_name: str,
) -> None:
    for ip in host.ips:
        probe = starttls_probe(
            ip, port, host.names[0] if host.names else pkix_name, ehlo_name, timeout, force_starttls=bool(host.records)
        )
        res = AddressResult(ip, port, probe)
        if probe.tls is not None:
            chain = probe.tls.chain
            if host.records:
                res.dane = verify(chain, host.records, host.names, roots, now)
            res.pkix = pkix_verify(chain, pkix_name, now=now, roots=roots)
        host.addresses.append(res)


def _usages_filter(records: Sequence[TLSA], usages: Sequence[int] | None) -> list[TLSA]:
    return [r for r in records if usages is None or r.usage in usages]


def verify_host(
    resolver: Resolver,
    host: str,
    port: int = 25,
    tlsa_port: int = 25,
    usages: Sequence[int] | None = None,
    ca_files: Sequence[Path] = (),
    ehlo_name: str = "localhost",
    timeout: float = 10.0,
    now: _dt.datetime | None = None,
) -> DANEReport:
    """mox `dane dial` (spec §5.6) for SMTP with STARTTLS, to every address of ``host``.

    TLSA base = the CNAME-expanded name if the whole CNAME chain was secure, else the host;
    falls back to the host when the expanded name has no secure records. SNI = base;
    DANE-TA names = base and the original host. ``usages`` limits the record usages (mox
    default: all four, no "usable" filter, malformed records simply do not match). PKIX
    is checked for ``host`` as given (RFC 6125: the source domain, not a CNAME target).
    """
    report = DANEReport(host, "host")
    h = HostResult(host)
    report.hosts.append(h)
    ips = lookup.gather_ips(resolver, host)
    h.expanded_host, h.ips, h.dnssec = ips.expanded_host, ips.ips, ips.authentic
    if ips.error is not None:
        h.error, h.temporary = f"resolving ips for {host}: {ips.error}", _temporary(ips.error)
        h.code = ips.error.code
        return report
    roots = load_roots(tuple(Path(p) for p in ca_files))
    if not ips.cname_authentic:
        # mox dane.Dial: the first CNAME response must be secure (ErrInsecure).
        h.error = f"cname lookup for {host} insecure: dane does not apply"
        h.names = [lookup._ascii(host)]
        _connect_all(h, port, ehlo_name, timeout, roots, now, lookup._ascii(host))
        return report
    base = ips.expanded_host if ips.expanded_authentic else lookup._ascii(host)
    res = lookup.lookup_tlsa(resolver, base, tlsa_port)
    if base != lookup._ascii(host) and res.error is None and not res.records:
        base = lookup._ascii(host)
        res = lookup.lookup_tlsa(resolver, base, tlsa_port)
    h.tlsa = res
    h.names = [base] + ([lookup._ascii(host)] if base != lookup._ascii(host) else [])
    if res.error is not None:
        _tlsa_error(h, res.error)
    elif res.insecure:
        h.error = f"tlsa records for {base} are not dnssec-signed (insecure): dane does not apply"
    elif not res.records:
        h.error = f"no tlsa records at _{tlsa_port}._tcp.{base}"
    else:
        h.records = _usages_filter(res.records, usages)
        if not h.records:
            h.error = "no tlsa records with the allowed usages"
            h.result_type, h.reason = "validation-failure", "dane-no-match"
    # Connect anyway (not for DNS failures): the PKIX result is useful without DANE too.
    if not h.temporary:
        _connect_all(h, port, ehlo_name, timeout, roots, now, lookup._ascii(host))
    return report


def verify_mx(
    resolver: Resolver,
    domain: str,
    port: int = 25,
    ca_files: Sequence[Path] = (),
    ehlo_name: str = "localhost",
    timeout: float = 10.0,
    now: _dt.datetime | None = None,
) -> DANEReport:
    """mox `dane dialmx` (spec §5.8): the delivery logic, for every MX host and address.

    DANE applies only after secure MX and address lookups; usable records only (RFC 7672
    §3.1.3); all-unusable records count as a failure here (delivery would use TLS without
    authentication, `tlsa-invalid`/`all-unusable-records+ignored`).
    """
    report = DANEReport(domain, "mx")
    dest = lookup.gather_destinations(resolver, domain)
    report.destinations = dest
    if dest.error is not None:
        report.error = f"gathering destinations: {dest.error}"
        report.temporary = not dest.permanent and _temporary(dest.error)
        return report
    insecure_mx = ""
    if not dest.orig_authentic:
        insecure_mx = "initial domain not dnssec-secure"
    elif not dest.expanded_authentic:
        insecure_mx = "expanded domain not dnssec-secure"
    roots = load_roots(tuple(Path(p) for p in ca_files))
    for name, pref in dest.hosts:
        h = HostResult(name, pref)
        report.hosts.append(h)
        ips = lookup.gather_ips(resolver, name)
        h.expanded_host, h.ips, h.dnssec = ips.expanded_host, ips.ips, ips.authentic
        if ips.error is not None:
            h.error = f"resolving ips for {name}: {ips.error}"
            h.code = ips.error.code
            h.temporary = isinstance(ips.error, TemporaryDNSError)
            if ips.error.bogus:
                h.result_type, h.reason = "validation-failure", ips.error.bogus_reason("dns-extended-error")
            continue
        # Where DANE does not apply we still connect: STARTTLS and PKIX are worth showing.
        if insecure_mx:
            h.error = f"{insecure_mx}: dane does not apply"
        elif not lookup.dane_applies(dest, ips):
            h.error = f"no dnssec for ips of {name}: dane does not apply"
        if h.error:
            _connect_all(h, port, ehlo_name, timeout, roots, now, name)
            continue
        res = lookup.gather_tlsa(resolver, name, dest.expanded_authentic and ips.expanded_authentic, ips.expanded_host)
        h.tlsa = res
        if res.error is not None:
            _tlsa_error(h, res.error)
            continue
        if not res.records:
            h.error = f"host {ips.expanded_host} has no tlsa records" + (" (insecure)" if res.insecure else "")
            _connect_all(h, port, ehlo_name, timeout, roots, now, name)
            continue
        h.names = allowed_names(
            dest.have_mx,
            dest.expanded_authentic,
            dest.expanded_authentic and ips.expanded_authentic,
            lookup._ascii(domain),
            dest.expanded_next_hop,
            name,
            res.base,
        )
        h.records = res.usable
        if not h.records:
            h.error = "only unusable tlsa records found"
            h.result_type, h.reason = "tlsa-invalid", "all-unusable-records+ignored"
        _connect_all(h, port, ehlo_name, timeout, roots, now, name)
    return report

"""`moxcli verify dane`: look up TLSA, connect to every address, verify DANE and PKIX.

Two entry points, mox's `dane dial` (docs/behaviour-notes.md §5.6) and `dane dialmx` (docs/behaviour-notes.md §5.8):
``verify_host(resolver, host, ...)`` and ``verify_mx(resolver, domain, ...)``. Each address
gets ONE handshake (after STARTTLS, or direct TLS for other services) from which both the
DANE verdict and the PKIX verdict come. Unlike mox, every address is tried (an operator
wants to know about each one). Where DANE fails or has no records, ``fix`` holds the TLSA
records that would match the chain served (:mod:`moxcli.dane.fix`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moxcli.dane import fix as dane_fix
from moxcli.dane import lookup
from moxcli.dane.tlsa import TLSA, allowed_names
from moxcli.dane.verify import DANEVerdict, verify
from moxcli.dns import DNSError, NotFound, Resolver, TemporaryDNSError
from moxcli.jsonfmt import Finding, findings_json
from moxcli.smtp.probe import SMTPProbe, direct_tls_probe, starttls_probe
from moxcli.tlsconn import PKIXVerdict, cert_summary, load_roots, pkix_verify
from moxcli.values import dataclass, field

VERIFIED, FAILED, TEMPORARY = "verified", "failed", "temporary"
STARTTLS_SMTP, DIRECT = "starttls-smtp", "direct"
EXPIRY_WARNING_DAYS = 21


def default_tls_mode(port: int) -> str:
    """STARTTLS on the SMTP ports 25 and 587 (RFC 3207, RFC 6409), direct TLS elsewhere
    (465 submissions, RFC 8314; 443, 993, ...), as mox `dane dial` always does direct TLS."""
    return STARTTLS_SMTP if port in (25, 587) else DIRECT


@dataclass
class AddressResult:
    """One connection: STARTTLS, the certificate, and the two verdicts from its one handshake."""

    address: str
    port: int
    probe: SMTPProbe
    dane: DANEVerdict | None = None
    pkix: PKIXVerdict | None = None
    fix: dict[str, Any] | None = None
    warnings: list[Finding] = field(default_factory=list)

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
            "tls_mode": STARTTLS_SMTP if self.probe.mode == "starttls" else DIRECT,
            "starttls": self.probe.starttls_offered if self.probe.mode == "starttls" else None,
            "tls_version": tls.version if tls else None,
            "cipher": tls.cipher if tls else None,
            "key_exchange_group": tls.group if tls else None,
            "certificate": {**cert_summary(tls.leaf), **dane_fix.cert_facts(tls.leaf)} if tls else None,
            "chain": [cert_summary(c) for c in tls.chain] if tls else [],
            "dane": self.dane,
            "pkix": self.pkix,
            "result_type": self.result_type or None,
            "reason": self.reason or None,
            "error": self.probe.error or None,
            "warnings": findings_json(self.warnings),
            "fix": self.fix,
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
            "expanded_host": self.expanded_host or None,
            "ips": self.ips,
            "dnssec": self.dnssec,
            "tlsa_base": self.tlsa.base if self.tlsa else None,
            "tlsa": [r.record() for r in self.tlsa.records] if self.tlsa else [],
            "records": [r.record() for r in self.records],
            "names": self.names,
            "status": self.status,
            "code": self.code or None,
            "error": self.error or None,
            "result_type": self.result_type or None,
            "reason": self.reason or None,
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
            "error": self.error or None,
            "mx": self.destinations,
            "hosts": self.hosts,
        }


def _temporary(exc: DNSError) -> bool:
    """An outage (exit 3); not-found and DNSSEC-bogus answers are findings (exit 1)."""
    return not isinstance(exc, NotFound) and not exc.bogus


def _tlsa_error(host: HostResult, exc: DNSError) -> None:
    """RFC 7672 §2.1.2: a failed TLSA lookup makes the host unusable (docs/behaviour-notes.md §3.4 step 3)."""
    host.error = f"looking up tlsa records: {exc}"
    host.code = exc.status
    # A bogus answer is what is wrong with the host (exit 1); delivery would still only
    # defer (RFC 7672 §2.1.2). An outage stays temporary (exit 3).
    host.temporary = not exc.bogus
    if exc.bogus:
        host.result_type, host.reason = "dnssec-invalid", exc.bogus_reason("extended-dns-error")
    else:
        host.result_type = "tlsa-invalid"
        host.reason = f"extended-dns-error-{exc.ede[0].reason}" if exc.ede else ""


@dataclass(frozen=True)
class _Connect:
    """How to reach the addresses of a host and what to tell about them."""

    port: int
    ehlo_name: str
    timeout: float
    roots: Sequence[Any]
    now: _dt.datetime | None
    tls_mode: str = STARTTLS_SMTP
    tlsa_port: int = 25
    expiry_days: int = EXPIRY_WARNING_DAYS


def _connect_all(host: HostResult, c: _Connect, pkix_name: str, dane_possible: bool = False) -> None:
    """One handshake per address; ``dane_possible``: DNSSEC would let TLSA records count, so a
    host without (usable) records also gets a fix hint."""
    sni = host.names[0] if host.names else pkix_name
    for ip in host.ips:
        if c.tls_mode == DIRECT:
            probe = direct_tls_probe(ip, c.port, sni, c.timeout)
        else:
            probe = starttls_probe(ip, c.port, sni, c.ehlo_name, c.timeout, force_starttls=bool(host.records))
        res = AddressResult(ip, c.port, probe)
        if probe.tls is not None:
            chain = probe.tls.chain
            if host.records:
                res.dane = verify(chain, host.records, host.names, roots=c.roots, now=c.now)
            res.pkix = pkix_verify(chain, pkix_name, now=c.now, roots=c.roots)
            if (res.dane is not None and not res.dane.verified) or (res.dane is None and dane_possible):
                base = host.tlsa.base if host.tlsa is not None and host.tlsa.base else pkix_name
                published = [r.record() for r in host.tlsa.records] if host.tlsa is not None else []
                res.fix = dane_fix.dane_fix(chain, dane_fix.tlsa_name(c.tlsa_port, base), published)
            warning = dane_fix.expiry_warning(chain[0], c.expiry_days, c.now)
            if warning:
                res.warnings.append(warning)
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
    tls_mode: str = STARTTLS_SMTP,
    expiry_days: int = EXPIRY_WARNING_DAYS,
) -> DANEReport:
    """mox `dane dial` (docs/behaviour-notes.md §5.6) to every address of ``host``: TLSA at ``_<tlsa_port>._tcp``,
    STARTTLS (``starttls-smtp``) or ``direct`` TLS.

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
        h.code = ips.error.status
        return report
    conn = _Connect(
        port, ehlo_name, timeout, load_roots(tuple(Path(p) for p in ca_files)), now, tls_mode, tlsa_port, expiry_days
    )
    if not ips.cname_authentic:
        # mox dane.Dial: the first CNAME response must be secure (ErrInsecure).
        h.error = f"cname lookup for {host} insecure: dane does not apply"
        h.names = [lookup._ascii(host)]
        _connect_all(h, conn, lookup._ascii(host))
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
        h.code = "no-tlsa"
    else:
        h.records = _usages_filter(res.records, usages)
        if not h.records:
            h.error = "no tlsa records with the allowed usages"
            h.result_type, h.reason = "validation-failure", "dane-no-match"
    # Connect anyway (not for DNS failures): the PKIX result is useful without DANE too.
    if not h.temporary and h.code != "dnssec-bogus":
        _connect_all(h, conn, lookup._ascii(host), dane_possible=ips.authentic and not res.insecure)
    return report


def verify_mx(
    resolver: Resolver,
    domain: str,
    port: int = 25,
    ca_files: Sequence[Path] = (),
    ehlo_name: str = "localhost",
    timeout: float = 10.0,
    now: _dt.datetime | None = None,
    expiry_days: int = EXPIRY_WARNING_DAYS,
) -> DANEReport:
    """mox `dane dialmx` (docs/behaviour-notes.md §5.8): the delivery logic, for every MX host and address.

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
    conn = _Connect(
        port, ehlo_name, timeout, load_roots(tuple(Path(p) for p in ca_files)), now, expiry_days=expiry_days
    )
    for name, pref in dest.hosts:
        h = HostResult(name, pref)
        report.hosts.append(h)
        ips = lookup.gather_ips(resolver, name)
        h.expanded_host, h.ips, h.dnssec = ips.expanded_host, ips.ips, ips.authentic
        if ips.error is not None:
            h.error = f"resolving ips for {name}: {ips.error}"
            h.code = ips.error.status
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
            _connect_all(h, conn, name)
            continue
        res = lookup.gather_tlsa(resolver, name, dest.expanded_authentic and ips.expanded_authentic, ips.expanded_host)
        h.tlsa = res
        if res.error is not None:
            _tlsa_error(h, res.error)
            continue
        if not res.records:
            h.error = f"host {ips.expanded_host} has no tlsa records" + (" (insecure)" if res.insecure else "")
            h.code = "no-tlsa"
            _connect_all(h, conn, name, dane_possible=not res.insecure)
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
            h.code = "tlsa-unusable"
        _connect_all(h, conn, name, dane_possible=True)
    return report


@dataclass
class ServedRecords:
    """The TLSA records that match what a live server sends (ldns-dane create)."""

    host: str
    address: str
    port: int
    tlsa_name: str
    records: list[str]
    chain: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "tlsa_name": self.tlsa_name,
            "records": self.records,
            "publish": [f"{self.tlsa_name}. IN TLSA {r}" for r in self.records],
            "chain": self.chain,
        }


def records_from_host(
    resolver: Resolver,
    host: str,
    port: int,
    tlsa_port: int,
    tls_mode: str,
    ehlo_name: str = "localhost",
    timeout: float = 10.0,
) -> ServedRecords:
    """Connect to the first address of ``host`` and derive `3 1 1` (leaf) and `2 1 1` (issuer,
    if sent) from its chain. Raises DNS errors, TemporaryError when the server cannot be
    reached, CheckFailed when it does not do TLS."""
    from moxcli.errors import CheckFailed, TemporaryError

    ips = lookup.gather_ips(resolver, host)
    if ips.error is not None:
        raise ips.error
    ip = ips.ips[0]
    if tls_mode == DIRECT:
        probe = direct_tls_probe(ip, port, host, timeout)
    else:
        probe = starttls_probe(ip, port, host, ehlo_name, timeout, force_starttls=True)
    if probe.tls is None:
        if probe.result_type:
            raise CheckFailed(f"{host} ({ip} port {port}): no TLS: {probe.error}")
        raise TemporaryError(f"{host} ({ip} port {port}): {probe.error}")
    chain = probe.tls.chain
    return ServedRecords(
        host,
        ip,
        port,
        dane_fix.tlsa_name(tlsa_port, lookup._ascii(host)),
        dane_fix.matching_records(chain),
        [dane_fix.cert_facts(c) for c in chain],
    )

"""The `check domain` library: one view of how mail to a domain is protected in transit.

Per domain: the MX set and its DNSSEC status (docs/behaviour-notes.md §3.2), the MTA-STS record and policy and
whether the policy covers every MX (RFC 8461 §4.1), the domain's TLSRPT record (RFC 8460
§3); per MX host: DNSSEC of its addresses, TLSA present / usable / matching (RFC 7672),
STARTTLS, PKIX, REQUIRETLS after STARTTLS (RFC 8689), and the host's own TLSRPT record. One
handshake per address gives both the PKIX and the DANE verdict.

The indicator bar (mox's idea) has five indicators, each ``implemented``, ``not-implemented``,
``error`` or ``unknown``: MTA-STS enforced, MX DNSSEC-signed, DANE on the first MX, TLSRPT,
REQUIRETLS (every reachable MX host offers it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from moxcli.dane import fix as dane_fix
from moxcli.dane import lookup
from moxcli.dane.tlsa import TLSA, allowed_names
from moxcli.dane.verify import DANEVerdict, verify
from moxcli.dns import DNSError, NotFound, Resolver
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import MoxcliError, TemporaryError
from moxcli.jsonfmt import findings_json
from moxcli.smtp.probe import SMTPProbe, starttls_probe
from moxcli.tlsconn import PKIXVerdict, cert_summary, load_roots, pkix_verify
from moxcli.values import dataclass, field

IMPLEMENTED, NOT_IMPLEMENTED, ERROR, UNKNOWN = "implemented", "not-implemented", "error", "unknown"
INDICATORS = ("mtasts", "mx_dnssec", "dane", "tlsrpt", "requiretls", "starttls_seen", "requiretls_seen")
INDICATOR_LABELS = {
    "mtasts": "MTA-STS enforced",
    "mx_dnssec": "MX DNSSEC-signed",
    "dane": "DANE on first MX",
    "tlsrpt": "TLSRPT",
    "requiretls": "REQUIRETLS",
    "starttls_seen": "STARTTLS seen",
    "requiretls_seen": "REQUIRETLS seen",
}
MAX_ADDRESSES = 4  # per MX host; more addresses rarely differ and each costs a handshake


@dataclass(frozen=True)
class PostureOptions:
    """Where and how to connect: ports and trust from the config, timeouts."""

    smtp_port: int = 25
    https_port: int = 443
    ca_files: tuple[Path, ...] = ()
    ehlo_name: str = "localhost"
    timeout: float = 10.0
    connect: bool = True
    expiry_days: int = 21
    mtasts_timeout: float = 60.0  # [mtasts] fetch_timeout: the policy fetch ends at the sooner of the two

    @classmethod
    def from_config(
        cls, cfg: Any, timeout: float = 10.0, connect: bool = True, expiry_days: int = 21
    ) -> PostureOptions:
        return cls(
            cfg.network.smtp_port,
            cfg.network.https_port,
            tuple(cfg.tls.ca_files),
            cfg.hostname,
            timeout,
            connect,
            expiry_days,
            cfg.mtasts.fetch_timeout,
        )


@dataclass
class Finding:
    """``level`` error (exit 1), warning or info; ``subject`` names the domain or host;
    ``code`` is a stable machine name (``nxdomain``, ``dnssec-bogus``, ``dane-mismatch``...);
    ``fix`` what to publish or change, when there is one thing to do."""

    level: str
    subject: str
    text: str
    code: str = ""
    fix: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code or None,
            "subject": self.subject,
            "message": self.text,
            "fix": self.fix,
        }


@dataclass
class AddressPosture:
    address: str
    probe: SMTPProbe
    pkix: PKIXVerdict | None = None
    dane: DANEVerdict | None = None
    fix: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        tls = self.probe.tls
        return {
            "address": self.address,
            "port": self.probe.port,
            "starttls": self.probe.starttls_offered,
            "tls_version": tls.version if tls else None,
            "cipher": tls.cipher if tls else None,
            "key_exchange_group": tls.group if tls else None,
            "certificate": {**cert_summary(tls.leaf), **dane_fix.cert_facts(tls.leaf)} if tls else None,
            "pkix": self.pkix,
            "dane": self.dane,
            "fix": self.fix,
            "requiretls": self.probe.requiretls if tls else None,
            "result_type": self.probe.result_type or None,
            "reason": self.probe.reason or None,
            "error": self.probe.error or None,
        }


@dataclass
class HostPosture:
    """One MX host. Tri-state fields are None when not known (e.g. no connection)."""

    host: str
    preference: int
    ips: list[str] = field(default_factory=list)
    ips_dnssec: str = ""
    dane_applies: bool = False
    tlsa: lookup.TLSAResult | None = None
    names: list[str] = field(default_factory=list)
    addresses: list[AddressPosture] = field(default_factory=list)
    sts_match: bool | None = None
    tlsrpt: Any = None
    error: str = ""
    error_code: str = ""

    @property
    def usable(self) -> list[TLSA]:
        return self.tlsa.usable if self.tlsa and self.dane_applies else []

    def _all(self, pred: Callable[[AddressPosture], bool | None]) -> bool | None:
        vals = [pred(a) for a in self.addresses]
        if not vals or any(v is None for v in vals):
            return None if not vals or all(v is None for v in vals) else False
        return all(vals)

    @property
    def starttls(self) -> bool | None:
        return self._all(lambda a: a.probe.starttls_offered if a.probe.greeting else None)

    @property
    def pkix_valid(self) -> bool | None:
        return self._all(lambda a: a.pkix.ok if a.pkix else None)

    @property
    def tlsa_matching(self) -> bool | None:
        if not self.usable:
            return None
        return self._all(lambda a: a.dane.verified if a.dane else None)

    @property
    def requiretls(self) -> bool | None:
        return self._all(lambda a: a.probe.requiretls if a.probe.tls else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "preference": self.preference if self.preference >= 0 else None,
            "ips": self.ips,
            "ips_dnssec": self.ips_dnssec,
            "sts_match": self.sts_match,
            "dane_applies": self.dane_applies,
            "tlsa_present": bool(self.tlsa and self.tlsa.records),
            "tlsa_usable": bool(self.usable),
            "tlsa_matching": self.tlsa_matching,
            "tlsa": self.tlsa,
            "names": self.names,
            "starttls": self.starttls,
            "pkix_valid": self.pkix_valid,
            "requiretls": self.requiretls,
            "tlsrpt": _tlsrpt_json(self.tlsrpt),
            "addresses": self.addresses,
            "error": self.error or None,
        }


def _tlsrpt_json(check: Any) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "record": check.record_text or None,
        "valid": check.valid,
        "errors": findings_json(check.errors),
        "warnings": findings_json(check.warnings),
    }


@dataclass
class DomainPosture:
    domain: str
    mx: lookup.Destinations | None = None
    mx_dnssec: str = ""
    mtasts: Any = None
    tlsrpt: Any = None
    hosts: list[HostPosture] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    indicators: dict[str, str] = field(default_factory=dict)
    temporary: bool = False
    expiry_days: int = 21

    nxdomain: bool = False
    invalid: bool = False  # not a valid domain name (IDNA 2008 / UTS 46): a usage error

    def add(self, level: str, subject: str, text: str, code: str = "", fix: dict[str, Any] | None = None) -> None:
        self.findings.append(Finding(level, subject, text, code, fix))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def status(self) -> str:
        """`invalid-domain` (not a domain name), `temporary` (retry later), `nxdomain` (no such
        domain), `error` (an error-class finding) or `ok`."""
        if self.invalid:
            return "invalid-domain"
        if self.temporary:
            return "temporary"
        if self.nxdomain:
            return "nxdomain"
        return "error" if self.errors else "ok"

    @property
    def sts_mode(self) -> str | None:
        p = getattr(self.mtasts, "policy", None)
        return p.mode if p is not None else None

    def to_json(self) -> dict[str, Any]:
        m = self.mtasts
        return {
            "domain": self.domain,
            "mx": self.mx,
            "mx_dnssec": self.mx_dnssec,
            "mtasts": None
            if m is None
            else {
                "record": m.record_text or None,
                "mode": self.sts_mode,
                "mx": [str(x) for x in m.policy.mx] if m.policy else [],
                "max_age": m.policy.max_age if m.policy else None,
                "covers_all_mx": _covers_all(self),
                "errors": findings_json(m.errors),
                "warnings": findings_json(m.warnings),
            },
            "tlsrpt": _tlsrpt_json(self.tlsrpt),
            "hosts": self.hosts,
            "indicators": self.indicators,
            "findings": self.findings,
            "errors": len(self.errors),
            "status": self.status,
        }


def _covers_all(p: DomainPosture) -> bool | None:
    if p.sts_mode is None or not p.hosts:
        return None
    return all(h.sts_match for h in p.hosts)


class HostCache:
    """Per-host work shared by all domains of a batch: many domains use the same MX hosts.

    Each key is computed once; concurrent askers for the same key wait for the first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[threading.Event, list[Any]]] = {}

    def get(self, key: Any, fn: Callable[[], Any]) -> Any:
        with self._lock:
            item = self._items.get(key)
            owner = item is None
            if item is None:
                item = (threading.Event(), [])
                self._items[key] = item
        event, box = item
        if owner:
            try:
                box.append(fn())
            finally:
                event.set()
        else:
            event.wait()
        return box[0]


class _NoCache(HostCache):
    def get(self, key: Any, fn: Callable[[], Any]) -> Any:
        return fn()


def _dnssec_of(exc: DNSError | None, authentic: bool) -> str:
    if exc is not None and not isinstance(exc, NotFound):
        return "bogus" if exc.bogus else "error"
    return "secure" if authentic else "insecure"


def _check_host(
    resolver: Resolver,
    dest: lookup.Destinations,
    domain: str,
    name: str,
    pref: int,
    opts: PostureOptions,
    cache: HostCache,
) -> HostPosture:
    from moxcli.tlsrpt.lookup import check_tlsrpt

    h = HostPosture(name, pref)
    ips = cache.get(("ips", name), lambda: lookup.gather_ips(resolver, name, fast=True))
    h.ips = ips.ips
    h.ips_dnssec = _dnssec_of(ips.error, ips.authentic)
    h.tlsrpt = cache.get(("tlsrpt", name), lambda: check_tlsrpt(resolver, name))
    if ips.error is not None:
        h.error = f"resolving ips for {name}: {ips.error}"
        h.error_code = ips.error.status
        if isinstance(ips.error, NotFound):
            what = "does not exist (NXDOMAIN)" if ips.error.nxdomain else "has no A/AAAA records (NODATA)"
            h.error = f"MX host {name} {what}: mail cannot be delivered to it"
        return h
    h.dane_applies = lookup.dane_applies(dest, ips)
    if h.dane_applies:
        expanded = dest.expanded_authentic and ips.expanded_authentic
        h.tlsa = cache.get(
            ("tlsa", name, ips.expanded_host, expanded),
            lambda: lookup.gather_tlsa(resolver, name, expanded, ips.expanded_host, fast=True),
        )
        if h.tlsa.records and h.tlsa.error is None:
            h.names = allowed_names(
                dest.have_mx, dest.expanded_authentic, expanded, domain, dest.expanded_next_hop, name, h.tlsa.base
            )
    if not opts.connect:
        return h
    roots = load_roots(opts.ca_files)
    sni = h.names[0] if h.names else name
    for ip in h.ips[:MAX_ADDRESSES]:
        probe = cache.get(
            ("probe", ip, sni),
            partial(
                starttls_probe, ip, opts.smtp_port, sni, opts.ehlo_name, opts.timeout, force_starttls=bool(h.usable)
            ),
        )
        a = AddressPosture(ip, probe)
        if probe.tls is not None:
            a.pkix = pkix_verify(probe.tls.chain, name, roots=roots)
            if h.usable:
                a.dane = verify(probe.tls.chain, h.usable, h.names, roots)
                if not a.dane.verified:
                    published = [r.record() for r in h.tlsa.records] if h.tlsa else []
                    base = h.tlsa.base if h.tlsa and h.tlsa.base else name
                    a.fix = dane_fix.dane_fix(probe.tls.chain, dane_fix.tlsa_name(25, base), published)
        h.addresses.append(a)
    return h


def _host_findings(p: DomainPosture, h: HostPosture) -> None:
    s = h.host
    enforce = p.sts_mode in ("enforce", "testing")
    if h.error:
        p.add("error", s, h.error, h.error_code)
        p.temporary = p.temporary or h.ips_dnssec == "error"
        return
    if h.ips_dnssec == "insecure" and p.mx_dnssec == "secure":
        p.add("warning", s, "addresses are not DNSSEC-signed: DANE cannot apply", "ips-insecure")
    if h.sts_match is False:
        fix = _sts_fix(s)
        p.add(
            "error" if p.sts_mode == "enforce" else "warning",
            s,
            f"not covered by the MTA-STS policy (mode {p.sts_mode}): add '{fix['policy_line']}' to the policy "
            f"and change the id: {fix['record']}",
            "mtasts-mx-not-covered",
            fix,
        )
    if h.tlsa is not None:
        if h.tlsa.error is not None:
            p.add(
                "error",
                s,
                f"TLSA lookup failed: {h.tlsa.error} (delivery with DANE is deferred)",
                h.tlsa.error.status if h.tlsa.error.bogus else "tlsa-lookup-failed",
            )
        elif h.tlsa.records and not h.usable:
            p.add(
                "error",
                s,
                "only unusable TLSA records: STARTTLS is required but not authenticated (tlsa-invalid)",
                "tlsa-unusable",
            )
        elif h.tlsa.insecure:
            p.add("info", s, "TLSA records are not DNSSEC-signed and are ignored", "tlsa-insecure")
    for a in h.addresses:
        where = f"{s} {a.address}"
        pr = a.probe
        if not pr.greeting:
            p.add("error", where, pr.error or "no SMTP greeting", "smtp-no-greeting")
            continue
        if pr.result_type:
            p.add("error", where, f"{pr.result_type}{' ' + pr.reason if pr.reason else ''}: {pr.error}", pr.result_type)
            continue
        if pr.error:
            p.add("warning", where, pr.error, "smtp-error")
        if a.dane is not None and not a.dane.verified:
            fix = a.fix or {}
            p.add(
                "error",
                where,
                f"certificate does not match the TLSA records ({a.dane.reason}); published "
                f"{', '.join(fix.get('published', [])) or 'none'}, would match: {'; '.join(fix.get('publish', []))}",
                "dane-mismatch",
                a.fix,
            )
        if pr.tls is not None:
            warning = dane_fix.expiry_warning(pr.tls.leaf, p.expiry_days)
            if warning:
                p.add("warning", where, warning, "certificate-expiry")
        if a.pkix is not None and not a.pkix.ok:
            level = "error" if enforce else "warning" if a.dane is None or not a.dane.verified else "info"
            p.add(
                level,
                where,
                f"PKIX: {a.pkix.result_type}{' ' + a.pkix.reason if a.pkix.reason else ''}: {a.pkix.message}",
                "pkix-" + a.pkix.result_type,
            )
    if h.tlsrpt is not None and _has_tlsrpt(h.tlsrpt) and not h.tlsrpt.valid:
        p.add("error", s, "host TLSRPT record: " + "; ".join(h.tlsrpt.errors), "tlsrpt-invalid")
    elif h.tlsrpt is not None and not _has_tlsrpt(h.tlsrpt) and h.usable:
        # DANE results are reported to the MX host's own policy domain (RFC 8460 §1.1, §3).
        fix = _tlsrpt_fix(s)
        p.add(
            "info",
            s,
            f"no TLSRPT record for the MX host: DANE failure reports cannot reach you; publish {fix['zone_line']}",
            "tlsrpt-none-host",
            fix,
        )


def _tlsrpt_fix(domain: str) -> dict[str, Any]:
    """The record to publish (RFC 8460 §3); the address is a suggestion to adapt."""
    name = f"_smtp._tls.{domain}"
    value = f"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"
    return {"name": name, "type": "TXT", "value": value, "zone_line": f'{name}. IN TXT "{value}"'}


def _sts_fix(host: str) -> dict[str, Any]:
    """The policy line that covers ``host`` (RFC 8461 §3.2, §4.1) and a new ``id`` for the
    _mta-sts record: senders refetch the policy only when the id changes (RFC 8461 §3.1)."""
    import datetime as _dt

    new_id = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return {"policy_line": f"mx: {host}", "id": new_id, "record": f"v=STSv1; id={new_id};"}


def _no_sts(m: Any) -> bool:
    """The domain simply has no MTA-STS (as opposed to a broken record or policy)."""
    return m.record is None and not m.record_text and (not m.errors or m.errors[0].startswith("no MTA-STS record"))


def _has_tlsrpt(check: Any) -> bool:
    """A TLSRPT record is published (valid or not), as opposed to none at all."""
    return check.record is not None or any(x.lower().startswith("v=tlsrptv1") for x in check.texts)


def _indicators(p: DomainPosture) -> dict[str, str]:
    ind: dict[str, str] = {}
    m = p.mtasts
    if m is None:
        ind["mtasts"] = UNKNOWN
    elif m.temporary or (not _no_sts(m) and m.policy is None):
        ind["mtasts"] = ERROR
    elif p.sts_mode == "enforce":
        ind["mtasts"] = ERROR if _covers_all(p) is False else IMPLEMENTED
    else:
        ind["mtasts"] = NOT_IMPLEMENTED
    ind["mx_dnssec"] = {"secure": IMPLEMENTED, "insecure": NOT_IMPLEMENTED, "": UNKNOWN}.get(p.mx_dnssec, ERROR)
    first = p.hosts[0] if p.hosts else None
    if first is None:
        ind["dane"] = UNKNOWN
    elif first.tlsa is not None and (first.tlsa.error is not None or (first.tlsa.records and not first.usable)):
        ind["dane"] = ERROR
    elif first.usable:
        ind["dane"] = {True: IMPLEMENTED, False: ERROR, None: UNKNOWN}[first.tlsa_matching]
    elif first.error and not first.ips:
        ind["dane"] = UNKNOWN
    else:
        ind["dane"] = NOT_IMPLEMENTED
    t = p.tlsrpt
    if t is None:
        ind["tlsrpt"] = UNKNOWN
    elif t.valid:
        ind["tlsrpt"] = IMPLEMENTED
    elif t.temporary or t.dnssec == "bogus" or _has_tlsrpt(t):
        ind["tlsrpt"] = ERROR
    else:
        ind["tlsrpt"] = NOT_IMPLEMENTED
    states = [h.requiretls for h in p.hosts if h.addresses]
    if not states or all(s is None for s in states):
        ind["requiretls"] = UNKNOWN
    else:
        ind["requiretls"] = IMPLEMENTED if all(s for s in states) else NOT_IMPLEMENTED
    # What our own deliveries saw comes from the store: see apply_delivery_memory.
    ind["starttls_seen"] = ind["requiretls_seen"] = UNKNOWN
    return ind


def apply_delivery_memory(p: DomainPosture, known: Any) -> None:
    """The two indicators from our deliveries (``moxcli.store.domaintls.DomainTLS`` or None):
    whether a delivery to the domain used STARTTLS and whether a server offered REQUIRETLS
    (behaviour notes §3.7), as recorded since the record was made (``domains forget`` drops
    it); unknown when nothing was delivered there. "STARTTLS seen" is also what keeps the
    engine from delivering to the domain in plaintext, so the bar says when that applies."""
    if known is None:
        p.indicators["starttls_seen"] = p.indicators["requiretls_seen"] = UNKNOWN
        return
    p.indicators["starttls_seen"] = IMPLEMENTED if known.starttls_seen is not None else NOT_IMPLEMENTED
    p.indicators["requiretls_seen"] = IMPLEMENTED if known.requiretls_seen is not None else NOT_IMPLEMENTED


def check_domain(
    resolver: Resolver,
    domain: str,
    opts: PostureOptions = PostureOptions(),  # noqa: B008 (a frozen value class, moxcli.values)
    cache: HostCache | None = None,
) -> DomainPosture:
    """Check one domain; never raises for what the checked domain does wrong."""
    from moxcli.mtasts.check import check_live
    from moxcli.mtasts.fetch import FetchOptions
    from moxcli.tlsrpt.lookup import check_tlsrpt

    cache = cache if cache is not None else _NoCache()
    try:
        d = parse_domain(domain)
    except DomainError as exc:
        p = DomainPosture(domain, invalid=True)
        p.add("error", domain, f'parsing domain "{domain}": {exc}', "invalid-domain")
        p.indicators = {k: UNKNOWN for k in INDICATORS}
        return p
    p = DomainPosture(d.name, expiry_days=opts.expiry_days)
    dest = lookup.gather_destinations(resolver, d.ascii, fast=True)
    p.mx = dest
    if dest.error is not None:
        p.mx_dnssec = _dnssec_of(dest.error, False)
        p.temporary = p.mx_dnssec == "error" and not dest.permanent
        p.add("error", p.domain, f"MX lookup: {dest.error}", dest.status)
    else:
        p.mx_dnssec = "secure" if dest.orig_authentic and dest.expanded_authentic else "insecure"
        if dest.nxdomain:
            # Nothing else to look at: every other name under a missing domain is missing too.
            p.nxdomain = True
            p.add(
                "error",
                p.domain,
                f"the domain does not exist (NXDOMAIN{', DNSSEC-signed' if p.mx_dnssec == 'secure' else ''})",
                "nxdomain",
            )
            p.indicators = {k: UNKNOWN for k in INDICATORS}
            p.indicators["mx_dnssec"] = IMPLEMENTED if p.mx_dnssec == "secure" else NOT_IMPLEMENTED
            return p
        if not dest.have_mx:
            p.add(
                "warning",
                p.domain,
                "no MX records (NODATA): mail goes to the domain's own address (RFC 5321 §5.1)",
                "nodata",
            )
    fetch = FetchOptions(opts.https_port, opts.ca_files, min(opts.timeout, opts.mtasts_timeout))
    p.mtasts = check_live(resolver, d.ascii, fetch)
    p.tlsrpt = check_tlsrpt(resolver, d.ascii)
    if dest.error is None:
        for name, pref in dest.hosts:
            h = _check_host(resolver, dest, d.ascii, name, pref, opts, cache)
            if p.mtasts.policy is not None and p.mtasts.policy.mode != "none":
                h.sts_match = p.mtasts.policy.matches_mx(name)
            p.hosts.append(h)
    m = p.mtasts
    if m.temporary:
        p.temporary = True
        p.add("error", p.domain, "MTA-STS: " + "; ".join(m.errors), "mtasts-temporary")
    elif _no_sts(m):
        p.add("info", p.domain, "no MTA-STS record", "mtasts-none")
    elif m.errors:
        p.add("error", p.domain, "MTA-STS: " + "; ".join(m.errors), "mtasts-invalid")
    elif p.sts_mode == "testing":
        p.add("warning", p.domain, "MTA-STS policy is in mode testing: not enforced", "mtasts-testing")
    for w in m.warnings:
        p.add("warning", p.domain, f"MTA-STS: {w}", "mtasts-warning")
    t = p.tlsrpt
    if t.dnssec == "bogus":
        p.add("error", p.domain, "TLSRPT: " + "; ".join(t.errors), "dnssec-bogus")
    elif t.temporary:
        p.temporary = True
        p.add("error", p.domain, "TLSRPT: " + "; ".join(t.errors), "dns-error")
    elif _has_tlsrpt(t) and not t.valid:
        p.add("error", p.domain, "TLSRPT: " + "; ".join(t.errors), "tlsrpt-invalid")
    elif not t.valid:
        fix = _tlsrpt_fix(d.ascii)
        p.add(
            "warning",
            p.domain,
            f"no TLSRPT record: you will not get TLS failure reports; publish {fix['zone_line']}",
            "tlsrpt-none",
            fix,
        )
    for w in t.warnings:
        p.add("warning", p.domain, f"TLSRPT: {w}", "tlsrpt-warning")
    for h in p.hosts:
        _host_findings(p, h)
    p.indicators = _indicators(p)
    return p


def _check_safely(resolver: Resolver, domain: str, opts: PostureOptions, cache: HostCache) -> DomainPosture:
    """One domain's failure (network trouble, a broken answer) must not end a batch."""
    try:
        return check_domain(resolver, domain, opts, cache)
    except (MoxcliError, OSError, ValueError) as exc:
        p = DomainPosture(domain, temporary=isinstance(exc, (OSError, TemporaryError)))
        p.add("error", domain, f"checking {domain}: {exc}", "check-failed")
        p.indicators = {k: UNKNOWN for k in INDICATORS}
        return p


def check_domains(
    resolver: Resolver,
    domains: Iterable[str],
    opts: PostureOptions = PostureOptions(),  # noqa: B008 (a frozen value class, moxcli.values)
    concurrency: int = 16,
    share_hosts: bool = True,
) -> Iterator[DomainPosture]:
    """Check many domains with at most ``concurrency`` at a time; yields in input order.

    With ``share_hosts`` a host used by several domains is resolved, looked up and
    connected to once per run.
    """
    cache = HostCache() if share_hosts else _NoCache()
    if concurrency <= 1:
        for d in domains:
            yield _check_safely(resolver, d, opts, cache)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: list[Any] = []
        for d in domains:
            pending.append(pool.submit(_check_safely, resolver, d, opts, cache))
            while len(pending) > concurrency * 4:  # bounded memory for long --file inputs
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()

"""Where a domain's aggregate reports may go: rua checks and external destination
verification (RFC 7489 §7.1, RFC 9990 §4).

A domain may only send its reports to another organization's address when that
organization agrees, by publishing `v=DMARC1` at `<policy domain>._report._dmarc.<rua host>`.
``check_domain`` is what both `moxcli dmarc lookup` and the report job use.
"""

from __future__ import annotations

from moxcli.dmarc.interval import interval_hours
from moxcli.dmarc.lookup import lookup_record
from moxcli.dmarc.orgdomain import same_organization
from moxcli.dmarc.record import NotDMARCRecord, RecordError, ReportURI, parse_record, parse_report_uri
from moxcli.dns import BogusDNSError, NotFound, Resolver, TemporaryDNSError
from moxcli.domain import Domain
from moxcli.jsonfmt import Finding, findings_json
from moxcli.values import dataclass, field


@dataclass(frozen=True)
class Verification:
    """Outcome for one external rua URI.

    ``accepted``: the destination opted in. ``uris``: where to send (the original, or the
    same-host overrides of the confirming record). ``temporary``: a DNS failure, retry later.
    """

    accepted: bool
    uris: tuple[ReportURI, ...] = ()
    temporary: bool = False
    errors: tuple[Finding, ...] = field(default_factory=tuple)
    name: str = ""


def verification_name(policy_domain: Domain, rua_domain: Domain) -> str:
    """The TXT name to query.

    RFC 7489 §7.1 step 3 (and RFC 9990 §4) prepend the domain *where the DMARC record was
    found*; mox uses its organizational domain instead (mox quirk). This is what we send, so
    we follow the RFC.
    """
    return f"{policy_domain.ascii}._report._dmarc.{rua_domain.ascii}"


def verify_external(resolver: Resolver, policy_domain: Domain, uri: ReportURI) -> Verification:
    """Check that the rua host of ``uri`` agrees to receive reports about ``policy_domain``."""
    _, rua_domain = uri.mailto()
    name = verification_name(policy_domain, rua_domain)
    # RFC 9990 §4 step: give up when the constructed name exceeds DNS length limits.
    if len(name) > 253 or any(len(label) > 63 for label in name.split(".")):
        return Verification(
            False,
            errors=(Finding("verification-name-too-long", f"verification name for rua {uri.uri} is too long"),),
            name=name,
        )
    try:
        answer = resolver.txt(name)
    except NotFound:
        texts: list[str] = []
    except (TemporaryDNSError, BogusDNSError) as exc:
        temporary = isinstance(exc, TemporaryDNSError)
        return Verification(
            False,
            temporary=temporary,
            errors=(
                Finding(exc.status, "temporary error checking authorization for report delegation to external address"),
            )
            if temporary
            else (Finding(exc.status, f"rua {uri.uri}: authorization lookup failed: {exc}"),),
            name=name,
        )
    else:
        texts = answer.texts()
    for text in texts:
        try:
            rec = parse_record(text)
        except (NotDMARCRecord, RecordError):
            continue
        return _overrides(rec.rua, uri, rua_domain, name)
    return Verification(
        False,
        errors=(
            Finding(
                "external-not-authorized",
                f"rua {uri.uri} is external domain that does not opt-in to receiving dmarc records "
                "through _report dmarc record",
            ),
        ),
        name=name,
    )


def _overrides(rua: tuple[str, ...], original: ReportURI, rua_domain: Domain, name: str) -> Verification:
    """RFC 7489 §7.1 step 8: override URIs must name the same host.

    mox skips a different-host override and still sends to the others (mox quirk). The RFC says
    that then no report may be sent to either the original or the override URIs; we send
    reports, so we follow the RFC.
    """
    same: list[ReportURI] = []
    for text in rua:
        try:
            u = parse_report_uri(text)
            _, dom = u.mailto()
        except RecordError as exc:
            return Verification(
                False, errors=(Finding("override-invalid", f"{name}: invalid override rua: {exc}"),), name=name
            )
        if dom.ascii != rua_domain.ascii:
            return Verification(
                False,
                errors=(
                    Finding(
                        "override-different-host",
                        f"{name}: override rua {u.uri} has a different host than {original.uri}; no "
                        "report sent to either (RFC 7489 7.1)",
                    ),
                ),
                name=name,
            )
        same.append(u)
    return Verification(True, tuple(same) or (original,), name=name)


@dataclass(frozen=True)
class RuaCheck:
    """One published rua element: ``status`` is `same-organization`, `authorized`, `refused`,
    `temporary-error`, `ignored` (not mailto) or `invalid`; ``uris`` are where reports go."""

    text: str
    status: str
    uris: tuple[ReportURI, ...] = ()
    errors: tuple[Finding, ...] = ()
    name: str = ""

    @property
    def temporary(self) -> bool:
        return self.status == "temporary-error"

    @property
    def fix(self) -> dict[str, str] | None:
        """For a refused external address: the record its domain must publish (RFC 7489 §7.1)."""
        if self.status != "refused" or not self.name or any(e.code == "override-different-host" for e in self.errors):
            return None
        return {
            "name": self.name,
            "type": "TXT",
            "value": "v=DMARC1",
            "zone_line": f'{self.name}. IN TXT "v=DMARC1"',
            "who": "the owner of the rua address's domain",
        }

    def to_json(self) -> dict[str, object]:
        return {
            "rua": self.text,
            "status": self.status,
            "destinations": [
                {"uri": u.uri, "address": "@".join((u.mailto()[0], u.mailto()[1].ascii)), "max_size": u.max_size}
                for u in self.uris
            ],
            "errors": findings_json(self.errors),
            "verification_name": self.name,
            "fix": self.fix,
        }


def check_rua(resolver: Resolver, found_at: Domain, text: str) -> RuaCheck:
    """Where reports for one rua element of the record found at ``found_at`` may go (RFC 7489 §7.1)."""
    try:
        uri = parse_report_uri(text)
        if uri.scheme != "mailto":
            # Only mailto destinations are used (https is not a defined rua scheme).
            return RuaCheck(text, "ignored")
        _, rua_domain = uri.mailto()
    except RecordError as exc:
        return RuaCheck(text, "invalid", errors=(Finding("rua-invalid", str(exc)),))
    if same_organization(rua_domain, found_at):
        return RuaCheck(text, "same-organization", (uri,))
    v = verify_external(resolver, found_at, uri)
    status = "authorized" if v.accepted else "temporary-error" if v.temporary else "refused"
    return RuaCheck(text, status, v.uris if v.accepted else (), v.errors, v.name)


@dataclass(frozen=True)
class DomainCheck:
    """A domain's DMARC record and where aggregate reports about it would go."""

    domain: Domain
    found_at: Domain
    record: str
    authentic: bool
    ri: int
    rua: tuple[RuaCheck, ...]

    @property
    def destinations(self) -> list[ReportURI]:
        return [u for r in self.rua for u in r.uris]

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain.name,
            "found_at": self.found_at.name,
            "record": self.record,
            "dnssec": self.authentic,
            "interval_hours": interval_hours(self.ri),
            "rua": [r.to_json() for r in self.rua],
        }


def check_domain(resolver: Resolver, domain: Domain) -> DomainCheck:
    """The record (RFC 7489 §6.6.3) and every rua element checked as the report job would.

    Raises NoDMARCRecord / CheckFailed, and the resolver's temporary and bogus DNS errors.
    """
    found = lookup_record(resolver, domain)
    checks = tuple(check_rua(resolver, found.domain, t) for t in found.record.rua)
    return DomainCheck(domain, found.domain, found.text, found.authentic, found.record.ri, checks)

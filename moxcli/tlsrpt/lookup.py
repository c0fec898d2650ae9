"""TLSRPT record lookup at ``_smtp._tls.<policy domain>`` (RFC 8460 §3, docs/behaviour-notes.md §1.1), and the
fuller check behind ``moxcli check tlsrpt``.

``lookup_tlsrpt`` is what the TLS report sender uses; it keeps the error classes apart
because the sender treats them differently (docs/behaviour-notes.md §2.5, §12 item 9):

- no record: ``moxcli.dns.NotFound``
- DNS trouble: ``moxcli.dns.TemporaryDNSError`` / ``moxcli.dns.BogusDNSError``
- a broken record: :class:`RecordSyntax` or :class:`MultipleRecords`, both :class:`InvalidRecord`
  (a ``moxcli.errors.CheckFailed``)
"""

from __future__ import annotations

from collections.abc import Sequence

from moxcli.dnserrors import Answer, BogusDNSError, DNSError, NotFound
from moxcli.domain import Domain, DomainError, parse_domain
from moxcli.errors import CheckFailed, UsageError
from moxcli.jsonfmt import Finding, findings_json
from moxcli.tlsrpt.record import ParseError, Record, lint, parse_record, uri_scheme

TYPE_CHECKING = False  # not typing's: importing typing costs start-up (docs/development.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

    from moxcli.dns import Resolver


class InvalidRecord(CheckFailed):
    """A TLSRPT record exists but cannot be used; ``reason`` is a short code."""

    reason = "invalid-record"


class RecordSyntax(InvalidRecord):
    reason = "record-syntax-error"


class MultipleRecords(InvalidRecord):
    reason = "multiple-records"


def record_name(domain: Domain) -> str:
    """``_smtp._tls.<domain ASCII>`` (RFC 8460 §3)."""
    return f"_smtp._tls.{domain.ascii}"


def to_domain(domain: str | Domain) -> Domain:
    """A policy domain: a recipient domain or an MX host name (which may carry ``_``)."""
    if isinstance(domain, Domain):
        return domain
    try:
        return parse_domain(domain)
    except DomainError:
        try:
            return parse_domain(domain, lax=True)
        except DomainError as exc:
            raise UsageError(f"invalid domain {domain!r}: {exc}", code="bad-domain") from None


def select_record(name: str, texts: Sequence[str]) -> tuple[Record, str]:
    """Pick the one TLSRPT record among the TXT strings at ``name`` (docs/behaviour-notes.md §1.1 steps 3–6).

    Strings that are not TLSRPT are skipped; the first TLSRPT string with a syntax error
    aborts (even if a valid one follows: mox's order-dependent rule); two valid ones are an
    error (RFC 8460 §3: treat as no record).
    """
    found: tuple[Record, str] | None = None
    for text in texts:
        try:
            record = parse_record(text)
        except ParseError as exc:
            if not exc.is_tlsrpt:
                continue
            raise RecordSyntax(f"TLSRPT record {text!r} at {name}: {exc}") from None
        if found is not None:
            raise MultipleRecords(f"{name} has more than one TLSRPT record (RFC 8460 §3: treated as none)")
        found = (record, text)
    if found is None:
        raise NotFound(name, "TXT", False, False)
    return found


def lookup_tlsrpt(resolver: Resolver, domain: str | Domain) -> tuple[Record, str]:
    """The TLSRPT record of a policy domain and its exact text (CNAMEs followed by the resolver)."""
    name = record_name(to_domain(domain))
    answer = resolver.txt(name)
    try:
        return select_record(name, answer.texts())
    except NotFound:
        raise NotFound(name, "TXT", False, answer.authentic) from None


class TLSRPTCheck:
    """What ``moxcli check tlsrpt`` reports about one domain.

    A plain class, not a dataclass: importing dataclasses costs more start-up than
    `check tlsrpt --record` may take (docs/development.md, Start-up)."""

    def __init__(
        self,
        domain: Domain,
        name: str,
        texts: list[str] | None = None,
        record: Record | None = None,
        record_text: str = "",
    ) -> None:
        self.domain = domain
        self.name = name
        self.texts: list[str] = texts if texts is not None else []
        self.record = record
        self.record_text = record_text
        self.cnames: list[str] = []
        self.dnssec = ""
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.temporary = False
        self.dns_status = ""

    def __repr__(self) -> str:
        return f"TLSRPTCheck({self.__dict__!r})"

    @property
    def valid(self) -> bool:
        return self.record is not None and not self.errors

    @property
    def status(self) -> str:
        """Stable code: ``ok``, ``nxdomain``, ``nodata`` (no TXT, or no TLSRPT among them),
        ``dnssec-bogus``, ``dns-error`` (temporary) or ``invalid``."""
        if self.dns_status:
            return self.dns_status
        if self.valid:
            return "ok"
        return "invalid" if self.record is not None or any(t.startswith("v=TLSRPTv1") for t in self.texts) else "nodata"

    def to_json(self) -> dict[str, Any]:
        records = []
        for text in self.texts:
            try:
                parse_record(text)
                records.append({"text": text, "tlsrpt": True, "error": None})
            except ParseError as exc:
                records.append({"text": text, "tlsrpt": exc.is_tlsrpt, "error": str(exc) if exc.is_tlsrpt else None})
        return {
            # docs/json.md: null, not "", when unknown (a --record check has no domain or DNS)
            "domain": self.domain.name or None,
            "name": self.name or None,
            "status": self.status,
            "cnames": self.cnames,
            "dnssec": self.dnssec or None,
            "records": records,
            "record": self.record_text or None,
            "valid": self.valid,
            "version": self.record.version if self.record else None,
            "rua": [{"uri": u, "scheme": uri_scheme(u)} for u in self.record.rua] if self.record else [],
            "invalid_rua": [{"uri": u, "problem": pr} for u, pr in self.record.invalid_rua] if self.record else [],
            "extensions": [{"key": k, "value": v} for k, v in self.record.extensions] if self.record else [],
            "errors": findings_json(self.errors),
            "warnings": findings_json(self.warnings),
            "fix": self.fix,
        }

    @property
    def fix(self) -> dict[str, str] | None:
        """With no TLSRPT record at all: the record to publish (RFC 8460 §3; adapt the address)."""
        if self.status not in ("nxdomain", "nodata") or not self.domain.ascii:
            return None
        value = f"v=TLSRPTv1; rua=mailto:tlsrpt@{self.domain.ascii}"
        return {"name": self.name, "type": "TXT", "value": value, "zone_line": f'{self.name}. IN TXT "{value}"'}


def _evaluate(check: TLSRPTCheck) -> TLSRPTCheck:
    try:
        check.record, check.record_text = select_record(check.name, check.texts)
    except NotFound:
        if check.texts:
            check.errors.append(
                Finding("no-record", f"no TLSRPT record among the {len(check.texts)} TXT record(s) at {check.name}")
            )
        else:
            check.errors.append(Finding("no-record", f"no TLSRPT record at {check.name}"))
        return check
    except InvalidRecord as exc:
        check.errors.append(Finding(exc.reason, str(exc)))
        return check
    errors, warnings = lint(check.record_text, check.record)
    check.errors += errors
    check.warnings += warnings
    return check


def check_record_text(domain: str | None, text: str) -> TLSRPTCheck:
    """Lint a record before publishing it (no DNS)."""
    d = to_domain(domain) if domain else Domain("")
    check = TLSRPTCheck(d, record_name(d) if domain else "", texts=[text], record_text=text)
    try:
        parse_record(text)
    except ParseError as exc:
        if exc.is_tlsrpt:
            check.errors.append(Finding(RecordSyntax.reason, str(exc)))
        else:
            check.errors.append(Finding("not-tlsrpt", f"not a TLSRPT record: {exc}"))
        return check
    return _evaluate(check)


def check_tlsrpt(resolver: Resolver, domain: str) -> TLSRPTCheck:
    """Look up and lint the TLSRPT record of a domain or MX host.

    DNS failures become errors in the result with ``temporary`` set for outages; the caller
    picks the exit code from ``valid`` and ``temporary``.
    """
    d = to_domain(domain)
    check = TLSRPTCheck(d, record_name(d))
    if resolver.untrusted_reason:
        check.warnings.append(Finding("dnssec-untrusted", resolver.untrusted_reason))
    try:
        answer: Answer = resolver.txt(check.name)
    except NotFound as exc:
        check.dnssec = "secure" if exc.authentic else "insecure"
        check.dns_status = exc.status
        what = "NXDOMAIN: no such name" if exc.nxdomain else "NODATA: no TXT records"
        check.errors.append(Finding("no-record", f"no TLSRPT record at {check.name} ({what})"))
        return check
    except BogusDNSError as exc:
        check.dnssec = "bogus"
        check.dns_status = exc.status
        check.errors.append(Finding(exc.status, str(exc)))
        return check
    except DNSError as exc:
        check.temporary = True
        check.dns_status = exc.status
        check.errors.append(Finding(exc.status, str(exc)))
        return check
    check.texts = answer.texts()
    check.cnames = list(answer.cnames)
    check.dnssec = "secure" if answer.authentic else "insecure"
    return _evaluate(check)

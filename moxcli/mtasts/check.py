"""What ``moxcli fetch mtasts`` reports: a domain's MTA-STS record and policy, through the
cache (as delivery sees it) or live, plus linting of record and policy texts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moxcli.dns import DNSError, Resolver
from moxcli.domain import Domain
from moxcli.jsonfmt import Finding, findings_json
from moxcli.mtasts.cache import STSTemporaryError, as_domain, policy_for_delivery
from moxcli.mtasts.errors import (
    DNSLookupError,
    MultipleRecords,
    NoPolicy,
    NoRecord,
    PolicyFetch,
    PolicySyntax,
    RecordSyntax,
    failure_reason,
)
from moxcli.mtasts.fetch import FetchOptions, fetch_policy, policy_url
from moxcli.mtasts.lookup import lookup_record, record_name
from moxcli.mtasts.policy import Policy, PolicyParseError, lint, parse_policy
from moxcli.mtasts.record import Record, RecordParseError, parse_record
from moxcli.store import Store
from moxcli.tlsrpt.report import Result
from moxcli.values import dataclass, field

_FETCH_ERRORS = (NoPolicy, PolicyFetch, PolicySyntax)


@dataclass
class MTASTSCheck:
    domain: Domain | None
    record: Record | None = None
    record_text: str = ""
    cnames: list[str] = field(default_factory=list)
    policy: Policy | None = None
    policy_text: str = ""
    url: str = ""
    cached: bool = False
    valid_until: float | None = None
    result: Result | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    temporary: bool = False
    dns_status: str = ""  # "nxdomain" or "nodata" when the _mta-sts record lookup was denied

    @property
    def status(self) -> str:
        """Stable code (docs/json.md): ``ok``, ``nxdomain``, ``nodata`` (no TXT, or no MTA-STS
        record among them), ``dns-error`` (temporary) or ``invalid``."""
        if self.dns_status:
            return self.dns_status
        if self.temporary:
            return "dns-error"
        return "ok" if self.valid else "invalid"

    @property
    def valid(self) -> bool:
        """No errors, and a policy for a domain (or the linted record or policy parsed)."""
        if self.errors:
            return False
        if self.domain is None:
            return self.record is not None or self.policy is not None
        return self.policy is not None

    @property
    def exit_code(self) -> int:
        return 3 if self.temporary else 0 if self.valid else 1

    def to_json(self) -> dict[str, Any]:
        valid_until = None
        if self.valid_until is not None:
            valid_until = (
                datetime.fromtimestamp(self.valid_until, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            )
        policy = None
        if self.policy is not None:
            p = self.policy.to_json()
            policy = {k: p[k] for k in ("version", "mode", "mx", "max_age", "extensions")}
        return {
            "domain": self.domain.name if self.domain else None,
            "status": self.status,
            "record_name": record_name(self.domain) if self.domain else None,
            "cnames": self.cnames,
            "record": {**self.record.to_json(), "text": self.record_text} if self.record else None,
            "record_text": self.record_text or None,
            "url": self.url or None,
            "policy": policy,
            "policy_text": self.policy_text or None,
            "cached": self.cached,
            "valid_until": valid_until,
            "valid": self.valid,
            "tlsrpt_result": self.result.to_json() if self.result else None,
            "errors": findings_json(self.errors),
            "warnings": findings_json(self.warnings),
        }


def _exc_finding(exc: BaseException) -> Finding:
    """An MTA-STS error as a finding; its code is the TLSRPT failure reason of the error class."""
    if isinstance(exc, STSTemporaryError):
        return Finding(failure_reason(exc.cause) or exc.cause.reason, str(exc))
    return Finding(failure_reason(exc) or getattr(exc, "reason", "") or "dns-error", str(exc))


def _record_warnings(text: str, record: Record) -> list[Finding]:
    out = []
    if not text.startswith("v=STSv1;"):
        out.append(
            Finding(
                "version-not-first",
                "record does not start with exactly 'v=STSv1;': RFC 8461 §3.1 senders discard it (mox accepts it)",
            )
        )
    for k, _ in record.extensions:
        if not k[0].isalnum():
            out.append(
                Finding(
                    "bad-extension-key",
                    f"key {k!r} does not start with a letter or digit (RFC 8461 §3.1); "
                    "strict parsers reject the record",
                )
            )
    return out


def check_record_text(text: str) -> MTASTSCheck:
    """Lint an ``_mta-sts`` TXT record before publishing it (no network)."""
    check = MTASTSCheck(None, record_text=text)
    try:
        check.record = parse_record(text)
    except RecordParseError as exc:
        check.errors.append(Finding(RecordSyntax.reason, f"record syntax error: {exc}"))
        return check
    check.warnings += _record_warnings(text, check.record)
    return check


def check_policy_text(text: str) -> MTASTSCheck:
    """Lint a policy file before publishing it (no network)."""
    check = MTASTSCheck(None, policy_text=text)
    try:
        check.policy = parse_policy(text)
    except PolicyParseError as exc:
        check.errors.append(Finding(PolicySyntax.reason, f"policy syntax error: {exc}"))
        return check
    check.warnings += lint(check.policy)
    if "\r\n" not in text and "\n" in text:
        check.warnings.append(
            Finding(
                "policy-lf-lines", "lines end in LF; RFC 8461 §3.2's prose says CRLF (its ABNF and senders accept LF)"
            )
        )
    return check


def _mx_warnings(resolver: Resolver, domain: Domain, policy: Policy) -> list[Finding]:
    if policy.mode == "none":
        return []
    try:
        answer = resolver.query(domain.ascii, "MX")
    except DNSError:
        return []
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in answer.records]
    return [
        Finding("mx-not-in-policy", f"MX host {h} does not match the policy's mx patterns (RFC 8461 §4.1)")
        for h in hosts
        if h and not policy.matches_mx(h)
    ]


def _diagnostic_fetch(check: MTASTSCheck, resolver: Resolver, domain: Domain, options: FetchOptions) -> None:
    """Fetch the policy although the record is unusable, to show the operator both problems."""
    try:
        fetched = fetch_policy(resolver, domain, options)
    except _FETCH_ERRORS as exc:
        check.errors.append(Finding(exc.reason, f"policy (fetched for diagnosis only): {exc}"))
        if isinstance(exc, PolicySyntax):
            check.policy_text = exc.text
        return
    check.policy_text = fetched.text
    check.warnings.append(
        Finding(
            "policy-unused",
            f"policy at {fetched.url} parses (mode {fetched.policy.mode}) but is not used: the record is unusable",
        )
    )
    check.warnings += fetched.warnings


def check_live(resolver: Resolver, domain: str, options: FetchOptions) -> MTASTSCheck:
    """Record lookup and policy fetch now, without the cache (mox ``mtasts lookup``)."""
    d = as_domain(domain)
    check = MTASTSCheck(d, url=policy_url(d))
    try:
        check.record, check.record_text, check.cnames = lookup_record(resolver, d)
    except NoRecord as exc:
        check.errors.append(_exc_finding(exc))
        check.dns_status = exc.code if exc.code in ("nxdomain", "nodata") else ""
        return check
    except (MultipleRecords, RecordSyntax) as exc:
        check.errors.append(_exc_finding(exc))
        check.record_text = getattr(exc, "text", "")
        _diagnostic_fetch(check, resolver, d, options)
        return check
    except DNSLookupError as exc:
        check.errors.append(_exc_finding(exc))
        check.temporary = exc.exit_code == 3
        return check
    check.warnings += _record_warnings(check.record_text, check.record)
    try:
        fetched = fetch_policy(resolver, d, options)
    except _FETCH_ERRORS as exc:
        check.errors.append(_exc_finding(exc))
        if isinstance(exc, PolicySyntax):
            check.policy_text = exc.text
        return check
    check.policy, check.policy_text = fetched.policy, fetched.text
    check.warnings += fetched.warnings + _mx_warnings(resolver, d, fetched.policy)
    return check


def check_cached(store: Store, resolver: Resolver, domain: str, options: FetchOptions) -> MTASTSCheck:
    """The policy as delivery gets it: through the cache, storing what is fetched (docs/behaviour-notes.md §4.5)."""
    d = as_domain(domain)
    check = MTASTSCheck(d, url=policy_url(d))
    try:
        out = policy_for_delivery(store, resolver, d, options)
    except STSTemporaryError as exc:
        check.errors.append(_exc_finding(exc))
        check.temporary = exc.exit_code == 3
        check.result = exc.result
        return check
    check.result, check.cached = out.result, out.cached
    if out.record is not None:
        check.record = out.record
        check.record_text = out.record_text
    if out.row is not None:
        check.valid_until = out.row.valid_end
    if out.error is not None:
        check.errors.append(_exc_finding(out.error))
        if isinstance(out.error, NoRecord) and out.error.code in ("nxdomain", "nodata"):
            check.dns_status = out.error.code
        if isinstance(out.error, DNSLookupError):
            check.temporary = out.error.exit_code == 3
    if out.row is not None and out.row.backoff:
        if out.cached:
            check.errors.append(
                Finding(
                    "fetch-backoff",
                    "a recent policy fetch failed: no policy is used until the back-off ends (try --no-cache)",
                )
            )
        check.valid_until = None
        return check
    if isinstance(out.error, (MultipleRecords, RecordSyntax)):
        check.record_text = getattr(out.error, "text", "")
        _diagnostic_fetch(check, resolver, d, options)
    if out.policy is None:
        return check
    check.policy = out.policy
    check.policy_text = out.fetched.text if out.fetched else out.row.policy_text if out.row else ""
    check.warnings += out.fetched.warnings if out.fetched else lint(out.policy)
    check.warnings += _mx_warnings(resolver, d, out.policy)
    return check

"""The MTA-STS policy cache and the delivery engine's entry point (RFC 8461 §3.3, §5; docs/behaviour-notes.md §4.5).

Delivery calls::

    outcome = policy_for_delivery(store, resolver, "example.org", FetchOptions.from_config(cfg))

and gets an :class:`STSOutcome`:

- ``policy``: the :class:`~moxcli.mtasts.policy.Policy` to apply, or None (no MTA-STS). Apply
  it when ``policy.mode != "none"``: ``policy.mode`` is ``enforce`` or ``testing``,
  ``policy.matches_mx(host)`` tells whether an MX host is allowed (§4.4).
- ``result``: the recipient domain's RFC 8460 policy result
  (:class:`moxcli.tlsrpt.report.Result`, type ``sts`` or ``no-policy-found``, counts 0, with
  the failure details of the lookup). Delivery adds session counts and MX-mismatch details.
- ``fresh``: the policy was confirmed against DNS just now.

When the record lookup fails temporarily and no policy is cached (docs/behaviour-notes.md §4.5 "any other
error"), :class:`STSTemporaryError` (a ``moxcli.errors.TemporaryError``) is raised; its
``result`` is still to be recorded (with total-failure +1, docs/behaviour-notes.md §3.3) unless the message has
``TLS-Required: No``. Store errors propagate.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from moxcli import values
from moxcli.domain import Domain, DomainError, parse_domain
from moxcli.errors import TemporaryError, UsageError
from moxcli.mtasts import db
from moxcli.mtasts.db import PolicyRow
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
from moxcli.mtasts.fetch import Fetched, FetchOptions, fetch_policy
from moxcli.mtasts.lookup import lookup_record
from moxcli.mtasts.policy import Policy
from moxcli.mtasts.record import Record
from moxcli.store import Store
from moxcli.tlsrpt.report import (
    POLICY_NO_POLICY_FOUND,
    POLICY_STS,
    RESULT_STS_POLICY_FETCH_ERROR,
    RESULT_STS_POLICY_INVALID,
    RESULT_STS_WEBPKI_INVALID,
    FailureDetails,
    Result,
    make_result,
)
from moxcli.tlsrpt.report import Policy as ReportPolicy
from moxcli.values import dataclass

if TYPE_CHECKING:
    from moxcli.dns import Resolver  # type only: dnspython loads when a lookup runs

BACKOFF_SECONDS = 300  # RFC 8461 §3.3: at most one fetch per five minutes after a failure
# A refetch while a delivery waits, with a cached policy to fall back on, takes at most this long
# (or [mtasts] fetch_timeout when that is shorter); a first fetch takes fetch_timeout.
REFETCH_TIMEOUT = 30.0
FALLBACK = "+fallback-to-cached-policy"

FETCH_ERRORS = (NoPolicy, PolicyFetch, PolicySyntax)


class STSTemporaryError(TemporaryError):
    """No cached policy and the record lookup failed temporarily; ``result`` is for the report."""

    def __init__(self, cause: DNSLookupError, result: Result) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.result = result
        self.exit_code = cause.exit_code


@dataclass
class STSOutcome:
    policy: Policy | None
    result: Result
    fresh: bool
    row: PolicyRow | None = None
    record: Record | None = None
    record_text: str = ""
    fetched: Fetched | None = None
    error: Exception | None = None
    cached: bool = False  # the answer came from the cache, no fetch was made now


def as_domain(domain: str | Domain) -> Domain:
    """A recipient domain from the command line or the queue; a bad name is a usage error."""
    if isinstance(domain, Domain):
        return domain
    try:
        return parse_domain(domain)
    except DomainError as exc:
        raise UsageError(f"invalid domain {domain!r}: {exc}", code="bad-domain") from None


def policy_lines(row: PolicyRow) -> list[str]:
    """policy-string of an ``sts`` result: the fetched text's lines (docs/behaviour-notes.md §4.5)."""
    if not row.policy_text:
        return row.policy.format().removesuffix("\n").split("\n")
    text = row.policy_text.removesuffix("\n")
    return [line.removesuffix("\r") for line in text.split("\n")]


def sts_result(domain: Domain, row: PolicyRow, *details: FailureDetails) -> Result:
    """The ``sts`` policy result of a stored policy, counts 0 (delivery adds sessions)."""
    policy = ReportPolicy(POLICY_STS, policy_lines(row), domain.ascii, [m.ascii for m in row.policy.mx])
    return Result(policy, 0, 0, list(details))


def fetch_failure(exc: Exception) -> FailureDetails:
    """The failure detail for a failed policy fetch (mox policyFetchFailureDetails)."""
    if isinstance(exc, PolicyFetch) and exc.tls_result:
        reason = exc.tls_result + (f"+{exc.tls_reason}" if exc.tls_reason else "")
        return FailureDetails(RESULT_STS_WEBPKI_INVALID, failure_reason_code=reason)
    if isinstance(exc, PolicySyntax):
        return FailureDetails(RESULT_STS_POLICY_INVALID, failure_reason_code=failure_reason(exc))
    return FailureDetails(RESULT_STS_POLICY_FETCH_ERROR, failure_reason_code=failure_reason(exc))


def valid_row(store: Store, domain: Domain, now: float) -> PolicyRow | None:
    """The cached row with ``valid_end > now``, marking it used (docs/behaviour-notes.md §4.5 lookup)."""

    def fn(tx):
        row = db.get(tx, domain.name)
        if row is None or row.valid_end <= now:
            return None
        row.last_use = now
        db.put(tx, row)
        return row

    return store.update(fn)


def list_policies(store: Store) -> list[PolicyRow]:
    """Cached rows, most recently used first (then domain, descending, as mox lists them)."""
    with store.read() as tx:
        rows = db.rows(tx)
    return sorted(rows, key=lambda r: (r.last_use, r.domain), reverse=True)


def upsert(store: Store, domain: Domain, record_id: str, fetched: Fetched | None, now: float) -> PolicyRow:
    """Store a fetched policy, or (``fetched`` None) a 5-minute backoff row (docs/behaviour-notes.md §4.5 Upsert)."""
    if fetched is None:
        policy, text, valid_end, backoff = Policy("STSv1", "none", BACKOFF_SECONDS), "", now + BACKOFF_SECONDS, True
    else:
        policy, text, valid_end, backoff = fetched.policy, fetched.text, now + fetched.policy.max_age, False

    def fn(tx):
        row = db.get(tx, domain.name)
        if row is None:
            row = PolicyRow(domain.name, now, valid_end, now, now, backoff, record_id, policy, text)
        else:
            row = values.replace(
                row,
                valid_end=valid_end,
                last_update=now,
                last_use=now,
                backoff=backoff,
                record_id=record_id,
                policy=policy,
                policy_text=text,
            )
        db.put(tx, row)
        return row

    return store.update(fn)


def policy_for_delivery(
    store: Store,
    resolver: Resolver,
    domain: str | Domain,
    options: FetchOptions = FetchOptions(),
    now: float | None = None,
) -> STSOutcome:
    """The MTA-STS policy to apply for mail to ``domain`` (mox mtastsdb Get, docs/behaviour-notes.md §4.5)."""
    d = as_domain(domain)
    now = time.time() if now is None else now
    row = valid_row(store, d, now)
    if row is None:
        return _first_contact(store, resolver, d, options, now)
    if row.backoff:
        detail = FailureDetails(RESULT_STS_POLICY_FETCH_ERROR, failure_reason_code="back-off-after-recent-fetch-error")
        return STSOutcome(None, make_result(POLICY_STS, d.ascii, detail), False, row, cached=True)
    try:
        record, record_text, _ = lookup_record(resolver, d)
    except (NoRecord, MultipleRecords, RecordSyntax, DNSLookupError) as exc:
        # RFC 8461 §3.3/§10.2: a valid cached policy stays in force when the record cannot be
        # found or fetched (an attacker may be hiding it).
        reason = failure_reason(exc) + (FALLBACK if row.policy.mode != "none" else "")
        detail = FailureDetails(RESULT_STS_POLICY_FETCH_ERROR, failure_reason_code=reason)
        return STSOutcome(row.policy, sts_result(d, row, detail), False, row, error=exc, cached=True)
    if record.id == row.record_id and row.policy_text:
        # Spec §4.5: an unchanged id does not extend valid_end (the refresher does).
        return STSOutcome(row.policy, sts_result(d, row), True, row, record, record_text, cached=True)
    try:
        fetched = fetch_policy(resolver, d, values.replace(options, timeout=min(options.timeout, REFETCH_TIMEOUT)))
    except FETCH_ERRORS as exc:
        detail = fetch_failure(exc)
        detail.failure_reason_code += FALLBACK
        return STSOutcome(
            row.policy, sts_result(d, row, detail), False, row, record, record_text, error=exc, cached=True
        )
    row = upsert(store, d, record.id, fetched, now)
    return STSOutcome(row.policy, sts_result(d, row), True, row, record, record_text, fetched)


def _first_contact(store: Store, resolver: Resolver, d: Domain, options: FetchOptions, now: float) -> STSOutcome:
    try:
        record, record_text, _ = lookup_record(resolver, d)
    except NoRecord as exc:
        return STSOutcome(None, make_result(POLICY_NO_POLICY_FOUND, d.ascii), True, error=exc)
    except (MultipleRecords, RecordSyntax) as exc:
        # RFC 8461 §3.1: behave as if there is no policy. Nothing is cached: asked again next time.
        detail = FailureDetails(RESULT_STS_POLICY_FETCH_ERROR, failure_reason_code=failure_reason(exc))
        return STSOutcome(None, make_result(POLICY_STS, d.ascii, detail), True, error=exc)
    except DNSLookupError as exc:
        detail = FailureDetails(RESULT_STS_POLICY_FETCH_ERROR, failure_reason_code=failure_reason(exc))
        raise STSTemporaryError(exc, make_result(POLICY_STS, d.ascii, detail)) from None
    try:
        fetched = fetch_policy(resolver, d, options)
    except FETCH_ERRORS as exc:
        # RFC 8461 §3.3: without a cached policy, deliver as if MTA-STS were not implemented,
        # and fetch again no sooner than five minutes later.
        row = upsert(store, d, record.id, None, now)
        return STSOutcome(
            None, make_result(POLICY_STS, d.ascii, fetch_failure(exc)), True, row, record, record_text, error=exc
        )
    row = upsert(store, d, record.id, fetched, now)
    if fetched.policy.mode == "none":
        return STSOutcome(
            row.policy, make_result(POLICY_NO_POLICY_FOUND, d.ascii), True, row, record, record_text, fetched
        )
    return STSOutcome(row.policy, sts_result(d, row), True, row, record, record_text, fetched)

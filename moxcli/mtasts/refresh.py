"""Proactive refresh of cached MTA-STS policies (RFC 8461 §3.3, §10.2; docs/behaviour-notes.md §4.6).

Run daily (``moxcli mtasts refresh`` from cron): forget policies unused for 180 days, then
re-check every policy not updated for 12 hours, spread over ``spread`` seconds so that policy
hosts are not all hit at once. A refresh keeps a policy alive while its id is unchanged and
fetches it again when the id changed, so that a policy does not expire between deliveries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from moxcli import jsonfmt, log, values
from moxcli.dns import Resolver
from moxcli.domain import parse_domain
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
)
from moxcli.mtasts.fetch import FetchOptions, fetch_policy
from moxcli.mtasts.lookup import lookup_record
from moxcli.store import Store
from moxcli.values import dataclass

UNUSED_SECONDS = 180 * 86400
STALE_SECONDS = 12 * 3600
SPREAD_SECONDS = 3 * 3600
WORKERS = 8

_log = log.get("mtasts")


@dataclass
class Refreshed:
    """What happened to one domain: ``action`` is deleted-unused, deleted-no-record, extended,
    updated, unchanged or error."""

    domain: str
    action: str
    message: str = ""
    valid_end: float | None = None

    def to_json(self) -> dict:
        return {
            "domain": self.domain,
            "action": self.action,
            "message": self.message,
            "valid_end": jsonfmt.rfc3339(self.valid_end),
        }


def _update_if_unchanged(store: Store, old: PolicyRow, new: PolicyRow) -> bool:
    """Write ``new`` only if nobody updated the row since we read it (mox matches on Domain
    and the old LastUpdate: optimistic concurrency against deliveries refetching it)."""

    def fn(tx):
        current = db.get(tx, old.domain)
        if current is None or current.last_update != old.last_update:
            return False
        db.put(tx, new)
        return True

    return store.update(fn)


def refresh_domain(
    store: Store, resolver: Resolver, row: PolicyRow, options: FetchOptions, now: Callable[[], float] = time.time
) -> Refreshed:
    """Re-check one cached policy (mox refreshDomain)."""
    d = parse_domain(row.domain)
    record = None
    try:
        record, _, _ = lookup_record(resolver, d)
    except (NoRecord, MultipleRecords, RecordSyntax, DNSLookupError) as exc:
        if row.policy.mode == "none":
            if isinstance(exc, NoRecord):
                # RFC 8461 §8.3: mode none then no record is how a domain opts out.
                store.update(lambda tx: db.delete(tx, row.domain))
                return Refreshed(row.domain, "deleted-no-record", str(exc))
            return Refreshed(row.domain, "unchanged", str(exc))
        # The policy stays in force; DNS may be down: try to fetch so it does not expire.
        _log.info("mta-sts record lookup failed, fetching policy anyway", domain=row.domain, err=str(exc))
    t = now()
    if record is not None and record.id == row.record_id:
        new = values.replace(row, last_update=t, valid_end=t + row.policy.max_age)
        if not _update_if_unchanged(store, row, new):
            return Refreshed(row.domain, "unchanged", "updated concurrently")
        return Refreshed(row.domain, "extended", f"id {record.id} unchanged", new.valid_end)
    try:
        fetched = fetch_policy(resolver, d, options)
    except (NoPolicy, PolicyFetch, PolicySyntax) as exc:
        if not (isinstance(exc, NoPolicy) and row.policy.mode == "none"):
            _log.info("mta-sts policy refresh failed", domain=row.domain, err=str(exc))
        return Refreshed(row.domain, "error", str(exc))
    t = now()
    # mox leaves the stored policy text as it was; we store the new text with the new policy
    # so that TLS reports we produce show the policy actually in force (RFC 8460 §4.4).
    new = values.replace(
        row,
        last_update=t,
        valid_end=t + fetched.policy.max_age,
        backoff=False,
        policy=fetched.policy,
        policy_text=fetched.text,
        record_id=record.id if record is not None else row.record_id,
    )
    if not _update_if_unchanged(store, row, new):
        return Refreshed(row.domain, "unchanged", "updated concurrently")
    return Refreshed(
        row.domain, "updated", f"mode {fetched.policy.mode}, max_age {fetched.policy.max_age}", new.valid_end
    )


def refresh(
    store: Store,
    resolver: Resolver,
    options: FetchOptions = FetchOptions(),
    spread: float = SPREAD_SECONDS,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_result: Callable[[Refreshed], None] | None = None,
) -> list[Refreshed]:
    """One refresher run (docs/behaviour-notes.md §4.6); returns what happened per domain."""
    rng = rng or random.Random()
    start = now()
    done: list[Refreshed] = []

    def prune(tx):
        stale, keep = [], []
        for row in db.rows(tx):
            if row.last_use < start - UNUSED_SECONDS:
                db.delete(tx, row.domain)
                stale.append(row)
            elif row.last_update < start - STALE_SECONDS:
                keep.append(row)
        return stale, keep

    unused, due = store.update(prune)
    for row in unused:
        r = Refreshed(row.domain, "deleted-unused", "not used for 180 days")
        done.append(r)
        if on_result:
            on_result(r)
    rng.shuffle(due)
    interval = spread / (len(due) - 1) if len(due) > 1 else 0.0
    pending: list[Future] = []

    def report(block: bool) -> None:
        for f in list(pending):
            if block or f.done():
                pending.remove(f)
                r = f.result()
                done.append(r)
                if on_result:
                    on_result(r)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for k, row in enumerate(due):
            if k > 0 and interval > 0:
                target = start + k * interval + rng.uniform(-interval / 2, interval / 2)
                report(False)
                delay = target - now()
                if delay > 0:
                    sleep(delay)
            pending.append(pool.submit(refresh_domain, store, resolver, row, options, now))
        report(True)
    return done

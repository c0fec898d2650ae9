"""Suppression lists for report addresses: kind ``tls`` (TLS_SUPPRESS) and ``dmarc`` (DMARC_SUPPRESS).

A report is not queued for an address with an entry whose ``until`` lies in the future (or that
has no ``until``: suppressed until removed). Expired entries are kept for the listing but ignored.

API (all inside a caller's transaction):

- ``add(tx, kind, address, until=None, comment="", now=None) -> SuppressEntry`` (replaces an
  existing entry for the address)
- ``remove(tx, kind, address) -> bool``
- ``entries(tx, kind) -> list[SuppressEntry]`` newest first
- ``is_suppressed(tx, kind, address, now=None) -> bool``
- ``suppress_after_failure(tx, kind, address, reason, now=None) -> SuppressEntry``: what the
  queue calls when a report message fails permanently: suppress the address for 30 days
  (going beyond mox, mox issue #295).

Addresses are compared as ``localpart@domain`` with the domain in ASCII, lower-cased
(docs/behaviour-notes.md §2.6); the record key is that normalised form.
"""

from __future__ import annotations

import time
from typing import Any

from moxcli import jsonfmt
from moxcli.addrlimits import domain_size_problem
from moxcli.config import clip
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.store.env import Txn
from moxcli.store.schema import DMARC_SUPPRESS, TLS_SUPPRESS, Table
from moxcli.values import dataclass

KINDS: dict[str, Table] = {"tls": TLS_SUPPRESS, "dmarc": DMARC_SUPPRESS}
FAILURE_SUPPRESS_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class SuppressEntry:
    address: str
    inserted: float
    until: float | None
    comment: str

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "inserted": jsonfmt.rfc3339(self.inserted),
            "until": jsonfmt.rfc3339(self.until),
            "comment": self.comment or None,
        }


def normalize_address(address: str) -> str:
    """``localpart@domain`` with the domain as ASCII, all lower-cased; UsageError if invalid."""
    local, sep, dom = address.strip().rpartition("@")
    if not sep or not local or not dom or any(c.isspace() or c in "<>" for c in address.strip()):
        raise UsageError(f"invalid address {clip(repr(address))}: expected localpart@domain")
    try:
        d = parse_domain(dom)
    except DomainError as exc:
        raise UsageError(f"invalid address {clip(repr(address))}: {exc}") from None
    return f"{local.lower()}@{d.ascii}"


def _table(kind: str) -> Table:
    try:
        return KINDS[kind]
    except KeyError:
        raise UsageError(f"unknown suppression list {kind!r}: expected one of {', '.join(KINDS)}") from None


def _entry(rec: dict[str, Any]) -> SuppressEntry:
    return SuppressEntry(rec["address"], rec.get("inserted", 0.0), rec.get("until"), rec.get("comment", ""))


def add(
    tx: Txn, kind: str, address: str, until: float | None = None, comment: str = "", now: float | None = None
) -> SuppressEntry:
    """Suppress reports to ``address`` until ``until`` (unix time; None: until removed)."""
    addr = normalize_address(address)
    local, _, domain = addr.rpartition("@")
    # RFC 5321 4.5.3.1: no report could go to a longer one (sizes as queueing counts them).
    why = domain_size_problem(local, parse_domain(domain))
    if why:
        raise UsageError(f"invalid address {clip(repr(address))}: {why}")
    entry = SuppressEntry(addr, time.time() if now is None else now, until, comment)
    tx.put(
        _table(kind), addr.encode(), {"address": addr, "inserted": entry.inserted, "until": until, "comment": comment}
    )
    return entry


def remove(tx: Txn, kind: str, address: str) -> bool:
    return tx.delete(_table(kind), normalize_address(address).encode())


def entries(tx: Txn, kind: str) -> list[SuppressEntry]:
    """All entries, expired ones included, newest first."""
    out = [_entry(rec) for _, rec in tx.scan(_table(kind))]
    out.sort(key=lambda e: (-e.inserted, e.address))
    return out


def is_suppressed(tx: Txn, kind: str, address: str, now: float | None = None) -> bool:
    """Whether an unexpired entry exists for the address (docs/behaviour-notes.md §2.5 step 11)."""
    try:
        addr = normalize_address(address)
    except UsageError:
        return False
    rec = tx.get(_table(kind), addr.encode())
    return rec is not None and _entry(rec).active(time.time() if now is None else now)


def suppress_after_failure(tx: Txn, kind: str, address: str, reason: str, now: float | None = None) -> SuppressEntry:
    """A report message to ``address`` failed permanently: suppress it for 30 days."""
    t = time.time() if now is None else now
    return add(
        tx,
        kind,
        address,
        until=t + FAILURE_SUPPRESS_SECONDS,
        comment=f"permanent delivery failure: {reason}"[:500],
        now=t,
    )

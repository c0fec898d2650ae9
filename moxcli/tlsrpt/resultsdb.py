"""Outgoing TLS results (docs/behaviour-notes.md §2.1): one row per (day_utc, policy_domain, recipient_domain).

Delivery records the results of each attempt with :func:`add_results`; the daily sender
(`moxcli.reports.tls`) reads them per policy domain and marks them sent.

Row shape passed to :func:`add_results` (one per policy result of an attempt, docs/behaviour-notes.md §2.2)::

    {"policy_domain": "mx.example.org",   # Unicode or ASCII name; stored as Unicode name
     "is_host": True,                     # per-MX-host (DANE / host no-policy-found) result
     "send_report": True,                 # is this result a reason to send a report
     "results": [Result, ...]}            # moxcli.tlsrpt.report.Result (or its to_json() dict)

Stored record (table TLS_RESULT, key ``text_key(day_utc, policy_domain, recipient_domain)``):
``id`` (sequence ``tlsresult``, insertion order), ``day_utc``, ``policy_domain``,
``recipient_domain``, ``created``, ``updated``, ``is_host``, ``send_report``,
``sent_to_recipient_domain``, ``recipient_domain_reporting_addresses`` (mailto rua strings at
the time the recipient-domain report was composed, for the host-report dedupe),
``sent_to_policy_domain``, ``results`` (list of results, each packed as a positional list
``[policy_type, policy_strings, policy_domain, mx_hosts, success, failure, details]`` with
each detail ``[result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo,
receiving_ip, failed_session_count, additional_information, failure_reason_code]``: small
records that decode fast; :class:`ResultRow` hands out :class:`Result` objects).
Index TLS_RESULT_BY_RCPT, key ``text_key(day_utc, recipient_domain, policy_domain)``, value
one byte: the row's send_report flag (so the sender partitions keys without decoding rows).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from moxcli import jsonfmt
from moxcli.domain import DomainError, parse_domain
from moxcli.store.env import Store, Txn, decode, record_reader
from moxcli.store.schema import SEP, TLS_RESULT, TLS_RESULT_BY_RCPT, prefix_key, split_key, text_key
from moxcli.tlsrpt.report import Result, merge, pack_result, unpack_result
from moxcli.values import dataclass, field

SEQUENCE = "tlsresult"
_DROP_EVERY = 8192  # index entries read between drops of the store pages (report_keys)


@dataclass(slots=True)
class ResultRow:
    """A stored TLS result row (docs/behaviour-notes.md §2.1)."""

    id: int
    day_utc: str
    policy_domain: str
    recipient_domain: str
    is_host: bool
    send_report: bool
    results: list[Result] = field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    sent_to_recipient_domain: bool = False
    recipient_domain_reporting_addresses: list[str] = field(default_factory=list)
    sent_to_policy_domain: bool = False

    def to_record(self) -> dict[str, Any]:
        return _stored_map(self, [pack_result(r) for r in self.results])

    def to_json(self) -> dict[str, Any]:
        """The contract form (docs/json.md): `day` as YYYY-MM-DD, times RFC 3339; results as in RFC 8460."""
        d = self.to_record()
        del d["day_utc"]
        return {
            "id": d.pop("id"),
            "day": jsonfmt.day(self.day_utc),
            **d,
            "policy_domain": jsonfmt.a_label(self.policy_domain),
            "recipient_domain": jsonfmt.a_label(self.recipient_domain),
            "created": jsonfmt.rfc3339(self.created),
            "updated": jsonfmt.rfc3339(self.updated),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ResultRow:
        return PackedRow.from_record(rec).unpacked()


@dataclass(slots=True)
class PackedRow:
    """A stored row with its results still packed (the positional lists of the module doc):
    the report job merges packed results without making Result objects. Not frozen: the job
    rewrites the results it just read, and marking a row sent sets its flags."""

    id: int
    day_utc: str
    policy_domain: str
    recipient_domain: str
    is_host: bool
    send_report: bool
    results: list[list[Any]]
    created: float
    updated: float
    sent_to_recipient_domain: bool
    recipient_domain_reporting_addresses: list[str]
    sent_to_policy_domain: bool

    def to_record(self) -> dict[str, Any]:
        return _stored_map(self, self.results)

    @classmethod
    @record_reader(TLS_RESULT)
    def from_record(cls, rec: Mapping[str, Any]) -> PackedRow:
        return cls(
            rec["id"],
            rec["day_utc"],
            rec["policy_domain"],
            rec["recipient_domain"],
            bool(rec.get("is_host")),
            bool(rec.get("send_report")),
            list(rec.get("results", [])),
            rec.get("created", 0.0),
            rec.get("updated", 0.0),
            bool(rec.get("sent_to_recipient_domain")),
            list(rec.get("recipient_domain_reporting_addresses", [])),
            bool(rec.get("sent_to_policy_domain")),
        )

    @record_reader(TLS_RESULT)
    def unpacked(self) -> ResultRow:
        """The row with Result objects."""
        return ResultRow(
            id=self.id,
            day_utc=self.day_utc,
            policy_domain=self.policy_domain,
            recipient_domain=self.recipient_domain,
            is_host=self.is_host,
            send_report=self.send_report,
            results=[unpack_result(r) for r in self.results],
            created=self.created,
            updated=self.updated,
            sent_to_recipient_domain=self.sent_to_recipient_domain,
            recipient_domain_reporting_addresses=list(self.recipient_domain_reporting_addresses),
            sent_to_policy_domain=self.sent_to_policy_domain,
        )


def _stored_map(row: ResultRow | PackedRow, packed_results: list[Any]) -> dict[str, Any]:
    """The stored map of a row; both views store the same keys (results packed)."""
    return {
        "id": row.id,
        "day_utc": row.day_utc,
        "policy_domain": row.policy_domain,
        "recipient_domain": row.recipient_domain,
        "created": row.created,
        "updated": row.updated,
        "is_host": row.is_host,
        "send_report": row.send_report,
        "sent_to_recipient_domain": row.sent_to_recipient_domain,
        "recipient_domain_reporting_addresses": list(row.recipient_domain_reporting_addresses),
        "sent_to_policy_domain": row.sent_to_policy_domain,
        "results": packed_results,
    }


def day_utc(t: float | None = None) -> str:
    """``YYYYMMDD`` of the UTC day of unix time ``t`` (default now)."""
    return time.strftime("%Y%m%d", time.gmtime(time.time() if t is None else t))


def _name(domain: str) -> str:
    """Domains are stored as Unicode names (docs/behaviour-notes.md §2.1); MX names may hold '_' (lax)."""
    try:
        return parse_domain(domain, lax=True).name
    except DomainError:
        return domain.lower()


def _flag(send_report: bool) -> bytes:
    return b"\x01" if send_report else b"\x00"


def add_results(
    tx: Txn, day: str, recipient_domain: str, rows: Iterable[Mapping[str, Any]], now: float | None = None
) -> None:
    """Record the results of one delivery attempt: insert or merge per row (docs/behaviour-notes.md §2.1).

    A new (day, policy_domain, recipient_domain) is inserted; an existing one gets the results
    merged (docs/behaviour-notes.md §1.5), ``is_host`` overwritten, ``send_report`` OR-ed and ``updated`` set.
    Rows whose results are all of empty policy type are skipped (docs/behaviour-notes.md §2.2).
    """
    t = time.time() if now is None else now
    rcpt = _name(recipient_domain)
    for row in rows:
        results = [r if isinstance(r, Result) else Result.from_json(r) for r in row.get("results", [])]
        results = [r for r in results if r.policy.type]
        if not results:
            continue
        policy = _name(row["policy_domain"])
        is_host = bool(row.get("is_host"))
        send = bool(row.get("send_report"))
        key = text_key(day, policy, rcpt)
        rec = tx.get(TLS_RESULT, key)
        if rec is None:
            stored = ResultRow(
                id=tx.next_id(SEQUENCE),
                day_utc=day,
                policy_domain=policy,
                recipient_domain=rcpt,
                is_host=is_host,
                send_report=send,
                created=t,
                updated=t,
            )
            merge(stored.results, *results)
        else:
            stored = ResultRow.from_record(rec)
            merge(stored.results, *results)
            stored.is_host = is_host
            stored.send_report = stored.send_report or send
            stored.updated = t
        tx.put(TLS_RESULT, key, stored.to_record())
        tx.put_raw(TLS_RESULT_BY_RCPT, text_key(day, rcpt, policy), _flag(stored.send_report))


@dataclass(frozen=True)
class ReportKey:
    """One report to consider (docs/behaviour-notes.md §2.4): a policy domain on a day, and whether it is due."""

    day_utc: str
    policy_domain: str
    send_report: bool


def report_keys(tx: Txn, through_day: str, store: Store | None = None) -> tuple[list[ReportKey], list[ReportKey]]:
    """Keys of rows with day_utc <= through_day: (recipient-domain keys, host keys) (docs/behaviour-notes.md §2.4).

    Recipient-domain keys come from rows whose policy domain equals the recipient domain, all
    others are host keys; each key's flag ORs the send_report of its rows in that partition.
    Reads only the index (no row decoding): memory grows with keys, not with results. With
    ``store``, the store pages read are dropped from memory as the scan goes.
    """
    rcpt: dict[tuple[bytes, bytes], bool] = {}
    host: dict[tuple[bytes, bytes], bool] = {}
    limit = through_day.encode()
    ranges = store.mapped_ranges() if store is not None else []
    for n, (k, v) in enumerate(tx.scan_raw(TLS_RESULT_BY_RCPT)):
        if store is not None and ranges and n % _DROP_EVERY == _DROP_EVERY - 1:
            store.drop_read_pages(ranges)
        day, rdom, pdom = k.split(SEP)
        if day > limit:
            break
        target = rcpt if rdom == pdom else host
        if v == b"\x01":
            target[day, pdom] = True
        else:
            target.setdefault((day, pdom), False)
    return _keys(rcpt), _keys(host)


def _keys(flags: dict[tuple[bytes, bytes], bool]) -> list[ReportKey]:
    return [ReportKey(day.decode(), pdom.decode(), flag) for (day, pdom), flag in sorted(flags.items())]


def packed_rows_for_recipient_domain(tx: Txn, day: str, recipient_domain: str) -> list[PackedRow]:
    """Rows (results packed) of a recipient domain on a day, by id.

    The fast path for the report job; :func:`rows_for_recipient_domain` gives Result objects.
    """
    rcpt = _name(recipient_domain)
    rows = []
    for k, _ in tx.scan_raw(TLS_RESULT_BY_RCPT, prefix_key(day, rcpt)):
        pdom = k.split(SEP)[2].decode()
        rec = tx.get(TLS_RESULT, text_key(day, pdom, rcpt))
        if rec is not None:
            rows.append(PackedRow.from_record(rec))
    rows.sort(key=lambda r: r.id)
    return rows


def packed_rows_for_policy_domain(tx: Txn, day: str, policy_domain: str) -> list[PackedRow]:
    """Rows (results packed) of a policy domain on a day, by recipient domain name byte-wise."""
    prefix = prefix_key(day, _name(policy_domain))
    return [PackedRow.from_record(decode(TLS_RESULT, k, v)) for k, v in tx.scan_raw(TLS_RESULT, prefix)]


def rows_for_recipient_domain(tx: Txn, day: str, recipient_domain: str) -> list[ResultRow]:
    """All rows of a recipient domain on a day, in insertion order (recipient-domain report)."""
    return [r.unpacked() for r in packed_rows_for_recipient_domain(tx, day, recipient_domain)]


def rows_for_policy_domain(tx: Txn, day: str, policy_domain: str) -> list[ResultRow]:
    """All rows of a policy domain on a day, by recipient domain name byte-wise (host report)."""
    return [r.unpacked() for r in packed_rows_for_policy_domain(tx, day, policy_domain)]


def _put_packed(tx: Txn, row: PackedRow) -> None:
    tx.put(TLS_RESULT, text_key(row.day_utc, row.policy_domain, row.recipient_domain), row.to_record())


def mark_sent_recipient_domain(tx: Txn, day: str, recipient_domain: str, addresses: list[str]) -> int:
    """Spec §2.5 step 10: the recipient-domain report is composed for these mailto rua strings."""
    rows = packed_rows_for_recipient_domain(tx, day, recipient_domain)
    for row in rows:
        row.sent_to_recipient_domain = True
        row.recipient_domain_reporting_addresses = list(addresses)
        _put_packed(tx, row)
    return len(rows)


def mark_sent_policy_domain(tx: Txn, day: str, policy_domain: str) -> int:
    """Spec §2.5 step 10: the host report of this policy domain is composed."""
    rows = packed_rows_for_policy_domain(tx, day, policy_domain)
    for row in rows:
        row.sent_to_policy_domain = True
        _put_packed(tx, row)
    return len(rows)


def delete_policy_domain(tx: Txn, day: str, policy_domain: str) -> int:
    """Remove the rows of (day, policy_domain) and their index entries (docs/behaviour-notes.md §2.4 step 5)."""
    pdom = _name(policy_domain)
    keys = [k for k, _ in tx.scan_raw(TLS_RESULT, prefix_key(day, pdom))]
    for k in keys:
        _, _, rdom = split_key(k)
        tx.delete(TLS_RESULT, k)
        tx.delete(TLS_RESULT_BY_RCPT, text_key(day, rdom, pdom))
    return len(keys)


def delete_before(tx: Txn, day: str) -> int:
    """Remove stale rows: day_utc < day (string compare, docs/behaviour-notes.md §2.3)."""
    n = 0
    for table in (TLS_RESULT, TLS_RESULT_BY_RCPT):
        keys = []
        for k, _ in tx.scan_raw(table):
            if k[:8].decode() >= day:
                break
            keys.append(k)
        for k in keys:
            tx.delete(table, k)
        if table is TLS_RESULT:
            n = len(keys)
    return n


def iter_rows(tx: Txn, day: str | None = None, policy_domain: str | None = None) -> Iterator[ResultRow]:
    """Stored rows in key order, optionally of one day and/or one policy domain (for listing)."""
    if day is not None and policy_domain is not None:
        prefix = prefix_key(day, _name(policy_domain))
    elif day is not None:
        prefix = prefix_key(day)
    else:
        prefix = b""
    pdom = _name(policy_domain) if policy_domain is not None else None
    for _, rec in tx.scan(TLS_RESULT, prefix):
        if pdom is None or rec["policy_domain"] == pdom:
            yield ResultRow.from_record(rec)


def count(tx: Txn) -> int:
    return tx.count(TLS_RESULT)

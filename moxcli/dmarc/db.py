"""DMARC evaluations through the store (the input of outgoing aggregate reports).

The feature encodes and decodes its own records on the generic store (store/ knows no
feature types): table DMARC_EVAL, key ``text_key(policy_domain, id)``, record
``Evaluation.to_record()``; ids come from sequence ``dmarceval``, so they also order rows by
arrival. A batch is validated first and then committed once, so a bad line leaves the store
as it was. Received reports live in moxcli.reports.incoming_dmarc.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from moxcli.config import Config
from moxcli.dmarc.evaluation import Evaluation, EvaluationError, parse_lines
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.jsonfmt import a_label
from moxcli.store import Store
from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import DMARC_EVAL, prefix_key, split_key, text_key
from moxcli.values import dataclass

SEQUENCE = "dmarceval"

# A stored evaluation with missing or mistyped fields: one line (StoreError), not a traceback.
_evaluation = record_reader(DMARC_EVAL)(Evaluation.from_record)


def add_evaluations(tx: Txn, evals: Iterable[Evaluation]) -> list[int]:
    """Store evaluations (their ``id`` is ignored); returns the ids they are stored under."""
    ids = []
    for e in evals:
        n = tx.next_id(SEQUENCE)
        tx.put(DMARC_EVAL, text_key(e.policy_domain, n), e.to_record())
        ids.append(n)
    return ids


def evaluations(tx: Txn, policy_domain: str | None = None) -> Iterator[Evaluation]:
    """The stored evaluations (with their ids) of one policy domain in id order, or of all
    (by domain, then id)."""
    prefix = prefix_key(policy_domain) if policy_domain is not None else b""
    for key, rec in tx.scan(DMARC_EVAL, prefix):
        yield _evaluation(rec, int(split_key(key, (1,))[1]))


def policy_domains(tx: Txn) -> list[str]:
    """Distinct policy domains with stored evaluations (skips over each domain's rows)."""
    out: list[str] = []
    start = None
    while True:
        key = next((k for k, _ in tx.scan_raw(DMARC_EVAL, start=start)), None)
        if key is None:
            return out
        domain = str(split_key(key, (1,))[0])
        out.append(domain)
        start = prefix_key(domain)[:-1] + b"\x01"


def delete_evaluations(tx: Txn, policy_domain: str, ids: Iterable[int]) -> int:
    n = 0
    for i in ids:
        n += tx.delete(DMARC_EVAL, text_key(policy_domain, i))
    return n


def delete_older_than(tx: Txn, cutoff: float) -> int:
    """Remove evaluations evaluated before ``cutoff`` (unix seconds)."""
    stale = [key for key, rec in tx.scan(DMARC_EVAL) if _evaluation(rec).evaluated < cutoff]
    for k in stale:
        tx.delete(DMARC_EVAL, k)
    return len(stale)


def count_evaluations(tx: Txn) -> int:
    return tx.count(DMARC_EVAL)


def record_evaluations(
    store: Store, config: Config, lines: Iterable[bytes | str], source: str = "-", now: float | None = None
) -> list[int]:
    """Validate a JSON-lines batch of evaluations and store all of it in one transaction."""
    if config.no_outgoing_dmarc_reports:
        raise UsageError("no_outgoing_dmarc_reports is set in the config: DMARC evaluations are not recorded")
    try:
        evals = parse_lines(lines, time.time() if now is None else now, source)
    except EvaluationError as exc:
        raise UsageError(str(exc)) from None
    if not evals:
        return []
    return store.update(lambda tx: add_evaluations(tx, evals))


def list_evaluations(store: Store, policy_domain: str | None = None) -> list[Evaluation]:
    """Evaluations waiting for a report, by domain then id."""
    name = None
    if policy_domain is not None:
        try:
            name = parse_domain(policy_domain).name
        except DomainError as exc:
            raise UsageError(f"invalid domain {policy_domain!r}: {exc}", code="bad-domain") from None
    with store.read() as tx:
        return list(evaluations(tx, name))


@dataclass(frozen=True)
class EvaluationStats:
    """What waits for a report about one policy domain (mox's EvaluationStats)."""

    policy_domain: str
    count: int
    dispositions: tuple[str, ...]  # in the order first seen
    send_report: bool  # some evaluation is not optional

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_domain": a_label(self.policy_domain),  # docs/json.md: A-labels
            "count": self.count,
            "dispositions": list(self.dispositions),
            "send_report": self.send_report,
        }


def evaluation_stats(store: Store) -> list[EvaluationStats]:
    """Per policy domain (in domain order): number of evaluations, dispositions seen, and
    whether a report will be sent (some evaluation is not optional)."""
    by_domain: dict[str, list[Evaluation]] = {}
    for e in list_evaluations(store):
        by_domain.setdefault(e.policy_domain, []).append(e)
    return [
        EvaluationStats(
            domain,
            len(evals),
            tuple(dict.fromkeys(e.disposition for e in evals)),
            any(not e.optional for e in evals),
        )
        for domain, evals in by_domain.items()
    ]

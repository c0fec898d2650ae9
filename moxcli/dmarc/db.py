"""DMARC evaluations through the store (the input of outgoing aggregate reports).

A batch is validated first and then committed once, so a bad line leaves the store as it was.
Received reports live in moxcli.reports.incoming_dmarc.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from moxcli.config import Config
from moxcli.dmarc.evaluation import Evaluation, EvaluationError, parse_lines
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.store import Store
from moxcli.store import dmarc as dstore
from moxcli.store.env import record_reader
from moxcli.store.schema import DMARC_EVAL

# A stored evaluation with missing or mistyped fields: one line (StoreError), not a traceback.
_evaluation = record_reader(DMARC_EVAL)(Evaluation.from_record)


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
    return store.update(lambda tx: dstore.add_evaluations(tx, [e.to_record() for e in evals]))


def list_evaluations(store: Store, policy_domain: str | None = None) -> list[Evaluation]:
    """Evaluations waiting for a report, by domain then id."""
    name = None
    if policy_domain is not None:
        try:
            name = parse_domain(policy_domain).name
        except DomainError as exc:
            raise UsageError(f"invalid domain {policy_domain!r}: {exc}", code="bad-domain") from None
    with store.read() as tx:
        return [_evaluation(r, i) for i, r in dstore.evaluations(tx, name)]


def evaluation_stats(store: Store) -> dict[str, dict[str, Any]]:
    """Per policy domain: number of evaluations, dispositions seen, and whether a report will be
    sent (some evaluation is not optional) — mox's EvaluationStats."""
    out: dict[str, dict[str, Any]] = {}
    for e in list_evaluations(store):
        st = out.setdefault(e.policy_domain, {"count": 0, "dispositions": [], "send_report": False})
        st["count"] += 1
        if e.disposition not in st["dispositions"]:
            st["dispositions"].append(e.disposition)
        st["send_report"] = st["send_report"] or not e.optional
    return out

"""The MTA-STS policy cache records (docs/behaviour-notes.md §4.5, mox's mtastsdb PolicyRecord).

The feature encodes and decodes its own records on the generic store (store/ knows no feature
types).

Table MTASTS_POLICY, key ``text_key(domain)`` (Unicode name). Record fields: ``domain``,
``inserted``, ``valid_end``, ``last_update``, ``last_use`` (unix seconds), ``backoff`` (a
failed first fetch: act as if there is no policy until ``valid_end``), ``record_id`` (the
``id`` from DNS), ``policy`` (``version``, ``mode``, ``max_age``, ``mx`` as ``[*.]ascii``,
``extensions`` as ``[key, value]`` pairs) and ``policy_text`` (the text as fetched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moxcli import jsonfmt
from moxcli.errors import StoreError
from moxcli.mtasts.policy import Policy, PolicyParseError, parse_mx
from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import MTASTS_POLICY, text_key
from moxcli.values import dataclass


@dataclass
class PolicyRow:
    domain: str
    inserted: float
    valid_end: float
    last_update: float
    last_use: float
    backoff: bool
    record_id: str
    policy: Policy
    policy_text: str = ""

    def to_record(self) -> dict[str, Any]:
        p = self.policy
        return {
            "domain": self.domain,
            "inserted": self.inserted,
            "valid_end": self.valid_end,
            "last_update": self.last_update,
            "last_use": self.last_use,
            "backoff": self.backoff,
            "record_id": self.record_id,
            "policy": {
                "version": p.version,
                "mode": p.mode,
                "max_age": p.max_age,
                "mx": [m.ascii for m in p.mx],
                "extensions": [list(e) for e in p.extensions],
            },
            "policy_text": self.policy_text,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "mode": self.policy.mode,
            "mx": [str(m) for m in self.policy.mx],
            "max_age": self.policy.max_age,
            "record_id": self.record_id,
            "backoff": self.backoff,
            "valid_end": jsonfmt.rfc3339(self.valid_end),
            "last_update": jsonfmt.rfc3339(self.last_update),
            "last_use": jsonfmt.rfc3339(self.last_use),
            "inserted": jsonfmt.rfc3339(self.inserted),
            "policy_text": self.policy_text or None,
        }

    @classmethod
    @record_reader(MTASTS_POLICY)
    def from_record(cls, rec: Mapping[str, Any]) -> PolicyRow:
        p = rec["policy"]
        try:
            mx = tuple(parse_mx(m) for m in p.get("mx", []))
        except PolicyParseError as exc:
            raise StoreError(f"table {MTASTS_POLICY.name}: record {rec.get('domain')!r}: {exc}") from None
        policy = Policy(
            p["version"], p["mode"], int(p["max_age"]), mx, tuple((k, v) for k, v in p.get("extensions", []))
        )
        return cls(
            domain=rec["domain"],
            inserted=float(rec["inserted"]),
            valid_end=float(rec["valid_end"]),
            last_update=float(rec["last_update"]),
            last_use=float(rec["last_use"]),
            backoff=bool(rec.get("backoff")),
            record_id=rec.get("record_id", ""),
            policy=policy,
            policy_text=rec.get("policy_text", ""),
        )


def get(tx: Txn, domain: str) -> PolicyRow | None:
    """The row of a domain (Unicode name), valid or not."""
    rec = tx.get(MTASTS_POLICY, text_key(domain))
    return None if rec is None else PolicyRow.from_record(rec)


def put(tx: Txn, row: PolicyRow) -> None:
    tx.put(MTASTS_POLICY, text_key(row.domain), row.to_record())


def delete(tx: Txn, domain: str) -> bool:
    return tx.delete(MTASTS_POLICY, text_key(domain))


def rows(tx: Txn) -> list[PolicyRow]:
    """Every row, in domain order."""
    return [PolicyRow.from_record(rec) for _, rec in tx.scan(MTASTS_POLICY)]

"""Helpers of the TLS report tests (no tests here): the send scenarios' vectors and TLS results.

docs/behaviour-notes.md §2.9: six scenarios of the daily report job, with the TLS results in
the database, the TLSRPT records of the DNS and the suppression list of each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers.dns import FakeResolver
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tstore

VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "vectors"
V = json.loads((VECTORS / "tlsrptsend_scenarios.json").read_text())
SCENARIOS: list[dict[str, Any]] = V["scenarios"]
NOW = datetime(2024, 3, 2, 10, 0, tzinfo=UTC).timestamp()
DAY = "20240301"


def secure_dns(txt: dict[str, Any], **kw: Any) -> FakeResolver:
    """The scenarios' TLSRPT records, DNSSEC-secure."""
    return FakeResolver(txt, authentic=True, **kw)


def subst(obj: Any) -> Any:
    """The vectors' placeholders of the report day filled in."""
    s = json.dumps(obj, ensure_ascii=False)
    s = (
        s.replace("<DAY>", DAY)
        .replace("<ENDUTC-24h, RFC3339 Z>", "2024-03-01T00:00:00Z")
        .replace("<ENDUTC-1s, RFC3339 Z>", "2024-03-01T23:59:59Z")
    )
    return json.loads(s)


def result_rows(which: str, success_only: bool = False) -> list[dict[str, Any]]:
    """The scenarios' TLS results ("all 6" or "first 2"), optionally without failures."""
    rows = subst(V["tls_results_in_db"])
    if which.startswith("first 2"):
        rows = rows[:2]
    if success_only:
        for r in rows:
            for res in r["Results"]:
                res["summary"]["total-failure-session-count"] = 0
                res["failure-details"] = []
    return rows


def load_rows(store: Store, rows: list[dict[str, Any]]) -> None:
    """Store the TLS results as delivery would have, an hour before NOW."""
    with store.write() as tx:
        for r in rows:
            tstore.add_results(
                tx,
                r["DayUTC"],
                r["RecipientDomain"],
                [
                    {
                        "policy_domain": r["PolicyDomain"],
                        "is_host": r["IsHost"],
                        "send_report": r["SendReport"],
                        "results": r["Results"],
                    }
                ],
                now=NOW - 3600,
            )

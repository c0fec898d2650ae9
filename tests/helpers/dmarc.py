"""Helpers of the DMARC tests (no tests here): a scripted resolver, the vector evaluation, queue reading."""

from __future__ import annotations

import copy
import email
import email.policy
import gzip
import json
import time
from pathlib import Path
from typing import Any

from helpers.dns import TxtResolver

VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "vectors" / "dmarc_reports.json"


def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


# The DMARC tests' resolver: TXT records from a table, answers not DNSSEC-authentic.
FakeResolver = TxtResolver


def hour(now: float | None = None) -> int:
    return int(time.time() if now is None else now) // 3600 * 3600


def vector_eval(end: float, **changes: Any) -> dict[str, Any]:
    """The `eval` of the send scenarios in the JSON-lines contract (evaluated end-30min)."""
    v = vectors()["send_scenarios"]["eval"]
    pp = v["PolicyPublished"]
    ev = {
        "policy_domain": v["PolicyDomain"],
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 1800)),
        "optional": v["Optional"],
        "interval_hours": v["IntervalHours"],
        "addresses": v["Addresses"],
        "policy_published": {
            "domain": pp["Domain"],
            "adkim": pp["ADKIM"],
            "aspf": pp["ASPF"],
            "p": pp["Policy"],
            "sp": pp["SubdomainPolicy"],
            "pct": pp["Percentage"],
        },
        "source_ip": v["SourceIP"],
        "disposition": v["Disposition"],
        "aligned_dkim_pass": v["AlignedDKIMPass"],
        "aligned_spf_pass": v["AlignedSPFPass"],
        "envelope_to": v["EnvelopeTo"],
        "envelope_from": v["EnvelopeFrom"],
        "header_from": v["HeaderFrom"],
        "dkim_results": [
            {"domain": r["Domain"], "selector": r["Selector"], "result": r["Result"]} for r in v["DKIMResults"]
        ],
        "spf_results": [{"domain": r["Domain"], "scope": r["Scope"], "result": r["Result"]} for r in v["SPFResults"]],
    }
    ev = copy.deepcopy(ev)
    ev.update(changes)
    return ev


def queued(store: Any, data_dir: Path) -> list[tuple[Any, bytes]]:
    """(QueueMsg, message bytes) of everything in the queue."""
    from moxcli.delivery.queue import list_messages, message_bytes

    return [(m, message_bytes(data_dir, m)) for m in list_messages(store)]


def report_xml(message: bytes) -> bytes:
    """The gunzipped XML attachment of a report message."""
    msg = email.message_from_bytes(message, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_type() == "application/gzip":
            return gzip.decompress(part.get_payload(decode=True))
    raise AssertionError("no gzip attachment")

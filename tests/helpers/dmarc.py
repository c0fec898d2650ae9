"""Helpers of the DMARC tests (no tests here): the vector evaluation, queue reading."""

from __future__ import annotations

import copy
import email
import email.policy
import gzip
import json
import time
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "vectors" / "dmarc_reports.json"


def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


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


def report_summary(fb: Any) -> dict[str, Any]:
    """A parsed aggregate report in the shape of the expectation files (the vectors'
    ``incoming_report_samples`` cases and testdata/realworld/dmarc/expect.json): metadata,
    published policy (``sp`` None when absent) and the records' main fields."""
    m, p = fb.metadata, fb.policy
    return {
        "org_name": m.org_name,
        "email": m.email,
        "report_id": m.report_id,
        "begin": m.begin,
        "end": m.end,
        "policy_domain": p.domain,
        "p": p.p,
        "sp": p.sp or None,
        "pct": p.pct,
        "adkim": p.adkim,
        "aspf": p.aspf,
        "records": [
            {k: getattr(r, k) for k in ("source_ip", "count", "disposition", "dkim", "spf", "header_from")}
            for r in fb.records
        ],
    }


def expected_summary(case: dict[str, Any]) -> dict[str, Any]:
    """The fields of an expectation case that report_summary produces (cases carry more, e.g. the file name)."""
    keys = ("org_name", "email", "report_id", "begin", "end", "policy_domain", "p", "sp", "pct", "adkim", "aspf")
    return {**{k: case[k] for k in keys}, "records": case["records"]}

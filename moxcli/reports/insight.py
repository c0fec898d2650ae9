"""What the received reports say over time: TLS and DMARC summaries (``tlsreports summary``,
``dmarcreports summary``, ``reports html``).

One pass over the stored reports (or over one policy domain's, through the domain index)
adds every report into the groupings. A report counts on the UTC day its date range starts
(RFC 8460 §4.4 and RFC 7489 §7.2.1.1 reports cover one UTC day as a rule). ``since`` and
``until`` are inclusive UTC days.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from moxcli.domain import DomainError, parse_domain
from moxcli.errors import UsageError
from moxcli.store import Store
from moxcli.store import dmarc as dstore
from moxcli.store import tlsreports as tstore
from moxcli.values import dataclass, field

SPARK = "▁▂▃▄▅▆▇█"


def parse_day(option: str, value: str | None) -> date | None:
    """A ``--since``/``--until`` value: ``YYYY-MM-DD`` (or an RFC 3339 time, its UTC day)."""
    if value is None:
        return None
    s = value.strip()
    try:
        if len(s) == 10:
            return date.fromisoformat(s)
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).date()
    except ValueError:
        raise UsageError(f"{option} {value!r}: expected YYYY-MM-DD", code="bad-day") from None


def _domain_name(domain: str | None) -> str | None:
    if domain is None:
        return None
    try:
        return parse_domain(domain, lax=True).name
    except DomainError as exc:
        raise UsageError(f"invalid domain {domain!r}: {exc}", code="bad-domain") from None


def _a_label(name: str) -> str:
    try:
        return parse_domain(name, lax=True).ascii
    except DomainError:
        return name


def sparkline(values: Iterable[float]) -> str:
    """One block character per value, scaled to the largest (all blank-low when all are 0)."""
    vals = list(values)
    top = max(vals, default=0)
    if top <= 0:
        return SPARK[0] * len(vals)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in vals)


def days_between(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def _in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def _counter(d: dict[Any, dict[str, int]], key: Any, **add: int) -> None:
    row = d.setdefault(key, {})
    for k, v in add.items():
        row[k] = row.get(k, 0) + v


def _sorted_rows(
    d: dict[Any, dict[str, int]], name: str, order: str, limit: int | None = None, zero: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """Rows ``{name: key, **counts}``, largest ``order`` first (ties by key), at most ``limit``."""
    rows = [{name: k, **(zero or {}), **v} for k, v in d.items()]
    rows.sort(key=lambda r: (-r.get(order, 0), str(r[name])))
    return rows[:limit] if limit else rows


def _filled_days(by_day: dict[date, dict[str, int]], zero: dict[str, int]) -> list[dict[str, Any]]:
    """Every day from the first to the last with data, in order (missing days as zeros)."""
    if not by_day:
        return []
    return [{"day": d.isoformat(), **zero, **by_day.get(d, {})} for d in days_between(min(by_day), max(by_day))]


# --- TLS -----------------------------------------------------------------------------------


@dataclass
class TLSSummary:
    since: date | None
    until: date | None
    domain: str | None
    reports: int = 0
    successful_sessions: int = 0
    failed_sessions: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    result_types: list[dict[str, Any]] = field(default_factory=list)
    policy_domains: list[dict[str, Any]] = field(default_factory=list)
    failing_hosts: list[dict[str, Any]] = field(default_factory=list)
    domain_days: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "domain": _a_label(self.domain) if self.domain else None,
            "reports": self.reports,
            "successful_sessions": self.successful_sessions,
            "failed_sessions": self.failed_sessions,
            "days": self.days,
            "organizations": self.organizations,
            "result_types": self.result_types,
            "policy_domains": self.policy_domains,
            "failing_hosts": self.failing_hosts,
        }


def _tls_records(store: Store, name: str | None) -> Iterator[tstore.StoredTLSReport]:
    with store.read() as tx:
        if name is None:
            yield from tstore.scan(tx, newest_first=False)
            return
        for rid in tstore.ids_for_domain(tx, name):
            rec = tstore.get(tx, rid)
            if rec is not None:
                yield rec


def _report_day(text: str) -> date | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
    except (ValueError, AttributeError):
        return None


def tls_summary(
    store: Store, since: date | None = None, until: date | None = None, domain: str | None = None, top: int = 20
) -> TLSSummary:
    """Sessions and failures of the stored TLS reports by day, organisation, result type, policy
    domain and failing MX host/IP (only the policies of ``domain`` when given)."""
    name = _domain_name(domain)
    out = TLSSummary(since, until, name)
    by_day: dict[date, dict[str, int]] = {}
    by_org: dict[str, dict[str, int]] = {}
    by_type: dict[str, dict[str, int]] = {}
    by_domain: dict[str, dict[str, int]] = {}
    by_host: dict[tuple[str, str, str], dict[str, int]] = {}
    by_domain_day: dict[str, dict[date, dict[str, int]]] = {}
    for stored in _tls_records(store, name):
        rep = stored.report
        day = _report_day(rep.get("date-range", {}).get("start-datetime", ""))
        if day is None or not _in_range(day, since, until):
            continue
        ours = set(stored.policy_domains)
        org = rep.get("organization-name", "")
        counted = False
        for pol in rep.get("policies", []):
            pdom = pol.get("policy", {}).get("policy-domain", "")
            pname = _domain_key(pdom)
            if pname not in ours or (name is not None and pname != name):
                continue
            counted = True
            ok = int(pol.get("summary", {}).get("total-successful-session-count", 0))
            bad = int(pol.get("summary", {}).get("total-failure-session-count", 0))
            out.successful_sessions += ok
            out.failed_sessions += bad
            _counter(by_day, day, successful_sessions=ok, failed_sessions=bad)
            _counter(by_org, org, successful_sessions=ok, failed_sessions=bad)
            _counter(by_domain, pname, successful_sessions=ok, failed_sessions=bad)
            _counter(by_domain_day.setdefault(pname, {}), day, successful_sessions=ok, failed_sessions=bad)
            for d in pol.get("failure-details", []):
                n = int(d.get("failed-session-count", 0))
                _counter(by_type, d.get("result-type", ""), failed_sessions=n)
                host = (d.get("receiving-mx-hostname", ""), d.get("receiving-ip", ""), d.get("result-type", ""))
                _counter(by_host, host, failed_sessions=n)
        if counted:
            out.reports += 1
            _counter(by_day, day, reports=1)
            _counter(by_org, org, reports=1)
    zero = {"reports": 0, "successful_sessions": 0, "failed_sessions": 0}
    out.days = _filled_days(by_day, zero)
    out.organizations = _sorted_rows(by_org, "organization_name", "failed_sessions", top or None, zero)
    out.result_types = _sorted_rows(by_type, "result_type", "failed_sessions")
    out.policy_domains = [
        {"successful_sessions": 0, "failed_sessions": 0, **r, "policy_domain": _a_label(r["policy_domain"])}
        for r in _sorted_rows(by_domain, "policy_domain", "failed_sessions")
    ]
    hosts = sorted(by_host.items(), key=lambda kv: (-kv[1]["failed_sessions"], kv[0]))
    out.failing_hosts = [
        {
            "receiving_mx_hostname": h[0] or None,
            "receiving_ip": h[1] or None,
            "result_type": h[2],
            "failed_sessions": v["failed_sessions"],
        }
        for h, v in hosts[: top or None]
    ]
    zd = {"successful_sessions": 0, "failed_sessions": 0}
    out.domain_days = {_a_label(k): _filled_days(v, zd) for k, v in sorted(by_domain_day.items())}
    return out


def _domain_key(text: str) -> str:
    try:
        return parse_domain(text, lax=True).name
    except DomainError:
        return text


# --- DMARC ---------------------------------------------------------------------------------


@dataclass
class DMARCSummary:
    since: date | None
    until: date | None
    domain: str | None
    reports: int = 0
    messages: int = 0
    dmarc_pass: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    source_ips: list[dict[str, Any]] = field(default_factory=list)
    dispositions: list[dict[str, Any]] = field(default_factory=list)
    alignment: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "domain": _a_label(self.domain) if self.domain else None,
            "reports": self.reports,
            "messages": self.messages,
            "dmarc_pass": self.dmarc_pass,
            "dmarc_fail": self.messages - self.dmarc_pass,
            "days": self.days,
            "organizations": self.organizations,
            "source_ips": self.source_ips,
            "dispositions": self.dispositions,
            "alignment": self.alignment,
        }


def dmarc_summary(
    store: Store, since: date | None = None, until: date | None = None, domain: str | None = None, top: int = 20
) -> DMARCSummary:
    """Messages of the stored DMARC reports by day, organisation, source IP and disposition,
    with the DKIM/SPF alignment breakdown (``policy_evaluated`` dkim and spf are the aligned
    results, RFC 7489 §7.2.1.1; DMARC passes when either passes, RFC 7489 §3)."""
    name = _domain_name(domain)
    out = DMARCSummary(since, until, name)
    by_day: dict[date, dict[str, int]] = {}
    by_org: dict[str, dict[str, int]] = {}
    by_ip: dict[str, dict[str, int]] = {}
    by_disp: dict[str, dict[str, int]] = {}
    align = {"dkim_and_spf": 0, "dkim_only": 0, "spf_only": 0, "neither": 0}
    with store.read() as tx:
        for stored in dstore.list_reports(tx, name):
            day = datetime.fromtimestamp(stored.begin, UTC).date()
            if not _in_range(day, since, until):
                continue
            out.reports += 1
            org = stored.org_name
            _counter(by_day, day, reports=1)
            _counter(by_org, org, reports=1)
            for r in stored.report.get("records", []):
                n = int(r.get("count", 0))
                dkim, spf = r.get("dkim") == "pass", r.get("spf") == "pass"
                ok = n if (dkim or spf) else 0
                out.messages += n
                out.dmarc_pass += ok
                _counter(by_day, day, messages=n, dmarc_pass=ok, dmarc_fail=n - ok)
                _counter(by_org, org, messages=n, dmarc_pass=ok, dmarc_fail=n - ok)
                _counter(by_ip, r.get("source_ip", ""), messages=n, dmarc_pass=ok, dmarc_fail=n - ok)
                _counter(by_disp, r.get("disposition", "") or "none", messages=n)
                key = "dkim_and_spf" if dkim and spf else "dkim_only" if dkim else "spf_only" if spf else "neither"
                align[key] += n
    zero = {"reports": 0, "messages": 0, "dmarc_pass": 0, "dmarc_fail": 0}
    out.days = [
        {**d, "pass_rate": round(d["dmarc_pass"] / d["messages"], 4) if d["messages"] else None}
        for d in _filled_days(by_day, zero)
    ]
    out.organizations = _sorted_rows(by_org, "organization_name", "dmarc_fail", top or None, zero)
    zero_ip = {"messages": 0, "dmarc_pass": 0, "dmarc_fail": 0}
    out.source_ips = _sorted_rows(by_ip, "source_ip", "dmarc_fail", top or None, zero_ip)
    out.dispositions = _sorted_rows(by_disp, "disposition", "messages")
    out.alignment = align
    return out

"""`moxcli reports html`: one self-contained HTML page of what the received reports say.

Inline CSS and inline SVG charts only: no script, no font, no image, nothing fetched (a
Content-Security-Policy of ``default-src 'none'`` makes the browser refuse any load, should
one slip in). Every text from a report is HTML-escaped. Rendering is a pure function of the
two summaries (moxcli.reports.insight); writing goes through a temporary file and a rename.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any

from moxcli.reports.insight import DMARCSummary, TLSSummary, dmarc_summary, tls_summary
from moxcli.store import Store

OK = "#2e7d32"
BAD = "#c62828"
WARN = "#ef6c00"
MUTED = "#90a4ae"
MAX_DOMAIN_CHARTS = 12

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f7fa;color:#1c2733}
header{background:#1c2733;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#b0bec5}
main{padding:8px 28px 40px;max-width:1180px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:16px 20px;margin:18px 0}
h2{margin:0 0 10px;font-size:18px}h3{margin:16px 0 6px;font-size:15px}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{flex:1 1 160px;background:#eef2f6;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px}.card span{color:#546e7a;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0 4px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e8ee;font-variant-numeric:tabular-nums}
th{color:#546e7a;font-weight:600;font-size:12px;text-transform:uppercase}
td.n,th.n{text-align:right}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#546e7a}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px 24px}
.empty{color:#78909c;font-style:italic}
svg text{font:11px system-ui,sans-serif;fill:#546e7a}
"""


def _n(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else escape(str(v))


def _table(columns: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    if not rows:
        return '<p class="empty">none</p>'
    numeric = numeric or set()
    head = "".join(
        f'<th class="n">{escape(c)}</th>' if i in numeric else f"<th>{escape(c)}</th>" for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_n(v)}</td>' if i in numeric else f"<td>{escape(str(v))}</td>" for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _legend(items: list[tuple[str, str]]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{escape(t)}</span>' for t, c in items)
        + "</p>"
    )


def _svg_open(title: str, width: int, height: int) -> str:
    """An inline SVG that scales down to its container (the viewBox keeps the proportions)."""
    return (
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'style="width:100%;max-width:{width}px;height:auto" xmlns="http://www.w3.org/2000/svg">'
    )


def stacked_bars(
    days: list[str], series: list[tuple[str, str, list[float]]], title: str, height: int = 150, width: int = 520
) -> str:
    """An SVG bar chart, one stacked bar per day; a <title> per bar for the exact values."""
    if not days:
        return '<p class="empty">no data</p>'
    left, bottom, top = 44, 18, 8
    plot_w, plot_h = width - left - 6, height - bottom - top
    totals = [sum(s[2][i] for s in series) for i in range(len(days))]
    ymax = max(totals) or 1
    step = plot_w / len(days)
    bar = max(1.0, step * 0.8)
    out = [
        _svg_open(title, width, height),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="#cfd8dc"/>',
        f'<text x="{left - 4}" y="{top + 9}" text-anchor="end">{_n(_nice(ymax))}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        tip = escape(f"{day}: " + ", ".join(f"{name} {_fmt(s[i])}" for name, _, s in series))
        out.append(f"<g><title>{tip}</title>")
        for _name, colour, values in series:
            h = values[i] / ymax * plot_h
            if h > 0:
                y -= h
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        out.append("</g>")
    out.append(f'<text x="{left}" y="{height - 4}">{escape(days[0])}</text>')
    if len(days) > 1:
        out.append(f'<text x="{width - 4}" y="{height - 4}" text-anchor="end">{escape(days[-1])}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(
    days: list[str], values: list[float | None], title: str, colour: str, height: int = 150, width: int = 520
) -> str:
    """An SVG line of a percentage per day (gaps for days without data), 0-100 %."""
    if not days:
        return '<p class="empty">no data</p>'
    left, bottom, top = 44, 18, 8
    plot_w, plot_h = width - left - 10, height - bottom - top
    step = plot_w / max(1, len(days) - 1)
    out = [
        _svg_open(title, width, height),
    ]
    for pct in (0, 50, 100):
        y = top + plot_h - pct / 100 * plot_h
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#eceff1"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')
    points: list[str] = []
    segments: list[list[str]] = []
    for i, v in enumerate(values):
        if v is None:
            if points:
                segments.append(points)
            points = []
            continue
        x = left + (i * step if len(days) > 1 else plot_w / 2)
        y = top + plot_h - v / 100 * plot_h
        points.append(f"{x:.1f},{y:.1f}")
        tip = f"<title>{escape(days[i])}: {v:.1f}%</title>"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">{tip}</circle>')
    if points:
        segments.append(points)
    for seg in segments:
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    out.append(f'<text x="{left}" y="{height - 4}">{escape(days[0])}</text>')
    if len(days) > 1:
        out.append(f'<text x="{width - 6}" y="{height - 4}" text-anchor="end">{escape(days[-1])}</text>')
    out.append("</svg>")
    return "".join(out)


def hbars(rows: list[tuple[str, float, str]], title: str, width: int = 520) -> str:
    """Horizontal bars with labels and values (failure types, alignment)."""
    if not rows:
        return '<p class="empty">none</p>'
    label_w, row_h = 190, 22
    height = row_h * len(rows) + 4
    vmax = max(v for _, v, _ in rows) or 1
    out = [_svg_open(title, width, height)]
    for i, (label, v, colour) in enumerate(rows):
        y = i * row_h + 2
        w = v / vmax * (width - label_w - 70)
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" fill="{colour}"/>')
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{_n(_fmt(v))}</text>')
    out.append("</svg>")
    return "".join(out)


def _fmt(v: float) -> int | str:
    return int(v) if float(v).is_integer() else f"{v:.1f}"


def _nice(v: float) -> int:
    return int(v) if float(v).is_integer() else round(v)


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _tls_section(s: TLSSummary) -> str:
    total = s.successful_sessions + s.failed_sessions
    rate = f"{s.failed_sessions / total * 100:.2f}%" if total else "-"
    parts = [
        "<section><h2>TLS reports (RFC 8460)</h2>",
        '<div class="cards">',
        _card(f"{s.reports:,}", "reports"),
        _card(f"{total:,}", "sessions"),
        _card(f"{s.failed_sessions:,}", "failed sessions"),
        _card(rate, "failure rate"),
        "</div>",
        "<h3>Sessions per day</h3>",
        _legend([("successful", OK), ("failed", BAD)]),
        stacked_bars(
            [d["day"] for d in s.days],
            [
                ("successful", OK, [d["successful_sessions"] for d in s.days]),
                ("failed", BAD, [d["failed_sessions"] for d in s.days]),
            ],
            "TLS sessions per day",
            width=1080,
        ),
        "<h3>Failures per day, per policy domain</h3>",
    ]
    domains = list(s.domain_days.items())[:MAX_DOMAIN_CHARTS]
    if domains:
        parts.append('<div class="grid">')
        totals = {p["policy_domain"]: p for p in s.policy_domains}
        for dom, days in domains:
            t = totals.get(dom, {"successful_sessions": 0, "failed_sessions": 0})
            n = t["successful_sessions"] + t["failed_sessions"]
            share = f" ({t['failed_sessions'] / n * 100:.2f}%)" if n else ""
            parts.append(f"<div><h3>{escape(dom)}: {n:,} sessions, {t['failed_sessions']:,} failed{share}</h3>")
            parts.append(
                stacked_bars(
                    [d["day"] for d in days],
                    [
                        ("failed", BAD, [d["failed_sessions"] for d in days]),
                    ],
                    f"failed sessions per day for {dom}",
                    height=110,
                )
            )
            parts.append("</div>")
        parts.append("</div>")
    else:
        parts.append('<p class="empty">no reports</p>')
    parts += [
        "<h3>Failure types</h3>",
        hbars(
            [(r["result_type"], r["failed_sessions"], BAD) for r in s.result_types], "failed sessions by result type"
        ),
        "<h3>Failing MX hosts and IPs</h3>",
        _table(
            ["receiving MX", "receiving IP", "result type", "failed sessions"],
            [
                [h["receiving_mx_hostname"] or "", h["receiving_ip"] or "", h["result_type"], h["failed_sessions"]]
                for h in s.failing_hosts
            ],
            {3},
        ),
        "<h3>Reporting organizations</h3>",
        _table(
            ["organization", "reports", "successful sessions", "failed sessions"],
            [
                [o["organization_name"], o["reports"], o["successful_sessions"], o["failed_sessions"]]
                for o in s.organizations
            ],
            {1, 2, 3},
        ),
        "</section>",
    ]
    return "".join(parts)


def _dmarc_section(s: DMARCSummary) -> str:
    rate = f"{s.dmarc_pass / s.messages * 100:.1f}%" if s.messages else "-"
    a = s.alignment
    parts = [
        "<section><h2>DMARC aggregate reports (RFC 7489)</h2>",
        '<div class="cards">',
        _card(f"{s.reports:,}", "reports"),
        _card(f"{s.messages:,}", "messages"),
        _card(rate, "DMARC pass rate"),
        _card(f"{s.messages - s.dmarc_pass:,}", "DMARC failures"),
        "</div>",
        "<h3>DMARC pass rate per day</h3>",
        line_chart(
            [d["day"] for d in s.days],
            [None if d["pass_rate"] is None else d["pass_rate"] * 100 for d in s.days],
            "DMARC pass rate per day",
            OK,
            width=1080,
        ),
        "<h3>Messages per day</h3>",
        _legend([("DMARC pass", OK), ("DMARC fail", BAD)]),
        stacked_bars(
            [d["day"] for d in s.days],
            [
                ("pass", OK, [d["dmarc_pass"] for d in s.days]),
                ("fail", BAD, [d["dmarc_fail"] for d in s.days]),
            ],
            "DMARC messages per day",
            width=1080,
        ),
        "<h3>Alignment</h3>",
        hbars(
            [
                ("DKIM and SPF aligned", a.get("dkim_and_spf", 0), OK),
                ("DKIM only", a.get("dkim_only", 0), "#558b2f"),
                ("SPF only", a.get("spf_only", 0), WARN),
                ("neither (DMARC fail)", a.get("neither", 0), BAD),
            ],
            "messages by DKIM/SPF alignment",
        ),
        "<h3>Top failing sources</h3>",
        _table(
            ["source IP", "messages", "DMARC pass", "DMARC fail"],
            [
                [r["source_ip"], r["messages"], r["dmarc_pass"], r["dmarc_fail"]]
                for r in s.source_ips
                if r["dmarc_fail"]
            ],
            {1, 2, 3},
        ),
        "<h3>Dispositions</h3>",
        hbars(
            [(d["disposition"], d["messages"], OK if d["disposition"] == "none" else WARN) for d in s.dispositions],
            "messages by disposition",
        ),
        "<h3>Reporting organizations</h3>",
        _table(
            ["organization", "reports", "messages", "DMARC pass", "DMARC fail"],
            [
                [o["organization_name"], o["reports"], o["messages"], o["dmarc_pass"], o["dmarc_fail"]]
                for o in s.organizations
            ],
            {1, 2, 3, 4},
        ),
        "</section>",
    ]
    return "".join(parts)


def render(tls: TLSSummary, dmarc: DMARCSummary, generated: datetime) -> str:
    """The whole page (pure)."""
    period = " to ".join(d.isoformat() for d in (tls.since, tls.until) if isinstance(d, date)) or "all reports"
    scope = f", policy domain {tls.domain}" if tls.domain else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>moxcli: TLS and DMARC reports</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>TLS and DMARC reports</h1><p>{escape(period + scope)}; generated "
        f"{escape(generated.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC'))} by moxcli</p></header>"
        f"<main>{_tls_section(tls)}{_dmarc_section(dmarc)}</main></body></html>\n"
    )


def write_html(
    store: Store,
    out: Path,
    since: date | None = None,
    until: date | None = None,
    domain: str | None = None,
    now: datetime | None = None,
) -> tuple[TLSSummary, DMARCSummary]:
    """Summarise the stored reports and write the page to ``out`` (temporary file, then rename)."""
    tls = tls_summary(store, since, until, domain, top=25)
    dmarc = dmarc_summary(store, since, until, domain, top=25)
    text = render(tls, dmarc, now or datetime.now(UTC))
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tls, dmarc

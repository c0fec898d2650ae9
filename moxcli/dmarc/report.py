"""The aggregate report model and its XML (RFC 7489 Appendix C; RFC 9990 `dmarc-2.0`). Pure.

The writer follows mox's element order and omission rules (docs/behaviour-notes.md §6.5) for RFC 7489, and the
element order and value sets of RFC 9990 §3 when that format is configured.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from moxcli.values import dataclass, field

NS_DMARC2 = "urn:ietf:params:xml:ns:dmarc-2.0"
FORMATS = ("rfc7489", "rfc9990")
# RFC 9990 §3.1.6: override reasons; `forwarded` and `sampled_out` no longer exist.
RFC9990_REASONS = ("local_policy", "mailing_list", "other", "policy_test_mode", "trusted_forwarder")


@dataclass
class Metadata:
    org_name: str = ""
    email: str = ""
    report_id: str = ""
    begin: int = 0
    end: int = 0
    extra_contact_info: str = ""
    errors: list[str] = field(default_factory=list)
    generator: str = ""


@dataclass
class Published:
    domain: str = ""
    p: str = ""
    sp: str = ""
    pct: str = ""
    adkim: str = ""
    aspf: str = ""
    fo: str = ""
    np: str = ""
    testing: str = ""
    discovery_method: str = ""


@dataclass
class Reason:
    type: str
    comment: str = ""


@dataclass
class DKIMAuth:
    domain: str
    result: str
    selector: str = ""
    human_result: str = ""


@dataclass
class SPFAuth:
    domain: str
    result: str
    scope: str = ""


@dataclass
class Record:
    source_ip: str
    count: int
    disposition: str
    dkim: str
    spf: str
    header_from: str
    envelope_from: str = ""
    envelope_to: str = ""
    reasons: list[Reason] = field(default_factory=list)
    dkim_auth: list[DKIMAuth] = field(default_factory=list)
    spf_auth: list[SPFAuth] = field(default_factory=list)


@dataclass
class Feedback:
    metadata: Metadata
    policy: Published
    records: list[Record] = field(default_factory=list)
    version: str = ""
    namespace: str = ""

    @property
    def schema(self) -> str:
        """`rfc9990` for the dmarc-2.0 namespace, else `rfc7489` (including drafts without a version)."""
        return "rfc9990" if self.namespace == NS_DMARC2 else "rfc7489"

    def to_json(self) -> dict[str, Any]:
        """dataclasses.asdict's dict plus ``schema``, built directly: asdict deep-copies every
        value, a third of the time importing a report took."""
        return {
            "metadata": {**vars(self.metadata), "errors": list(self.metadata.errors)},
            "policy": dict(vars(self.policy)),
            "records": [
                {
                    **vars(r),
                    "reasons": [dict(vars(x)) for x in r.reasons],
                    "dkim_auth": [dict(vars(x)) for x in r.dkim_auth],
                    "spf_auth": [dict(vars(x)) for x in r.spf_auth],
                }
                for r in self.records
            ],
            "version": self.version,
            "namespace": self.namespace,
            "schema": self.schema,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Feedback:
        return cls(
            metadata=Metadata(**d["metadata"]),
            policy=Published(**d["policy"]),
            records=[
                Record(
                    **{k: v for k, v in r.items() if k not in ("reasons", "dkim_auth", "spf_auth")},
                    reasons=[Reason(**x) for x in r["reasons"]],
                    dkim_auth=[DKIMAuth(**x) for x in r["dkim_auth"]],
                    spf_auth=[SPFAuth(**x) for x in r["spf_auth"]],
                )
                for r in d["records"]
            ],
            version=d.get("version", ""),
            namespace=d.get("namespace", ""),
        )


# XML 1.0 §2.2: characters that may not appear in a document at all become U+FFFD.
_ESCAPES = {i: "\ufffd" for i in (*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF)}
_ESCAPES.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"})


def _esc(text: str) -> str:
    return text.translate(_ESCAPES)


class _Writer:
    """TAB-indented elements, one per line (mox's layout)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def open(self, tag: str, attrs: str = "") -> None:
        self.lines.append("\t" * self.depth + f"<{tag}{attrs}>")
        self.depth += 1

    def close(self, tag: str) -> None:
        self.depth -= 1
        self.lines.append("\t" * self.depth + f"</{tag}>")

    def leaf(self, tag: str, value: object) -> None:
        self.lines.append("\t" * self.depth + f"<{tag}>{_esc(str(value))}</{tag}>")

    def opt(self, tag: str, value: str) -> None:
        if value:
            self.leaf(tag, value)


def source_ip_text(ip: str, fmt: str) -> str:
    """``source_ip`` as the format's schema types it.

    RFC 7489 Appendix C's IPAddress pattern takes IPv6 only in the full eight-group form, so
    RFC 7489 reports write that (without leading zeros); RFC 9990 §3.1.1.8 takes any RFC 3986
    IPv6address, written in the RFC 5952 form. mox quirk: mox writes the compressed form in
    RFC 7489 reports too. Anything that is not an IP address is written as it is.
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if fmt == "rfc7489" and isinstance(addr, ipaddress.IPv6Address):
        return ":".join(f"{int(group, 16):x}" for group in addr.exploded.split(":"))
    return str(addr)


def record_xml(r: Record, fmt: str = "rfc7489") -> str:
    """One `<record>` as text: the key by which identical rows are counted and records sorted."""
    w = _Writer()
    _record(w, r, fmt)
    return "\n".join(w.lines)


def _record(w: _Writer, r: Record, fmt: str) -> None:
    w.open("record")
    w.open("row")
    w.leaf("source_ip", source_ip_text(r.source_ip, fmt))
    w.leaf("count", r.count)
    w.open("policy_evaluated")
    w.leaf("disposition", r.disposition)
    w.leaf("dkim", r.dkim)
    w.leaf("spf", r.spf)
    for reason in r.reasons:
        rtype, comment = reason.type, reason.comment
        if fmt == "rfc9990" and rtype not in RFC9990_REASONS:
            # RFC 9990 §3.1.6 dropped this type: keep the information in the comment.
            rtype, comment = "other", f"{rtype}: {comment}" if comment else rtype
        w.open("reason")
        w.leaf("type", rtype)
        w.opt("comment", comment)
        w.close("reason")
    w.close("policy_evaluated")
    w.close("row")
    w.open("identifiers")
    w.opt("envelope_to", r.envelope_to)
    if fmt == "rfc9990":
        w.opt("envelope_from", r.envelope_from)  # RFC 9990 §3.1.1.10: optional
    else:
        w.leaf("envelope_from", r.envelope_from)  # RFC 7489 Appendix C: required
    w.leaf("header_from", r.header_from)
    w.close("identifiers")
    w.open("auth_results")
    for d in r.dkim_auth:
        w.open("dkim")
        w.leaf("domain", d.domain)
        if fmt == "rfc9990":
            w.leaf("selector", d.selector)  # RFC 9990 §3.1.1.12: required
        else:
            w.opt("selector", d.selector)
        w.leaf("result", d.result)
        w.opt("human_result", d.human_result)
        w.close("dkim")
    # RFC 9990 §3.1.1.11: at most one spf; §3.1.1.13: scope optional, only `mfrom` valid.
    for s in r.spf_auth[:1] if fmt == "rfc9990" else r.spf_auth:
        w.open("spf")
        w.leaf("domain", s.domain)
        if fmt != "rfc9990" or s.scope == "mfrom":
            w.leaf("scope", s.scope)
        w.leaf("result", s.result)
        w.close("spf")
    w.close("auth_results")
    w.close("record")


def build_xml(fb: Feedback, fmt: str = "rfc7489") -> bytes:
    """The report document: XML declaration line, LF, the TAB-indented document (no final newline)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    w = _Writer()
    w.open("feedback", f' xmlns="{NS_DMARC2}"' if fmt == "rfc9990" else "")
    w.leaf("version", "1.0")
    m = fb.metadata
    w.open("report_metadata")
    w.leaf("org_name", m.org_name)
    w.leaf("email", m.email)
    w.opt("extra_contact_info", m.extra_contact_info)
    w.leaf("report_id", m.report_id)
    w.open("date_range")
    w.leaf("begin", m.begin)
    w.leaf("end", m.end)
    w.close("date_range")
    if fmt == "rfc9990":
        # RFC 9990 Appendix A: at most one <error>; the texts are joined.
        w.opt("error", "; ".join(m.errors))
    else:
        for e in m.errors:
            w.leaf("error", e)
    if fmt == "rfc9990":
        w.opt("generator", m.generator)
    w.close("report_metadata")
    p = fb.policy
    w.open("policy_published")
    w.leaf("domain", p.domain)
    if fmt == "rfc9990":
        # RFC 9990 §3.1.1.5: pct is gone; we find policies with the public suffix list.
        w.opt("discovery_method", p.discovery_method)
        w.leaf("p", p.p)
        w.opt("sp", p.sp)
        w.opt("np", p.np)
        w.opt("adkim", p.adkim)
        w.opt("aspf", p.aspf)
        w.opt("fo", p.fo)
        w.opt("testing", p.testing)
    else:
        # RFC 7489 Appendix C: p, sp, pct and fo are required (fo written empty, as mox does).
        w.opt("adkim", p.adkim)
        w.opt("aspf", p.aspf)
        w.leaf("p", p.p)
        w.leaf("sp", p.sp)
        w.leaf("pct", p.pct)
        w.leaf("fo", p.fo)
    w.close("policy_published")
    for r in fb.records:
        _record(w, r, fmt)
    w.close("feedback")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(w.lines)).encode("utf-8")

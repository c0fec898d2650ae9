"""Offline structural validation of aggregate report XML against the two schemas. Pure.

RFC 7489 Appendix C (the XSD) and RFC 9990 §3 (element order where it is a MUST, required and
optional elements, value sets). Used to check what we generate; a receiver should be liberal.
"""

from __future__ import annotations

import ipaddress

from moxcli.dmarc.parse import Element, parse_xml
from moxcli.dmarc.report import NS_DMARC2, RFC9990_REASONS

INF = 1 << 30
# (tag, min, max) in document order.
Model = tuple[tuple[str, int, int], ...]

_7489: dict[str, Model] = {
    "feedback": (("version", 1, 1), ("report_metadata", 1, 1), ("policy_published", 1, 1), ("record", 1, INF)),
    "report_metadata": (
        ("org_name", 1, 1),
        ("email", 1, 1),
        ("extra_contact_info", 0, 1),
        ("report_id", 1, 1),
        ("date_range", 1, 1),
        ("error", 0, INF),
    ),
    "date_range": (("begin", 1, 1), ("end", 1, 1)),
    "policy_published": (
        ("domain", 1, 1),
        ("adkim", 0, 1),
        ("aspf", 0, 1),
        ("p", 1, 1),
        ("sp", 1, 1),
        ("pct", 1, 1),
        ("fo", 1, 1),
    ),
    "record": (("row", 1, 1), ("identifiers", 1, 1), ("auth_results", 1, 1)),
    "row": (("source_ip", 1, 1), ("count", 1, 1), ("policy_evaluated", 1, 1)),
    "policy_evaluated": (("disposition", 1, 1), ("dkim", 1, 1), ("spf", 1, 1), ("reason", 0, INF)),
    "reason": (("type", 1, 1), ("comment", 0, 1)),
    "identifiers": (("envelope_to", 0, 1), ("envelope_from", 1, 1), ("header_from", 1, 1)),
    "auth_results": (("dkim", 0, INF), ("spf", 1, INF)),
    "dkim": (("domain", 1, 1), ("selector", 0, 1), ("result", 1, 1), ("human_result", 0, 1)),
    "spf": (("domain", 1, 1), ("scope", 1, 1), ("result", 1, 1)),
}

_9990: dict[str, Model] = {
    **_7489,
    "feedback": (
        ("version", 0, 1),
        ("report_metadata", 1, 1),
        ("policy_published", 1, 1),
        ("extension", 0, 1),
        ("record", 1, INF),
    ),
    "report_metadata": (
        ("org_name", 1, 1),
        ("email", 1, 1),
        ("extra_contact_info", 0, 1),
        ("report_id", 1, 1),
        ("date_range", 1, 1),
        ("error", 0, 1),  # RFC 9990 Appendix A: at most one
        ("generator", 0, 1),
    ),
    "identifiers": (("envelope_to", 0, 1), ("envelope_from", 0, 1), ("header_from", 1, 1)),
    "auth_results": (("dkim", 0, INF), ("spf", 0, 1)),
    "dkim": (("domain", 1, 1), ("selector", 1, 1), ("result", 1, 1), ("human_result", 0, 1)),
    "spf": (("domain", 1, 1), ("scope", 0, 1), ("result", 1, 1), ("human_result", 0, 1)),
}
# RFC 9990 §3.1.1.5: order inside policy_published is not prescribed.
_9990_POLICY = {
    "domain": (1, 1),
    "p": (1, 1),
    "sp": (0, 1),
    "np": (0, 1),
    "adkim": (0, 1),
    "aspf": (0, 1),
    "fo": (0, 1),
    "testing": (0, 1),
    "discovery_method": (0, 1),
}

_VALUES_7489 = {
    "policy_evaluated/disposition": ("none", "quarantine", "reject"),
    "policy_evaluated/dkim": ("pass", "fail"),
    "policy_evaluated/spf": ("pass", "fail"),
    "reason/type": ("forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other"),
    "dkim/result": ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror"),
    "spf/result": ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"),
    "spf/scope": ("helo", "mfrom"),
    "policy_published/p": ("none", "quarantine", "reject"),
    "policy_published/sp": ("none", "quarantine", "reject"),
    "policy_published/adkim": ("r", "s"),
    "policy_published/aspf": ("r", "s"),
}
_VALUES_9990 = {
    **_VALUES_7489,
    "policy_evaluated/disposition": ("none", "pass", "quarantine", "reject"),
    "reason/type": RFC9990_REASONS,
    "spf/result": ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror", "policy"),
    "spf/scope": ("mfrom",),
    "policy_published/np": ("none", "quarantine", "reject"),
    "policy_published/testing": ("y", "n"),
    "policy_published/discovery_method": ("psl", "treewalk"),
}


def _sequence(el: Element, model: Model, path: str, problems: list[str]) -> None:
    tags = [c.tag for c in el.children]
    i = 0
    for tag, lo, hi in model:
        n = 0
        while i < len(tags) and tags[i] == tag:
            n += 1
            i += 1
        if n < lo:
            problems.append(f"{path}: missing <{tag}>")
        if n > hi:
            problems.append(f"{path}: <{tag}> occurs {n} times, at most {hi} allowed")
    if i < len(tags):
        problems.append(f"{path}: unexpected <{tags[i]}> (wrong order or unknown element)")


def _check(
    el: Element,
    path: str,
    models: dict[str, Model],
    values: dict[str, tuple[str, ...]],
    fmt: str,
    problems: list[str],
    parent: str = "",
) -> None:
    if fmt == "rfc9990" and el.ns != NS_DMARC2:
        problems.append(f"{path}: element not in namespace {NS_DMARC2}")
    if el.tag == "policy_published" and fmt == "rfc9990":
        for c in el.children:
            if c.tag not in _9990_POLICY:
                problems.append(f"{path}: unexpected <{c.tag}>")
        for tag, (lo, hi) in _9990_POLICY.items():
            n = sum(1 for c in el.children if c.tag == tag)
            if not lo <= n <= hi:
                problems.append(f"{path}: <{tag}> occurs {n} times, expected {lo}..{hi}")
    elif el.tag in models and not (el.tag in ("dkim", "spf") and parent == "policy_evaluated"):
        _sequence(el, models[el.tag], path, problems)
    if el.children:
        for c in el.children:
            _check(c, f"{path}/{c.tag}", models, values, fmt, problems, el.tag)
        return
    text = el.text.strip()
    allowed = values.get(f"{parent}/{el.tag}")
    if allowed is not None and text not in allowed:
        problems.append(f"{path}: value {text!r} not one of {', '.join(allowed)}")
    if el.tag in ("begin", "end", "count") and not text.isdigit():
        problems.append(f"{path}: {text!r} is not a non-negative integer")
    if el.tag == "pct" and not (text.isdigit() and 0 <= int(text) <= 100):
        problems.append(f"{path}: pct {text!r} not in 0..100")
    if el.tag == "source_ip":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            problems.append(f"{path}: {text!r} is not an IP address")
    if el.tag == "version" and parent == "feedback" and fmt == "rfc9990" and text != "1.0":
        problems.append(f"{path}: version must be 1.0 (RFC 9990 3.1.1.2)")


def validate(xml: bytes, fmt: str) -> list[str]:
    """Problems found in a report document under schema ``fmt`` (rfc7489 or rfc9990); [] if valid."""
    root = parse_xml(xml)
    problems: list[str] = []
    if root.tag != "feedback":
        return [f"root element is <{root.tag}>, expected <feedback>"]
    if fmt == "rfc9990":
        _check(root, "feedback", _9990, _VALUES_9990, fmt, problems)
    else:
        if root.ns:
            problems.append("feedback: mox and RFC 7489 receivers expect no namespace")
        _check(root, "feedback", _7489, _VALUES_7489, fmt, problems)
    return problems

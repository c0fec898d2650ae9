"""DMARC evaluations (docs/behaviour-notes.md §6.1): the JSON-lines contract of `moxcli dmarc record`. Pure.

One JSON object per line, snake_case fields of docs/behaviour-notes.md §6.1. A batch is validated as a whole:
the first bad line raises EvaluationError naming the line number and the field.
Value sets are those of the RFC 7489 Appendix C schema, since these values end up in reports.
"""

from __future__ import annotations

import ipaddress
import json
import math
import urllib.parse
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, BinaryIO

from moxcli.addrlimits import domain_size_problem
from moxcli.dmarc.interval import INTERVALS, interval_hours
from moxcli.dmarc.record import RecordError, parse_mailto, parse_report_uri
from moxcli.domain import DomainError, parse_domain
from moxcli.values import asdict, dataclass, field

MAX_LINE = 64 * 1024
MAX_FUTURE = 3600
POLICIES = ("none", "quarantine", "reject")
DISPOSITIONS = ("none", "quarantine", "reject")
ALIGNMENTS = ("", "r", "s")
DKIM_RESULTS = ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
SPF_RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
SPF_SCOPES = ("helo", "mfrom")
OVERRIDE_TYPES = ("forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other")


class EvaluationError(ValueError):
    """A bad evaluation; the message names the line and the field."""


@dataclass(frozen=True)
class PolicyPublished:
    domain: str
    p: str
    sp: str
    pct: int = 100
    adkim: str = ""
    aspf: str = ""


@dataclass(frozen=True)
class OverrideReason:
    type: str
    comment: str = ""


@dataclass(frozen=True)
class DKIMResult:
    domain: str
    selector: str
    result: str


@dataclass(frozen=True)
class SPFResult:
    domain: str
    scope: str
    result: str


@dataclass(frozen=True)
class Evaluation:
    policy_domain: str
    evaluated: float
    addresses: tuple[str, ...]
    policy_published: PolicyPublished
    source_ip: str
    disposition: str
    aligned_dkim_pass: bool
    aligned_spf_pass: bool
    header_from: str
    envelope_from: str = ""
    envelope_to: str = ""
    helo_domain: str = ""
    optional: bool = False
    interval_hours: int = 24
    override_reasons: tuple[OverrideReason, ...] = ()
    dkim_results: tuple[DKIMResult, ...] = ()
    spf_results: tuple[SPFResult, ...] = ()
    id: int = 0

    def to_record(self) -> dict[str, Any]:
        """The store record (and the `--json` form): plain dicts and lists."""
        d = asdict(self)
        d.pop("id")
        return d

    @classmethod
    def from_record(cls, rec: dict[str, Any], id: int = 0) -> Evaluation:
        return cls(
            policy_domain=rec["policy_domain"],
            evaluated=float(rec["evaluated"]),
            addresses=tuple(rec["addresses"]),
            policy_published=PolicyPublished(**rec["policy_published"]),
            source_ip=rec["source_ip"],
            disposition=rec["disposition"],
            aligned_dkim_pass=bool(rec["aligned_dkim_pass"]),
            aligned_spf_pass=bool(rec["aligned_spf_pass"]),
            header_from=rec["header_from"],
            envelope_from=rec.get("envelope_from", ""),
            envelope_to=rec.get("envelope_to", ""),
            helo_domain=rec.get("helo_domain", ""),
            optional=bool(rec.get("optional", False)),
            interval_hours=int(rec.get("interval_hours", 24)),
            override_reasons=tuple(OverrideReason(**r) for r in rec.get("override_reasons", ())),
            dkim_results=tuple(DKIMResult(**r) for r in rec.get("dkim_results", ())),
            spf_results=tuple(SPFResult(**r) for r in rec.get("spf_results", ())),
            id=id,
        )


@dataclass
class _Fields:
    """Reads one JSON object, naming `line N: field` in every error; rejects unknown keys."""

    obj: dict[str, Any]
    where: str
    used: set[str] = field(default_factory=set)

    def err(self, name: str, msg: str) -> EvaluationError:
        return EvaluationError(f"{self.where}: {name}: {msg}")

    def get(self, name: str, kind: type, default: Any = ...) -> Any:
        self.used.add(name)
        if name not in self.obj or self.obj[name] is None:
            if default is ...:
                raise self.err(name, "required field missing")
            return default
        v = self.obj[name]
        # JSON true/false are Python bools, which are ints too.
        if (kind is int and isinstance(v, bool)) or not isinstance(v, kind):
            raise self.err(name, f"expected {_json_type(kind.__name__)}, got {json.dumps(v)[:40]}")
        return v

    def choice(self, name: str, options: tuple[str, ...], default: Any = ...) -> str:
        v = self.get(name, str, default).lower()
        if v not in options:
            shown = ", ".join(o or '""' for o in options)
            raise self.err(name, f"must be one of {shown}, got {v!r}")
        return v

    def done(self) -> None:
        extra = sorted(set(self.obj) - self.used)
        if extra:
            raise self.err(extra[0], "unknown field")


def _json_type(name: str) -> str:
    return {"str": "string", "int": "integer", "bool": "boolean", "dict": "object", "list": "array"}.get(name, name)


@lru_cache(maxsize=8192)
def _domain_name(value: str) -> str:
    """Cached: a batch repeats the same few domains in every line."""
    return parse_domain(value).name


def _domain(f: _Fields, name: str, value: str) -> str:
    try:
        return _domain_name(value)
    except DomainError as exc:
        raise f.err(name, f"invalid domain {value!r}: {exc}") from None


def _time(f: _Fields, value: Any, now: float) -> float:
    if value is None:
        return now
    if not isinstance(value, str):
        raise f.err("evaluated", f"expected an RFC 3339 time string, got {json.dumps(value)[:40]}")
    try:
        t = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise f.err("evaluated", f"invalid RFC 3339 time {value!r}") from None
    if t.tzinfo is None:
        raise f.err("evaluated", f"time {value!r} has no time zone (RFC 3339 needs Z or an offset)")
    return t.timestamp()


def _list(f: _Fields, name: str) -> list[Any]:
    return f.get(name, list, [])


def _sub(f: _Fields, name: str, index: int | None, value: Any) -> _Fields:
    label = name if index is None else f"{name}[{index}]"
    if not isinstance(value, dict):
        raise f.err(label, f"expected object, got {json.dumps(value)[:40]}")
    return _Fields(value, f"{f.where}: {label}")


def parse_evaluation(obj: Any, where: str, now: float) -> Evaluation:
    """Validate one decoded JSON object; ``where`` (e.g. `line 3`) prefixes error messages."""
    if not isinstance(obj, dict):
        raise EvaluationError(f"{where}: expected a JSON object")
    f = _Fields(obj, where)
    policy_domain = _domain(f, "policy_domain", f.get("policy_domain", str))
    f.used.add("evaluated")
    evaluated = _time(f, obj.get("evaluated"), now)
    optional = f.get("optional", bool, False)
    hours = f.get("interval_hours", int, 24)
    if hours < 1:
        raise f.err("interval_hours", f"must be at least 1, got {hours}")
    # Periods must divide a day (RFC 7489 §7.2): round like an `ri` of that many hours.
    hours = hours if hours in INTERVALS else interval_hours(hours * 3600)
    addresses = f.get("addresses", list)
    if not addresses:
        raise f.err("addresses", "at least one rua URI is needed (evaluations are only stored for domains with rua)")
    for i, a in enumerate(addresses):
        if not isinstance(a, str):
            raise f.err(f"addresses[{i}]", f"expected string, got {json.dumps(a)[:40]}")
        if any(not c.isprintable() for c in a + urllib.parse.unquote(a)):
            # An address becomes a mail header (To:) of the report: `mailto:\r\nBcc: ...` must not.
            raise f.err(f"addresses[{i}]", f"control characters in {json.dumps(a)[:80]}")
        try:
            uri = parse_report_uri(a)
            if uri.uri[:7].lower() == "mailto:":
                local, domain = parse_mailto(uri.uri)
                # The report is sent to this address: it must fit RFC 5321 4.5.3.1's sizes.
                why = domain_size_problem(local, domain)
                if why:
                    raise f.err(f"addresses[{i}]", f"address {json.dumps(a)[:80]} is too long: {why}")
        except RecordError as exc:
            raise f.err(f"addresses[{i}]", str(exc)[:200]) from None

    pp = _sub(f, "policy_published", None, f.get("policy_published", dict))
    p = pp.choice("p", POLICIES)
    published = PolicyPublished(
        domain=_domain(pp, "domain", pp.get("domain", str)),
        p=p,
        sp=pp.choice("sp", POLICIES, p),
        pct=pp.get("pct", int, 100),
        adkim=pp.choice("adkim", ALIGNMENTS, ""),
        aspf=pp.choice("aspf", ALIGNMENTS, ""),
    )
    if not 0 <= published.pct <= 100:
        raise pp.err("pct", f"must be 0-100, got {published.pct}")
    pp.done()

    source_ip = f.get("source_ip", str)
    try:
        source_ip = str(ipaddress.ip_address(source_ip))
    except ValueError:
        raise f.err("source_ip", f"invalid IP address {source_ip!r}") from None

    reasons = []
    for i, r in enumerate(_list(f, "override_reasons")):
        rf = _sub(f, "override_reasons", i, r)
        reasons.append(OverrideReason(rf.choice("type", OVERRIDE_TYPES), rf.get("comment", str, "")))
        rf.done()
    dkim = []
    for i, r in enumerate(_list(f, "dkim_results")):
        rf = _sub(f, "dkim_results", i, r)
        dkim.append(
            DKIMResult(
                _domain(rf, "domain", rf.get("domain", str)),
                rf.get("selector", str, ""),
                rf.choice("result", DKIM_RESULTS),
            )
        )
        rf.done()
    spf = []
    for i, r in enumerate(_list(f, "spf_results")):
        rf = _sub(f, "spf_results", i, r)
        spf.append(
            SPFResult(
                _domain(rf, "domain", rf.get("domain", str)),
                rf.choice("scope", SPF_SCOPES, "mfrom"),
                rf.choice("result", SPF_RESULTS),
            )
        )
        rf.done()

    def opt_domain(name: str) -> str:
        v = f.get(name, str, "")
        return _domain(f, name, v) if v else ""

    ev = Evaluation(
        policy_domain=policy_domain,
        evaluated=evaluated,
        optional=optional,
        interval_hours=hours,
        addresses=tuple(addresses),
        policy_published=published,
        source_ip=source_ip,
        disposition=f.choice("disposition", DISPOSITIONS),
        aligned_dkim_pass=f.get("aligned_dkim_pass", bool),
        aligned_spf_pass=f.get("aligned_spf_pass", bool),
        override_reasons=tuple(reasons),
        envelope_to=opt_domain("envelope_to"),
        envelope_from=opt_domain("envelope_from"),
        helo_domain=opt_domain("helo_domain"),
        header_from=_domain(f, "header_from", f.get("header_from", str)),
        dkim_results=tuple(dkim),
        spf_results=tuple(spf),
    )
    f.done()
    if not math.isfinite(ev.evaluated):
        raise f.err("evaluated", "not a finite time")
    # A row from the future would never be reported nor expire (docs/behaviour-notes.md §6.4 removes rows by age).
    if ev.evaluated > now + MAX_FUTURE:
        raise f.err("evaluated", f"{format_time(ev.evaluated)} is more than an hour in the future")
    return ev


def parse_lines(lines: Iterable[bytes | str], now: float, source: str = "-") -> list[Evaluation]:
    """Validate a whole batch of JSON lines (blank lines skipped); the first error raises."""
    out = []
    for n, raw in enumerate(lines, 1):
        where = f"{source}: line {n}"
        if isinstance(raw, bytes):
            if len(raw.rstrip(b"\r\n")) > MAX_LINE:
                raise EvaluationError(f"{where}: line longer than {MAX_LINE} bytes")
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise EvaluationError(f"{where}: not UTF-8") from None
        if len(raw.rstrip("\r\n")) > MAX_LINE:
            raise EvaluationError(f"{where}: line longer than {MAX_LINE} bytes")
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{where}: invalid JSON: {exc.msg} at column {exc.colno}") from None
        out.append(parse_evaluation(obj, where, now))
    return out


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines of a stream, never reading more than a line's limit at once (hostile input: a
    stream without newlines does not fill memory; the over-long piece fails validation)."""
    return iter(lambda: stream.readline(MAX_LINE + 3), b"")


def format_time(t: float) -> str:
    """RFC 3339 in UTC with `Z`, as the contract writes it."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

"""The RFC 8460 report JSON model: results, merging, building and (liberal) parsing.

Pure: no I/O, no moxcli imports. Used by delivery (results per attempt), the TLS results table,
the daily sender (building reports) and incoming reports (parsing what others send).

- :class:`Policy`, :class:`FailureDetails`, :class:`Result` (one ``policies[]`` entry) and
  :class:`Report` (the whole document), each with ``to_json()`` / ``from_json()`` using the
  RFC field names in the RFC 8460 §4.4 key order.
- :func:`merge` (docs/behaviour-notes.md §1.5), :meth:`Result.add`, :func:`make_result`, :func:`tlsa_policy`.
- :func:`report_json_bytes`: TAB-indented JSON with a final newline, as mox sends it;
  :func:`report_json_text` / :class:`PackedJSONText`: the same text from packed results,
  without the json module (the daily report job on large tables).
- :func:`parse_report`: JSON bytes -> (Report, warnings); tolerant of real senders' quirks,
  one warning per quirk; raises :class:`ReportError` for anything it cannot accept.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from json.encoder import encode_basestring as _json_string
from typing import Any, cast

from moxcli.jsonfmt import Finding
from moxcli.values import dataclass, field, replace

# RFC 8460 §4.4: the only three policy types.
POLICY_STS = "sts"
POLICY_TLSA = "tlsa"
POLICY_NO_POLICY_FOUND = "no-policy-found"
POLICY_TYPES = (POLICY_STS, POLICY_TLSA, POLICY_NO_POLICY_FOUND)

# RFC 8460 §4.3 / IANA "STARTTLS Validation Result Types" (§6.6).
# §4.3.1 negotiation failures
RESULT_STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
RESULT_CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
RESULT_CERTIFICATE_EXPIRED = "certificate-expired"
RESULT_CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
RESULT_VALIDATION_FAILURE = "validation-failure"
# §4.3.2.1 DANE policy failures
RESULT_TLSA_INVALID = "tlsa-invalid"
RESULT_DNSSEC_INVALID = "dnssec-invalid"
RESULT_DANE_REQUIRED = "dane-required"
# §4.3.2.2 MTA-STS policy failures
RESULT_STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
RESULT_STS_POLICY_INVALID = "sts-policy-invalid"
RESULT_STS_WEBPKI_INVALID = "sts-webpki-invalid"

RESULT_TYPES = (
    RESULT_STARTTLS_NOT_SUPPORTED,
    RESULT_CERTIFICATE_HOST_MISMATCH,
    RESULT_CERTIFICATE_EXPIRED,
    RESULT_CERTIFICATE_NOT_TRUSTED,
    RESULT_VALIDATION_FAILURE,
    RESULT_TLSA_INVALID,
    RESULT_DNSSEC_INVALID,
    RESULT_DANE_REQUIRED,
    RESULT_STS_POLICY_FETCH_ERROR,
    RESULT_STS_POLICY_INVALID,
    RESULT_STS_WEBPKI_INVALID,
)

# Spec §1.3: decompressed report JSON above 20 MiB is refused (mox's limit).
MAX_JSON_SIZE = 20 * 1024 * 1024
# Nesting deeper than any valid report could need (a report is 5 levels deep) is hostile.
MAX_DEPTH = 32


class ReportError(ValueError):
    """The report JSON cannot be accepted; the message says why, ``code`` its stable name."""

    code = "invalid-report"


class DecompressionBombError(ReportError):
    """A compressed report expands more than moxcli.inflate allows."""

    code = "decompression-bomb"


@dataclass(slots=True)
class Policy:
    """``policy`` of a result (RFC 8460 §4.4); lists compare in order (docs/behaviour-notes.md §1.5)."""

    type: str
    string: list[str] = field(default_factory=list)
    domain: str = ""
    mx_host: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy-type": self.type,
            "policy-string": list(self.string),
            "policy-domain": self.domain,
            "mx-host": list(self.mx_host),
        }


@dataclass(slots=True)
class FailureDetails:
    """One ``failure-details`` entry (RFC 8460 §4.4)."""

    result_type: str
    sending_mta_ip: str = ""
    receiving_mx_hostname: str = ""
    receiving_mx_helo: str = ""
    receiving_ip: str = ""
    failed_session_count: int = 0
    additional_information: str = ""
    failure_reason_code: str = ""

    def same_except_count(self, other: FailureDetails) -> bool:
        return (
            self.result_type,
            self.sending_mta_ip,
            self.receiving_mx_hostname,
            self.receiving_mx_helo,
            self.receiving_ip,
            self.additional_information,
            self.failure_reason_code,
        ) == (
            other.result_type,
            other.sending_mta_ip,
            other.receiving_mx_hostname,
            other.receiving_mx_helo,
            other.receiving_ip,
            other.additional_information,
            other.failure_reason_code,
        )

    def to_json(self) -> dict[str, Any]:
        return detail_json(
            [
                self.result_type,
                self.sending_mta_ip,
                self.receiving_mx_hostname,
                self.receiving_mx_helo,
                self.receiving_ip,
                self.failed_session_count,
                self.additional_information,
                self.failure_reason_code,
            ]
        )


# The failure-details keys in RFC 8460 §4.4 order, as positions in a packed detail.
DETAIL_KEYS = (
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
)
_COUNT = 5


def detail_json(d: list[Any]) -> dict[str, Any]:
    """A packed failure detail as report JSON.

    RFC 8460 §4.4 types sending-mta-ip and receiving-ip as IP addresses, receiving-mx-hostname
    as a host name and additional-information as a URI; "" is none of those, so a field without
    a value is left out, as the RFC's Appendix B example does (result-type and
    failed-session-count always have one). mox quirk (docs/behaviour-notes.md §1.3): mox writes "" for every
    unknown field except receiving-mx-helo; when producing we follow the RFC.
    """
    # Straight-line (not a loop over DETAIL_KEYS): this runs for every detail of every
    # imported and sent report.
    out: dict[str, Any] = {"result-type": d[0]}
    if d[1]:
        out["sending-mta-ip"] = d[1]
    if d[2]:
        out["receiving-mx-hostname"] = d[2]
    if d[3]:
        out["receiving-mx-helo"] = d[3]
    if d[4]:
        out["receiving-ip"] = d[4]
    out["failed-session-count"] = d[5]
    if d[6]:
        out["additional-information"] = d[6]
    if d[7]:
        out["failure-reason-code"] = d[7]
    return out


@dataclass(slots=True)
class Result:
    """One entry of ``policies``: a policy, its session counts and failure details."""

    policy: Policy
    success: int = 0
    failure: int = 0
    details: list[FailureDetails] = field(default_factory=list)

    def add(self, success: int, failure: int, *details: FailureDetails) -> None:
        """Add counts and details (docs/behaviour-notes.md §1.5): totals clamped at 0, equal details summed."""
        # The SMTP client may add -1 success after a TLS alert right after the handshake.
        self.success = max(0, self.success + success)
        self.failure = max(0, self.failure + failure)
        for nd in details:
            for od in self.details:
                if od.same_except_count(nd):
                    od.failed_session_count += nd.failed_session_count
                    break
            else:
                self.details.append(replace(nd))

    def has_failure(self) -> bool:
        """A reason to send a report (docs/behaviour-notes.md §2.5 step 8): a failure count or any detail."""
        return self.failure > 0 or bool(self.details)

    def copy(self) -> Result:
        p = self.policy
        return Result(
            Policy(p.type, list(p.string), p.domain, list(p.mx_host)),
            self.success,
            self.failure,
            [replace(d) for d in self.details],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_json(),
            "summary": {
                "total-successful-session-count": self.success,
                "total-failure-session-count": self.failure,
            },
            "failure-details": [d.to_json() for d in self.details],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Result:
        """From a dict with RFC field names (as stored or built); strict about types."""
        warnings: list[Finding] = []
        return _result(obj, "result", warnings)


# --- packed form -----------------------------------------------------------------------
# A result as a positional list, for storage and for the report job's fast path:
# [policy_type, policy_strings, policy_domain, mx_hosts, success, failure, details], each
# detail [result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo,
# receiving_ip, failed_session_count, additional_information, failure_reason_code].


def pack_result(r: Result) -> list[Any]:
    p = r.policy
    return [
        p.type,
        list(p.string),
        p.domain,
        list(p.mx_host),
        r.success,
        r.failure,
        [
            [
                d.result_type,
                d.sending_mta_ip,
                d.receiving_mx_hostname,
                d.receiving_mx_helo,
                d.receiving_ip,
                d.failed_session_count,
                d.additional_information,
                d.failure_reason_code,
            ]
            for d in r.details
        ],
    ]


def unpack_result(v: list[Any]) -> Result:
    ptype, strings, domain, mx_host, success, failure, details = v
    return Result(
        Policy(ptype, list(strings), domain, list(mx_host)), success, failure, [FailureDetails(*d) for d in details]
    )


def packed_json(v: list[Any]) -> dict[str, Any]:
    """The report JSON of a packed result (same as ``unpack_result(v).to_json()``, faster)."""
    return {
        "policy": {"policy-type": v[0], "policy-string": v[1], "policy-domain": v[2], "mx-host": v[3]},
        "summary": {"total-successful-session-count": v[4], "total-failure-session-count": v[5]},
        "failure-details": [detail_json(d) for d in v[6]],
    }


def _separators(indent: str | None, level: int) -> tuple[str, str, str]:
    """What ``json.dumps`` writes after the opening bracket, between items and before the
    closing bracket of a container whose closing bracket is ``level`` indents deep."""
    if indent is None:
        return "", ", ", ""
    inner = "\n" + indent * (level + 1)
    return inner, "," + inner, "\n" + indent * level


class PackedJSONText:
    """JSON text of packed results, equal to ``json.dumps(packed_json(v), ensure_ascii=False,
    indent=indent)`` nested ``level`` containers deep, from string templates.

    The report job writes a policy per result row (a million on big servers): the json
    module costs several times more (it builds dicts first, and is pure Python when it indents).
    Policies of one report mostly repeat their policy strings and failure details (same MX,
    same errors), so one writer per report remembers those texts. Counts are ints, as stored.
    """

    def __init__(self, indent: str | int | None = None, level: int = 0) -> None:
        if isinstance(indent, int):
            indent = " " * indent
        p, q, r = (_separators(indent, level + i) for i in range(3))
        self._details_seps = q
        self._list_seps = r
        self._policy = (
            "{" + p[0] + '"policy": {'
            + q[0] + '"policy-type": %s' + q[1] + '"policy-string": %s' + q[1] + '"policy-domain": %s'
            + q[1] + '"mx-host": %s' + q[2] + "}"
            + p[1] + '"summary": {'
            + q[0] + '"total-successful-session-count": %s' + q[1] + '"total-failure-session-count": %s' + q[2] + "}"
            + p[1] + '"failure-details": %s' + p[2] + "}"
        )  # fmt: skip
        self._detail_seps = r
        self._strings_memo: dict[tuple[str, ...], str] = {}
        self._details_memo: dict[tuple[Any, ...], str] = {}

    def _strings(self, items: list[str]) -> str:
        if not items:
            return "[]"
        key = tuple(items)
        text = self._strings_memo.get(key)
        if text is None:
            o, sep, c = self._list_seps
            text = self._strings_memo[key] = "[" + o + sep.join(map(_json_string, items)) + c + "]"
        return text

    def _detail_text(self, d: list[Any]) -> str:
        key = tuple(d)
        text = self._details_memo.get(key)
        if text is None:
            # The fields of detail_json: empty ones left out (RFC 8460 §4.4).
            o, sep, c = self._detail_seps
            items = [
                f'"{k}": {d[i] if i == _COUNT else _json_string(d[i])}'
                for i, k in enumerate(DETAIL_KEYS)
                if i in (0, _COUNT) or d[i]
            ]
            text = self._details_memo[key] = "{" + o + sep.join(items) + c + "}"
        return text

    def policy(self, v: list[Any]) -> str:
        """The text of one packed result."""
        details = "[]"
        if v[6]:
            o, sep, c = self._details_seps
            details = "[" + o + sep.join([self._detail_text(d) for d in v[6]]) + c + "]"
        return self._policy % (
            _json_string(v[0]),
            self._strings(v[1]),
            _json_string(v[2]),
            self._strings(v[3]),
            v[4],
            v[5],
            details,
        )


def report_json_text(head: dict[str, Any], policies: list[list[Any]], indent: str | int | None = None) -> str:
    """``json.dumps(head | {"policies": [packed_json(v) ...]}, ensure_ascii=False, indent=indent)``
    for a non-empty ``head``, the policies written by :class:`PackedJSONText`."""
    text = json.dumps(head, ensure_ascii=False, indent=indent)
    ind = " " * indent if isinstance(indent, int) else indent
    _, item_sep, close = _separators(ind, 0)
    items = "[]"
    if policies:
        o, sep, c = _separators(ind, 1)
        policy = PackedJSONText(ind, 2).policy
        items = "[" + o + sep.join([policy(v) for v in policies]) + c + "]"
    return text[: len(text) - len(close) - 1] + item_sep + '"policies": ' + items + close + "}"


class PackedMerger:
    """:func:`merge` (docs/behaviour-notes.md §1.5) on packed results: many rows, few objects."""

    def __init__(self) -> None:
        self.results: list[list[Any]] = []
        self._index: dict[tuple[Any, ...], tuple[list[Any], dict[tuple[Any, ...], list[Any]]]] = {}

    def add(self, v: list[Any]) -> None:
        key = (v[0], v[2], tuple(v[1]), tuple(v[3]))
        entry = self._index.get(key)
        if entry is None:
            # Appended as it is (like merge), details included verbatim.
            new = [v[0], v[1], v[2], v[3], v[4], v[5], [list(d) for d in v[6]]]
            dindex: dict[tuple[Any, ...], list[Any]] = {}
            for d in new[6]:
                dindex.setdefault((d[0], d[1], d[2], d[3], d[4], d[6], d[7]), d)
            self._index[key] = (new, dindex)
            self.results.append(new)
            return
        cur, dindex = entry
        cur[4] = max(0, cur[4] + v[4])
        cur[5] = max(0, cur[5] + v[5])
        self._add_details(cur, dindex, v[6])

    @staticmethod
    def _add_details(cur: list[Any], dindex: dict[tuple[Any, ...], list[Any]], details: list[list[Any]]) -> None:
        for d in details:
            dkey = (d[0], d[1], d[2], d[3], d[4], d[6], d[7])
            od = dindex.get(dkey)
            if od is None:
                nd = list(d)
                dindex[dkey] = nd
                cur[6].append(nd)
            else:
                od[5] += d[5]


def make_result(policy_type: str, policy_domain: str, *details: FailureDetails) -> Result:
    """A result with empty policy-string and mx-host, counts 0 (mox's MakeResult)."""
    return Result(Policy(policy_type, [], policy_domain, []), 0, 0, [replace(d) for d in details])


def tlsa_policy(records: Iterable[tuple[int, int, int, bytes]], base_domain: str) -> Policy:
    """The ``tlsa`` policy for TLSA records (RFC 8460 §4.5; docs/behaviour-notes.md §1.5).

    Each record as ``usage selector matchtype lowercasehex``, sorted ascending (mox); the
    policy domain is the TLSA base domain (ASCII).
    """
    strings = sorted(f"{u} {s} {m} {data.hex()}" for u, s, m, data in records)
    return Policy(POLICY_TLSA, strings, base_domain, [])


def _policy_key(p: Policy) -> tuple[Any, ...]:
    return (p.type, p.domain, tuple(p.string), tuple(p.mx_host))


def merge(results: list[Result], *new: Result, copy: bool = True) -> None:
    """Merge ``new`` into ``results`` in place (docs/behaviour-notes.md §1.5).

    An equal policy (type, domain, and policy-string and mx-host element-wise in order) gets
    the counts and details added; otherwise it is appended (first appearance order kept), as
    a copy unless ``copy`` is False (the caller hands over results it owns).
    """
    index = {_policy_key(r.policy): r for r in results}
    for r in new:
        key = _policy_key(r.policy)
        existing = index.get(key)
        if existing is None:
            c = r.copy() if copy else r
            results.append(c)
            index[key] = c
        else:
            existing.add(r.success, r.failure, *r.details)


@dataclass
class Report:
    """A whole RFC 8460 aggregate report."""

    organization_name: str
    start: datetime
    end: datetime
    contact_info: str
    report_id: str
    policies: list[Result] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "organization-name": self.organization_name,
            "date-range": {"start-datetime": format_time(self.start), "end-datetime": format_time(self.end)},
            "contact-info": self.contact_info,
            "report-id": self.report_id,
            "policies": [p.to_json() for p in self.policies],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Report:
        """From an already-decoded dict (e.g. stored); warnings are dropped."""
        return _report(obj, [])


@functools.lru_cache(maxsize=1024)  # reports of a mailbox cover few distinct days
def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; fractional seconds only if non-zero (docs/behaviour-notes.md §0.3)."""
    t = t.astimezone(UTC)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("." + f"{t.microsecond:06d}").rstrip("0")
    return s + "Z"


def report_json_bytes(report: Report | dict[str, Any]) -> bytes:
    """The report as mox sends it: TAB-indented JSON plus a newline, non-ASCII not escaped."""
    obj = report.to_json() if isinstance(report, Report) else report
    return (json.dumps(obj, indent="\t", ensure_ascii=False) + "\n").encode("utf-8")


# --- parsing -------------------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def parse_time(text: str, where: str, warnings: list[Finding]) -> datetime:
    """RFC 3339 date-time (RFC 8460 §4.4); liberal as mox: without a zone it is UTC, with a warning."""
    t, zoned = _parse_time(text, where)
    if not zoned:
        # mox quirk (Microsoft sends this): no timezone, taken as UTC.
        warnings.append(Finding("time-without-zone", f"{where}: date-time {text!r} has no timezone, taken as UTC"))
    return t


@functools.lru_cache(maxsize=1024)  # a mailbox's reports cover few distinct days
def _parse_time(text: str, where: str) -> tuple[datetime, bool]:
    """(the time in UTC, whether the text has a zone); ReportError if it is no RFC 3339 time."""
    m = _RFC3339.match(text)
    if not m:
        raise ReportError(f"{where}: invalid date-time {text[:64]!r}")
    year, mon, day, hh, mm, ss = map(int, m.group(1, 2, 3, 4, 5, 6))
    frac = m.group(7) or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    if zone is None or zone in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        t = datetime(year, mon, day, hh, mm, min(ss, 59), micro, tzinfo=tz)
        return (t if tz is UTC else t.astimezone(UTC)), zone is not None
    except ValueError as exc:
        raise ReportError(f"{where}: invalid date-time {text!r}: {exc}") from None


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    # Go's JSON decoding (mox) matches keys case-insensitively; the first occurrence wins here.
    if "".join(obj).islower():  # no key has an upper-case letter (reports as sent): as it is
        return obj
    out: dict[str, Any] = {}
    for k, v in obj.items():
        out.setdefault(k.lower(), v)
    return out


def _obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ReportError(f"{where}: expected a JSON object, got {type(v).__name__}")
    return _lower_keys(v)


MAX_COUNT = 1 << 63


def _str(obj: dict[str, Any], key: str, where: str, warnings: list[Finding]) -> str:
    v = obj.get(key)
    if v is None:
        if key in obj:
            warnings.append(Finding("null-as-empty", f"{where}: {key} is null, taken as empty"))
        return ""
    if not isinstance(v, str):
        raise ReportError(f"{where}: {key}: expected a string, got {type(v).__name__}")
    if not v.isascii() and not _is_text(v):  # JSON "\\udc80": no Unicode text
        raise ReportError(f"{where}: {key}: a lone surrogate (\\u escape) is not text")
    return v


def _ascii_strs(obj: dict[str, Any], keys: tuple[str, ...]) -> list[Any] | None:
    """The values of ``keys`` when every one is an ASCII string (reports as sent: no warning,
    no error possible, so _str has nothing to say), else None: then each is read with _str."""
    values = [obj.get(k) for k in keys]
    try:
        return values if "".join(cast("list[str]", values)).isascii() else None  # join refuses non-strings
    except TypeError:
        return None


def _int(obj: dict[str, Any], key: str, where: str) -> int:
    v = obj.get(key)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer() and abs(v) < MAX_COUNT:
            v = int(v)
        else:
            raise ReportError(f"{where}: {key}: expected an integer, got {_short(v)}")
    if not 0 <= v < MAX_COUNT:
        # Counts are stored as 64-bit integers; a negative count is no count (RFC 8460 §4.4).
        raise ReportError(f"{where}: {key}: out of range 0 to 2^63-1: {_short(v)}")
    return v


def _short(v: Any) -> str:
    """A value in an error line: huge numbers and strings are cut."""
    text = repr(v) if not isinstance(v, int) or v.bit_length() < 200 else f"an integer of {v.bit_length()} bits"
    return text if len(text) <= 60 else text[:60] + "..."


def _str_list(obj: dict[str, Any], key: str, where: str, warnings: list[Finding]) -> list[str]:
    v = obj.get(key)
    if v is None:
        return []
    if isinstance(v, str):
        # Appendix B's example (erratum 6241) shows mx-host as a bare string; some send that.
        warnings.append(Finding("string-not-array", f"{where}: {key} is a string, not an array"))
        return [v]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ReportError(f"{where}: {key}: expected an array of strings")
    return list(v)


def _policy_strings(obj: dict[str, Any], ptype: str, where: str, warnings: list[Finding]) -> list[str]:
    strings = _str_list(obj, "policy-string", where, warnings)
    if ptype != POLICY_TLSA:
        return strings
    out = []
    for s in strings:
        # Some senders put a JSON-encoded string (with quotes) per TLSA record.
        if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
            try:
                decoded = json.loads(s)
            except ValueError:
                decoded = None
            if isinstance(decoded, str):
                warnings.append(
                    Finding("policy-string-json", f"{where}: TLSA policy-string {s[:40]!r} is JSON-encoded, decoded")
                )
                out.append(decoded)
                continue
        out.append(s)
    return out


_DETAIL_STRS = (
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "additional-information",
    "failure-reason-code",
)


def _details(v: Any, where: str, warnings: list[Finding]) -> FailureDetails:
    o = _obj(v, where)
    plain = _ascii_strs(o, _DETAIL_STRS)
    if plain is not None and plain[1] != "":
        rt, ip, mx, helo, rip, info, code = plain
        return FailureDetails(rt, ip, mx, helo, rip, _int(o, "failed-session-count", where), info, code)
    ip = o.get("sending-mta-ip")
    if ip == "":
        warnings.append(Finding("sending-ip-empty", f"{where}: sending-mta-ip is empty"))
    return FailureDetails(
        result_type=_str(o, "result-type", where, warnings),
        sending_mta_ip=_str(o, "sending-mta-ip", where, warnings),
        receiving_mx_hostname=_str(o, "receiving-mx-hostname", where, warnings),
        receiving_mx_helo=_str(o, "receiving-mx-helo", where, warnings),
        receiving_ip=_str(o, "receiving-ip", where, warnings),
        failed_session_count=_int(o, "failed-session-count", where),
        additional_information=_str(o, "additional-information", where, warnings),
        failure_reason_code=_str(o, "failure-reason-code", where, warnings),
    )


def _result(v: Any, where: str, warnings: list[Finding]) -> Result:
    o = _obj(v, where)
    p = _obj(o.get("policy") or {}, where + ".policy")
    ptype = _str(p, "policy-type", where + ".policy", warnings)
    policy = Policy(
        type=ptype,
        string=_policy_strings(p, ptype, where + ".policy", warnings),
        domain=_str(p, "policy-domain", where + ".policy", warnings),
        mx_host=_str_list(p, "mx-host", where + ".policy", warnings),
    )
    s = _obj(o.get("summary") or {}, where + ".summary")
    fd = o.get("failure-details")
    if fd is None:
        fd = []
    if not isinstance(fd, list):
        raise ReportError(f"{where}: failure-details: expected an array")
    return Result(
        policy=policy,
        success=_int(s, "total-successful-session-count", where + ".summary"),
        failure=_int(s, "total-failure-session-count", where + ".summary"),
        details=[_details(d, f"{where}.failure-details[{i}]", warnings) for i, d in enumerate(fd)],
    )


def _report(v: Any, warnings: list[Finding]) -> Report:
    o = _obj(v, "report")
    dr = o.get("date-range")
    dro = _obj(dr, "date-range") if dr is not None else {}
    pol = o.get("policies")
    if pol is None:
        pol = []
    if not isinstance(pol, list):
        raise ReportError("policies: expected an array")
    epoch = datetime(1, 1, 1, tzinfo=UTC)
    start_text = dro.get("start-datetime")
    end_text = dro.get("end-datetime")
    start = parse_time(start_text, "date-range.start-datetime", warnings) if isinstance(start_text, str) else epoch
    end = parse_time(end_text, "date-range.end-datetime", warnings) if isinstance(end_text, str) else epoch
    if end < start:
        raise ReportError(f"date-range: end-datetime {end_text!r:.40} is before start-datetime {start_text!r:.40}")
    plain = _ascii_strs(o, ("organization-name", "contact-info", "report-id"))
    if plain is None:
        plain = [_str(o, k, "report", warnings) for k in ("organization-name", "contact-info", "report-id")]
    return Report(
        organization_name=plain[0],
        start=start,
        end=end,
        contact_info=plain[1],
        report_id=plain[2],
        policies=[_result(p, f"policies[{i}]", warnings) for i, p in enumerate(pol)],
    )


def _is_text(v: str) -> bool:
    """No lone surrogates (only those fail to encode as UTF-8); checked in C, not per character."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# JSON strings (with their escapes) and the brackets outside them.
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _check_depth(data: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before json (recursive) sees it. Strings are
    skipped by one regular expression scan, so only the brackets are counted in Python."""
    if data.count("[") + data.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for m in _JSON_STRING_OR_BRACKET.finditer(data):
        c = m.group()
        if c in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ReportError(f"JSON nested deeper than {MAX_DEPTH} levels")
        elif c in ("]", "}"):
            depth -= 1


def _parse_int(text: str) -> int:
    """JSON integers: no count needs more than 40 digits, and int() of thousands raises."""
    if len(text) > 40:
        raise ReportError(f"integer of {len(text)} digits in the report JSON, refused")
    return int(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int)  # stateless between calls: one for all


def parse_report(data: bytes) -> tuple[Report, list[Finding]]:
    """Parse report JSON (RFC 8460 §4.4) as liberally as mox; returns the report and warnings.

    Keys match case-insensitively, unknown keys are ignored, missing keys give empty values,
    data after the first JSON value is ignored (all as mox). Refused: more than 20 MiB, nesting
    beyond any valid report, invalid JSON, wrong value types.
    """
    if len(data) > MAX_JSON_SIZE:
        raise ReportError(f"report JSON larger than {MAX_JSON_SIZE} bytes")
    try:
        # utf-8-sig without its Python codec module (the BOM is taken off here).
        text = (data[3:] if data[:3] == b"\xef\xbb\xbf" else data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"report is not UTF-8: {exc}") from None
    _check_depth(text)
    text = text.lstrip()
    try:
        obj, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ReportError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    warnings: list[Finding] = []
    if end < len(text) and not text[end:].isspace():
        # mox ignores data after the first JSON value.
        warnings.append(Finding("trailing-data", "data after the report JSON ignored"))
    return _report(obj, warnings), warnings

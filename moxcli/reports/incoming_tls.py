"""Incoming TLS reports (docs/behaviour-notes.md §1.6): parse report messages and JSON files, store, list, show.

Parsing follows mox's MIME rules (a ``application/tlsrpt+json`` or ``+gzip`` leaf, as the
whole message or directly under ``multipart/report; report-type="tlsrpt"``) and its limits
(15 MiB message, 20 MiB JSON after decompression), and is as liberal as mox in the JSON.
Beyond mox, for report files saved from real mailboxes: bare-LF line endings and lines
longer than 1000 bytes are accepted with a warning (mox refuses them). Every quirk met gives
one warning. Hostile input (too large, gzip bombs, deep nesting, invalid JSON) is refused
with a ReportError before anything is stored.

Reports are imported from files and mailboxes by the operator, so no DKIM check is made (mox
checks DKIM when it receives reports by SMTP). Importing (sources, outcomes, dedupe, batches)
is moxcli.reports.incoming; this module is its TLS kind.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from moxcli import inflate, jsonfmt
from moxcli.config import Config
from moxcli.domain import DomainError, parse_domain
from moxcli.errors import StoreError, UsageError
from moxcli.jsonfmt import Finding
from moxcli.mail import mimescan
from moxcli.mail.mimescan import Part, scan
from moxcli.reports.incoming import NotAReport, Outcome, Prepared, Rejected, import_messages, iter_paths
from moxcli.store import Store
from moxcli.store import tlsreports as rstore
from moxcli.store.env import Txn, record_reader
from moxcli.store.schema import TLS_REPORT_IN
from moxcli.tlsrpt.report import MAX_JSON_SIZE, DecompressionBombError, Report, ReportError, parse_report
from moxcli.values import dataclass, field

if TYPE_CHECKING:
    # The email package is imported only for messages moxcli.mail.mimescan leaves to it
    # (email.policy and email.utils cost 20 ms of start-up).
    from email.message import Message

MAX_MESSAGE_SIZE = 15 * 1024 * 1024  # docs/behaviour-notes.md §1.6
REPORT_TYPES = ("application/tlsrpt+json", "application/tlsrpt+gzip")
GZIP_MAGIC = b"\x1f\x8b"
MAX_MIME_DEPTH = 20


class NoReport(ReportError):
    """The message holds no TLS report (mox's ErrNoReport)."""


def gunzip(data: bytes, where: str = "report") -> bytes:
    """Decompress gzip, refusing more than 20 MiB of output, and a gzip bomb (more than
    moxcli.inflate's ratio) as soon as it shows, without inflating it all."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(d, data, MAX_JSON_SIZE)
    except zlib.error as exc:
        raise ReportError(f"{where}: invalid gzip data: {exc}") from None
    except inflate.DecompressionBomb as exc:
        raise DecompressionBombError(f"{where}: {exc}") from None
    if len(out) > MAX_JSON_SIZE or d.unconsumed_tail:
        raise ReportError(f"{where}: decompressed report larger than {MAX_JSON_SIZE} bytes")
    if not d.eof:
        raise ReportError(f"{where}: truncated gzip data")
    return out


def _check_lines(data: bytes, warnings: list[Finding]) -> bytes:
    """The message with CRLF line endings only (mimescan.scan's crlf_checked), or ReportError."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf:
        warnings.append(Finding("bare-lf", "message has bare LF line endings (RFC 5322 requires CRLF), taken as CRLF"))
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf:
        raise ReportError("message has a bare CR")
    if len(data) > 1000 and max(map(len, data.split(b"\r\n"))) > 1000:
        warnings.append(Finding("long-lines", "message has lines longer than 1000 bytes (RFC 5322 §2.1.1)"))
    return data


def _leaf_report(part: Message | Part, warnings: list[Finding]) -> Report | None:
    ctype = part.get_content_type()
    if ctype not in REPORT_TYPES:
        return None
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise ReportError(f"{ctype} part has no body")
    if ctype == "application/tlsrpt+gzip":
        payload = gunzip(payload, ctype)
    report, w = parse_report(payload)
    warnings += w
    return report


def _find(part: Message | Part, top: bool, warnings: list[Finding], depth: int) -> Report | None:
    if depth > MAX_MIME_DEPTH:
        raise ReportError(f"MIME structure nested deeper than {MAX_MIME_DEPTH} levels")
    if not part.is_multipart():
        return _leaf_report(part, warnings) if top else None
    subtype = part.get_content_subtype()
    children = cast("list[Message | Part]", part.get_payload())  # multipart: a list of parts
    if subtype == "report" and children and part.get_param("report-type") != "tlsrpt":
        raise ReportError(f'unknown report-type parameter "{part.get_param("report-type")}"')
    for child in children:
        if child.is_multipart():
            found = _find(child, False, warnings, depth + 1)
        elif subtype == "report":
            found = _leaf_report(child, warnings)
        else:
            found = None
        if found is not None:
            return found
    return None


def _message(data: bytes) -> Message | Part:
    """The message for _find: moxcli.mail.mimescan's quick read where it decides exactly as
    the email package (report mail nearly always), else the email package's full parse."""
    scanned = scan(data, crlf_checked=True)  # parse_report_message ran _check_lines
    if scanned is not None:
        return scanned
    field = mimescan.overlong_field(data)
    if field is not None:
        raise ReportError(f"header field {field[:64]!r} longer than {mimescan.MAX_FIELD} bytes")
    import email
    import email.policy

    return email.message_from_bytes(data, policy=email.policy.compat32)


# An address alone or after a display name of atoms, in <>: what reporters send. The address
# found is then the one email.utils.parseaddr finds (tests/test_tlsreports_incoming.py), which
# is asked about anything else. Each branch is linear (no two adjacent repeats that can take
# the same character), so a hostile From of many spaces costs no more than its length.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = rf"({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
_PLAIN_FROM = re.compile(
    rf"(?:[A-Za-z0-9 \t!#$%&'*+/=?^_`{{|}}~.-]*<{_ADDR}>|[ \t]*\"[^\"\\\r\n]*\"[ \t]*<{_ADDR}>|[ \t]*{_ADDR})[ \t]*"
)


def from_address(value: Any) -> str:
    """The address of a From field (a str, or a Header for non-ASCII), as email.utils.parseaddr gives it."""
    m = _PLAIN_FROM.fullmatch(value) if isinstance(value, str) else None
    if m:
        return m.group(1) or m.group(2) or m.group(3)
    import email.utils

    return email.utils.parseaddr(value)[1]


def parse_report_message(data: bytes) -> tuple[Report, list[Finding], str]:
    """The TLS report in a message: (report, warnings, From domain). Raises ReportError/NoReport."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ReportError(f"message larger than {MAX_MESSAGE_SIZE} bytes")
    warnings: list[Finding] = []
    data = _check_lines(data, warnings)
    try:
        msg = _message(data)
        ct = msg.get("Content-Type")
        if ct is not None and "/" not in ct.split(";")[0]:
            raise ReportError(f"malformed Content-Type {ct[:80]!r}")
        report = _find(msg, True, warnings, 0)
    except RecursionError:
        raise ReportError("MIME structure nested too deeply") from None
    if report is None:
        raise NoReport("no TLS report found in message")
    from_domain = ""
    addr = from_address(msg.get("From", ""))
    if "@" in addr:
        try:
            from_domain = parse_domain(addr.rpartition("@")[2]).name
        except DomainError:
            warnings.append(Finding("from-domain-invalid", f"From address {addr[:80]!r} has an invalid domain"))
    return report, warnings, from_domain


@dataclass
class ParsedFile:
    path: str
    kind: str  # message | json | json.gz
    report: Report
    warnings: list[Finding] = field(default_factory=list)
    from_domain: str = ""


def parse_report_bytes(data: bytes, name: str = "-") -> ParsedFile:
    """A report file by content: gzip JSON, JSON, or a message (.eml)."""
    if data[:2] == GZIP_MAGIC:
        if len(data) > MAX_MESSAGE_SIZE:
            raise ReportError(f"compressed report larger than {MAX_MESSAGE_SIZE} bytes")
        report, w = parse_report(gunzip(data, "gzip TLS report"))
        return ParsedFile(name, "json.gz", report, w)
    if data.lstrip()[:1] in (b"{", b"["):
        report, w = parse_report(data)
        return ParsedFile(name, "json", report, w)
    report, w, from_domain = parse_report_message(data)
    return ParsedFile(name, "message", report, w, from_domain)


KIND = "tls"


def _domains_for(report: Report, config: Config) -> tuple[list[str], list[str], bool]:
    """(stored, skipped, host_report): policy domains that are ours (docs/behaviour-notes.md §1.6 storage).

    Without configured domains (no config), every policy domain is accepted.
    """
    ours = {d for d in config.domains}
    host = config.hostname
    stored: list[str] = []
    skipped: list[str] = []
    host_report = False
    for p in report.policies:
        try:
            d = parse_domain(p.policy.domain, lax=True)
        except DomainError:
            skipped.append(p.policy.domain)
            continue
        if ours and d.ascii not in ours and d.ascii != host:
            skipped.append(d.name)
            continue
        host_report = host_report or d.ascii == host
        if d.name not in stored:
            stored.append(d.name)
    return stored, skipped, host_report


def prepare(data: bytes, name: str, config: Config, now: float) -> Prepared:
    """A report file or message parsed into the record to store (moxcli.reports.incoming).

    NotAReport for a message without a TLS report; Rejected when the report does not parse,
    has no policies, or is about none of our domains (docs/behaviour-notes.md §1.6).
    """
    try:
        pf = parse_report_bytes(data, name)
    except NoReport as exc:
        raise NotAReport(str(exc)) from None
    except ReportError as exc:
        raise Rejected(str(exc), exc.code) from None
    rep = pf.report
    if not rep.policies:
        raise Rejected("no policies in report", "no-policies")
    stored, skipped, host_report = _domains_for(rep, config)
    if not stored:
        raise Rejected(f"no domains in report recognized ({', '.join(skipped)})", "not-our-domain")
    warnings = list(pf.warnings)
    if skipped:
        warnings.append(Finding("not-our-domains", f"not our domains, skipped: {', '.join(skipped)}"))
    record = rstore.StoredTLSReport(
        imported=now,
        source=os.path.basename(name),
        from_domain=pf.from_domain,
        policy_domains=tuple(stored),
        host_report=host_report,
        warnings=tuple(pf.warnings),
        report=rep.to_json(),
    )
    return Prepared(
        KIND,
        record.dedupe_key(),
        record,
        rep.report_id,
        rep.organization_name,
        stored,
        rep.start.timestamp(),
        rep.end.timestamp(),
        warnings,
        len(data),
    )


def find_duplicate(tx: Txn, key: bytes) -> int | None:
    return rstore.find_duplicate(tx, key)


SEQUENCE = rstore.SEQUENCE


def add(tx: Txn, prepared: Prepared, rid: int) -> None:
    """Store a new report under ``rid`` (reserved from SEQUENCE)."""
    assert isinstance(prepared.record, rstore.StoredTLSReport)
    rstore.add(tx, prepared.record, prepared.key, rid)


def import_files(store: Store, config: Config, paths: list[Path], now: float | None = None) -> list[Outcome]:
    """Import report files (directories walked); an outcome per file (moxcli.reports.incoming)."""
    out: list[Outcome] = []
    import_messages(store, config, iter_paths(paths), (KIND,), out.append, now=now)
    return out


@dataclass(frozen=True)
class TLSReportSummary:
    """The list view of a stored report (``tlsreports list``; JSON keys in docs/tls-reports.md)."""

    id: int
    organization_name: str
    report_id: str
    start: str  # as in the report: RFC 3339
    end: str
    contact_info: str | None
    policy_domains: tuple[str, ...]
    from_domain: str | None
    source: str | None
    imported: float | None
    host_report: bool
    successful_sessions: int
    failed_sessions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization_name": self.organization_name,
            "report_id": self.report_id,
            "start": self.start,
            "end": self.end,
            "contact_info": self.contact_info,
            "policy_domains": list(self.policy_domains),
            "from_domain": self.from_domain,
            "source": self.source,
            "imported": jsonfmt.rfc3339(self.imported),
            "host_report": self.host_report,
            "successful_sessions": self.successful_sessions,
            "failed_sessions": self.failed_sessions,
        }


@record_reader(TLS_REPORT_IN)
def summary(stored: rstore.StoredTLSReport) -> TLSReportSummary:
    """The list view of a stored report: its ids and period, the session counts."""
    rep = stored.report
    pols = rep.get("policies", [])
    return TLSReportSummary(
        id=stored.id,
        organization_name=rep.get("organization-name", ""),
        report_id=rep.get("report-id", ""),
        start=rep.get("date-range", {}).get("start-datetime", ""),
        end=rep.get("date-range", {}).get("end-datetime", ""),
        contact_info=rep.get("contact-info") or None,
        policy_domains=stored.policy_domains,
        from_domain=stored.from_domain or None,
        source=stored.source or None,
        imported=stored.imported,
        host_report=stored.host_report,
        successful_sessions=sum(p["summary"]["total-successful-session-count"] for p in pols),
        failed_sessions=sum(p["summary"]["total-failure-session-count"] for p in pols),
    )


def list_reports(store: Store, domain: str | None = None) -> list[TLSReportSummary]:
    """Summaries of the stored reports, newest first; with ``domain``, those stored for that
    policy domain."""
    with store.read() as tx:
        if domain is None:
            return [summary(r) for r in rstore.scan(tx)]
        try:
            name = parse_domain(domain, lax=True).name
        except DomainError as exc:
            raise UsageError(f"invalid domain {domain!r}: {exc}", code="bad-domain") from None
        recs = [rstore.get(tx, i) for i in reversed(rstore.ids_for_domain(tx, name))]
        return [summary(r) for r in recs if r is not None]


def get_report(store: Store, rid: int) -> rstore.StoredTLSReport:
    """A stored report (with the report JSON); UsageError when there is none."""
    with store.read() as tx:
        stored = rstore.get(tx, rid)
    if stored is None:
        raise UsageError(f"TLS report {rid}: no such report", code="not-found")
    rep = stored.report
    dr = rep.get("date-range")
    fields = ("organization-name", "report-id", "contact-info")
    if (
        not isinstance(dr, dict)
        or not all(k in rep for k in fields)
        or not all(k in dr for k in ("start-datetime", "end-datetime"))
    ):
        raise StoreError(
            f"TLS report {rid}: the stored record lacks its report fields (damaged store? run moxcli verifydata)"
        )
    return stored

"""Incoming DMARC aggregate reports: message -> attachment -> XML -> Feedback (docs/behaviour-notes.md §6.9). Pure.

Hostile input is expected: the message is limited to 15 MiB and the XML to 20 MiB (mox's
limits), gzip and zip are decompressed with a bound on the output and on its ratio to the input
(moxcli.inflate: a decompression bomb is refused early), and the XML parser refuses
any document type declaration, so no entity (external, internal or nested) is ever expanded.
The stdlib's expat is used directly with that refusal (what defusedxml does) rather than adding
a dependency. Reading is liberal like mox: unknown elements are ignored, both RFC 7489 and
RFC 9990 (`dmarc-2.0` namespace) documents are read, and missing elements are empty.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from xml.parsers import expat

from moxcli import inflate
from moxcli.dmarc.report import DKIMAuth, Feedback, Metadata, Published, Reason, Record, SPFAuth
from moxcli.jsonfmt import Finding
from moxcli.mail.mimescan import MAX_FIELD, Part, overlong_field, scan

if TYPE_CHECKING:
    from email.message import Message  # the email package is imported when mimescan declines

MAX_MESSAGE = 15 << 20
MAX_XML = 20 << 20
MAX_DEPTH = 32
MAX_PARTS = 200


class ReportError(ValueError):
    """Not a (valid) DMARC aggregate report; the message says why, ``code`` its stable name."""

    code = "invalid-report"


class DecompressionBombError(ReportError):
    """A compressed report expands more than moxcli.inflate allows."""

    code = "decompression-bomb"


class NoReport(ReportError):
    """The message holds no DMARC report (mox's ErrNoReport)."""


class Element:
    """An XML element: local name, namespace, text, children (a plain class: one is made per
    element of every report, and a dataclass's default_factory made that a tenth of a report's
    import time)."""

    __slots__ = ("children", "ns", "tag", "text")

    def __init__(self, tag: str, ns: str = "") -> None:
        self.tag = tag
        self.ns = ns
        self.text = ""
        self.children: list[Element] = []

    def find(self, tag: str) -> Element | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def get(self, tag: str) -> str:
        c = self.find(tag)
        return c.text.strip() if c is not None else ""


def _refuse(*_: object) -> None:
    raise ReportError("XML document type declarations are not accepted (entity expansion)")


def parse_xml(data: bytes) -> Element:
    """A safe element tree: no DTD, no entities beyond the five predefined, bounded depth."""
    if len(data) > MAX_XML:
        raise ReportError(f"XML report larger than {MAX_XML >> 20} MiB")
    p = expat.ParserCreate(namespace_separator=" ")
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartDoctypeDeclHandler = _refuse
    p.EntityDeclHandler = _refuse
    p.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    stack: list[Element] = []
    root: list[Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        el = Element(local, ns)
        if stack:
            if len(stack) >= MAX_DEPTH:
                raise ReportError(f"XML nested deeper than {MAX_DEPTH} elements")
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text += text

    p.buffer_text = True  # one call per text run, not per line or entity
    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = chars
    try:
        p.Parse(data, True)
    except expat.ExpatError as exc:
        raise ReportError(f"invalid XML: {expat.ErrorString(exc.code)} at line {exc.lineno}") from None
    return root[0]


MAX_INT = 1 << 63  # counts and times are stored as 64-bit integers


def _int(text: str, what: str) -> int:
    t = text.strip()
    if len(t) > 40:  # no count or time has more digits; int() of thousands of digits raises
        raise ReportError(f"{what}: not a number: {t[:40]!r}... ({len(t)} characters)")
    try:
        n = int(t) if t else 0
    except ValueError:
        try:
            # Liberal: some reporters write "1530133200.0".
            f = float(t)
            if not (math.isfinite(f) and abs(f) < MAX_INT):
                raise ValueError
            n = int(f)
        except ValueError:
            raise ReportError(f"{what}: not a number: {t[:40]!r}") from None
    if not 0 <= n < MAX_INT:
        raise ReportError(f"{what}: out of range 0 to 2^63-1: {t[:40]}")
    return n


def feedback_from_tree(root: Element) -> Feedback:
    """The report model of a `<feedback>` tree (either schema)."""
    if root.tag != "feedback":
        raise ReportError(f"root element is <{root.tag}>, expected <feedback>")
    md = root.find("report_metadata") or Element("report_metadata")
    dr = md.find("date_range") or Element("date_range")
    meta = Metadata(
        org_name=md.get("org_name"),
        email=md.get("email"),
        report_id=md.get("report_id"),
        begin=_int(dr.get("begin"), "date_range/begin"),
        end=_int(dr.get("end"), "date_range/end"),
        extra_contact_info=md.get("extra_contact_info"),
        errors=[e.text.strip() for e in md.findall("error")],
        generator=md.get("generator"),
    )
    if meta.end < meta.begin:
        raise ReportError(f"date_range: end {meta.end} is before begin {meta.begin}")
    pp = root.find("policy_published") or Element("policy_published")
    pol = Published(**{k: pp.get(k) for k in Published.__dataclass_fields__})
    records = []
    for i, rec in enumerate(root.findall("record"), 1):
        row = rec.find("row") or Element("row")
        pe = row.find("policy_evaluated") or Element("policy_evaluated")
        ids = rec.find("identifiers") or Element("identifiers")
        auth = rec.find("auth_results") or Element("auth_results")
        records.append(
            Record(
                source_ip=row.get("source_ip"),
                count=_int(row.get("count"), f"record {i} count"),
                disposition=pe.get("disposition"),
                dkim=pe.get("dkim"),
                spf=pe.get("spf"),
                header_from=ids.get("header_from"),
                envelope_from=ids.get("envelope_from"),
                envelope_to=ids.get("envelope_to"),
                reasons=[Reason(r.get("type"), r.get("comment")) for r in pe.findall("reason")],
                dkim_auth=[
                    DKIMAuth(d.get("domain"), d.get("result"), d.get("selector"), d.get("human_result"))
                    for d in auth.findall("dkim")
                ],
                spf_auth=[SPFAuth(s.get("domain"), s.get("result"), s.get("scope")) for s in auth.findall("spf")],
            )
        )
    return Feedback(meta, pol, records, version=root.get("version"), namespace=root.ns)


def parse_report_xml(data: bytes, warn: Callable[[Finding], None] | None = None) -> Feedback:
    """Parse report XML. Invalid UTF-8 is replaced (with a warning) rather than refused, as
    several real reporters emit it (parsedmarc's samples); everything else must be well-formed."""
    try:
        root = parse_xml(data)
    except ReportError as exc:
        if "invalid token" not in str(exc) and "encoding" not in str(exc):
            raise
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if warn:
                warn(Finding("xml-invalid-utf8", "report XML is not valid UTF-8; invalid bytes replaced"))
            text = data.decode("utf-8", errors="replace")
            root = parse_xml(text.encode("utf-8"))
        else:
            raise
    return feedback_from_tree(root)


def _bounded(stream: io.BufferedIOBase, compressed: int, limit: int, what: str) -> bytes:
    try:
        data = inflate.read_member(stream, compressed, limit)
    except inflate.DecompressionBomb as exc:
        raise DecompressionBombError(f"{what}: {exc}") from None
    if len(data) > limit:
        raise ReportError(f"{what}: decompressed data larger than {limit >> 20} MiB")
    return data


def gunzip(data: bytes) -> bytes:
    """The first gzip member, bounded; trailing bytes are ignored (mimecast appends CRLF)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(d, data, MAX_XML)
    except zlib.error as exc:
        raise ReportError(f"invalid gzip data: {exc}") from None
    except inflate.DecompressionBomb as exc:
        raise DecompressionBombError(f"gzip: {exc}") from None
    if len(out) > MAX_XML:
        raise ReportError(f"gzip: decompressed data larger than {MAX_XML >> 20} MiB")
    if not d.eof:
        raise ReportError("invalid gzip data: truncated")
    return out


def unzip(data: bytes) -> bytes:
    """The single file of a zip archive (docs/behaviour-notes.md §6.9: exactly one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            files = [i for i in z.infolist() if not i.is_dir()]
            if len(files) != 1:
                raise ReportError(f"zip archive has {len(files)} files, expected exactly one")
            info = files[0]
            if info.file_size > MAX_XML:
                raise ReportError(f"zip member {info.filename!r} larger than {MAX_XML >> 20} MiB")
            if info.file_size >= inflate.RATIO_FROM and info.file_size > inflate.MAX_RATIO * max(info.compress_size, 1):
                raise DecompressionBombError(
                    f"zip member {info.filename!r} declares {info.file_size} bytes from {info.compress_size}:"
                    f" expands more than {inflate.MAX_RATIO} times: a decompression bomb"
                )
            with z.open(info) as f:
                return _bounded(f, info.compress_size, MAX_XML, "zip")  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ReportError(f"invalid zip data: {exc}") from None


def sniff(data: bytes) -> str:
    """Content type from the first bytes (WHATWG-style sniffing for unlabelled parts)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if data[:2] == b"\x1f\x8b":
        return "application/gzip"
    if data[:4] == b"PK\x03\x04":
        return "application/zip"
    if head.startswith(b"<"):
        return "text/xml"
    return "application/octet-stream"


_ZIP = ("application/zip", "application/x-zip", "application/x-zip-compressed")
_GZIP = ("application/gzip", "application/x-gzip", "application/gzip-compressed")
_XML = ("text/xml", "application/xml")
_REPORT_TYPES = frozenset(("", "application/octet-stream", *_ZIP, *_GZIP, *_XML))


def report_payload(content_type: str, data: bytes) -> bytes | None:
    """XML bytes of a report body of this type, or None if the type is not a report type."""
    if content_type in ("", "application/octet-stream"):
        content_type = sniff(data)
    if content_type in _ZIP:
        return unzip(data)
    if content_type in _GZIP:
        return gunzip(data)
    if content_type in _XML:
        return data
    return None


def _leaves(msg: Message | Part, depth: int = 0) -> list[Message | Part]:
    if depth > 20:
        raise ReportError("MIME structure nested too deeply")
    if not msg.is_multipart():
        return [msg]
    out: list[Message | Part] = []
    for part in cast("list[Message | Part]", msg.get_payload()):  # multipart: a list of parts
        out.extend(_leaves(part, depth + 1))
        if len(out) > MAX_PARTS:
            raise ReportError(f"message has more than {MAX_PARTS} parts")
    return out


def parse_message(data: bytes, warn: Callable[[Finding], None] | None = None) -> Feedback:
    """The first report in a message, any MIME structure (docs/behaviour-notes.md §6.9); NoReport if none."""
    if len(data) > MAX_MESSAGE:
        raise ReportError(f"message larger than {MAX_MESSAGE >> 20} MiB")
    # moxcli.mail.mimescan decides plain report mail as the email package does, faster.
    msg: Message | Part | None = scan(data)
    if msg is None:
        field = overlong_field(data)
        if field is not None:
            raise ReportError(f"header field {field[:64]!r} longer than {MAX_FIELD} bytes")
        import email.parser
        import email.policy

        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    for leaf in _leaves(msg):
        ctype = leaf.get_content_type() if leaf.get("Content-Type") else ""
        if ctype not in _REPORT_TYPES:
            continue  # report_payload would not look at the body
        body = leaf.get_payload(decode=True)
        if not isinstance(body, bytes):
            continue
        payload = report_payload(ctype, body)
        if payload is not None:
            return parse_report_xml(payload, warn)
    raise NoReport("no DMARC report found in message")


def parse_file(data: bytes, warn: Callable[[Finding], None] | None = None) -> Feedback:
    """A report file as operators have them: .xml, .xml.gz, .zip, or a whole message (.eml)."""
    kind = sniff(data)
    if kind != "application/octet-stream":
        payload = report_payload(kind, data)
        assert payload is not None
        return parse_report_xml(payload, warn)
    return parse_message(data, warn)

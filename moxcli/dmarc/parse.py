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
import operator
import re
import struct
import zlib
from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, cast
from xml.parsers import expat

from moxcli import inflate
from moxcli.dmarc.report import DKIMAuth, Feedback, Metadata, Published, Reason, Record, SPFAuth
from moxcli.jsonfmt import Finding
from moxcli.mail.mimescan import MAX_FIELD, Part, overlong_field, scan
from moxcli.values import fields

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

    def findtext(self, tag: str, default: str = "") -> str:
        """The text of the first child named ``tag`` (as ElementTree's findtext; the text is
        all of the child's own character data), ``default`` without one."""
        c = self.find(tag)
        return default if c is None else c.text

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


class _Tree(Protocol):
    """What feedback_from_tree reads of an element: this module's Element, or an
    xml.etree.ElementTree element with local names and no text after a child (``_fast_tree``)."""

    @property
    def tag(self) -> str: ...
    @property
    def text(self) -> str | None: ...

    def find(self, tag: str) -> Any: ...
    def findall(self, tag: str) -> list[Any]: ...
    def findtext(self, tag: str, default: str = "") -> str: ...


_NONE = Element("")  # an absent element: no text, no children


def feedback_from_tree(root: _Tree, namespace: str | None = None) -> Feedback:
    """The report model of a `<feedback>` tree (either schema); ``namespace`` is the root's
    (an Element's own ``ns`` when not given). Texts are an element's own character data,
    stripped; a missing element is empty."""
    if root.tag != "feedback":
        raise ReportError(f"root element is <{root.tag}>, expected <feedback>")
    md = root.find("report_metadata")
    md = _NONE if md is None else md
    dr = md.find("date_range")
    dr = _NONE if dr is None else dr
    meta = Metadata(
        org_name=md.findtext("org_name", "").strip(),
        email=md.findtext("email", "").strip(),
        report_id=md.findtext("report_id", "").strip(),
        begin=_int(dr.findtext("begin", ""), "date_range/begin"),
        end=_int(dr.findtext("end", ""), "date_range/end"),
        extra_contact_info=md.findtext("extra_contact_info", "").strip(),
        errors=[(e.text or "").strip() for e in md.findall("error")],
        generator=md.findtext("generator", "").strip(),
    )
    if meta.end < meta.begin:
        raise ReportError(f"date_range: end {meta.end} is before begin {meta.begin}")
    pp = root.find("policy_published")
    pp = _NONE if pp is None else pp
    pol = Published(*[pp.findtext(k, "").strip() for k in _PUBLISHED])
    records = []
    for i, rec in enumerate(root.findall("record"), 1):
        row = rec.find("row")
        row = _NONE if row is None else row
        pe = row.find("policy_evaluated")
        pe = _NONE if pe is None else pe
        ids = rec.find("identifiers")
        ids = _NONE if ids is None else ids
        auth = rec.find("auth_results")
        auth = _NONE if auth is None else auth
        records.append(
            Record(
                row.findtext("source_ip", "").strip(),
                _int(row.findtext("count", ""), f"record {i} count"),
                pe.findtext("disposition", "").strip(),
                pe.findtext("dkim", "").strip(),
                pe.findtext("spf", "").strip(),
                ids.findtext("header_from", "").strip(),
                ids.findtext("envelope_from", "").strip(),
                ids.findtext("envelope_to", "").strip(),
                [
                    Reason(r.findtext("type", "").strip(), r.findtext("comment", "").strip())
                    for r in pe.findall("reason")
                ],
                [
                    DKIMAuth(
                        d.findtext("domain", "").strip(),
                        d.findtext("result", "").strip(),
                        d.findtext("selector", "").strip(),
                        d.findtext("human_result", "").strip(),
                    )
                    for d in auth.findall("dkim")
                ],
                [
                    SPFAuth(
                        s.findtext("domain", "").strip(),
                        s.findtext("result", "").strip(),
                        s.findtext("scope", "").strip(),
                    )
                    for s in auth.findall("spf")
                ],
            )
        )
    if namespace is None:
        namespace = cast(Element, root).ns
    return Feedback(meta, pol, records, version=root.findtext("version", "").strip(), namespace=namespace)


_PUBLISHED = fields(Published)  # in the class's field order

# The XML declaration's encoding, when it has one (XML 1.0 §4.3.3).
_XML_DECL_ENCODING = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
FAST_XML_MAX = 256 << 10
_TAIL = operator.attrgetter("tail")
# Character data other than XML white space right after an end tag or an empty element's tag.
_TEXT_AFTER_CHILD = re.compile(
    rb"(?:</[^>]*>|/>)[ \t\r\n]*[^< \t\r\n]"
)  # larger documents take parse_xml (its depth check stops a deep one early)


def _fast_tree(data: bytes) -> tuple[Any, str] | None:
    """(root, its namespace) of a report document by the C ElementTree parser (about a third
    of parse_xml's time, which calls Python for every element), or None for anything that
    parser might read differently or parse_xml might refuse: then parse_xml decides.

    Taken only when no DTD can be there: the document is UTF-8, ASCII or Latin-1 (a declared
    encoding of those or none, no UTF-16/32 byte order mark) and holds no ``<!DOCTYPE``, so no
    entity can be declared (an entity reference is then an error, and parse_xml decides it);
    and only when no element has text after a child element, so that an element's text is all
    its character data, as in parse_xml's tree. The depth limit and the size limit are checked
    as parse_xml checks them."""
    if len(data) > FAST_XML_MAX or b"<!DOCTYPE" in data:
        return None
    start = data[3:4] if data[:3] == b"\xef\xbb\xbf" else data[:1]
    if start not in (b"<", b" ", b"\t", b"\r", b"\n"):
        return None  # UTF-16 or UTF-32 (with or without a byte order mark), or not XML
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    names_from = 0  # where a namespace declaration or an xml: name can be, past the XML declaration
    if body.startswith(b"<?xml"):
        decl = _XML_DECL_ENCODING.match(body)
        if decl is not None and decl.group(1).lower() not in (b"utf-8", b"us-ascii", b"iso-8859-1"):
            return None
        names_from = body.find(b"?>") + 1
    from xml.etree.ElementTree import ParseError, XMLParser

    parser = XMLParser()
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError:
        return None  # parse_xml gives the error (or reads invalid UTF-8 with a warning)
    # Text after a child element is the child's tail in ElementTree, its parent's text in
    # parse_xml's tree; only white space there (which the texts' strip() takes off) reads the same.
    tails = "".join(filter(None, map(_TAIL, root.iter())))
    if tails and not tails.isspace():
        return None
    level = [root]
    for _ in range(MAX_DEPTH):
        level = list(chain.from_iterable(level))  # the next level's elements
        if not level:
            break
    else:
        return None  # an element deeper than MAX_DEPTH: parse_xml refuses it
    namespace = ""
    if root.tag[:1] == "{":
        namespace = root.tag[1 : root.tag.rindex("}")]
    if body.find(b"xml", names_from) >= 0:  # xmlns= or xml:, or the word in a text
        # parse_xml compares local names only (any namespace): the same here.
        for el in root.iter():
            el.tag = el.tag.rpartition("}")[2]
    return root, namespace


def parse_report_xml(data: bytes, warn: Callable[[Finding], None] | None = None) -> Feedback:
    """Parse report XML. Invalid UTF-8 is replaced (with a warning) rather than refused, as
    several real reporters emit it (parsedmarc's samples); everything else must be well-formed."""
    fast = _fast_tree(data)
    if fast is not None:
        return feedback_from_tree(*fast)
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


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (APPNOTE.TXT 4.3.16)
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory file header (4.3.12)
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header (4.3.7)


def _unzip_plain(data: bytes) -> bytes | None:
    """The member of a plain one-file zip archive (what reporters send: stored or deflated,
    one central directory entry, no zip64, no encryption, no archive comment), or None when
    the archive is anything else or anything in it is off (sizes, CRC-32, names): then
    zipfile decides. Bytes for bytes what zipfile gives for such an archive, with a fifth of
    its work."""
    n = len(data)
    if n < _EOCD.size + _CENTRAL.size + _LOCAL.size:
        return None
    sig, disk, cd_disk, entries, total, cd_size, cd_offset, comment = _EOCD.unpack_from(data, n - _EOCD.size)
    if sig != b"PK\x05\x06" or disk or cd_disk or entries != 1 or total != 1 or comment:
        return None
    if cd_offset + cd_size != n - _EOCD.size or data[n - 42 : n - 38] == b"PK\x06\x07":  # zip64 locator
        return None
    (csig, _, _, flags, method, _, _, crc, csize, size, name_len, extra_len, ccomment, _, _, _, offset) = (
        _CENTRAL.unpack_from(data, cd_offset)
    )
    if csig != b"PK\x01\x02" or cd_size != _CENTRAL.size + name_len + extra_len + ccomment or offset != 0:
        return None
    if flags & ~0x080E or method not in (0, 8) or size > MAX_XML or 0xFFFFFFFF in (csize, size):
        return None  # encrypted, patched, zip64, a method zipfile decides, or too large
    if size >= inflate.RATIO_FROM and size > inflate.MAX_RATIO * max(csize, 1):
        return None  # declared a decompression bomb: unzip refuses it
    name = data[cd_offset + _CENTRAL.size : cd_offset + _CENTRAL.size + name_len]
    extra = data[cd_offset + _CENTRAL.size + name_len : cd_offset + _CENTRAL.size + name_len + extra_len]
    while len(extra) >= 4:  # zipfile's _decodeExtra: well-formed, no zip64 or unicode path field
        tp, ln = struct.unpack_from("<HH", extra)
        if ln + 4 > len(extra) or tp in (0x0001, 0x7075):
            return None
        extra = extra[ln + 4 :]
    if name.endswith(b"/"):
        return None  # a directory
    lsig, _, _, _, _, _, _, _, _, lname_len, lextra_len = _LOCAL.unpack_from(data, 0)
    start = _LOCAL.size + lname_len + lextra_len
    if lsig != b"PK\x03\x04" or data[_LOCAL.size : _LOCAL.size + lname_len] != name or start + csize > cd_offset:
        return None
    body = data[start : start + csize]
    if method == 0:
        out = body
    else:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = d.decompress(body, size + 1)
        except zlib.error:
            return None
        if not d.eof:
            return None
    if len(out) != size or zlib.crc32(out) != crc:
        return None
    return out


def unzip(data: bytes) -> bytes:
    """The single file of a zip archive (docs/behaviour-notes.md §6.9: exactly one)."""
    plain = _unzip_plain(data)
    if plain is not None:
        return plain
    import zipfile  # with shutil, bz2 and lzma: only for archives the quick read leaves to it

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

"""The quick paths of DMARC report parsing decide exactly as the general ones, or not at all.

moxcli.dmarc.parse reads plain report XML with the C ElementTree parser (``_fast_tree``) and
plain one-file zip archives itself (``_unzip_plain``); anything else goes to parse_xml (expat
with the DTD refusal and the depth limit) and zipfile. Every document and archive here is
decided twice, with and without the quick path: the same report, or the same error.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from helpers import reportmail as rm

from moxcli.dmarc import parse as dp

REPORT = rm.dmarc_xml("google", 1)
NS = b' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"'


def _decide(fn, *args):
    try:
        return fn(*args).to_json() if fn is dp.parse_report_xml else fn(*args)
    except dp.ReportError as exc:
        return (type(exc).__name__, str(exc))


def _both(monkeypatch, fn, *args):
    quick = _decide(fn, *args)
    with monkeypatch.context() as m:
        m.setattr(dp, "_fast_tree", lambda data: None)
        m.setattr(dp, "_unzip_plain", lambda data: None)
        general = _decide(fn, *args)
    return quick, general


XML_CASES = {
    "report": (REPORT, True),
    "rfc9990 namespace": (REPORT.replace(b"<feedback>", b"<feedback" + NS + b">"), True),
    "prefixed namespace": (
        REPORT.replace(b"<feedback>", b'<d:feedback xmlns:d="urn:x">').replace(b"</feedback>", b"</d:feedback>"),
        True,
    ),
    "child in another namespace": (
        REPORT.replace(b"<email>", b'<email xmlns="urn:other">'),
        True,
    ),
    "text after a child": (REPORT.replace(b"<org_name>google.com", b"<org_name>goo<x>ignored</x>gle.com"), False),
    "text after an empty child": (REPORT.replace(b"<org_name>google.com", b"<org_name><x/>&#103;oogle.com"), False),
    "white space after children": (
        REPORT.replace(b"<org_name>google.com", b"<org_name>google.com<x/> \n<y>i</y>"),
        True,
    ),
    "comment and CDATA": (
        REPORT.replace(b"<org_name>google.com", b"<org_name>go<!-- c --><![CDATA[og]]>le.com"),
        True,
    ),
    "text after a child, behind a comment": (REPORT.replace(b"<org_name>google.com", b"<org_name><x/><!---->g"), False),
    "processing instruction": (REPORT.replace(b"<org_name>", b"<org_name><?pi x?>"), True),
    "text after a processing instruction": (REPORT.replace(b"<org_name>google.com", b"<org_name><x/><?pi?>g"), False),
    "non-breaking space after a child": (REPORT.replace(b"google.com<", b"google.com<x/>\xc2\xa0<"), True),
    "attributes": (REPORT.replace(b"<org_name>", b'<org_name a="1" b="&lt;">'), True),
    "character references": (REPORT.replace(b"<org_name>google.com", b"<org_name>g&#111;&amp;&lt;"), True),
    "byte order mark": (b"\xef\xbb\xbf" + REPORT, True),
    "latin-1 declared": (
        REPORT.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"').replace(b"google.com<", b"g\xf6\xf6gle.com<"),
        True,
    ),
    "windows-1252 declared": (REPORT.replace(b'encoding="UTF-8"', b'encoding="windows-1252"'), False),
    "utf-16": (REPORT.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"), False),
    "doctype": (REPORT.replace(b"<feedback>", b"<!DOCTYPE feedback [<!ENTITY e 'x'>]><feedback>"), False),
    "undeclared entity": (REPORT.replace(b"google.com<", b"&e;<"), False),
    "invalid utf-8": (REPORT.replace(b"google.com<", b"goo\xffgle.com<"), False),
    "not well-formed": (REPORT[:-20], False),
    "unbound prefix": (REPORT.replace(b"<email>", b"<x:email>").replace(b"</email>", b"</x:email>"), False),
    "32 levels": (
        REPORT.replace(b"</report_metadata>", b"<x>" + b"<a>" * 29 + b"</a>" * 29 + b"</x></report_metadata>"),
        True,
    ),
    "33 levels": (
        REPORT.replace(b"</report_metadata>", b"<x>" + b"<a>" * 30 + b"</a>" * 30 + b"</x></report_metadata>"),
        False,
    ),
    "other root": (b"<report/>", True),
    "empty metadata": (b"<feedback><report_metadata/><record/></feedback>", True),
    "float time": (REPORT.replace(b"<begin>", b"<begin> ").replace(b"</end>", b".0</end>"), True),
    "bad count": (REPORT.replace(b"<count>40</count>", b"<count>many</count>"), True),
    "too large for the quick path": (REPORT.replace(b"<email>", b"<email>" + b" " * dp.FAST_XML_MAX), False),
}


@pytest.mark.parametrize("name", XML_CASES)
def test_xml_quick_path_decides_as_parse_xml(monkeypatch, name):
    data, quick = XML_CASES[name]
    assert (dp._fast_tree(data) is not None) is quick
    got, want = _both(monkeypatch, dp.parse_report_xml, data)
    assert got == want


def _zip(member: bytes = REPORT, method: int = zipfile.ZIP_DEFLATED, **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        info = zipfile.ZipInfo(kw.get("name", "google.com!example.org!1!2.xml"))
        info.compress_type = method
        if "extra" in kw:
            info.extra = kw["extra"]
        z.writestr(info, member)
        if kw.get("second"):
            z.writestr("second.xml", member)
        if kw.get("comment"):
            z.comment = b"a comment"
    return buf.getvalue()


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _central(data: bytes) -> int:
    return data.rindex(b"PK\x01\x02")


PLAIN = _zip()
ZIP_CASES = {
    "deflated": (PLAIN, True),
    "stored": (_zip(method=zipfile.ZIP_STORED), True),
    "extended timestamp extra field": (_zip(extra=struct.pack("<HHB", 0x5455, 1, 1)), True),
    "corrupt extra field": (_zip(extra=struct.pack("<HH", 0x5455, 9)), False),
    "zip64 extra field": (_zip(extra=struct.pack("<HHQ", 0x0001, 8, len(REPORT))), False),
    "two members": (_zip(second=True), False),
    "directory": (_zip(name="dir/"), False),
    "archive comment": (_zip(comment=True), False),
    "bzip2": (_zip(method=zipfile.ZIP_BZIP2), False),
    "bad CRC-32": (_patched(PLAIN, _central(PLAIN) + 16, "<L", 1234), False),
    "size too small": (_patched(PLAIN, _central(PLAIN) + 24, "<L", len(REPORT) - 1), False),
    "size too large": (_patched(PLAIN, _central(PLAIN) + 24, "<L", len(REPORT) + 1), False),
    "encrypted flag": (_patched(PLAIN, _central(PLAIN) + 8, "<H", 1), False),
    "local name differs": (PLAIN.replace(b"google.com!", b"google.con!", 1), False),
    "prepended bytes": (b"junk" + PLAIN, False),
    "truncated": (PLAIN[:-30], False),
    "declared bomb": (_zip(member=b"<feedback>" + b" " * (2 << 20) + b"</feedback>"), False),
}


@pytest.mark.parametrize("name", ZIP_CASES)
def test_zip_quick_path_decides_as_zipfile(monkeypatch, name):
    data, quick = ZIP_CASES[name]
    assert (dp._unzip_plain(data) is not None) is quick
    got, want = _both(monkeypatch, dp.unzip, data)
    assert got == want


def test_zip_quick_path_reads_a_deflate_stream_that_ends_early_as_zipfile(monkeypatch):
    """A member whose deflate stream ends before its declared size (CRC-32 of the short data)."""
    short = REPORT[:100]
    data = _zip(member=short)
    central = _central(data)
    data = _patched(data, central + 24, "<L", len(REPORT))  # declared size: the whole report
    assert dp._unzip_plain(data) is None
    got, want = _both(monkeypatch, dp.unzip, data)
    assert got == want
    assert zlib.crc32(short) == struct.unpack_from("<L", data, central + 16)[0]

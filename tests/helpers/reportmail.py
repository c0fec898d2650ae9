"""Report mails made from testdata/reports: TLS and DMARC reports in Google's and Microsoft's
message shapes, each numbered so that every mail is a distinct report (RFC 8460 §5.3,
RFC 7489 §7.2.1.1). Also a non-report mail and broken report mails for the negative cases."""

from __future__ import annotations

import base64
import gzip
import io
import json
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "testdata" / "reports"
DAY = 86400
BASE = 1768003200  # 2026-01-10T00:00:00Z, the day of the fixtures


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _day(t: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(t))


def tls_json(shape: str, n: int, domain: str = "example.org", day: int | None = None) -> bytes:
    """Report n of a shape ("google" or "microsoft"): day BASE + n days, its own report id."""
    rep = json.loads((FIXTURES / f"tls-{shape}.json").read_text())
    day_text = _day(BASE + (n if day is None else day) * DAY)
    tz = "Z" if shape == "google" else ""  # Microsoft writes no time zone
    rep["date-range"] = {"start-datetime": f"{day_text}T00:00:00{tz}", "end-datetime": f"{day_text}T23:59:59{tz}"}
    rep["report-id"] = f"{rep['report-id']}-{n}"
    for p in rep["policies"]:
        p["policy"]["policy-domain"] = domain
        p["summary"]["total-successful-session-count"] += vary(n, 200)
        failed = 0
        for d in p["failure-details"]:
            d["failed-session-count"] = vary(n + 3, 12) if d["result-type"] != "validation-failure" else vary(n, 4)
            failed += d["failed-session-count"]
        p["summary"]["total-failure-session-count"] = failed
    return json.dumps(rep).encode()


def vary(n: int, spread: int) -> int:
    """A deterministic count in 0..spread-1 that changes from report to report (for charts)."""
    return (n * 7919 + 13) % 97 % spread


def dmarc_xml(shape: str, n: int, domain: str = "example.org", day: int | None = None) -> bytes:
    text = (FIXTURES / f"dmarc-{shape}.xml").read_text()
    text = text.replace("<count>3</count>", f"<count>{1 + vary(n, 9)}</count>")
    text = text.replace("<count>40</count>", f"<count>{30 + vary(n + 1, 40)}</count>")
    begin = BASE + (n if day is None else day) * DAY
    text = text.replace("REPORTID", f"{shape}-{n}").replace("<begin>BEGIN", f"<begin>{begin}")
    text = text.replace("<end>END", f"<end>{begin + DAY - 1}").replace(
        "<domain>example.org</domain>", f"<domain>{domain}</domain>", 1
    )
    return text.encode()


def _head(frm: str, subject: str, ctype: str, msgid: str) -> bytes:
    return (
        f"From: {frm}\r\nTo: reports@example.org\r\nSubject: {subject}\r\n"
        f"Date: Sun, 11 Jan 2026 06:00:00 +0000\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode()


def tls_mail(shape: str, n: int, domain: str = "example.org", day: int | None = None) -> bytes:
    """multipart/report; report-type=tlsrpt with a text part and an application/tlsrpt+gzip part."""
    frm = "noreply-smtp-tls-reporting@google.com" if shape == "google" else "tlsrpt-noreply@microsoft.com"
    org = "google.com" if shape == "google" else "microsoft.com"
    b = f"==tls-{shape}-{n}=="
    start = BASE + (n if day is None else day) * DAY
    name = f"{org}!{domain}!{start}!{start + DAY - 1}!{n}.json.gz"
    return (
        _head(
            frm,
            f"Report Domain: {domain} Submitter: {org} Report-ID: <{n}>",
            f'multipart/report; report-type="tlsrpt"; boundary="{b}"',
            f"tls-{shape}-{n}@{org}",
        )
        + f"--{b}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n".encode()
        + f"This is an aggregate TLS report from {org}\r\n".encode()
        + f'--{b}\r\nContent-Type: application/tlsrpt+gzip; name="{name}"\r\n'.encode()
        + f'Content-Disposition: attachment; filename="{name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode()
        + _b64(gzip.compress(tls_json(shape, n, domain, day), mtime=0))
        + f"--{b}--\r\n".encode()
    )


def dmarc_mail(shape: str, n: int, domain: str = "example.org", day: int | None = None) -> bytes:
    """Google: the whole message is application/zip. Microsoft: multipart/mixed with a text part
    and an application/gzip .xml.gz part."""
    xml = dmarc_xml(shape, n, domain, day)
    begin = BASE + (n if day is None else day) * DAY
    end = begin + DAY - 1
    if shape == "google":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"google.com!{domain}!{begin}!{end}.xml", xml)
        name = f"google.com!{domain}!{begin}!{end}.zip"
        return (
            _head(
                "noreply-dmarc-support@google.com",
                f"Report domain: {domain} Submitter: google.com Report-ID: {shape}-{n}",
                f'application/zip; name="{name}"',
                f"dmarc-google-{n}@google.com",
            )[:-2]
            + f'Content-Disposition: attachment; filename="{name}"\r\n'.encode()
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + _b64(buf.getvalue())
        )
    b = f"_mixed_{n}_"
    org = "enterprise.protection.outlook.com"
    name = f"{org}!{domain}!{begin}!{end}.xml.gz"
    return (
        _head(
            "dmarcreport@microsoft.com",
            f"Report Domain: {domain} Submitter: {org} Report-ID: <{shape}-{n}>",
            f'multipart/mixed; boundary="{b}"',
            f"dmarc-ms-{n}@microsoft.com",
        )
        + f"--{b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n".encode()
        + b"This is a DMARC aggregate report from Microsoft Corporation.\r\n"
        + f"--{b}\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n".encode()
        + f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
        + _b64(gzip.compress(xml, mtime=0))
        + f"--{b}--\r\n".encode()
    )


def plain_mail(n: int) -> bytes:
    """A message that holds no report."""
    return (
        _head("someone@example.net", f"hello {n}", "text/plain; charset=us-ascii", f"plain-{n}@example.net")
        + b"Not a report.\r\n"
    )


def broken_tls_mail(n: int) -> bytes:
    """A TLS report mail whose gzip part is corrupt: rejected."""
    good = tls_mail("google", n)
    head, _, rest = good.partition(b"Content-Transfer-Encoding: base64\r\n\r\n")
    return (
        head
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(b"\x1f\x8b\x08\x00garbage-not-gzip")
        + b"--"
        + rest.rpartition(b"--")[0].rpartition(b"--")[2]
        + b"--\r\n"
    )


def mailbox(count: int) -> list[bytes]:
    """``count`` distinct report mails, cycling through the four shapes."""
    makers = [
        lambda i: tls_mail("google", i),
        lambda i: tls_mail("microsoft", i),
        lambda i: dmarc_mail("google", i),
        lambda i: dmarc_mail("microsoft", i),
    ]
    return [makers[i % 4](i // 4) for i in range(count)]

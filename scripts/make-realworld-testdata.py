#!/usr/bin/env python3
"""Write testdata/realworld/: our own report and mailbox files with the quirks real senders have.

The shapes follow what Google, Microsoft, Yahoo, mail.ru, xs4all and Outlook.com send (message
structure, transfer encodings, line endings, XML and JSON oddities), but every domain, address,
number and text is made up here: nothing is copied from anyone's report. The expected values
live next to the files (expect.json), written from the same inputs, so the tests compare the
parser's output with what was put in, never with what the parser produced before.

Run it again after changing it: `.venv/bin/python scripts/make-realworld-testdata.py`.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "testdata" / "realworld"
MTIME = (2026, 3, 2, 0, 0, 0)  # fixed zip/gzip timestamps: the files do not change between runs


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=1772409600) as f:
        f.write(data)
    return buf.getvalue()


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, MTIME), data)
    return buf.getvalue()


def _b64(data: bytes, eol: str = "\r\n") -> str:
    text = base64.b64encode(data).decode()
    return eol.join(text[i : i + 76] for i in range(0, len(text), 76))


def _write(rel: str, data: bytes | str) -> None:
    p = OUT / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------- TLS reports (RFC 8460)


def _tls_report(org: str, report_id: str, start: str, end: str, contact: str, policies: list) -> dict:
    return {
        "organization-name": org,
        "date-range": {"start-datetime": start, "end-datetime": end},
        "contact-info": contact,
        "report-id": report_id,
        "policies": policies,
    }


STS_POLICY = {
    "policy-type": "sts",
    "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.lakeside.example", "max_age: 604800"],
    "policy-domain": "lakeside.example",
    "mx-host": ["mx1.lakeside.example"],
}


def _tls_message(report: dict, filename: str, eol: str, qp_text: bool) -> str:
    """A multipart/report; report-type=tlsrpt message as the big senders send it (RFC 8460 5.3)."""
    gz = _gzip(json.dumps(report, indent=2).encode())
    text = "This is an aggregate TLS report from " + report["organization-name"] + "."
    cte = "quoted-printable" if qp_text else "7bit"
    lines = [
        "From: TLS reporting <" + report["contact-info"] + ">",
        "To: tlsrpt@lakeside.example",
        "Subject: Report Domain: lakeside.example Submitter: "
        + filename.split("!")[0]
        + " Report-ID: <"
        + report["report-id"]
        + ">",
        "Date: Tue, 03 Mar 2026 04:10:00 -0800",
        "Message-ID: <tlsrpt-" + report["report-id"].replace(":", "").replace("+", "") + "@reports.example>",
        "TLS-Report-Domain: lakeside.example",
        "TLS-Report-Submitter: " + filename.split("!")[0],
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; boundary="b0undary42"; report-type=tlsrpt',
        "",
        "--b0undary42",
        'Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes',
        "Content-Transfer-Encoding: " + cte,
        "",
        text,
        "",
        "--b0undary42",
        'Content-Type: application/tlsrpt+gzip; name="' + filename + '"',
        'Content-Disposition: attachment; filename="' + filename + '"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64(gz, eol),
        "--b0undary42--",
        "",
    ]
    return eol.join(lines)


def tls_reports() -> dict:
    expect = {}
    google = _tls_report(
        "Google Inc.",
        "2026-03-02T00:00:00Z_lakeside.example",
        "2026-03-02T00:00:00Z",
        "2026-03-02T23:59:59Z",
        "smtp-tls-reporting@google.com",
        [
            {
                "policy": STS_POLICY,
                "summary": {"total-successful-session-count": 41, "total-failure-session-count": 2},
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "192.0.2.17",
                        "receiving-ip": "198.51.100.25",
                        "receiving-mx-hostname": "mx1.lakeside.example",
                        "failed-session-count": 2,
                    }
                ],
            }
        ],
    )
    name = "google.com!lakeside.example!1772409600!1772495999!001.json.gz"
    # Google: CRLF, a 7bit text part, the gzip'd JSON as application/tlsrpt+gzip.
    _write("tlsrpt/google-multipart.eml", _tls_message(google, name, "\r\n", False))
    expect["google-multipart.eml"] = {"organization": "Google Inc.", "policies": 1, "warnings": []}
    # The same shape delivered with bare LF line endings (seen after some relays rewrite it).
    _write("tlsrpt/google-bare-lf.eml", _tls_message(google, name, "\n", False))
    expect["google-bare-lf.eml"] = {"organization": "Google Inc.", "policies": 1, "warnings": ["bare LF"]}

    microsoft = _tls_report(
        "Microsoft Corporation",
        "133555555555555555+lakeside.example",
        "2026-03-02T00:00:00",  # Microsoft: date-times without a timezone
        "2026-03-02T23:59:59",
        "tlsrpt-noreply@microsoft.com",
        [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", "mx: *.lakeside.example", "max_age: 86400"],
                    "policy-domain": "lakeside.example",
                    "mx-host": ["*.lakeside.example"],
                },
                "summary": {"total-successful-session-count": 7, "total-failure-session-count": 0},
                "failure-details": [],
            }
        ],
    )
    mname = "microsoft.com!lakeside.example!1772409600!1772495999!133555555555555555.json.gz"
    # Microsoft: a quoted-printable text part, CRLF, timezone-less date-times.
    _write("tlsrpt/microsoft-no-timezone.eml", _tls_message(microsoft, mname, "\r\n", True))
    expect["microsoft-no-timezone.eml"] = {
        "organization": "Microsoft Corporation",
        "policies": 1,
        "warnings": ["no timezone", "no timezone"],
    }

    # mail.ru style: policy fetch failures with free-text reason codes, no policy-string/mx-host.
    mailru = _tls_report(
        "Mail.ru",
        "0f3c2a9e-1111-4222-8333-944455556666@mail.ru",
        "2026-03-01T00:00:00Z",
        "2026-03-02T00:00:00Z",
        "tls-reports@mail.example",
        [
            {
                "failure-details": [
                    {
                        "failed-session-count": 3,
                        "failure-reason-code": "bad https response code: 404",
                        "result-type": "sts-policy-fetch-error",
                    }
                ],
                "policy": {"policy-domain": "lakeside.example", "policy-type": "sts"},
                "summary": {"total-failure-session-count": 3, "total-successful-session-count": 0},
            }
        ],
    )
    _write("tlsrpt/mailru-fetch-errors.json", json.dumps(mailru, indent=3, sort_keys=True))
    expect["mailru-fetch-errors.json"] = {"organization": "Mail.ru", "policies": 1, "warnings": []}

    # The RFC 8460 example's shape: mx-host as one string instead of a list.
    rfc = _tls_report(
        "Relay Co",
        "7d1c9e40-5a5a-4b4b-8c8c-0d0d0d0d0d0d",
        "2026-03-01T00:00:00Z",
        "2026-03-01T23:59:59Z",
        "sts-reporting@relay.example",
        [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", "mx: *.mx.lakeside.example", "max_age: 86400"],
                    "policy-domain": "lakeside.example",
                    "mx-host": "*.mx.lakeside.example",
                },
                "summary": {"total-successful-session-count": 120, "total-failure-session-count": 9},
                "failure-details": [
                    {
                        "result-type": "starttls-not-supported",
                        "sending-mta-ip": "2001:db8:1::25",
                        "receiving-mx-hostname": "a.mx.lakeside.example",
                        "receiving-ip": "203.0.113.9",
                        "failed-session-count": 9,
                        "additional-information": "https://relay.example/tls/help",
                        "failure-reason-code": "no STARTTLS in EHLO",
                    }
                ],
            }
        ],
    )
    _write("tlsrpt/rfc8460-mx-host-string.json", json.dumps(rfc, indent=5))
    expect["rfc8460-mx-host-string.json"] = {
        "organization": "Relay Co",
        "policies": 1,
        "warnings": ["mx-host is a string"],
    }
    _write("tlsrpt/expect.json", json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return expect


# ---------------------------------------------------------------- DMARC aggregate reports (RFC 7489 7.2)


def _record(ip: str, count: int, disposition: str, dkim: str, spf: str, header_from: str) -> dict:
    return {
        "source_ip": ip,
        "count": count,
        "disposition": disposition,
        "dkim": dkim,
        "spf": spf,
        "header_from": header_from,
    }


def _xml(
    meta: dict,
    policy: dict,
    records: list[dict],
    head: str,
    sep: str,
    feedback_attrs: str = "",
    version: str | None = None,
    end_pad: str = "",
    tail_ws: str = "",
) -> str:
    """An aggregate report; ``sep`` between elements (newline+indent, nothing, or tab+newline)."""
    parts = [head, f"<feedback{feedback_attrs}>"]
    if version is not None:
        parts.append(f"<version>{version}</version>")
    extra = meta.get("extra_contact_info")
    parts += [
        "<report_metadata>",
        f"<org_name>{meta['org_name']}</org_name>",
        f"<email>{meta['email']}</email>",
        "<extra_contact_info />"
        if extra == ""
        else (f"<extra_contact_info>{extra}</extra_contact_info>" if extra else ""),
        f"<report_id>{meta['report_id']}</report_id>",
        "<date_range>",
        f"<begin>{meta['begin']}</begin>",
        f"<end>{meta['end']}{end_pad}</end>",
        "</date_range>",
        "</report_metadata>",
        "<policy_published>",
        f"<domain>{policy['domain']}</domain>",
        f"<adkim>{policy['adkim']}</adkim>",
        f"<aspf>{policy['aspf']}</aspf>",
        f"<p>{policy['p']}</p>",
        f"<sp>{policy['sp']}</sp>" if policy["sp"] else "",
        f"<pct>{policy['pct']}</pct>",
        "</policy_published>",
    ]
    for r in records:
        spf_result = "pass" if r["spf"] == "pass" else "fail"
        parts += [
            "<record>",
            "<row>",
            f"<source_ip>{r['source_ip']}</source_ip>",
            f"<count>{r['count']}</count>",
            "<policy_evaluated>",
            f"<disposition>{r['disposition']}</disposition>",
            f"<dkim>{r['dkim']}</dkim>",
            f"<spf>{r['spf']}</spf>",
            "</policy_evaluated>",
            "</row>",
            "<identifiers>",
            f"<header_from>{r['header_from']}</header_from>",
            "</identifiers>",
            "<auth_results>",
            f"<spf><domain>{r['header_from']}</domain><result>{spf_result}</result></spf>",
            "</auth_results>",
            "</record>",
        ]
    parts.append("</feedback>")
    return sep.join(p + tail_ws for p in parts if p) + "\n"


def _mixed(headers: list[str], text_parts: list[tuple[str, str, str]], attachment: tuple[str, str, bytes]) -> str:
    """multipart/mixed: text parts (type, transfer encoding, body), then the base64 report."""
    ctype, name, data = attachment
    lines = [*headers, "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="=_mixed_7"', ""]
    for t, cte, body in text_parts:
        lines += ["--=_mixed_7", f"Content-Type: {t}; charset=utf-8", f"Content-Transfer-Encoding: {cte}", "", body, ""]
    lines += [
        "--=_mixed_7",
        f'Content-Type: {ctype}; name="{name}"',
        f'Content-Disposition: attachment; filename="{name}"',
        "Content-Transfer-Encoding: base64",
        "",
        _b64(data),
        "--=_mixed_7--",
        "",
    ]
    return "\r\n".join(lines)


def _headers(frm: str, subject: str, msgid: str) -> list[str]:
    return [
        f"From: {frm}",
        "To: dmarc@lakeside.example",
        f"Subject: {subject}",
        "Date: Mon, 02 Mar 2026 09:00:00 +0000",
        f"Message-ID: <{msgid}>",
    ]


def dmarc_reports() -> dict:
    expect = {}
    policy = {"domain": "lakeside.example", "adkim": "r", "aspf": "r", "p": "quarantine", "sp": "", "pct": 100}

    def add(name: str, meta: dict, pol: dict, records: list[dict]) -> None:
        expect[name] = {
            "org_name": meta["org_name"],
            "email": meta["email"],
            "report_id": meta["report_id"],
            "begin": meta["begin"],
            "end": meta["end"],
            "policy_domain": pol["domain"],
            "p": pol["p"],
            "sp": pol["sp"] or None,
            "pct": str(pol["pct"]),  # the model keeps the text as sent
            "adkim": pol["adkim"],
            "aspf": pol["aspf"],
            "records": records,
        }

    # Google: the whole message is the zip file (no multipart), XML with two-space indents.
    meta = {
        "org_name": "google.com",
        "email": "noreply-dmarc-support@google.com",
        "extra_contact_info": "https://support.google.com/a/answer/2466580",
        "report_id": "4242424242424242424",
        "begin": 1772323200,
        "end": 1772409599,
    }
    recs = [
        _record("192.0.2.40", 12, "none", "pass", "pass", "lakeside.example"),
        _record("198.51.100.7", 1, "quarantine", "fail", "fail", "lakeside.example"),
    ]
    zname = "google.com!lakeside.example!1772323200!1772409599.zip"
    xml = _xml(meta, policy, recs, '<?xml version="1.0" encoding="UTF-8" ?>', "\n  ")
    body = _b64(_zip(zname.replace(".zip", ".xml"), xml.encode()))
    msg = "\r\n".join(
        [
            *_headers(
                "noreply-dmarc-support@google.com",
                "Report domain: lakeside.example Submitter: google.com Report-ID: 4242424242424242424",
                "4242424242424242424@google.com",
            ),
            "MIME-Version: 1.0",
            f'Content-Type: application/zip; name="{zname}"',
            f'Content-Disposition: attachment; filename="{zname}"',
            "Content-Transfer-Encoding: base64",
            "",
            body,
            "",
        ]
    )
    _write("dmarc/google-zip-only.eml", msg)
    add("google-zip-only.eml", meta, policy, recs)

    # mail.ru: the XML on one line with a single-quoted declaration; a base64 text part; gzip.
    meta = {
        "org_name": "Mail.Ru",
        "email": "dmarc_support@corp.mail.ru",
        "extra_contact_info": "http://help.mail.ru/",
        "report_id": "77777000001772323200",
        "begin": 1772323200,
        "end": 1772409600,
    }
    recs = [_record("203.0.113.88", 3, "none", "pass", "fail", "lakeside.example")]
    xml = _xml(meta, policy, recs, "<?xml version='1.0' encoding='utf-8'?>", "")
    gname = "mail.ru!lakeside.example!1772323200!1772409600.xml.gz"
    msg = _mixed(
        _headers("dmarc_support@corp.mail.ru", "Report Domain: lakeside.example", "r1@mail.ru"),
        [("text/plain", "base64", _b64(b"This is a DMARC aggregate report."))],
        ("application/gzip", gname, _gzip(xml.encode())),
    )
    _write("dmarc/mailru-oneline-gzip.eml", msg)
    add("mailru-oneline-gzip.eml", meta, policy, recs)

    # Outlook.com: an empty text part and an HTML part; xmlns attributes on <feedback>,
    # <version>0</version>, an empty <extra_contact_info />.
    meta = {
        "org_name": "Outlook.com",
        "email": "dmarcreport@microsoft.com",
        "extra_contact_info": "",
        "report_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
        "begin": 1772323200,
        "end": 1772409600,
    }
    pol = dict(policy, p="reject", sp="none")
    recs = [
        _record("2001:db8:5::1", 4, "none", "pass", "pass", "lakeside.example"),
        _record("192.0.2.99", 2, "reject", "fail", "fail", "lakeside.example"),
    ]
    xml = _xml(
        meta,
        pol,
        recs,
        '<?xml version="1.0"?>',
        "\n  ",
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
        version="0",
    )
    gname = "protection.outlook.com!lakeside.example!1772323200!1772409600.xml.gz"
    html = "<div>This is a DMARC aggregate report from Microsoft Corporation.</div>"
    msg = _mixed(
        _headers("dmarcreport@microsoft.com", "Report Domain: lakeside.example", "r2@outlook.example"),
        [("text/plain", "7bit", ""), ("text/html", "base64", _b64(html.encode()))],
        ("application/gzip", gname, _gzip(xml.encode())),
    )
    _write("dmarc/outlook-html-namespaces.eml", msg)
    add("outlook-html-namespaces.eml", meta, pol, recs)

    # xs4all: an 8bit text part with a non-ASCII letter, <version>1.0</version>, an address-like report id.
    meta = {
        "org_name": "xs4all.nl",
        "email": "noreply@dmarc-reports.xs4all.example",
        "extra_contact_info": "mailto:admin@dmarc-reports.xs4all.example",
        "report_id": "xs4all.nl.1772412345.31337@dmarc-reports.xs4all.example",
        "begin": 1772323200,
        "end": 1772409599,
    }
    recs = [_record("198.51.100.200", 1, "none", "pass", "pass", "lakeside.example")]
    xml = _xml(meta, policy, recs, '<?xml version="1.0" encoding="UTF-8" ?>', "\n  ", version="1.0")
    gname = "xs4all.nl!lakeside.example!1772323200!1772409599!31337.xml.gz"
    msg = _mixed(
        _headers("noreply@dmarc-reports.xs4all.example", "Report Domain: lakeside.example", "r3@xs4all.example"),
        [("text/plain", "8bit", "Dit is een DMARC-rapport (aggregaat), één bijlage.")],
        ("application/gzip", gname, _gzip(xml.encode())),
    )
    _write("dmarc/xs4all-8bit-text.eml", msg)
    add("xs4all-8bit-text.eml", meta, policy, recs)

    # Yahoo: a tab before every newline, a space inside <end>, a "binary" text part.
    meta = {
        "org_name": "Yahoo! Inc.",
        "email": "postmaster@dmarc.yahoo.com",
        "report_id": "1772412345.424242",
        "begin": 1772236800,
        "end": 1772323199,
    }
    recs = [_record("203.0.113.5", 6, "none", "fail", "pass", "lakeside.example")]
    xml = _xml(meta, policy, recs, '<?xml version="1.0"?>', "\n  ", end_pad=" ", tail_ws="\t")
    gname = "yahoo.com!lakeside.example!1772236800!1772323199.xml.gz"
    msg = _mixed(
        _headers("postmaster@dmarc.yahoo.com", "Report Domain: lakeside.example", "r4@yahoo.example"),
        [("text/plain", "binary", "This is an aggregate report.")],
        ("application/gzip", gname, _gzip(xml.encode())),
    )
    _write("dmarc/yahoo-tabs-padded-end.eml", msg)
    add("yahoo-tabs-padded-end.eml", meta, policy, recs)

    # RFC 9990 (DMARCbis aggregate reporting): the dmarc-2.0 namespace, <generator>, <np>,
    # <testing>, <discovery_method>, no <adkim>/<aspf>/<pct>; a plain .xml file.
    rfc9990 = """<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>Harbor Reports</org_name>
    <email>dmarc@harbor-reports.example</email>
    <report_id>hr-2026-03-01-0042</report_id>
    <date_range>
      <begin>1772323200</begin>
      <end>1772409599</end>
    </date_range>
    <generator>Harbor DMARC reporter 0.9</generator>
  </report_metadata>
  <policy_published>
    <domain>harbor.example</domain>
    <p>reject</p>
    <sp>quarantine</sp>
    <np>reject</np>
    <testing>n</testing>
    <discovery_method>treewalk</discovery_method>
  </policy_published>
  <record>
    <row>
      <source_ip>198.51.100.61</source_ip>
      <count>37</count>
      <policy_evaluated>
        <disposition>pass</disposition>
        <dkim>pass</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_from>harbor.example</envelope_from>
      <header_from>harbor.example</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>harbor.example</domain>
        <result>pass</result>
        <selector>k2026</selector>
      </dkim>
      <spf>
        <domain>harbor.example</domain>
        <result>fail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
"""
    _write("dmarc/harbor.example!rfc9990.xml", rfc9990)
    # A bare .xml.gz as saved from a mail client (the mail.ru report above, without its message).
    _write(
        "dmarc/mailru-saved.xml.gz",
        _gzip(
            _xml(
                {
                    "org_name": "Mail.Ru",
                    "email": "dmarc_support@corp.mail.ru",
                    "report_id": "77777000001772236800",
                    "begin": 1772236800,
                    "end": 1772323200,
                },
                policy,
                [_record("203.0.113.89", 2, "none", "pass", "pass", "lakeside.example")],
                "<?xml version='1.0' encoding='utf-8'?>",
                "",
            ).encode()
        ),
    )
    _write("dmarc/expect.json", json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return expect


# ---------------------------------------------------------------- mailboxes to import


def mailboxes() -> None:
    """An mbox as Thunderbird/Dovecot leave it (Status/X-Status/X-Keywords, Content-Length,
    a quoted From line, bare LF) and a Dovecot maildir with a dovecot-keywords file."""
    mbox = (
        "From lakeside Mon Mar  2 08:15:30 2026\n"
        "Return-Path: <ann@lakeside.example>\n"
        "From: ann@lakeside.example\n"
        "To: bob@lakeside.example\n"
        "Subject: first\n"
        "Date: Mon, 02 Mar 2026 09:15:00 +0100\n"
        "Message-ID: <first@lakeside.example>\n"
        "Status: RO\n"
        "X-Status: AF\n"
        "X-Keywords: $Forwarded,project-x\n"
        "Content-Length: 27\n"
        "\n"
        ">From the start\n"
        "second line\n"
        "\n"
        "From lakeside Mon Mar  2 09:30:05 2026\n"
        "From: carol@lakeside.example\n"
        "To: bob@lakeside.example\n"
        "Subject: second\n"
        "Message-ID: <second@lakeside.example>\n"
        "Status: O\n"
        "\n"
        "body of the second\n"
        "\n"
    )
    _write("import/lakeside.mbox", mbox)
    _write("import/lakeside.maildir/dovecot-keywords", "0 $Junk\n1 project-x\n")
    _write(
        "import/lakeside.maildir/cur/1772439330.M1P1.lakeside:2,RSb",
        "From: ann@lakeside.example\nSubject: read and replied\n\nin cur\n",
    )
    _write(
        "import/lakeside.maildir/new/1772442930.M2P1.lakeside", "From: dan@lakeside.example\nSubject: new\n\nnew mail\n"
    )
    (OUT / "import" / "lakeside.maildir" / "tmp").mkdir(parents=True, exist_ok=True)
    _write("import/lakeside.maildir/tmp/.keep", "")
    expect = {
        "mbox": {
            "messages": [
                {
                    "flags": ["$Forwarded", "\\Answered", "\\Flagged", "\\Seen"],
                    "keywords": ["project-x"],
                    "received": 1772439330.0,
                },
                {"flags": [], "keywords": [], "received": 1772443805.0},
            ],
        },
        "maildir": {
            "messages": [
                {"flags": ["\\Answered", "\\Seen"], "keywords": ["project-x"], "received": 1772439330.0},
                {"flags": [], "keywords": [], "received": 1772442930.0},
            ],
        },
    }
    _write("import/expect.json", json.dumps(expect, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    tls_reports()
    dmarc_reports()
    mailboxes()
    print(f"wrote {OUT}")

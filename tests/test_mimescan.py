"""moxcli.mail.mimescan answers as the email package (compat32) does, or not at all.

Every message the scan takes must give the same header values, content types, parameters,
parts and decoded payloads as ``email.message_from_bytes(..., policy=compat32)``; messages
it cannot decide that way must give None (the report parsers then use the email package).
Generated messages mix plain report mail with the quirks both parsers meet: folded and
duplicate fields, quoted and <bracketed> boundaries, trailing spaces, odd transfer encodings,
missing close delimiters, nested multiparts, RFC 2231 parameters, non-ASCII headers.
"""

from __future__ import annotations

import base64
import email
import email.policy
import gzip

import pytest
from helpers import reportmail as rm
from hypothesis import given, settings
from hypothesis import strategies as st

from moxcli.mail import mimescan

PARAMS = ("boundary", "report-type", "charset", "name", "multipart/report", "")


def _answers(msg) -> dict:
    out = {
        "multipart": msg.is_multipart(),
        "fields": [msg.get(n) for n in ("Content-Type", "from", "Content-Transfer-Encoding", "Subject")],
        "type": msg.get_content_type(),
        "params": [msg.get_param(p) for p in PARAMS],
    }
    if msg.is_multipart():
        out["boundary"] = msg.get_boundary()
        out["parts"] = [_answers(p) for p in msg.get_payload()]
    else:
        out["payload"] = msg.get_payload(decode=True)
    return out


def _scan_answers(part) -> dict:
    out = {
        "multipart": part.is_multipart(),
        "fields": [part.get(n) for n in ("Content-Type", "from", "Content-Transfer-Encoding", "Subject")],
        "type": part.get_content_type(),
        "params": [part.get_param(p) for p in PARAMS],
    }
    if part.is_multipart():
        b = part.get_param("boundary")
        out["boundary"] = None if b is None else mimescan._unquote(b).rstrip()
        out["parts"] = [_scan_answers(p) for p in part.get_payload()]
    else:
        out["payload"] = part.get_payload(decode=True)
    return out


def _same_or_none(data: bytes) -> bool:
    """True when the scan took the message (and answered as the email package)."""
    part = mimescan.scan(data)
    if part is None:
        return False
    assert _scan_answers(part) == _answers(email.message_from_bytes(data, policy=email.policy.compat32))
    return True


GZ = gzip.compress(b'{"organization-name": "x"}', mtime=0)
B64 = base64.encodebytes(GZ).replace(b"\n", b"\r\n")

# (message, whether the scan takes it)
CASES = [
    (rm.tls_mail("google", 1), True),
    (rm.tls_mail("microsoft", 2), True),
    (rm.dmarc_mail("google", 3), True),
    (rm.dmarc_mail("microsoft", 4), True),
    (rm.plain_mail(5), True),
    (rm.broken_tls_mail(6), True),
    (rm.tls_mail("google", 1).replace(b"\r\n", b"\n"), False),  # bare LF: the email package
    (b"From someone Sun Jan 11\r\n" + rm.plain_mail(1), False),  # unix-from line
    (rm.plain_mail(1).replace(b"Subject:", b"Subject :"), False),  # not a field line
    (rm.plain_mail(1).replace(b"Subject: hello", "Subject: h\u00e9llo".encode()), False),
    (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n", False),  # no close delimiter
    (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--junk\r\n", False),
    (b"Content-Type: multipart/mixed; boundary*=''b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", False),  # RFC 2231
    (b'Content-Type: multipart/mixed; boundary="a\\"b"\r\n\r\n', False),  # backslash escape
    (b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", False),
    (b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n", False),
    (b"Content-Type: application/gzip\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n", False),
    (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n"
        b"\r\n--i\r\n\r\nx\r\n--i--\r\n--o--\r\n",
        False,
    ),  # nested multipart
    (b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", False),  # no boundary
    (
        b'Content-Type: multipart/report;\r\n\treport-type="tlsrpt";\r\n boundary="<b>"\r\n\r\npreamble\r\n'
        b"--b \r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
        + B64
        + b"--b-- \r\nepilogue\r\n",
        True,
    ),
    (
        b"Content-Type: multipart/mixed; boundary=b\r\nContent-Type: text/plain\r\n\r\n--b\r\n"
        b"Content-Transfer-Encoding: base64 \r\nContent-Type: application/gzip\r\n\r\n" + B64 + b"--b--\r\n",
        True,
    ),  # duplicate Content-Type (first wins); CTE with a trailing space is not decoded
    (b"Content-Type:\r\n multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--", True),
    (b"Content-Type: text/plain; charset=\"us-ascii\"; name='x'\r\n\r\n=41\r\n", True),
    (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=41=\r\nB\r\n", True),
    (b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n=", True),
    (b"Content-Type: noslash\r\n\r\nx", True),
    (b"\r\nno header at all\r\n", True),
    (b"Content-Type: multipart/a/b; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", True),  # text/plain
]


@pytest.mark.parametrize("data,taken", CASES)
def test_cases(data, taken):
    assert _same_or_none(data) is taken


FIELD_LINES = st.sampled_from(
    [
        b"From: Google <noreply@google.com>",
        b"Subject: report",
        b"Subject: folded\r\n continued",
        b"MIME-Version: 1.0",
        b"X-Odd:value",
        b"content-type: text/plain",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Transfer-Encoding: 7bit",
        b"Content-Transfer-Encoding: Base64 ",
        b"Content-Type: application/tlsrpt+gzip",
        b"Content-Type: application/tlsrpt+json; charset=utf-8",
        b'Content-Type: application/zip; name="r.zip"',
        b"Content-Type: application/octet-stream",
        b"Content-Type: APPLICATION/GZIP",
        b"Content-Type: text/xml;",
        b"Content-Type: a/b/c",
        b"Content-Type: message/rfc822",
        b"Content-Type: multipart/alternative; boundary=z",
        b"Content-Type: text/plain; name*=utf-8''x",
        b'Content-Type: text/plain; x="a;b"; y=1',
        b"Subject: caf\xc3\xa9",
        b" leading continuation",
        b"not a field",
        b":no name",
    ]
)
TOP_TYPES = st.sampled_from(
    [
        'multipart/report; report-type="tlsrpt"; boundary="B"',
        "multipart/report; report-type=tlsrpt; boundary=B",
        'multipart/report; report-type="other"; boundary="B"',
        "multipart/mixed; boundary=B ",
        'multipart/mixed;\r\n\tboundary="B"; Boundary=other',
        "Multipart/Mixed; BOUNDARY=<B>",
        "multipart/mixed; boundary=B; boundary=C",
        'multipart/mixed; boundary="B" (comment)',
        "multipart/a/b; boundary=B",
        "multipart /mixed; boundary=B",
        "multipart/digest; boundary=B",
        "application/tlsrpt+gzip",
        "text/plain",
    ]
)
BODIES = st.sampled_from([b"", b"hello\r\n", B64, b"=41=42\r\n", b"QUJD\r\n===\r\n", b"\xff\xfe\r\n", b"--B-\r\n"])


@st.composite
def messages(draw) -> bytes:
    head = b"\r\n".join(draw(st.lists(FIELD_LINES, max_size=4)))
    top = b"Content-Type: " + draw(TOP_TYPES).encode()
    head = (head + b"\r\n" + top) if head and draw(st.booleans()) else (top + (b"\r\n" + head if head else b""))
    body = draw(st.sampled_from([b"", b"preamble\r\n"]))
    for _ in range(draw(st.integers(0, 3))):
        delim = draw(st.sampled_from([b"--B", b"--B ", b"--B\t", b"--Bx", b"--B--"]))
        phead = b"\r\n".join(draw(st.lists(FIELD_LINES, max_size=3)))
        body += delim + b"\r\n" + phead + b"\r\n\r\n" + draw(BODIES) + b"\r\n"
    body += draw(st.sampled_from([b"--B--\r\n", b"--B--", b"--B-- \r\nepilogue", b"--B--x\r\n", b""]))
    return head + b"\r\n\r\n" + body


@settings(max_examples=400, deadline=None)
@given(messages())
def test_generated_messages(data):
    _same_or_none(data)


def test_generated_messages_are_mostly_taken():
    """The generator exercises the scan itself, not only its refusals."""
    from hypothesis import find

    found = find(messages(), lambda d: mimescan.scan(d) is not None and mimescan.scan(d).is_multipart())
    assert _same_or_none(found)


def _parse_outcomes(data: bytes):
    """What both report parsers make of a message: the report's JSON, or the error."""
    from moxcli.dmarc import parse as dparse
    from moxcli.reports import incoming_tls
    from moxcli.tlsrpt.report import ReportError as TLSReportError

    out = []
    try:
        out.append(dparse.parse_message(data).to_json())
    except dparse.ReportError as exc:
        out.append((type(exc).__name__, str(exc)))
    try:
        report, warnings, from_domain = incoming_tls.parse_report_message(data)
        out.append((report.to_json(), warnings, from_domain))
    except TLSReportError as exc:
        out.append((type(exc).__name__, str(exc)))
    return out


REPORT_MAILS = [
    rm.tls_mail("google", 1),
    rm.tls_mail("microsoft", 2),
    rm.dmarc_mail("google", 3),
    rm.dmarc_mail("microsoft", 4),
    rm.broken_tls_mail(5),
    rm.dmarc_mail("microsoft", 6).replace(b"application/gzip", b"application/octet-stream"),
    rm.dmarc_mail("microsoft", 7).replace(b"Content-Type: application/gzip\r\n", b""),
    rm.tls_mail("google", 8).replace(b'report-type="tlsrpt"', b'report-type="other"'),
]


@pytest.mark.parametrize("data", REPORT_MAILS + [c[0] for c in CASES])
def test_report_parsers_decide_the_same_without_the_scan(data, monkeypatch):
    """End to end: the TLS and DMARC parsers give the same report or error whether the scan
    or the email package read the message."""
    from moxcli.dmarc import parse as dparse
    from moxcli.reports import incoming_tls

    fast = _parse_outcomes(data)
    monkeypatch.setattr(dparse, "scan", lambda d, crlf_checked=False: None)
    monkeypatch.setattr(incoming_tls, "scan", lambda d, crlf_checked=False: None)
    assert _parse_outcomes(data) == fast


@settings(max_examples=200, deadline=None)
@given(messages())
def test_generated_messages_parse_the_same_without_the_scan(data):
    from unittest import mock

    from moxcli.dmarc import parse as dparse
    from moxcli.reports import incoming_tls

    fast = _parse_outcomes(data)
    with (
        mock.patch.object(dparse, "scan", lambda d, crlf_checked=False: None),
        mock.patch.object(incoming_tls, "scan", lambda d, crlf_checked=False: None),
    ):
        assert _parse_outcomes(data) == fast


def test_hostile_parameters_scanned_in_one_pass():
    """A Content-Type with many semicolons inside quotes: the email package counts the quotes
    again for every ";" (quadratic); the scan splits in one pass and answers the same."""
    value = b'multipart/mixed; x="' + b";" * 5000 + b'"; boundary=b'
    data = b"Content-Type: " + value + b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    assert _same_or_none(data)
    big = data.replace(b";" * 5000, b";" * 500_000)
    part = mimescan.scan(big)
    assert part is not None and part.get_param("boundary") == "b" and part.get_param("x") == ";" * 500_000


_CT = b"Content-Type: text/plain; a="


@pytest.mark.parametrize(
    ("field", "want"),
    [
        (_CT + b"x" * (mimescan.MAX_FIELD - len(_CT)), None),
        (_CT + b"x" * (mimescan.MAX_FIELD - len(_CT) + 1), "Content-Type"),
        (b"X-Long: a" + b"\r\n b" * (mimescan.MAX_FIELD // 4), "X-Long"),
    ],
)
def test_overlong_field(field, want):
    """The field with its continuation lines counts; exactly MAX_FIELD bytes is still taken."""
    data = b"From: a@example.org\r\n" + field + b"\r\n\r\nbody\r\n"
    assert mimescan.overlong_field(data) == want


def test_overlong_field_inside_a_part():
    part_head = b"Content-Type: application/tlsrpt+gzip; n=" + b"x" * mimescan.MAX_FIELD
    data = b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n" + part_head + b"\r\n\r\nx\r\n--b--\r\n"
    assert mimescan.overlong_field(data) == "Content-Type"


def test_report_mail_the_scan_declines_with_an_overlong_field_is_refused():
    """A backslash sends the message to the email package, whose parameter split grows faster
    than the field: a long field is refused with its name instead of parsed."""
    from moxcli.dmarc import parse as dparse
    from moxcli.reports import incoming_tls

    params = b'; b="x;y"' * 20_000
    tls = rm.tls_mail("google", 1).replace(b'report-type="tlsrpt"', b'report-type="tlsrpt"; a="\\\\x"' + params)
    dmarc = rm.dmarc_mail("google", 1).replace(b"Content-Type: ", b'Content-Type: x="\\\\x"' + params + b"; ", 1)
    assert mimescan.scan(tls) is None and mimescan.scan(dmarc) is None
    with pytest.raises(incoming_tls.ReportError, match=r"header field 'Content-Type' longer than 16384 bytes"):
        incoming_tls.parse_report_message(tls)
    with pytest.raises(dparse.ReportError, match=r"header field 'Content-Type' longer than 16384 bytes"):
        dparse.parse_message(dmarc)

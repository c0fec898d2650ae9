"""moxcli.reports.message (docs/behaviour-notes.md §0.5, §2.7) and moxcli.reports.dkim (signing, verified
with dkimpy)."""

from __future__ import annotations

import base64
import email
import email.policy
import gzip
import re

import pytest
from helpers.dkim import make_dkim_config, verify_all

from moxcli.errors import ConfigError
from moxcli.reports import dkim as rdkim
from moxcli.reports import message as msg


def _compose(**kw) -> bytes:
    args = dict(
        from_addr="postmaster@mox.example",
        to_addrs=["tlsreports@xn--74h.example"],
        subject=(
            "Report Domain: xn--74h.example Submitter: mox.example Report-ID: <20240301.xn--74h.example@mox.example>"
        ),
        extra_headers=[
            ("TLS-Report-Domain", "xn--74h.example"),
            ("TLS-Report-Submitter", "mox.example"),
            ("TLS-Required", "No"),
        ],
        hostname="mail.mox.example",
        content_type='multipart/report; report-type="tlsrpt"',
        text=(
            "Attached is a TLS report with a summary of connection successes and failures\ndetails "
            "about errors encountered. You are receiving this message because your\n\n\nPolicy "
            "Domain: ☺.example/xn--74h.example\n"
        ),
        attachment=gzip.compress(b'{\n\t"a": 1\n}\n'),
        attachment_type="application/tlsrpt+gzip",
        filename="mox.example!xn--74h.example!1709251200!1709337599.json.gz",
        date=1709337600.0,
        boundary="ab" * 30,
    )
    args.update(kw)
    return msg.compose_report_message(**args)


def test_message_layout_exact():
    data = _compose()
    head, _, body = data.partition(b"\r\n\r\n")
    names = [line.split(b":")[0].decode() for line in head.split(b"\r\n") if not line.startswith(b"\t")]
    assert names == [
        "From",
        "To",
        "Subject",
        "TLS-Report-Domain",
        "TLS-Report-Submitter",
        "TLS-Required",
        "Message-Id",
        "Date",
        "User-Agent",
        "MIME-Version",
        "Content-Type",
    ]
    assert head.startswith(
        b"From: <postmaster@mox.example>\r\nTo: <tlsreports@xn--74h.example>\r\nSubject: Report "
        b"Domain: xn--74h.example Submitter: mox.example Report-ID: "
        b"\r\n\t<20240301.xn--74h.example@mox.example>\r\n"
    )
    assert b'Content-Type: multipart/report; report-type="tlsrpt"; boundary="' + b"ab" * 30 + b'"' in head
    assert re.search(rb"\r\nMessage-Id: <[A-Za-z0-9_-]{22}@mail\.mox\.example>\r\n", head)
    assert re.search(rb"\r\nDate: \d{1,2} Mar 2024 \d\d:\d\d:\d\d [+-]\d{4}\r\n", head)
    assert b"\n" not in data.replace(b"\r\n", b"")
    b = b"--" + b"ab" * 30
    assert body.startswith(
        b + b"\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    assert (
        b"\r\n" + b + b"\r\nContent-Disposition: attachment; "
        b"filename=mox.example!xn--74h.example!1709251200!1709337599.json.gz\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Type: application/tlsrpt+gzip; name=mox.example!xn--74h.example!1709251200!1709337599.json.gz\r\n\r\n"
        in body
    )
    assert body.endswith(b"\r\n" + b + b"--\r\n")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    parts = list(parsed.iter_parts())
    assert (
        parts[0]
        .get_content()
        .replace("\r\n", "\n")
        .startswith("Attached is a TLS report with a summary of connection successes and failures\ndetails")
    )
    assert "☺.example/xn--74h.example" in parts[0].get_content()
    assert gzip.decompress(parts[1].get_content()) == b'{\n\t"a": 1\n}\n'
    assert parts[1].get_filename() == "mox.example!xn--74h.example!1709251200!1709337599.json.gz"


def test_address_header_folding():
    addrs = [f"tlsreports{i}@mailhost.xn--74h.example" for i in range(4)]
    h = msg.address_header("To", addrs).decode()
    lines = h.split("\r\n")[:-1]
    assert all(len(line) <= 77 for line in lines)
    assert lines == [f"To: <{addrs[0]}>,", f"\t<{addrs[1]}>,", f"\t<{addrs[2]}>,", f"\t<{addrs[3]}>"]
    short = msg.address_header("To", [f"r{i}@x.example" for i in range(8)]).decode().split("\r\n")
    assert short[0] == "To: " + ", ".join(f"<r{i}@x.example>" for i in range(4)) + ","
    assert short[1] == "\t" + ", ".join(f"<r{i}@x.example>" for i in range(4, 8))


def test_subject_q_encoding():
    h = msg.subject_header("Report Domain: ☺.example").decode()
    assert h == "Subject: Report Domain: =?utf-8?q?=E2=98=BA.example?=\r\n"
    assert msg.subject_header("a ☺", smtputf8=True).decode() == "Subject: a ☺\r\n"


@pytest.mark.parametrize(
    "text,cte,charset",
    [
        ("short\n", "7bit", "us-ascii"),
        ("short ☺", "8bit", "utf-8"),
        ("x" * 77, "quoted-printable", "us-ascii"),
    ],
)
def test_text_part_encoding(text, cte, charset):
    headers, body = msg.text_part_headers(text)
    assert headers == [("Content-Transfer-Encoding", cte), ("Content-Type", f"text/plain; charset={charset}")]
    assert body.endswith(b"\r\n")


def test_quoted_printable_roundtrip():
    import quopri

    raw = ("a" * 80 + " \r\n= tab\t\r\n☺ end \r\n").encode()
    enc = msg.quoted_printable(raw)
    assert all(len(line) <= 76 for line in enc.split(b"\r\n"))
    assert quopri.decodestring(enc.replace(b"\r\n", b"\n")) == raw.replace(b"\r\n", b"\n")


def test_base64_lines():
    out = msg.base64_lines(bytes(range(256)))
    lines = out.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) == 76 for line in lines[:-2]) and 0 < len(lines[-2]) <= 76
    assert base64.b64decode(out.replace(b"\r\n", b"")) == bytes(range(256))


def test_media_param():
    assert msg.media_param("mox.example!x.example!1!2.json.gz") == "mox.example!x.example!1!2.json.gz"
    assert msg.media_param("a b") == '"a b"'


def test_dkim_sign_verifies_and_covers_tls_headers(tmp_path):
    cfg, dns = make_dkim_config(tmp_path)
    dom = rdkim.walk_configured_domain(cfg)
    assert dom is not None and dom.name == "mox.example"
    data = _compose()
    prefix = rdkim.sign_message(dom, data, ["TLS-Report-Domain", "TLS-Report-Submitter"])
    assert prefix.count(b"DKIM-Signature:") == 2 and prefix.endswith(b"\r\n")
    signed = verify_all(prefix, data, dns)
    for hs in signed:
        lower = [h[0].lower() for h in hs]
        assert b"tls-report-domain" in lower and b"tls-report-submitter" in lower and b"from" in lower
    assert b"a=ed25519-sha256" in prefix and b"a=rsa-sha256" in prefix


def test_dkim_no_selectors_is_config_error(tmp_path):
    cfg, _ = make_dkim_config(tmp_path, sign=False)
    dom = rdkim.walk_configured_domain(cfg)
    with pytest.raises(ConfigError, match="no DKIM selectors"):
        rdkim.sign_message(dom, _compose())


def test_dkim_bad_key_file(tmp_path):
    cfg, _ = make_dkim_config(tmp_path)
    (tmp_path / "ed.pem").write_text("garbage")
    with pytest.raises(ConfigError, match=r"ed\.pem: invalid DKIM private key"):
        rdkim.sign_message(rdkim.walk_configured_domain(cfg), _compose())


def test_walk_configured_domain(tmp_path):
    cfg, _ = make_dkim_config(tmp_path, hostname="a.b.mox.example")
    assert rdkim.walk_configured_domain(cfg).name == "mox.example"
    cfg, _ = make_dkim_config(tmp_path, hostname="mail.other.example")
    assert rdkim.walk_configured_domain(cfg) is None

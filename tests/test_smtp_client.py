"""SMTP client: reply parsing, EHLO/HELO, STARTTLS guard, per-recipient transaction results."""

from __future__ import annotations

import select
import socket

import pytest
from helpers.smtpd import Scripted

from moxcli.config import DeliveryConfig
from moxcli.smtp.client import Client, Extensions, SMTPError, enhanced_code, parse_reply_line


@pytest.mark.parametrize(
    "line,expect",
    [
        ("250 ok", (250, True, "ok")),
        ("250-PIPELINING", (250, False, "PIPELINING")),
        ("220", (220, True, "")),
        ("554 5.7.1 no", (554, True, "5.7.1 no")),
    ],
)
def test_parse_reply_line(line, expect):
    assert parse_reply_line(line) == expect


@pytest.mark.parametrize("line", ["", "25", "abc ok", "250x", "650 nope", "250_"])
def test_parse_reply_line_malformed(line):
    with pytest.raises(ValueError):
        parse_reply_line(line)


@pytest.mark.parametrize(
    "code,text,expect",
    [
        (550, "5.1.1 no such user", "5.1.1"),
        (451, "4.7.1 greylisted", "4.7.1"),
        (550, "4.7.1 class mismatch", ""),
        (250, "2.0.0 Ok: queued", "2.0.0"),
        (550, "no code here", ""),
        (550, "5.1.1234 too long", ""),
    ],
)
def test_enhanced_code(code, text, expect):
    assert enhanced_code(code, text) == expect


def test_extensions_parse():
    ext = Extensions.parse(
        [
            "mx.example",
            "pipelining",
            "SIZE 1000",
            "STARTTLS",
            "AUTH PLAIN login",
            "LIMITS RCPTMAX=5 MAILMAX=2",
            "requiretls",
        ]
    )
    assert "PIPELINING" in ext and "starttls" in ext and "REQUIRETLS" in ext
    assert ext.size == 1000 and ext.auth == ["PLAIN", "LOGIN"] and ext.rcpt_max == 5
    assert "8BITMIME" not in ext


def test_transaction_per_recipient_results():
    srv = Scripted(
        b"220 mx.example ESMTP\r\n",
        {
            "EHLO": [b"250-mx.example\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"],
            "RCPT bad@example.org": [b"550 5.1.1 no such user\r\n"],
            "RCPT later@example.org": [b"451 4.2.0 try later\r\n"],
            "DATA": [b"354 go\r\n"],
            ".": [b"250 2.0.0 queued as X\r\n"],
        },
    )
    c = Client(srv.client_sock, "client.example")
    assert c.read_greeting().text == "mx.example ESMTP"
    c.ehlo()
    res = c.transaction(
        "a@example.net", ["ok@example.org", "bad@example.org", "later@example.org"], b".dot\r\nbody \xc3\xa9\r\n"
    )
    c.quit()
    srv.thread.join(5)
    assert [(r.recipient, r.ok, r.permanent) for r in res] == [
        ("ok@example.org", True, False),
        ("bad@example.org", False, True),
        ("later@example.org", False, False),
    ]
    assert res[0].reply.enhanced == "2.0.0" and res[1].error == "550 5.1.1 no such user"
    assert srv.received[1] == "MAIL FROM:<a@example.net> SIZE=15 BODY=8BITMIME"
    assert srv.data == b"..dot\r\nbody \xc3\xa9\r\n"


def test_pipelining_and_requiretls_param():
    srv = Scripted(
        b"220-mx.example\r\n220 ready\r\n",
        {"EHLO": [b"250-mx\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"], "DATA": [b"354 go\r\n"], ".": [b"250 ok\r\n"]},
    )
    c = Client(srv.client_sock, "client.example")
    assert c.read_greeting().lines == ["mx.example", "ready"]
    c.ehlo()
    res = c.transaction("", ["r@example.org"], b"x\r\n", requiretls=True)
    c.quit()
    srv.thread.join(5)
    assert res[0].ok
    assert srv.received[1:4] == ["MAIL FROM:<> REQUIRETLS", "RCPT TO:<r@example.org>", "DATA"]


def test_data_rejected_fails_accepted_recipients():
    srv = Scripted(b"220 x\r\n", {"EHLO": [b"250 x\r\n"], "DATA": [b"354 go\r\n"], ".": [b"554 5.7.1 spam\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    (r,) = c.transaction("a@b.example", ["r@example.org"], b"x\r\n")
    assert (r.ok, r.permanent, r.reply.enhanced) == (False, True, "5.7.1")
    c.quit()


def test_mail_from_refused_raises():
    srv = Scripted(b"220 x\r\n", {"EHLO": [b"250 x\r\n"], "MAIL": [b"421 4.3.2 shutting down\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    with pytest.raises(SMTPError) as ei:
        c.transaction("a@b.example", ["r@example.org"], b"x\r\n")
    assert not ei.value.permanent and ei.value.code == 421
    c.close()


def test_helo_fallback_before_tls():
    srv = Scripted(b"220 old\r\n", {"EHLO": [b"502 what\r\n"], "HELO": [b"250 hi\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    assert "STARTTLS" not in c.extensions
    c.quit()
    assert srv.received[:2] == ["EHLO c", "HELO c"]


def test_greeting_5xx_is_permanent():
    srv = Scripted(b"554 go away\r\n", {})
    c = Client(srv.client_sock, "c")
    with pytest.raises(SMTPError) as ei:
        c.read_greeting()
    assert ei.value.permanent and ei.value.code == 554
    c.close()


def test_starttls_refused_and_injection():
    srv = Scripted(b"220 x\r\n", {"EHLO": [b"250-x\r\n250 STARTTLS\r\n"], "STARTTLS": [b"454 4.7.0 not now\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    with pytest.raises(SMTPError) as ei:
        c.starttls(lambda s: s)
    assert ei.value.tls and ei.value.code == 454 and not ei.value.permanent
    c.close()
    # RFC 3207: data pipelined behind the 220 must not be read as if it came over TLS.
    srv = Scripted(b"220 x\r\n", {"EHLO": [b"250-x\r\n250 STARTTLS\r\n"], "STARTTLS": [b"220 go\r\n250 injected\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    with pytest.raises(SMTPError, match="after its STARTTLS reply"):
        c.starttls(lambda s: s)
    c.close()


def test_multiline_code_mismatch_and_close():
    srv = Scripted(b"220-a\r\n250 b\r\n", {})
    c = Client(srv.client_sock, "c")
    with pytest.raises(SMTPError, match="inconsistent"):
        c.read_greeting()
    c.close()
    a, b = socket.socketpair()
    b.close()
    c = Client(a, "c")
    with pytest.raises(SMTPError, match="closed"):
        c.read_greeting()
    c.close()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from moxcli.smtp.client import Reply  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_hostile_server_bytes_never_crash(blob):
    """Whatever a server sends, reading a reply gives a Reply or an SMTPError."""
    a, b = socket.socketpair()
    try:
        b.sendall(blob)
        b.close()
        c = Client(a, "c", DeliveryConfig(command_timeout=2))
        while True:
            try:
                r = c.read_reply()
            except SMTPError:
                break
            assert isinstance(r, Reply) and 100 <= r.code <= 599
    finally:
        a.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=10))
def test_hostile_ehlo_lines(lines):
    ext = Extensions.parse(["mx", *lines])
    assert ext.size >= 0 and ext.rcpt_max >= 0


def test_refused_transaction_is_reset_before_the_next():
    srv = Scripted(
        b"220 x\r\n",
        {"EHLO": [b"250 x\r\n"], "RCPT a@example.org": [b"550 no\r\n"], "DATA": [b"354 go\r\n"], ".": [b"250 ok\r\n"]},
    )
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.ehlo()
    (r,) = c.transaction("s@example.net", ["a@example.org"], b"x\r\n")
    assert not r.ok
    (r,) = c.transaction("s@example.net", ["b@example.org"], b"x\r\n")
    assert r.ok
    c.quit()
    srv.thread.join(5)
    assert [x.split(":")[0] for x in srv.received] == [
        "EHLO c",
        "MAIL FROM",
        "RCPT TO",
        "RSET",
        "MAIL FROM",
        "RCPT TO",
        "DATA",
        "QUIT",
    ]


@pytest.mark.parametrize(
    ("command", "reply", "received"),
    [
        # The server answers and then waits for a command: the session ends with QUIT.
        ("MAIL FROM:<a@x.test>", b"250 2.1.0 ok\r\n", ["MAIL FROM:<a@x.test>", "QUIT"]),
        # After 354 anything sent would be message data: the connection is just closed.
        ("DATA", b"354 go ahead\r\n", ["DATA"]),
    ],
)
def test_abort_reads_the_reply_due_then_quits_only_outside_data(command, reply, received):
    """A stop in the middle of a session (RFC 5321 4.1.1.10): the reply still due is read, then
    QUIT when the server waits for a command, else the connection is closed."""
    verb = command.split(" ", 1)[0].split(":", 1)[0]
    srv = Scripted(b"220 x\r\n", {verb: [reply], "QUIT": [b"221 bye\r\n"]})
    c = Client(srv.client_sock, "c")
    c.read_greeting()
    c.send(command.encode() + b"\r\n", replies=1)
    assert select.select([c.sock], [], [], 30)[0], "no reply"  # the reply due is there
    c.abort()
    srv.thread.join(30)
    assert not srv.thread.is_alive()
    assert srv.received == received

"""Every kind of DSN the engine produces, made by real delivery attempts against small SMTP
servers on loopback, checked with Python's email parser and with flufl.bounce (issue 15's
DSN validator): failed and delayed, the remote server's code or our own, ASCII and UTF-8."""

from __future__ import annotations

import email
import email.policy
import time
from email.parser import HeaderParser

import pytest
from flufl.bounce import all_failures
from helpers.datadir import mailbox_messages
from helpers.dns import example_org_mx, loopback_dns
from smtpstub import NORMAL, STARTTLS_454, STARTTLS_GARBAGE, stub

from moxcli.config import parse_config
from moxcli.delivery import deliver, dsn
from moxcli.delivery import queue as q
from moxcli.smtp import msgdata
from moxcli.store import Store, domaintls

ACCOUNT = "dsnuser"


@pytest.fixture
def store(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    st = Store.open(data)
    yield st, data
    st.close()


def engine(store, port: int, extra: str = "", refuse: bool = False) -> deliver.Engine:
    st, data = store
    cfg = parse_config(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n{extra}', data / "moxcli.toml")
    eng = deliver.Engine(cfg, loopback_dns(), st, data)
    if refuse:

        def connect(ip: str, port: int, timeout: float):
            raise ConnectionRefusedError(111, "Connection refused")

        eng.connect = connect
    return eng


def queue(store, rcpt: str, body: bytes = b"Subject: t\r\nMessage-ID: <t@moxcli.test>\r\n\r\nhi\r\n", **kw) -> int:
    st, data = store
    (mid,) = q.enqueue(
        st, data, mail_from="sender@moxcli.test", recipients=[rcpt], data=body, sender_account=ACCOUNT, **kw
    )
    return mid


def dsns(store) -> list[bytes]:
    st, data = store
    return [text for _rec, text in mailbox_messages(st, data, ACCOUNT, "Inbox")]


def status_blocks(text: bytes, boundary: str) -> list[dict[str, str]]:
    """The header blocks of the (global-)delivery-status part, each parsed as an RFC 822 header
    (read from the raw part: the email package treats message/global-delivery-status as one
    embedded message)."""
    for part in text.split(b"--" + boundary.encode() + b"\r\n")[1:]:
        head, _, body = part.partition(b"\r\n\r\n")
        if b"delivery-status" in head.lower():
            blocks = body.split(b"\r\n--" + boundary.encode())[0].decode("utf-8").split("\r\n\r\n")
            return [dict(HeaderParser().parsestr(b.replace("\r\n", "\n")).items()) for b in blocks if b.strip()]
    raise AssertionError("no delivery-status part")


def check_dsn(text: bytes, *, utf8: bool, headers_8bit: bool = False) -> tuple[email.message.Message, dict[str, str]]:
    """Structure every DSN must have (RFC 3464 §2, RFC 6522, RFC 6533); the recipient's block.
    ``headers_8bit``: the returned message's header has non-ASCII bytes (RFC 6533 global headers)."""
    assert b"\n" not in text.replace(b"\r\n", b"") and b"\r" not in text.replace(b"\r\n", b"")
    msg = email.message_from_bytes(text)
    assert not msg.defects
    report_type = "global-delivery-status" if utf8 else "delivery-status"
    assert (msg.get_content_type(), msg.get_param("report-type")) == ("multipart/report", report_type)
    types = [p.get_content_type() for p in msg.get_payload()]
    assert types[:2] == ["text/plain", f"message/{report_type}"]
    assert types[2] == ("message/global-headers" if headers_8bit else "text/rfc822-headers")
    per_msg, per_rcpt = status_blocks(text, msg.get_boundary())
    assert per_msg["Reporting-MTA"] == "dns; mail.moxcli.test" and "Arrival-Date" in per_msg
    # modern parser too: headers and the report part parse without defects
    modern = email.message_from_bytes(text, policy=email.policy.default)
    assert all(not p.defects for p in modern.walk())
    return msg, per_rcpt


def test_failed_with_remote_reply(store, mini):
    srv = mini(["8BITMIME"], {"gone@[127.0.0.1]": "550 5.1.1 no such user here"})
    queue(store, "gone@[127.0.0.1]")
    (r,) = deliver.run_queue(*store, engine(store, srv.port).config, engine=engine(store, srv.port))
    assert (r.outcome, r.remote_reply) == ("failed", "550 5.1.1 no such user here")
    (text,) = dsns(store)
    msg, rcpt = check_dsn(text, utf8=False)
    assert rcpt == {
        "Final-Recipient": "rfc822; gone@[127.0.0.1]",
        "Action": "failed",
        "Status": "5.1.1",
        "Remote-MTA": "dns; 127.0.0.1",
        "Diagnostic-Code": "smtp; 550 5.1.1 no such user here",
        "Last-Attempt-Date": rcpt["Last-Attempt-Date"],
    }
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert "The last error was (the reply of 127.0.0.1):" in msg.get_payload()[0].get_payload()
    assert all_failures(msg) == (set(), {b"gone@[127.0.0.1]"})


@pytest.mark.parametrize(
    "case,enhanced,status,diag",
    [
        ("8bit-no-8bitmime", "5.6.3", "5.6.3", "X-moxcli; recipient r@[127.0.0.1]: 554 5.6.3 message has 8-bit data"),
        # a temporary error on the last allowed attempt, no SMTP reply: the DSN's status is 4.0.0
        # (it stays 4.x, as Postfix's)
        ("connect-refused", "", "4.0.0", "X-moxcli; connecting to 127.0.0.1: 127.0.0.1: Connection refused"),
        ("utf8-no-smtputf8", "5.6.7", "5.6.7", "X-moxcli; recipient "),
    ],
)
def test_failed_of_our_own_has_no_remote_mta(store, mini, case, enhanced, status, diag):
    """Our own errors: no Remote-MTA, Diagnostic-Code of type X-moxcli, never smtp."""
    srv = mini(["PIPELINING"])  # neither 8BITMIME nor SMTPUTF8
    body = b"Subject: t\r\n\r\nhi\r\n"
    rcpt, kw, utf8 = "r@[127.0.0.1]", {}, False
    if case == "8bit-no-8bitmime":
        body = "Subject: caf\xe9\r\n\r\nna\xefve\r\n".encode()
    elif case == "connect-refused":
        kw = {"max_attempts": 1}
    else:
        rcpt, utf8 = "j\xf6ran@[127.0.0.1]", True
    queue(store, rcpt, body, **kw)
    eng = engine(store, srv.port, refuse=case == "connect-refused")
    (r,) = deliver.run_queue(*store, eng.config, engine=eng)
    assert (r.outcome, r.enhanced, r.remote_reply) == ("failed", enhanced, "")
    (text,) = dsns(store)
    msg, fields = check_dsn(text, utf8=utf8, headers_8bit=case == "8bit-no-8bitmime")
    assert "Remote-MTA" not in fields
    assert "The last error was (found by mail.moxcli.test, not a reply of a remote server):" in (
        msg.get_payload()[0].get_payload(decode=True).decode()
    )
    assert fields["Status"] == status and fields["Action"] == "failed"
    assert fields["Diagnostic-Code"].startswith(diag)
    assert fields["Final-Recipient"] == ("utf-8; " if utf8 else "rfc822; ") + rcpt
    if case == "8bit-no-8bitmime":
        # the original header had 8-bit octets: returned as message/global-headers (RFC 6533 §6.3)
        assert msg.get_payload()[2].get_content_type() == "message/global-headers"
    assert srv.messages == []
    # flufl.bounce reads RFC 3464 DSNs; it skips non-ASCII addresses and global DSNs (its GL#3)
    assert all_failures(msg) == ((set(), set()) if utf8 else (set(), {rcpt.encode()}))


@pytest.mark.parametrize("remote", [True, False])
def test_delayed_dsn_once_past_delay_warning(store, mini, remote):
    srv = mini(["8BITMIME"], {"slow@[127.0.0.1]": "451 4.3.0 try again later"})
    eng = engine(store, srv.port, '[queue]\ndelay_warning = "1h"\n', refuse=not remote)
    queue(store, "slow@[127.0.0.1]")
    t0 = time.time()
    outcomes = []
    for at in (t0, t0 + 1800, t0 + 3700, t0 + 7200):  # attempts at 0, 30 min, 61 min, 2 h
        (r,) = deliver.run_queue(*store, eng.config, ids=[1], now=at, engine=eng)
        outcomes.append((r.outcome, r.dsn))
    assert outcomes == [("deferred", False), ("deferred", False), ("deferred", True), ("deferred", False)]
    (text,) = dsns(store)
    msg, fields = check_dsn(text, utf8=False)
    assert (fields["Action"], fields["Status"]) == ("delayed", "4.3.0" if remote else "4.0.0")
    assert "Will-Retry-Until" in fields
    if remote:
        assert (fields["Remote-MTA"], fields["Diagnostic-Code"]) == (
            "dns; 127.0.0.1",
            "smtp; 451 4.3.0 try again later",
        )
    else:
        assert "Remote-MTA" not in fields and fields["Diagnostic-Code"].startswith("X-moxcli; connecting to ")
    assert all_failures(msg) == ({b"slow@[127.0.0.1]"}, set())


def test_delay_warning_zero_means_never_and_default_is_fifth_attempt(store, mini):
    srv = mini([], {"slow@[127.0.0.1]": "451 4.3.0 later", "slow2@[127.0.0.1]": "451 4.3.0 later"})
    off = engine(store, srv.port, "[queue]\ndelay_warning = 0\n")
    queue(store, "slow@[127.0.0.1]")
    t = time.time()
    for _ in range(6):
        (r,) = deliver.run_queue(*store, off.config, ids=[1], now=t, engine=off)
        assert not r.dsn
        t += 86400
    mox = engine(store, srv.port)
    queue(store, "slow2@[127.0.0.1]")
    got = []
    for _ in range(6):
        (r,) = deliver.run_queue(*store, mox.config, ids=[2], now=t, engine=mox)
        got.append(r.dsn)
        t = r.next_attempt + 1
    assert got == [False, False, False, False, True, False]


def test_utf8_dsn_with_remote_reply(store, mini):
    """A non-ASCII recipient refused by a server that speaks SMTPUTF8: global DSN, the
    server's code as smtp diagnostic, UTF-8 subject encoded (RFC 2047) in the DSN header."""
    srv = mini(["8BITMIME", "SMTPUTF8"], {"j\xf6ran@[127.0.0.1]": "550 5.1.1 unknown"})
    eng = engine(store, srv.port)
    queue(store, "j\xf6ran@[127.0.0.1]")
    (r,) = deliver.run_queue(*store, eng.config, engine=eng)
    assert r.outcome == "failed"
    (text,) = dsns(store)
    msg, fields = check_dsn(text, utf8=True)
    assert (fields["Final-Recipient"], fields["Diagnostic-Code"]) == (
        "utf-8; j\xf6ran@[127.0.0.1]",
        "smtp; 550 5.1.1 unknown",
    )
    assert str(email.message_from_bytes(text, policy=email.policy.default)["Subject"]) == (
        "mail delivery failed: j\xf6ran@[127.0.0.1]"
    )
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert "MAIL FROM:<sender@moxcli.test> SMTPUTF8" in srv.commands
    # flufl.bounce parses it without error, and by design skips global DSNs (its GL#3)
    assert all_failures(msg) == (set(), set())


def test_dsn_of_non_canonical_original_is_canonical(store):
    """A queue file from an older version may hold any bytes: the header the DSN returns is
    made canonical (CR, LF and CRLF end lines, NUL dropped, lines cut at 998 octets)."""
    st, _data = store
    mid = queue(store, "r@[127.0.0.1]")
    m = q.get_message(st, mid)
    original = b"Subject: a\rX-Bare: b\nX-Nul: c\0d\r\nX-Long: " + b"y" * 1200 + b"\r\n\r\nbody\n.\r\n"
    eng = engine(store, 9)
    text = dsn.compose(eng.config, m, original, "smtp with h: 554 5.6.0 message not sent", "h", 554, "5.6.0", True)
    msgdata.check(text)
    msg, fields = check_dsn(text, utf8=False)
    assert fields["Diagnostic-Code"] == "X-moxcli; smtp with h: 554 5.6.0 message not sent"
    assert all_failures(msg) == (set(), {b"r@[127.0.0.1]"})
    assert b"\r\nSubject: a\r\nX-Bare: b\r\nX-Nul: cd\r\nX-Long: " + b"y" * 990 + b"\r\n" in text


@pytest.mark.parametrize(
    ("case", "status", "remote", "diag"),
    [
        ("dns", "4.0.0", False, "X-moxcli; gathering destinations for example.org: CNAME lookup for example.org: "),
        ("no-starttls", "4.7.10", False, "X-moxcli; mx.example.org does not announce STARTTLS; not delivering in "),
        ("tls-handshake", "4.7.10", False, "X-moxcli; tls handshake with mx.example.org: "),
        ("starttls-refused", "4.7.10", True, "smtp; 454 4.7.0 TLS not available now"),
    ],
)
def test_dsn_of_dns_and_tls_failures(store, case, status, remote, diag):
    """DNS and TLS failures are our own findings (no Remote-MTA, X-moxcli); a STARTTLS the
    server refused is its reply (Remote-MTA, smtp). The TLS cases are a domain that did
    STARTTLS before (no plaintext fallback), on the message's only allowed attempt."""
    st, data = store
    mode = {"no-starttls": NORMAL, "tls-handshake": STARTTLS_GARBAGE, "starttls-refused": STARTTLS_454}
    with stub([mode.get(case, NORMAL)]) as srv:
        eng = engine(store, srv.port)
        eng.resolver = (  # the recipient domain's lookups fail (SERVFAIL): a DNS error of our own
            loopback_dns(temporary=[("CNAME", "example.org")]) if case == "dns" else example_org_mx()
        )
        with st.write() as tx:
            domaintls.record(tx, "example.org", True, False, "mx.example.org", 1_000_000.0)
        queue(store, "x@example.org", max_attempts=1)
        (r,) = deliver.run_queue(st, data, eng.config, engine=eng)
        assert (r.outcome, r.dsn, bool(r.remote_reply)) == ("failed", True, remote)
        assert srv.messages == []
    (text,) = dsns(store)
    msg, fields = check_dsn(text, utf8=False)
    assert (fields["Action"], fields["Status"]) == ("failed", status)
    assert fields["Diagnostic-Code"].startswith(diag)
    assert fields.get("Remote-MTA") == ("dns; mx.example.org" if remote else None)
    assert all_failures(msg) == (set(), {b"x@example.org"})

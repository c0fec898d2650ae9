"""What `queue add` + `queue run` put on the wire, checked against the lab's real Postfix.

Each byte class goes through the CLI (`queue add`, then `queue run`) to three smtpd services
of the lab Postfix: its defaults (bare LF accepted as a line end, so vulnerable to SMTP
smuggling by a careless client), `smtpd_forbid_bare_newline = yes` and `= reject`, with no
exclusions. Asserted: refused inputs queue nothing (exit 2); everything else arrives as
exactly one message per queued message, with the queued bytes; Postfix logs no
"improper command pipelining", "non-SMTP command" or "bare <LF>" line, and its session
summary counts one MAIL and one DATA per message (a smuggled message would be a second).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
from conftest import lab_config_text
from helpers.proc import log_since

from moxcli.cli import cli
from moxcli.store.files import queue_file

pytestmark = pytest.mark.lab

SMUGGLE = (
    b"A\n.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@sts.test>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n"
)

# name -> (message bytes, refused?) ; headers use the same line ends as the class under test
CASES: dict[str, tuple[bytes, bool]] = {
    "lf": (b"Subject: lf\n\nline one\nline two\n", False),
    "crlf": (b"Subject: crlf\r\n\r\nline one\r\nline two\r\n", False),
    "cr": (b"Subject: cr\r\n\r\nline one\rline two\r\n", True),
    "dot-after-lf": (b"Subject: dot lf\n\nx\n.leading\n..two\n.\nend\n", False),
    "dot-after-crlf": (b"Subject: dot crlf\r\n\r\nx\r\n.leading\r\n..two\r\n.\r\nend\r\n", False),
    "dot-after-cr": (b"Subject: dot cr\r\n\r\nx\r.leading\r\n", True),
    "crlf-dot-crlf-in-body": (b"Subject: end marker\r\n\r\nbefore\r\n.\r\nafter\r\n", False),
    "lf-dot-lf-in-body": (b"Subject: end marker lf\n\nbefore\n.\nafter\n", False),
    "dot-last-line-without-eol": (b"Subject: last dot\r\n\r\nbefore\r\n.", False),
    "no-header-dot-first": (b".first line is text\n", False),
    "smuggle-mixed": (b"Subject: smuggle\r\n\r\n" + SMUGGLE, True),
    "smuggle-all-lf": (b"Subject: smuggle lf\n\n" + SMUGGLE.replace(b"\r\n", b"\n"), False),
    "nul": (b"Subject: nul\r\n\r\na\0b\r\n", True),
    "8bit": (b"Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve \xff\xfe\r\n", False),
    "line-1000-octets": (b"Subject: 998\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n" + b"." * 998 + b"\r\n", False),
    "line-1001-octets": (b"Subject: 999\r\n\r\n" + b"y" * 999 + b"\r\n", True),
}

FORBIDDEN = re.compile(r"improper command pipelining|non-SMTP command|bare <LF>", re.I)
SUMMARY = re.compile(r" disconnect from \S+ .*?\bmail=(\d+)(?:/\d+)? .*?\bdata=(\d+)(?:/\d+)?")


def disconnects(lines: list[str], syslog_name: str) -> list[str]:
    """Postfix's session summaries ("disconnect from ... ehlo=2 mail=1 ..."): commands omitted
    from a summary were not sent at all."""
    return [ln for ln in lines if f" {syslog_name}/smtpd[" in ln and " disconnect from " in ln]


@pytest.fixture
def wire_lab(lab, tmp_path):
    if "LAB_SMTP_STRICT" not in lab:
        if os.environ.get("CI") == "true":
            pytest.fail("the lab lacks the smtpd_forbid_bare_newline services: restart it")
        pytest.skip("lab started before the strict smtpd services existed: restart it (tests/lab/lab)")
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(lab_config_text(lab))
    return data, lab


def cli_run(runner, data: Path, *args: str, input: bytes | None = None):
    return runner.invoke(cli, ["--data", str(data), *args], input=input)


def maildir_by_recipient(maildir: str) -> dict[str, list[bytes]]:
    """Delivered-To address -> the files Postfix stored for it."""
    out: dict[str, list[bytes]] = {}
    for f in (Path(maildir) / "new").iterdir():
        raw = f.read_bytes()
        m = re.search(rb"^Delivered-To: (.*)$", raw, re.M)
        if m:
            out.setdefault(m.group(1).decode(), []).append(raw)
    return out


def summaries(lines: list[str], syslog_name: str) -> tuple[int, int]:
    mails = datas = 0
    for ln in disconnects(lines, syslog_name):
        m = SUMMARY.search(ln)
        if m:
            mails += int(m.group(1))
            datas += int(m.group(2))
    return mails, datas


@pytest.mark.parametrize(
    "service,syslog_name",
    [
        ("LAB_SMTP_LENIENT", "postfix-lenient"),
        ("LAB_SMTP_STRICT", "postfix-strict"),
        ("LAB_SMTP_REJECT", "postfix-reject"),
    ],
)
def test_byte_classes_arrive_once_and_intact(runner, wire_lab, service, syslog_name):
    data, lab = wire_lab
    ip = lab[service].rsplit(":", 1)[0]
    log = lab.get("LAB_POSTFIX_LOG") or str(Path(lab["LAB_DIR"]) / "log" / "postfix.log")
    log_start = os.path.getsize(log)
    maildir_before = set((Path(lab["LAB_MAILDIR"]) / "new").iterdir())
    queued: dict[str, tuple[str, bytes]] = {}  # case -> (recipient, queued bytes)
    for name, (msg, refused) in CASES.items():
        rcpt = f"{name}-{uuid.uuid4().hex[:8]}@[{ip}]"
        r = cli_run(runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", rcpt, "--json", input=msg)
        if refused:
            assert r.exit_code == 2, (name, r.output)
            assert r.stderr.startswith("moxcli: stdin: ") and r.stderr.endswith("; nothing queued\n")
            continue
        assert r.exit_code == 0, (name, r.output)
        (qid,) = json.loads(r.stdout)["ids"]
        queued[name] = (rcpt, queue_file(data, qid).read_bytes())
    assert len(queued) == sum(1 for _, refused in CASES.values() if not refused)

    r = cli_run(runner, data, "queue", "run", "--json")
    assert r.exit_code == 0, r.output
    attempts = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted((a["recipient"], a["outcome"], a["code"]) for a in attempts) == sorted(
        (rcpt, "delivered", 250) for rcpt, _ in queued.values()
    )

    deadline = time.monotonic() + 15
    while True:  # Postfix delivers and logs asynchronously
        boxes = maildir_by_recipient(lab["LAB_MAILDIR"])
        lines = log_since(log, log_start)
        done = all(rcpt in boxes for rcpt, _ in queued.values())
        if (done and summaries(lines, syslog_name)[1] >= len(queued)) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for name, (rcpt, body) in queued.items():
        files = boxes.get(rcpt, [])
        assert len(files) == 1, name
        # Postfix stores with LF line ends, prepends its trace fields and appends fields it
        # requires (From:); our header lines are there in order and the body is byte-identical
        got_head, _, got_body = files[0].partition(b"\n\n")
        head, _, body = body.replace(b"\r\n", b"\n").partition(b"\n\n")
        assert got_body == body, name
        got_lines = got_head.split(b"\n")
        start = got_lines.index(head.split(b"\n")[0])
        assert got_lines[start : start + head.count(b"\n") + 1] == head.split(b"\n"), name
    assert [ln for ln in lines if FORBIDDEN.search(ln)] == []
    # one MAIL and one DATA per queued message: nothing smuggled in behind a message
    assert summaries(lines, syslog_name) == (len(queued), len(queued))
    new = set((Path(lab["LAB_MAILDIR"]) / "new").iterdir()) - maildir_before
    assert len(new) == len(queued)


def test_non_canonical_queue_file_is_never_sent(runner, wire_lab):
    """Bytes that bypassed `queue add` (a file queued by an older version, or edited on disk)
    fail permanently in the SMTP client before MAIL FROM; the server sees no transaction."""
    data, lab = wire_lab
    ip = lab["LAB_SMTP_LENIENT"].rsplit(":", 1)[0]
    log = lab.get("LAB_POSTFIX_LOG") or str(Path(lab["LAB_DIR"]) / "log" / "postfix.log")
    rcpt = f"raw-{uuid.uuid4().hex[:8]}@[{ip}]"
    r = cli_run(
        runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", rcpt, "--json", input=b"Subject: x\n\nA\n"
    )
    (qid,) = json.loads(r.stdout)["ids"]
    queue_file(data, qid).write_bytes(b"Subject: smuggle\r\n\r\n" + SMUGGLE)
    log_start = os.path.getsize(log)
    r = cli_run(runner, data, "queue", "run", "--json")
    (a,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert (a["outcome"], a["code"], a["enhanced"]) == ("failed", 554, "5.6.0")
    assert "bare LF (mixed with CRLF line ends) at byte offset 21 (line 3)" in a["error"]
    deadline = time.monotonic() + 10
    while not disconnects(log_since(log, log_start), "postfix-lenient") and time.monotonic() < deadline:
        time.sleep(0.05)
    (summary,) = disconnects(log_since(log, log_start), "postfix-lenient")
    assert re.search(r" ehlo=2 starttls=1 quit=1 commands=4$", summary), summary
    assert rcpt not in maildir_by_recipient(lab["LAB_MAILDIR"])


@pytest.mark.parametrize(
    ("service", "syslog_name", "queued", "refusal"),
    [
        ("LAB_SMTP_LENIENT", "postfix-lenient", 2, None),  # <LF>.<CR><LF> ends the data: smuggled
        ("LAB_SMTP_STRICT", "postfix-strict", 1, None),  # = yes (normalize): one message
        ("LAB_SMTP_REJECT", "postfix-reject", 0, "550 5.5.2 mx.reject.test Error: bare <LF> received"),
    ],
)
def test_control_a_careless_client_smuggles_through_the_lenient_postfix(
    wire_lab, service, syslog_name, queued, refusal
):
    """The control for the table above: a raw client that sends the smuggling payload as it is
    gets a second, forged message into the lab Postfix with its defaults, one message with
    `smtpd_forbid_bare_newline = yes` and a refusal with `= reject`. So the services differ
    as the table assumes, and the one moxcli is tested against is really open to smuggling."""
    _data, lab = wire_lab
    ip = lab[service].rsplit(":", 1)[0]
    log = lab.get("LAB_POSTFIX_LOG") or str(Path(lab["LAB_DIR"]) / "log" / "postfix.log")
    log_start = os.path.getsize(log)
    tag = uuid.uuid4().hex[:8]
    payload = SMUGGLE.replace(b"victim@sts.test", f"victim-{tag}@[{ip}]".encode())
    with socket.create_connection((ip, int(lab["LAB_SMTP_PORT"])), timeout=30) as s:
        f = s.makefile("rb")

        def reply() -> bytes:
            while True:
                line = f.readline()
                if not line or line[3:4] != b"-":
                    return line.rstrip(b"\r\n")

        assert reply().startswith(b"220 ")
        for cmd, code in (
            ("EHLO raw.test", b"250"),
            ("MAIL FROM:<a@moxcli.test>", b"250"),
            (f"RCPT TO:<good-{tag}@[{ip}]>", b"250"),
            ("DATA", b"354"),
        ):
            s.sendall(cmd.encode() + b"\r\n")
            assert reply()[:3] == code, cmd
        s.sendall(b"Subject: raw\r\n\r\n" + payload + b"QUIT\r\n")
        replies = []
        while (line := reply()) and not line.startswith(b"221 "):
            replies.append(line.decode())
    assert sum(r.startswith("250 2.0.0 Ok: queued as ") for r in replies) == queued
    assert [r for r in replies if r.startswith("5")] == ([refusal] if refusal else [])
    deadline = time.monotonic() + 10
    while not disconnects(log_since(log, log_start), syslog_name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(disconnects(log_since(log, log_start), syslog_name)) == 1

"""Wire safety end to end through the CLI, against SMTP servers on loopback (no lab needed):
aiosmtpd for the property test and the 8BITMIME case, a small server of our own that does
not announce 8BITMIME."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxcli.cli import cli
from moxcli.store.files import queue_file


def config(data: Path, port: int) -> None:
    data.mkdir(exist_ok=True)
    (data / "moxcli.toml").write_text(
        f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {port}\n'
        '[dns]\nresolvers = ["127.0.0.1:9"]\ntimeout = 1\n'
    )


def cli_run(runner, data: Path, *args: str, input: bytes | None = None):
    return runner.invoke(cli, ["--data", str(data), *args], input=input)


# Bytes that make the interesting cases likely: line ends, dots, NUL, 8-bit, long runs.
ATOMS = st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"\r\n.\r\n", b"\n.\n", b"\0", b"\xc3\xa9", b"x", b"a b"])
MESSAGES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(ATOMS, st.binary(max_size=5)), max_size=40).map(b"".join),
    st.lists(st.sampled_from([b"x" * 500, b"\n", b"\r\n", b"."]), max_size=6).map(b"".join),
)


def _one_message_property(runner, smtpd, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        config(data, smtpd.port)
        r = cli_run(
            runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", "--json", input=raw
        )
        if r.exit_code == 2:
            assert r.stderr.startswith("moxcli: stdin: ") and r.stderr.endswith("; nothing queued\n")
            return
        assert r.exit_code == 0, r.output
        (qid,) = json.loads(r.stdout)["ids"]
        queued = queue_file(data, qid).read_bytes()
        smtpd.messages.clear()
        r = cli_run(runner, data, "queue", "run", "--json")
        (attempt,) = [json.loads(x) for x in r.stdout.splitlines()]
        assert attempt["outcome"] == "delivered", attempt
        assert smtpd.messages == [("a@moxcli.test", ["r@[127.0.0.1]"], queued)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(MESSAGES)
def test_property_accepted_message_arrives_once_and_equal(runner, smtpd, raw):
    """Whatever `queue add` accepts arrives at a real SMTP server as exactly one message whose
    bytes equal the queued (normalised) bytes; whatever it refuses exits 2."""
    _one_message_property(runner, smtpd, raw)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(MESSAGES)
def test_property_accepted_message_arrives_once_and_equal_long(runner, smtpd, raw):
    """The same with more examples (about 8 s); deselect with -m 'not slow'."""
    _one_message_property(runner, smtpd, raw)


EIGHT_BIT = "Subject: caf\xe9\n\nna\xefve\n".encode()


def test_8bitmime_announced_body_param_sent(runner, tmp_path, mini):
    srv = mini(["8BITMIME", "PIPELINING"])
    data = tmp_path / "data"
    config(data, srv.port)
    header_only, body_only = "Subject: caf\xe9\n\nascii\n".encode(), "Subject: plain\n\nna\xefve\n".encode()
    for msg in (EIGHT_BIT, b"Subject: plain\n\nascii\n", header_only, body_only):
        assert (
            cli_run(
                runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", input=msg
            ).exit_code
            == 0
        )
    r = cli_run(runner, data, "queue", "run", "--json")
    assert [json.loads(x)["outcome"] for x in r.stdout.splitlines()] == ["delivered"] * 4
    mails = [c for c in srv.commands if c.startswith("MAIL")]
    # RFC 6152 3: BODY=8BITMIME only when the message needs it (8-bit in the header or the body)
    assert mails == [
        "MAIL FROM:<a@moxcli.test> BODY=8BITMIME",
        "MAIL FROM:<a@moxcli.test>",
        "MAIL FROM:<a@moxcli.test> BODY=8BITMIME",
        "MAIL FROM:<a@moxcli.test> BODY=8BITMIME",
    ]
    assert srv.messages[0].endswith(b"\r\n\r\nna\xc3\xafve\r\n")


def test_8bitmime_announced_by_aiosmtpd(runner, tmp_path, smtpd):
    data = tmp_path / "data"
    config(data, smtpd.port)
    assert (
        cli_run(
            runner, data, "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]", input=EIGHT_BIT
        ).exit_code
        == 0
    )
    r = cli_run(runner, data, "queue", "run", "--json")
    assert json.loads(r.stdout)["outcome"] == "delivered"
    ((_frm, _to, content),) = smtpd.messages
    assert content.endswith(b"\r\n\r\nna\xc3\xafve\r\n")
    ((size, body),) = smtpd.mail_options
    assert (size, body) == (f"SIZE={len(content)}", "BODY=8BITMIME")


@pytest.mark.parametrize(
    "msg",
    [EIGHT_BIT, "Subject: caf\xe9\n\nascii\n".encode(), "Subject: plain\n\nna\xefve\n".encode()],
    ids=["header-and-body", "header", "body"],
)
def test_8bit_to_server_without_8bitmime_fails_with_5_6_3(runner, tmp_path, mini, msg):
    """mox's choice (no 7-bit conversion): the message fails permanently, nothing is sent
    after EHLO, and the DSN says 5.6.3 as moxcli's own finding, not the server's."""
    srv = mini(["PIPELINING", "SIZE 100000"])
    data = tmp_path / "data"
    config(data, srv.port)
    r = cli_run(
        runner,
        data,
        "queue",
        "add",
        "--from",
        "a@moxcli.test",
        "--to",
        "r@[127.0.0.1]",
        "--account",
        "al",
        input=msg,
    )
    assert r.exit_code == 0
    r = cli_run(runner, data, "queue", "run", "--json")
    a = json.loads(r.stdout)
    assert (a["outcome"], a["code"], a["enhanced"], a["remote_reply"], a["dsn"]) == ("failed", 554, "5.6.3", None, True)
    assert [c.split(" ")[0] for c in srv.commands] == ["EHLO", "QUIT"]
    assert srv.messages == []

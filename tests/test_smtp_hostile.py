"""Hostile and stalling SMTP servers (issue 18, RFC 5321 §4.5.3.2): every reply has a deadline
for all its lines and caps on lines and bytes. `moxcli queue run` (a real process, with an
address-space limit) defers the message and exits 3, within the configured deadline."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import lab_config_text
from helpers.proc import BIG, BODY
from smtpstub import (
    DRIP_BANNER,
    DRIP_MAIL,
    DRIP_TLS,
    ENDLESS_BANNER,
    FAT_LINE_BANNER,
    NORMAL,
    STALL_AFTER_DOT,
    STALL_MID_DATA,
    stub,
)

from moxcli import tlsconn
from moxcli.cli import cli
from moxcli.config import DeliveryConfig, parse_config
from moxcli.errors import ConfigError
from moxcli.smtp.client import Client

ROOT = Path(__file__).resolve().parent.parent
# The store maps 1 GiB of address space; a few hundred MB on top is all the run may take.
ADDRESS_SPACE = (1 << 30) + (384 << 20)


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run_child(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "moxcli", "--data", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=_limit,
        timeout=120,
    )


@pytest.mark.parametrize(
    "mode,delivery,body,error",
    [
        (ENDLESS_BANNER, "", BODY, "reply has more than 100 lines"),
        (ENDLESS_BANNER, "max_reply_lines = 100000\nmax_reply_bytes = 100000", BODY, "reply is larger than 100000"),
        (FAT_LINE_BANNER, "", BODY, "reply line too long"),
        (DRIP_BANNER, "greeting_timeout = 1.5", BODY, "timeout waiting 1.5 s for the greeting"),
        (DRIP_MAIL, "command_timeout = 1.5", BODY, "timeout waiting 1.5 s for the reply to MAIL"),
        (STALL_MID_DATA, "data_block_timeout = 1", BIG, "bytes of message data"),
        (STALL_AFTER_DOT, "data_end_timeout = 1", BODY, "timeout waiting 1 s for the reply to the message data"),
    ],
    ids=["endless-banner", "endless-banner-bytes", "fat-line", "drip-banner", "drip-mail", "slow-reader", "no-final"],
)
def test_hostile_server_deferred_exit_3(runner, tmp_path, mode, delivery, body, error):
    with stub([mode, NORMAL], drip=0.25) as srv:
        data = tmp_path / "data"
        data.mkdir()
        (data / "moxcli.toml").write_text(
            f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n[delivery]\n{delivery}\n'
        )
        r = runner.invoke(
            cli,
            ["--data", str(data), "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]"],
            input=body,
        )
        assert r.exit_code == 0, r.output
        p = _run_child(data, "queue", "run", "--json")
        assert p.returncode == 3, p.stderr
        line, err = [json.loads(x) for x in p.stdout.splitlines()]
        assert (line["outcome"], line["attempt"]) == ("deferred", 1)
        assert error in line["error"]
        why = "queue run: 1 message(s) deferred because a server broke a deadline or a reply limit"
        assert err == {"error": {"code": "temporary", "message": why}}
        assert p.stderr.strip().splitlines()[-2:] == [
            "1 message(s) attempted: 0 delivered, 1 deferred, 0 failed, 0 interrupted, 0 DSN(s) stored",
            f"moxcli: {why}",
        ]
        assert srv.messages == []
        # The next attempt (to a well-behaved server) delivers it.
        r = runner.invoke(cli, ["--data", str(data), "queue", "run", "--id", "1", "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["outcome"] == "delivered"
        assert len(srv.messages) == 1


def test_deadline_defaults_are_rfc_5321():
    d = DeliveryConfig()
    assert (d.greeting_timeout, d.command_timeout, d.data_init_timeout, d.data_block_timeout, d.data_end_timeout) == (
        300,
        300,
        120,
        180,
        600,
    )


@pytest.mark.parametrize(
    "text,error",
    [
        ("greeting_timeout = 0", "delivery.greeting_timeout: must be a number of seconds above 0 and at most 86400"),
        ("command_timeout = nan", "delivery.command_timeout: must be a number of seconds above 0"),
        ("data_end_timeout = 1e308", "delivery.data_end_timeout: must be a number of seconds above 0"),
        ("data_end_timeout = 'x'", "delivery.data_end_timeout: expected integer or float, got string 'x'"),
        ("max_reply_lines = 0", "delivery.max_reply_lines: must be an integer from 1 to"),
        ("max_reply_lines = 1.5", "delivery.max_reply_lines: expected integer, got float 1.5"),
        ("max_reply_bytes = 100", "delivery.max_reply_bytes: must be at least 512"),
        ("min_send_rate = -1", "delivery.min_send_rate: must be an integer from 1 to"),
        ("timeout = 5", "delivery.timeout: unknown key"),
    ],
)
def test_delivery_config_validated(tmp_path, text, error):
    with pytest.raises(ConfigError, match="^" + str(tmp_path / "c.toml").replace(".", r"\.") + ": " + error[:40]):
        parse_config(f"[delivery]\n{text}\n", tmp_path / "c.toml")


def test_delivery_config_values(tmp_path):
    cfg = parse_config("[delivery]\ngreeting_timeout = 10\nmax_messages_per_connection = 5\n", tmp_path / "c.toml")
    assert cfg.delivery.greeting_timeout == 10.0 and cfg.delivery.max_messages_per_connection == 5
    assert cfg.delivery.data_end_timeout == 600.0


def test_tls_handshake_has_one_deadline():
    """A peer that answers STARTTLS and then sends a byte of its handshake every 0.25 s ends in a
    timeout at the handshake deadline; a timeout per read would wait until the peer gives up
    (DRIP_TLS_FOR) and then see the connection closed."""
    with stub([DRIP_TLS], drip=0.25) as srv:
        client = Client(socket.create_connection(("127.0.0.1", srv.port), timeout=10), "mail.moxcli.test")
        client.read_greeting()
        client.ehlo()
        assert "STARTTLS" in client.extensions
        with pytest.raises(tlsconn.TLSHandshakeError) as info:
            client.starttls(lambda raw: tlsconn.handshake(raw, "stub.test", 1.5)[0])
        client.close()
        assert srv.reached["dripping"].is_set()
    assert (info.value.result_type, info.value.reason) == ("validation-failure", "io-timeout-during-handshake")
    assert str(info.value) == "tls handshake with stub.test: timeout: no complete handshake within 1.5 s"


def test_dripping_handshake_falls_back_to_plaintext(runner, tmp_path):
    """Opportunistic TLS (an address literal): the handshake deadline passes, the same host is
    tried in plaintext at once (docs/behaviour-notes.md §3.7) and the message is delivered."""
    with stub([DRIP_TLS, NORMAL], drip=0.25) as srv:
        data = tmp_path / "data"
        data.mkdir()
        (data / "moxcli.toml").write_text(
            f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n'
            "[delivery]\ntls_handshake_timeout = 1.5\n"
        )
        r = runner.invoke(
            cli,
            ["--data", str(data), "queue", "add", "--from", "a@moxcli.test", "--to", "r@[127.0.0.1]"],
            input=BODY,
        )
        assert r.exit_code == 0, r.output
        p = _run_child(data, "--log-level", "info", "queue", "run", "--json")
        assert p.returncode == 0, p.stderr
        (line,) = [json.loads(x) for x in p.stdout.splitlines()]
        assert (line["outcome"], line["tls"], srv.connections) == ("delivered", None, 2)
        assert "tls failed, retrying in plaintext" in p.stderr
        assert "no complete handshake within 1.5 s" in p.stderr
        assert len(srv.messages) == 1


@pytest.mark.lab
def test_dripping_handshake_with_dane_is_deferred_exit_3(runner, lab, tmp_path):
    """DANE makes STARTTLS mandatory (no plaintext fallback): a handshake that drips past the
    deadline defers the message, and queue run exits 3 (a server broke a deadline)."""
    with stub([DRIP_TLS], drip=0.25) as srv:
        data = tmp_path / "data"
        data.mkdir()
        text = lab_config_text(lab, "[delivery]\ntls_handshake_timeout = 1.5\n")
        text = text.replace(f"smtp_port = {lab['LAB_SMTP_PORT']}", f"smtp_port = {srv.port}")
        (data / "moxcli.toml").write_text(text)
        r = runner.invoke(
            cli,
            ["--data", str(data), "queue", "add", "--from", "a@moxcli.test", "--to", "r@dane-ok.test"],
            input=BODY,
        )
        assert r.exit_code == 0, r.output
        p = _run_child(data, "queue", "run", "--json")
        assert p.returncode == 3, p.stderr
        line = json.loads(p.stdout.splitlines()[0])
        assert (line["outcome"], line["attempt"], line["host"]) == ("deferred", 1, "mx.dane-ok.test")
        assert line["error"] == "tls handshake with mx.dane-ok.test: timeout: no complete handshake within 1.5 s"
        assert srv.connections == 1 and srv.messages == []

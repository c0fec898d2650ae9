"""What the engine remembers per recipient domain (spec §3.7): STARTTLS used and REQUIRETLS
offered at each delivery, with the time; a plaintext delivery after STARTTLS is noted as a
downgrade; shown by `domains list`, `queue show` and the `check domain` bar."""

from __future__ import annotations

import json

import pytest
from smtpstub import NORMAL, stub
from test_delivery import MXResolver

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.store import Store, domaintls

BODY = b"From: <a@moxcli.test>\r\nSubject: memory\r\n\r\nhello\r\n"


def _invoke(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), *args], env={"COLUMNS": "300"})


def test_plaintext_delivery_recorded_and_downgrade_noted(runner, tmp_path, capsys):
    with stub([NORMAL]) as srv:
        data = tmp_path / "data"
        data.mkdir()
        (data / "moxcli.toml").write_text(f'hostname = "mail.moxcli.test"\n[network]\nsmtp_port = {srv.port}\n')
        cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
        with Store.open(data) as st:
            with st.write() as tx:  # an earlier delivery to example.org went over STARTTLS
                domaintls.record(tx, "example.org", True, True, "mx.example.org", 1_000_000.0)
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@example.org"], data=BODY)
            (r,) = deliver.run_queue(st, data, cfg, engine=deliver.Engine(cfg, MXResolver(), st, data))
            assert (r.outcome, r.tls) == ("delivered", "")
            with st.read() as tx:
                d = domaintls.get(tx, "example.org")
            assert d is not None
            assert (d.starttls, d.requiretls, d.host) == (False, False, "mx.example.org")
            assert (d.starttls_seen, d.requiretls_seen) == (1_000_000.0, 1_000_000.0)
            assert d.downgraded == d.updated and d.updated > 1_000_000.0
            q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["y@example.org"], data=BODY)
        r = _invoke(runner, data, "domains", "list", "--format", "json")
        assert r.exit_code == 0, r.output
        (row,) = json.loads(r.output)
        assert set(row) == {
            "domain",
            "starttls",
            "requiretls",
            "updated",
            "host",
            "starttls_seen",
            "requiretls_seen",
            "downgraded",
        }
        assert (row["domain"], row["starttls"], row["requiretls"]) == ("example.org", False, False)
        assert row["starttls_seen"] == "1970-01-12T13:46:40Z"
        shown = json.loads(_invoke(runner, data, "queue", "show", "2", "--json").output)
        assert shown["recipient_domain_tls"] == row
        r = _invoke(runner, data, "domains", "list")
        assert r.exit_code == 0 and "example.org" in r.output and "1970-01-12 13:46:40" in r.output
        assert json.loads(_invoke(runner, data, "domains", "list", "example.net", "--format", "json").output) == []
        assert _invoke(runner, data, "verifydata").exit_code == 0
        r = _invoke(runner, data, "backup", str(tmp_path / "backup"))
        assert r.exit_code == 0, r.output
        r = runner.invoke(
            cli, ["--data", str(tmp_path / "backup"), "domains", "list", "--format", "json"], env={"COLUMNS": "300"}
        )
        assert json.loads(r.output) == [row]


def test_queue_show_unknown_domain_is_null(runner, data_dir):
    r = runner.invoke(
        cli, ["--data", str(data_dir), "queue", "add", "--from", "a@moxcli.test", "--to", "b@example.net"], input=BODY
    )
    assert r.exit_code == 0, r.output
    assert json.loads(_invoke(runner, data_dir, "queue", "show", "1", "--json").output)["recipient_domain_tls"] is None
    r = _invoke(runner, data_dir, "domains", "list")
    assert r.exit_code == 0 and "no deliveries recorded" in r.output


@pytest.mark.lab
def test_starttls_delivery_to_lab_shown_in_check_domain_bar(runner, lab_data):
    r = runner.invoke(
        cli,
        ["--data", str(lab_data), "queue", "add", "--from", "a@moxcli.test", "--to", "tlsrpt@reports.test"],
        input=BODY,
    )
    assert r.exit_code == 0, r.output
    r = _invoke(runner, lab_data, "queue", "run", "--json")
    assert json.loads(r.output)["outcome"] == "delivered", r.output
    (row,) = json.loads(_invoke(runner, lab_data, "domains", "list", "--format", "json").output)
    assert (row["domain"], row["starttls"], row["downgraded"]) == ("reports.test", True, None)
    assert row["starttls_seen"] == row["updated"]
    r = _invoke(runner, lab_data, "check", "domain", "reports.test", "--json")
    ind = json.loads(r.output.splitlines()[0])["indicators"]
    assert ind["starttls_seen"] == "implemented"
    assert ind["requiretls_seen"] == ("implemented" if row["requiretls"] else "not-implemented")
    r = _invoke(runner, lab_data, "check", "domain", "reports.test")
    assert "✓ STARTTLS seen" in r.output

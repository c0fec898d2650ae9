"""gentestdata: deterministic, every record type, written through the features' own APIs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from moxcli.cli import cli
from moxcli.datatools.gentest import generate
from moxcli.datatools.verify import INDEX_TABLES, verify_data
from moxcli.store import Store, schema
from moxcli.store.env import decode

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z


@pytest.fixture(scope="module")
def generated_result(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("gen") / "data", now=NOW)


@pytest.fixture
def generated(generated_result) -> Path:
    return generated_result.data_dir


def dump(data: Path) -> dict:
    """Every record, without the wall-clock `created` stamps other modules set."""
    out = {}
    with Store.open(data, readonly=True) as st, st.read() as tx:
        for t in schema.TABLES:
            for k, raw in tx.scan_raw(t):
                if t.name in INDEX_TABLES:
                    out[(t.name, k)] = raw
                    continue
                rec = decode(t, k, raw)
                if t is schema.META and k == b"created":
                    continue
                rec.pop("created", None)
                out[(t.name, k)] = rec
    return out


def test_verifydata_passes(generated):
    res = verify_data(generated)
    assert res.ok and res.warnings == [], (res.problems, res.warnings)
    assert res.counts["message_files"] == 8 and res.counts["queue_files"] == 4


def test_every_record_type(generated):
    from moxcli.dmarc import db as evaldb
    from moxcli.mtasts import db as mtasts
    from moxcli.store import dmarc as dstore
    from moxcli.store import mail, queue, suppress, tlsreports
    from moxcli.tlsrpt import resultsdb as tlsresults

    with Store.open(generated, readonly=True) as st, st.read() as tx:
        for t in schema.TABLES:
            assert tx.count(t) > 0, t.name
        accounts = {a.name: a for a in mail.list_accounts(tx)}
        assert accounts["test2"].addresses == ("☹@☺.example",)
        uses = {m.name: m.special_use for m in mail.list_mailboxes(tx, "test1")}
        assert uses["Sent"] == "\\Sent" and uses["Junk"] == "\\Junk" and uses["Trash"] == "\\Trash"
        sent = mail.get_mailbox(tx, "test2", "Sent")
        (msg,) = list(mail.list_messages(tx, "test2", sent.id))
        assert msg.flags == ["\\Seen", "\\Answered", "$Forwarded"] and msg.keywords == ["sent-by-moxcli"]
        q = list(queue.scan(tx))
        assert [m.hold for m in q].count(True) == 1
        assert any(m.attempts == 3 and m.last_error for m in q)
        assert len({m.base_id for m in q}) == 3 and any(m.prefix for m in q)
        modes = {r.domain: ("backoff" if r.backoff else r.policy.mode) for r in mtasts.rows(tx)}
        assert sorted(modes.values()) == ["backoff", "enforce", "testing"]
        rows = list(tlsresults.iter_rows(tx))
        assert len({r.day_utc for r in rows}) == 2
        assert {r.is_host for r in rows} == {True, False}
        assert any(r.results[0].policy.type == "tlsa" for r in rows) and any(
            r.results[0].policy.type == "sts" for r in rows
        )
        assert len(suppress.entries(tx, "tls")) == 2 and len(suppress.entries(tx, "dmarc")) == 1
        assert len(list(evaldb.evaluations(tx))) == 3
        assert [r.policy_domain for r in dstore.list_reports(tx)] == ["mox.example"]
        reports = list(tlsreports.scan(tx, newest_first=False))
        assert [(r.policy_domains, r.host_report) for r in reports] == [
            (("mox.example",), False),
            (("mail.mox.example",), True),
        ]


def test_deterministic(tmp_path, generated):
    other = tmp_path / "again"
    generate(other, now=NOW)
    assert dump(other) == dump(generated)
    # The store (compared by dump) and its seal (the digest of its file, whose free bytes differ).
    excluded = ["--exclude=store", "--exclude=store.sha256"]
    r = subprocess.run(["diff", "-r", *excluded, str(generated), str(other)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[:2000]


def test_config_loads_with_dkim_keys(generated):
    from moxcli.config import load_config

    cfg = load_config(generated / "moxcli.toml", required=True)
    assert set(cfg.domains) == {"mox.example", "xn--74h.example"}
    for d in cfg.domains.values():
        (sel,) = d.dkim.selectors.values()
        assert sel.private_key_file.exists() and d.tlsrpt and d.dmarc


def test_dkim_keys_are_what_cryptography_writes_for_the_seed(generated):
    """The keys are written without the cryptography package (start-up): byte for byte the PEM
    it writes for the same seed-derived Ed25519 key, and they load and sign."""
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    for domain in ("mox.example", "xn--74h.example"):
        pem = (generated / "dkim" / domain / "gentest.ed25519.pem").read_bytes()
        raw = hashlib.sha256(f"moxcli gentestdata 1 {domain} gentest".encode()).digest()
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        want = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        assert pem == want
        loaded = serialization.load_pem_private_key(pem, None)
        assert isinstance(loaded, ed25519.Ed25519PrivateKey)
        key.public_key().verify(loaded.sign(b"m"), b"m")


@pytest.mark.parametrize("size", [0, 20, 57, 300, 5000])
def test_report_message_is_what_the_email_package_writes(size):
    """gentestdata writes the host report's mail itself (start-up): the bytes of the
    EmailMessage it was built with before, but for the boundary (random there, fixed here)."""
    import gzip
    import random
    import re
    from email.message import EmailMessage

    from moxcli.datatools.gentest import HOSTNAME, REPORT_BOUNDARY, _report_message

    attachment = gzip.compress(random.Random(size).randbytes(size), mtime=0)
    msg = EmailMessage()
    msg["From"] = "<tlsrpt-noreply@remote.example>"
    msg["To"] = f"<tlsreports@{HOSTNAME}>"
    msg["Subject"] = f"Report Domain: {HOSTNAME} Submitter: remote.example Report-ID: <2026-host-report-1>"
    msg["TLS-Report-Domain"] = HOSTNAME
    msg["TLS-Report-Submitter"] = "remote.example"
    msg.set_content("A TLS report about the MX host, see the attachment.")
    msg.add_attachment(
        attachment, maintype="application", subtype="tlsrpt+gzip", filename="remote.example!mail.mox.example.json.gz"
    )
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    want = msg.as_bytes().replace(b"\n", b"\r\n")
    want = re.sub(rb"={15}\d+==", REPORT_BOUNDARY.encode(), want)
    assert _report_message(attachment) == want


def test_more_messages(tmp_path):
    res = generate(tmp_path / "big", messages=3000, now=NOW)
    assert res.counts["message"] == 3008
    v = verify_data(tmp_path / "big")
    assert v.ok, v.problems[:3]
    assert v.counts["message_files"] == 3008


def test_cli(runner, tmp_path):
    r = runner.invoke(cli, ["gentestdata", "--json", "--messages", "10", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"data_dir", "config_file", "counts", "seconds"}
    assert doc["counts"]["message"] == 18
    r = runner.invoke(cli, ["gentestdata", str(tmp_path / "g")])
    assert r.exit_code == 2 and "exists and is not an empty directory" in r.stderr
    r = runner.invoke(cli, ["gentestdata", str(tmp_path / "h")])
    assert r.exit_code == 0 and "message: 8" in r.stdout


@pytest.mark.lab
def test_send_tlsreports_dry_run_in_the_lab(lab, tmp_path, runner):
    """The README's first command works on generated data (DNS and trust from the lab)."""
    from conftest import lab_config_text

    extra = lab_config_text(lab).split("\n", 1)[1]  # the lab's [dns], [tls], [network]
    data = tmp_path / "data"
    generate(data, extra_config=extra)
    assert verify_data(data).ok
    r = runner.invoke(cli, ["--data", str(data), "send-tlsreports", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "# recipient-domain report for sts.test" in r.stdout and "to tlsrpt@reports.test" in r.stdout
    assert "# host report for mx.sts.test" in r.stdout
    assert "4 report(s) would be queued" in r.output


def _kill_trials(tmp_path: Path, trials: int) -> None:
    """SIGKILL `moxcli gentestdata` at random points: DIR is then absent or complete (verifydata
    passes), never half made; the only other leftover is the hidden work directory beside it,
    and a new run into DIR succeeds."""
    import os
    import random
    import signal
    import sys
    import time

    moxcli = str(Path(sys.executable).parent / "moxcli")
    rng = random.Random(7)
    for i in range(trials):
        parent = tmp_path / f"t{i}"
        parent.mkdir()
        target = parent / "data"
        p = subprocess.Popen([moxcli, "gentestdata", "--messages", "3000", str(target)], stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.0))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        leftovers = sorted(x.name for x in parent.iterdir() if x.name != "data")
        assert set(leftovers) <= {f".data.gentestdata-{p.pid}"}, leftovers
        if target.exists():
            assert verify_data(target).problems == []
        else:
            r = subprocess.run([moxcli, "gentestdata", str(target)], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            assert verify_data(target).problems == []


def test_killed_gentestdata_leaves_no_half_made_data_dir(tmp_path):
    _kill_trials(tmp_path, 3)


@pytest.mark.slow
def test_killed_gentestdata_leaves_no_half_made_data_dir_many(tmp_path):
    _kill_trials(tmp_path, 30)

"""`reports import --imap` against the lab's Dovecot (implicit TLS and STARTTLS, lab CA): a
mailbox of a few hundred report mails with a broken one, a duplicate and a non-report mail;
--archive-folder moves what was imported, --mark-seen flags it, the rest stays."""

from __future__ import annotations

import imaplib
import json
import ssl

import pytest
from conftest import lab_config_text
from helpers import reportmail as rm

from moxcli.cli import cli

REPORTS = 240


def _connect(lab):
    host, port = lab["LAB_IMAPS"].split(":")
    conn = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=lab["LAB_CA"]))
    with open(lab["LAB_IMAP_PASSWORD_FILE"]) as f:
        conn.login(lab["LAB_IMAP_USER"], f.read().strip())
    return conn


def _reset(conn, mails):
    """INBOX holds exactly ``mails``; no Archive folder."""
    conn.delete("Archive")
    typ, data = conn.select("INBOX")
    if int(data[0]):
        conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    for m in mails:
        typ, _ = conn.append("INBOX", None, None, m)
        assert typ == "OK"


def _count(lab, mailbox):
    """MESSAGES and UNSEEN of a mailbox, seen from a fresh session."""
    conn = _connect(lab)
    try:
        typ, data = conn.status(mailbox, "(MESSAGES UNSEEN)")
    finally:
        conn.logout()
    assert typ == "OK", data
    words = data[0].decode().split("(")[1].rstrip(")").split()
    return dict(zip(words[::2], map(int, words[1::2]), strict=True))


@pytest.fixture
def imap_data(lab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    config = lab_config_text(lab, f'[imap]\npassword_file = "{lab["LAB_IMAP_PASSWORD_FILE"]}"\n')
    (data / "moxcli.toml").write_text(config)
    return data


def _run(runner, data, *args):
    return runner.invoke(cli, ["--data", str(data), "reports", "import", *args])


def test_imaps_import_archive_then_starttls(lab, runner, imap_data):
    mails = rm.mailbox(REPORTS)
    mails[10:10] = [rm.broken_tls_mail(1000), rm.plain_mail(1), mails[3]]  # broken, not a report, duplicate
    conn = _connect(lab)
    try:
        _reset(conn, mails)
        user = lab["LAB_IMAP_USER"]
        url = f"imaps://{user}@{lab['LAB_IMAPS']}/INBOX"
        r = _run(runner, imap_data, "--imap", url, "--archive-folder", "Archive", "--json")
        assert r.exit_code == 1, r.output
        out = [json.loads(line) for line in r.stdout.splitlines()]
        msgs, summary = out[:-1], out[-1]
        assert len(msgs) == REPORTS + 3
        assert [m["outcome"] for m in msgs[10:13]] == ["rejected", "not-a-report", "duplicate"]
        uid = int(msgs[0]["source"].rpartition(";UID=")[2])  # UIDs go on from earlier runs
        assert msgs[10]["source"] == f"imaps://{user}@{lab['LAB_IMAPS']}/INBOX;UID={uid + 10}"
        assert "invalid gzip data" in msgs[10]["reason"] and msgs[10]["reason_code"] == "invalid-report"
        assert msgs[12]["id"] == msgs[3]["id"] and msgs[11]["reason_code"] is None
        assert summary["imported"] == REPORTS and summary["moved"] == REPORTS + 1 and summary["flagged"] == 0
        assert summary["imported_by_kind"] == {"tls": REPORTS // 2, "dmarc": REPORTS // 2}
        assert _count(lab, "INBOX") == {"MESSAGES": 2, "UNSEEN": 2}
        assert _count(lab, "Archive")["MESSAGES"] == REPORTS + 1

        # STARTTLS; what is left is the broken and the non-report mail: nothing moved or flagged.
        url = f"imap://{user}@{lab['LAB_IMAP']}/INBOX"
        r = _run(runner, imap_data, "--imap", url, "--archive-folder", "Archive", "--mark-seen")
        assert r.exit_code == 1
        assert r.stderr.endswith(
            "2 message(s): 0 imported, 0 duplicate, 1 not a report, 1 rejected, 0 moved, 0 flagged\n"
        )
        assert _count(lab, "INBOX") == {"MESSAGES": 2, "UNSEEN": 2}

        # A duplicate arriving again and a new report are flagged \Seen and stay in INBOX
        # without --archive-folder; the broken and the non-report mail stay unseen.
        conn.append("INBOX", None, None, mails[0])
        conn.append("INBOX", None, None, rm.tls_mail("google", 5000))
        r = _run(runner, imap_data, "--imap", url, "--mark-seen")
        assert r.stderr.endswith(
            "4 message(s): 1 imported, 1 duplicate, 1 not a report, 1 rejected, 0 moved, 2 flagged\n"
        )
        assert _count(lab, "INBOX") == {"MESSAGES": 4, "UNSEEN": 2}
    finally:
        conn.logout()


def test_imap_password_from_environment(lab, runner, imap_data, monkeypatch):
    """[imap] password_env: the login with the variable's password succeeds (the run then stops
    at the missing folder, exit 2, not at the login); an unset variable is a usage error."""
    with open(lab["LAB_IMAP_PASSWORD_FILE"]) as f:
        monkeypatch.setenv("MOXCLI_LAB_IMAP_PASSWORD", f.read().strip())
    (imap_data / "moxcli.toml").write_text(lab_config_text(lab, '[imap]\npassword_env = "MOXCLI_LAB_IMAP_PASSWORD"\n'))
    url = f"imaps://{lab['LAB_IMAP_USER']}@{lab['LAB_IMAPS']}/NoSuchFolder"
    r = _run(runner, imap_data, "--imap", url)
    assert r.exit_code == 2 and "cannot select mailbox" in r.stderr and "login failed" not in r.stderr
    monkeypatch.delenv("MOXCLI_LAB_IMAP_PASSWORD")
    r = _run(runner, imap_data, "--imap", url)
    assert r.exit_code == 2 and "MOXCLI_LAB_IMAP_PASSWORD" in r.stderr and "Traceback" not in r.output


def test_imap_errors(lab, runner, imap_data, tmp_path):
    user = lab["LAB_IMAP_USER"]
    url = f"imaps://{user}@{lab['LAB_IMAPS']}/INBOX"
    r = _run(runner, imap_data, "--imap", url.replace("/INBOX", "/NoSuchFolder"))
    assert r.exit_code == 2 and "cannot select mailbox" in r.stderr
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    config = lab_config_text(lab, f'[imap]\npassword_file = "{wrong}"\n')
    (imap_data / "moxcli.toml").write_text(config)
    r = _run(runner, imap_data, "--imap", url)
    assert r.exit_code == 2 and "login failed" in r.stderr and "Traceback" not in r.output
    # Without the lab CA in [tls] ca_files the server's certificate is not trusted.
    no_ca = f'[imap]\npassword_file = "{lab["LAB_IMAP_PASSWORD_FILE"]}"\n'
    (imap_data / "moxcli.toml").write_text(no_ca)
    r = _run(runner, imap_data, "--imap", url)
    assert r.exit_code == 3 and "TLS certificate not trusted" in r.stderr
    r = _run(runner, imap_data, "--imap", f"imap://{user}@{lab['LAB_IMAP']}/INBOX")
    assert r.exit_code == 3 and "TLS certificate not trusted" in r.stderr


def test_imap_transcript_at_debug(lab, imap_data):
    """--log-level debug: the IMAP dialogue as C:/S: lines, the password masked, no bodies."""
    import subprocess
    import sys

    conn = _connect(lab)
    try:
        _reset(conn, [rm.plain_mail(7)])
    finally:
        conn.logout()
    url = f"imap://{lab['LAB_IMAP_USER']}@{lab['LAB_IMAP']}/INBOX"
    args = ["--data", str(imap_data), "--log-level", "debug", "reports", "import", "--imap", url]
    r = subprocess.run(
        [sys.executable, "-m", "moxcli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    err = r.stderr
    with open(lab["LAB_IMAP_PASSWORD_FILE"]) as f:
        secret = f.read().strip()
    assert "pkg=imap" in err and 'm="S: * OK' in err and ' STARTTLS"' in err
    assert ' LOGIN ***"' in err and secret not in err
    assert " UID FETCH " in err and " BODY[]<0> {" in err  # the literal's size, not its bytes
    assert "Subject:" not in err

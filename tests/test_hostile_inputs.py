"""Hostile local inputs: FIFOs, devices and directories refused by name; caps; config values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moxcli.config import parse_config
from moxcli.errors import ConfigError, StoreError, UsageError
from moxcli.inputs import open_regular, read_regular
from moxcli.mail.names import MailboxNameError, check_mailbox_name
from moxcli.store import Store
from moxcli.store.mail import ensure_account, ensure_mailbox, get_mailbox

MOXCLI = str(Path(sys.executable).parent / "moxcli")


@pytest.fixture
def fifo(tmp_path) -> Path:
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize(
    ("which", "kind"), [("fifo", "a FIFO"), ("dir", "a directory"), ("/dev/zero", "a character device")]
)
def test_open_regular_refuses_by_name(fifo, tmp_path, which, kind):
    path = {"fifo": fifo, "dir": tmp_path}.get(which, Path(which))
    with pytest.raises(UsageError, match=f"^{path}: is {kind}, not a regular file$"):
        open_regular(path)


def test_read_regular_cap(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 11)
    assert read_regular(f, 11) == b"x" * 11
    with pytest.raises(ConfigError, match="config larger than 10 bytes"):
        read_regular(f, 10, "config", too_large=ConfigError)
    link = tmp_path / "link"
    link.symlink_to(f)
    assert read_regular(link, 100) == b"x" * 11


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MOXCLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("source", ["fifo", "/dev/zero", "dir"])
def test_config_that_is_no_file_is_exit_2(fifo, tmp_path, source):
    path = {"fifo": str(fifo), "dir": str(tmp_path)}.get(source, source)
    r = _run("--data", str(tmp_path / "d"), "--config", path, "dns", "records")
    assert r.returncode == 2, r.stderr
    if source == "dir":  # click's own check of the option, before moxcli reads anything
        assert f"File '{path}' is a directory" in r.stderr
    else:
        assert r.stderr.count("\n") == 1 and "not a regular file" in r.stderr


def _data_with_key(tmp_path: Path, key: str) -> Path:
    d = tmp_path / "d"
    d.mkdir()
    (d / "moxcli.toml").write_text(
        f'hostname = "mail.example.org"\n[domains."example.org".dkim.selectors.s1]\nprivate_key_file = "{key}"\n'
    )
    return d


@pytest.mark.parametrize("key", ["/dev/zero", "fifo"])
def test_dkim_key_that_is_no_file_is_exit_2(fifo, tmp_path, key):
    d = _data_with_key(tmp_path, str(fifo) if key == "fifo" else key)
    r = _run("--data", str(d), "dns", "records")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "not a regular file" in r.stderr


def test_report_imports_refuse_fifos(fifo, tmp_path):
    for cmd in (["tlsreports", "import"], ["dmarcreports", "import"]):
        r = _run("--data", str(tmp_path / "d"), *cmd, str(fifo))
        assert r.returncode == 2, (cmd, r.stderr)
        assert "is a FIFO, not a regular file" in r.stderr


@pytest.mark.parametrize(("source", "kind"), [("fifo", "a FIFO"), ("/dev/zero", "a character device")])
def test_import_mbox_refuses_a_fifo_or_device_by_name(fifo, tmp_path, source, kind):
    """A FIFO would block the import forever and /dev/zero never end: refused before reading."""
    path = str(fifo) if source == "fifo" else source
    r = _run("--data", str(tmp_path / "d"), "import", "mbox", "acc", "Inbox", path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"moxcli: {path}: is {kind}, not a regular file"]


def test_queue_add_and_policy_file_refuse_fifos(fifo, tmp_path):
    r = _run(
        "--data", str(tmp_path / "d"), "queue", "add", "--from", "a@example.org", "--to", "b@example.net", str(fifo)
    )
    assert r.returncode == 2 and "is a FIFO" in r.stderr, r.stderr
    r = _run("fetch", "mtasts", "--policy-file", str(fifo))
    assert r.returncode == 2 and "is a FIFO" in r.stderr, r.stderr


def _config(body: str) -> None:
    parse_config(body, Path("/x/moxcli.toml"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[dns]\ntimeout = 1e308", "dns.timeout: must be a number of seconds"),
        ("[dns]\ntimeout = nan", "dns.timeout: must be a number of seconds"),
        ("[dns]\ntimeout = inf", "dns.timeout: must be a number of seconds"),
        ("x = " + "[" * 2000 + "]" * 2000, "nested too deeply"),
        ('[postmaster]\naccount = "../../etc"', "postmaster.account: invalid account name"),
        ('[postmaster]\naccount = "a/b"', "postmaster.account: invalid account name"),
        ('[postmaster]\nmailbox = "a\\u0007b"', "postmaster.mailbox: invalid mailbox name"),
        ('[host_tlsrpt]\nlocalpart = "tls\\r\\nreports"', "host_tlsrpt.localpart: invalid localpart"),
        (
            '[domains."example.org".tlsrpt]\nlocalpart = "a b"\naccount = "x"\nmailbox = "y"',
            "domains.example.org.tlsrpt.localpart: invalid localpart",
        ),
    ],
)
def test_config_values_validated(body, message):
    with pytest.raises(ConfigError, match=message) as exc:
        _config(body)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 400


def test_config_names_are_nfc():
    nfd = "e\u0301"
    cfg = parse_config(f'[postmaster]\naccount = "{nfd}"\nmailbox = "M{nfd}"\n', Path("/x/moxcli.toml"))
    assert cfg.postmaster.account == "\u00e9" and cfg.postmaster.mailbox == "M\u00e9"


def test_long_echoed_input_is_clipped():
    with pytest.raises(ConfigError) as exc:
        _config(f'[postmaster]\naccount = "{"/" * 100_000}"')
    assert len(str(exc.value)) < 400


def test_mailbox_name_limits():
    with pytest.raises(MailboxNameError, match="longer than"):
        check_mailbox_name("x" * 2000)
    with pytest.raises(MailboxNameError, match="levels"):
        check_mailbox_name("/".join(["a"] * 100))
    with pytest.raises(MailboxNameError):
        check_mailbox_name("a\udc80b")


def test_deep_mailbox_created_without_recursion(data_dir, monkeypatch):
    monkeypatch.setattr(sys, "getrecursionlimit", sys.getrecursionlimit)
    deep = "/".join(["a"] * 60)
    with Store.open(data_dir) as st:
        st.update(lambda tx: ensure_account(tx, "u"))
        st.update(lambda tx: ensure_mailbox(tx, "u", deep))
        with st.read() as tx:
            assert get_mailbox(tx, "u", "a/a/a") is not None and get_mailbox(tx, "u", deep) is not None


def test_non_nfc_account_refused_by_the_store(data_dir):
    with Store.open(data_dir) as st, pytest.raises(StoreError, match="not NFC"):
        st.update(lambda tx: ensure_account(tx, "e\u0301"))


@pytest.mark.parametrize(
    "address",
    [
        "mailto:\r\nBcc: victim@example.net",
        "mailto:a@example.org\r\nBcc: x@example.net",
        "mailto:%0D%0ABcc:x@example.net",
    ],
)
def test_dmarc_record_refuses_control_characters_in_addresses(runner, data_dir, address):
    import json

    from helpers.dmarc import hour, vector_eval

    from moxcli.cli import cli

    line = json.dumps(vector_eval(hour(), addresses=[address])) + "\n"
    r = runner.invoke(cli, ["--data", str(data_dir), "dmarc", "record", "-"], input=line)
    assert r.exit_code == 2, r.output
    assert "line 1: addresses[0]" in r.stderr and r.stderr.count("\n") == 1, r.stderr


_TLS = {
    "organization-name": "Org",
    "date-range": {"start-datetime": "2026-01-01T00:00:00Z", "end-datetime": "2026-01-01T23:59:59Z"},
    "contact-info": "tlsrpt@org.example",
    "report-id": "r1",
    "policies": [
        {
            "policy": {"policy-type": "sts", "policy-domain": "example.org"},
            "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0},
        }
    ],
}


def _tls(**changes) -> bytes:
    import copy
    import json

    r = copy.deepcopy(_TLS)
    summary = r["policies"][0]["summary"]
    for k, v in changes.items():
        if k == "success":
            summary["total-successful-session-count"] = v
        elif k == "end":
            r["date-range"]["end-datetime"] = v
        else:
            r[k] = v
    text = json.dumps(r)
    return text.replace('"__RAW__"', changes.get("raw", '"__RAW__"')).encode()


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (_tls(success=10**400), "integer of 401 digits"),
        (_tls(success=2**64), "out of range"),
        (_tls(success=-1), "out of range"),
        (_tls(success=1e308), "expected an integer"),
        (_tls(end="2025-12-31T00:00:00Z"), "end-datetime .* is before start-datetime"),
        (_tls(**{"report-id": "a\udc80b"}), "lone surrogate"),
        (_tls(success="__RAW__", raw="9" * 5000), "integer of 5000 digits"),
    ],
    ids=["10^400", "2^64", "negative", "1e308", "reversed range", "surrogate", "5000 digits"],
)
def test_hostile_tls_report_numbers_rejected(report, message):
    from moxcli.tlsrpt.report import ReportError, parse_report

    with pytest.raises(ReportError, match=message) as exc:
        parse_report(report)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def _dmarc(count: str = "1", begin: str = "1700000000", end: str = "1700086399") -> bytes:
    return (
        "<feedback><report_metadata><org_name>o</org_name><email>a@o.example</email><report_id>1</report_id>"
        f"<date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>"
        "<policy_published><domain>example.org</domain><p>none</p></policy_published>"
        f"<record><row><source_ip>192.0.2.1</source_ip><count>{count}</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
        "<identifiers><header_from>example.org</header_from></identifiers></record></feedback>"
    ).encode()


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (_dmarc(count="1" + "0" * 400), "not a number"),
        (_dmarc(count=str(2**64)), "out of range"),
        (_dmarc(count="9" * 5000), "not a number"),
        (_dmarc(count="-5"), "out of range"),
        (_dmarc(count="1e308"), "not a number"),
        (_dmarc(begin="1700086399", end="1700000000"), "end 1700000000 is before begin 1700086399"),
    ],
    ids=["10^400", "2^64", "5000 digits", "negative", "1e308", "reversed range"],
)
def test_hostile_dmarc_report_numbers_rejected(report, message):
    from moxcli.dmarc.parse import ReportError, parse_report_xml

    with pytest.raises(ReportError, match=message) as exc:
        parse_report_xml(report)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_good_reports_still_parse():
    from moxcli.dmarc.parse import parse_report_xml
    from moxcli.tlsrpt.report import parse_report

    assert parse_report(_tls())[0].policies[0].success == 1
    assert parse_report_xml(_dmarc()).records[0].count == 1


def test_error_lines_are_capped(tmp_path):
    """An echoed 100,000-character input makes a line of at most MAX_ERROR_LINE characters."""
    from moxcli.cli import MAX_ERROR_LINE

    r = _run("--data", str(tmp_path / "d"), "check", "tlsrpt", "x" * 100_000)
    assert r.returncode == 2, r.stderr[:200]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("moxcli: ") and len(lines[0]) <= MAX_ERROR_LINE + 10
    assert lines[0].endswith("characters, cut)")

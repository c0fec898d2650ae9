"""Real TLS and DMARC report messages, made once per test session through the real path.

A fresh data dir (`moxcli init`), its config pointed at the lab; `queue add` + `queue run`
deliver a message to every lab domain kind (DANE ok/mismatch/bogus, DANE-EE with a wrong
name or an expired certificate, insecure, bogus zone, MTA-STS ok and its fetch errors, no
STARTTLS, wrong-name and expired certificates); `send-tlsreports --deliver-now` sends the TLS
reports of today's results. `dmarc record` stores evaluations with every field combination and
`send-dmarcreports --deliver-now` sends them, once as RFC 7489 and once as RFC 9990; sts.test's
`!10k` limit makes one of them an error report. Everything is read back from the lab maildir,
as Postfix stored it. Helpers only: the tests are in test_report_validators.py.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from moxcli.cli import cli

# Lab domains that give delivery a TLS result worth reporting (tests/lab/README.md).
DELIVERY_DOMAINS = (
    "dane-ok.test",  # DANE-EE match
    "dane-ta.test",  # DANE-TA match
    "dane-bad.test",  # DANE mismatch
    "dane-bogus.test",  # bogus TLSA
    "dane-ee-wrongname.test",  # DANE-EE ignores the name, PKIX fails
    "dane-ee-expired.test",  # DANE-EE ignores the date, PKIX fails
    "insecure.test",  # TLSA without DNSSEC: ignored
    "bogus.test",  # the whole zone bogus
    "sts.test",  # MTA-STS enforce, good
    "sts-404.test",  # MTA-STS fetch errors
    "sts-redirect.test",
    "sts-big.test",
    "sts-ctype.test",
    "sts-badcert.test",
    "notls.test",  # no STARTTLS
    "wrongname.test",  # bad certificates
    "expired.test",
)


@dataclass
class Generated:
    """What the session produced; messages are the bytes in the lab maildir."""

    data: Path
    config: Path
    domain: str
    hostname: str
    records: list[dict[str, str]]
    queue_run: list[dict[str, Any]]
    tls_run: list[dict[str, Any]]
    dmarc_runs: dict[str, dict[str, Any]]
    tls_messages: list[bytes] = field(default_factory=list)
    dmarc_messages: dict[str, list[bytes]] = field(default_factory=dict)
    error_reports: list[bytes] = field(default_factory=list)

    def dkim_txt(self) -> dict[str, bytes]:
        """DKIM key records from `moxcli dns records --json`: name. -> TXT value."""
        out = {}
        for r in self.records:
            if r["type"] == "TXT" and "._domainkey." in r["name"]:
                # zone-file form: one or more quoted strings
                out[r["name"].rstrip(".") + "."] = "".join(re.findall(r'"([^"]*)"', r["value"])).encode()
        return out


def _invoke(runner: CliRunner, args: list[str], input: str | None = None) -> str:
    r = runner.invoke(cli, args, input=input)
    assert r.exit_code == 0, f"moxcli {' '.join(args[:6])}: exit {r.exit_code}\n{r.stderr}\n{r.output[-2000:]}"
    return r.stdout


def _lab_config(init_text: str, lab: dict[str, str], extra_top: str) -> str:
    """`moxcli init`'s config with DNS, trust and ports of the lab."""
    text = re.sub(r"(?ms)^\[dns\]\n.*?(?=^\[)", "", init_text)
    head, sep, rest = text.partition("\n\n")
    lab_tables = (
        f'[dns]\nresolvers = ["{lab["LAB_DNS"]}"]\ntimeout = 5\n\n'
        f'[tls]\nca_files = ["{lab["LAB_CA"]}"]\n\n'
        f"[network]\nsmtp_port = {lab['LAB_SMTP_PORT']}\nhttps_port = {lab['LAB_HTTPS_PORT']}\n\n"
    )
    return head + "\n" + extra_top + sep + lab_tables + rest


def _maildir_messages(maildir: str, marker: bytes, want: int, timeout: float = 20.0) -> list[bytes]:
    """Messages containing ``marker`` (Postfix delivers asynchronously: poll until ``want``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        md = mailbox.Maildir(maildir, factory=None, create=False)
        for key in md.keys():  # noqa: SIM118 (keys() is a snapshot while Postfix adds files)
            try:
                raw = md.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue
            # Postfix stores lines with LF endings; compare in that form, return the CRLF form
            if marker in raw.replace(b"\r\n", b"\n"):
                found.append(raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n"))
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _eval(domain: str, evaluated: str, rua: str, **changes: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "policy_domain": domain,
        "evaluated": evaluated,
        "interval_hours": 1,
        "addresses": [rua],
        "policy_published": {
            "domain": domain,
            "p": "reject",
            "sp": "quarantine",
            "pct": 100,
            "adkim": "r",
            "aspf": "s",
        },
        "source_ip": "192.0.2.10",
        "disposition": "none",
        "aligned_dkim_pass": True,
        "aligned_spf_pass": True,
        "envelope_to": "moxcli.test",
        "envelope_from": domain,
        "header_from": domain,
        "dkim_results": [{"domain": domain, "selector": "s1", "result": "pass"}],
        "spf_results": [{"domain": domain, "scope": "mfrom", "result": "pass"}],
    }
    ev.update(changes)
    return ev


def dmarc_evaluations(evaluated: str) -> list[dict[str, Any]]:
    """Every field combination for reports.test, and enough distinct rows for sts.test that its
    report exceeds the `!10k` limit of its rua (an error report, RFC 7489 §7.2.2)."""
    d, rua = "reports.test", "mailto:dmarc@reports.test"
    fail = {"aligned_dkim_pass": False, "aligned_spf_pass": False}
    evs = [
        _eval(d, evaluated, rua),
        _eval(d, evaluated, rua),  # the same row twice: count 2
        # several DKIM results: pass, fail, one without selector, a third-party signature
        _eval(
            d,
            evaluated,
            rua,
            source_ip="198.51.100.7",
            dkim_results=[
                {"domain": d, "selector": "s1", "result": "pass"},
                {"domain": d, "selector": "s2", "result": "fail"},
                {"domain": d, "result": "temperror"},
                {"domain": "sub.reports.test", "selector": "x", "result": "neutral"},
            ],
        ),
        # IPv6 source, no SPF result: none for the MAIL FROM domain
        _eval(
            d, evaluated, rua, source_ip="2001:db8::25", spf_results=[], dkim_results=[], **fail, disposition="reject"
        ),
        # null reverse-path: SPF (none) for the HELO domain
        _eval(
            d,
            evaluated,
            rua,
            source_ip="2001:db8:0:1::7",
            envelope_from="",
            helo_domain="mail.reports.test",
            spf_results=[],
            envelope_to="",
        ),
        # IPv4-mapped IPv6, SPF softfail on HELO scope, no DKIM
        _eval(
            d,
            evaluated,
            rua,
            source_ip="::ffff:203.0.113.9",
            dkim_results=[],
            spf_results=[{"domain": "helo.example", "scope": "helo", "result": "softfail"}],
        ),
        # overrides: every RFC 7489 type, with and without comment
        _eval(
            d,
            evaluated,
            rua,
            source_ip="203.0.113.20",
            disposition="quarantine",
            **fail,
            override_reasons=[{"type": "forwarded", "comment": "via list.example"}, {"type": "sampled_out"}],
        ),
        _eval(
            d,
            evaluated,
            rua,
            source_ip="203.0.113.21",
            **fail,
            override_reasons=[
                {"type": "trusted_forwarder"},
                {"type": "mailing_list", "comment": "l@x.example"},
                {"type": "local_policy", "comment": "allow-list"},
                {"type": "other", "comment": "x"},
            ],
        ),
        # an optional row (a report address): included, never triggers a report on its own
        _eval(d, evaluated, rua, source_ip="203.0.113.30", optional=True),
    ]
    rnd = random.Random(15)
    for _ in range(500):
        ip = f"2001:db8:{rnd.getrandbits(16):x}:{rnd.getrandbits(16):x}::{rnd.getrandbits(16):x}"
        evs.append(_eval("sts.test", evaluated, "mailto:dmarc@reports.test!10k", source_ip=ip))
    return evs


def generate(lab: dict[str, str], base: Path) -> Generated:
    runner = CliRunner()
    tag = "v" + secrets.token_hex(4)
    domain = f"{tag}.moxcli.test"
    hostname = f"mail.{domain}"
    data = base / "data"
    cfg = data / "moxcli.toml"
    common = ["--data", str(data), "--config", str(cfg)]
    _invoke(runner, [*common, "init", domain, "--hostname", hostname])
    init_text = cfg.read_text()
    cfg.write_text(_lab_config(init_text, lab, "outgoing_tls_reports_for_all_success = true\n"))
    cfg9990 = data / "moxcli-rfc9990.toml"
    cfg9990.write_text(_lab_config(init_text, lab, 'dmarc_report_format = "rfc9990"\n'))
    records = json.loads(_invoke(runner, [*common, "dns", "records", "--json"]))

    # Deliveries: one message to every lab domain kind; their TLS results are today's.
    msg = base / "msg.eml"
    msg.write_bytes(
        f"From: <postmaster@{domain}>\r\nTo: <x@example.test>\r\nSubject: lab delivery\r\n"
        f"Message-Id: <{tag}@{hostname}>\r\n\r\nhello\r\n".encode()
    )
    args = [*common, "queue", "add", "--from", f"postmaster@{domain}", "--max-attempts", "1"]
    for d in DELIVERY_DOMAINS:
        args += ["--to", f"validators@{d}"]
    _invoke(runner, [*args, str(msg)])
    queue_run = [json.loads(line) for line in _invoke(runner, [*common, "queue", "run", "--json"]).splitlines()]
    day = datetime.now(UTC).strftime("%Y%m%d")
    tls_run = [
        json.loads(line)
        for line in _invoke(runner, [*common, "send-tlsreports", "--day", day, "--deliver-now", "--json"]).splitlines()
    ]
    n_tls = sum(len(r.get("recipients", [])) for r in tls_run[:-1])

    # DMARC: the period that ended at the last whole hour; evaluations half an hour before it.
    end = int(time.time()) // 3600 * 3600
    evaluated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 1800))
    lines = "\n".join(json.dumps(e) for e in dmarc_evaluations(evaluated)) + "\n"
    dmarc_runs = {}
    for fmt, config in (("rfc7489", cfg), ("rfc9990", cfg9990)):
        dargs = ["--data", str(data), "--config", str(config)]
        _invoke(runner, [*dargs, "dmarc", "record", "-"], input=lines)
        dmarc_runs[fmt] = json.loads(_invoke(runner, [*dargs, "send-dmarcreports", "--deliver-now", "--json"]))

    g = Generated(data, cfg, domain, hostname, records, queue_run, tls_run, dmarc_runs)
    maildir = lab["LAB_MAILDIR"]
    g.tls_messages = _maildir_messages(maildir, f"TLS-Report-Submitter: {domain}\n".encode(), n_tls)
    # DMARC reports and error reports come from postmaster@<hostname>.
    n_dmarc = sum(
        len(d["queued_to"]) + len(d["error_report_to"]) for run in dmarc_runs.values() for d in run["domains"]
    )
    ids = {d["report_id"]: fmt for fmt, run in dmarc_runs.items() for d in run["domains"] if d["status"] == "queued"}
    g.dmarc_messages = {"rfc7489": [], "rfc9990": []}
    for raw in _maildir_messages(maildir, f"From: <postmaster@{hostname}>\n".encode(), n_dmarc):
        m = parse(raw)
        subject = " ".join(str(m["Subject"]).split())
        if subject.startswith("DMARC aggregate reporting error report"):
            g.error_reports.append(raw)
        else:
            g.dmarc_messages[ids[subject.rsplit("Report-ID: ", 1)[1].strip("<>")]].append(raw)
    return g


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)

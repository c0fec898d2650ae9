"""gentestdata: a deterministic data directory with every record type (docs/behaviour-notes.md §7.3).

Everything is written through the feature modules' own functions (accounts and messages by
moxcli.mail, queue by moxcli.delivery, TLS results as delivery records them, MTA-STS rows by
the policy cache, DMARC data by moxcli.dmarc, ...), so the records are exactly what the
features read, and the upgrade fixtures under testdata/upgrade/ are real data of their
version. Content depends only on the seed and on the UTC day of ``now`` (TLS results are for
the two days before it, so that `send-tlsreports --dry-run` has something to report).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from moxcli import __version__, osdep
from moxcli.datatools import VERSION_FILE
from moxcli.errors import UsageError
from moxcli.store import Store, Txn
from moxcli.store.files import ensure_dir, message_file, private_dir, write_file
from moxcli.values import dataclass, field

DOMAIN = "mox.example"
IDNA_DOMAIN = "☺.example"  # xn--74h.example
HOSTNAME = "mail.mox.example"
SELECTOR = "gentest"
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Junk": "\\Junk", "Trash": "\\Trash", "Archive": "\\Archive"}
BATCH = 5000  # messages per write transaction when scaling up
DAY = 86400.0


@dataclass
class GenResult:
    data_dir: Path
    config_file: Path
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "config_file": str(self.config_file),
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }


def generate(
    data_dir: Path, messages: int = 0, seed: int = 1, now: float | None = None, extra_config: str = ""
) -> GenResult:
    """Create ``data_dir`` (new or empty) with test data; ``messages`` extra for benchmarks.

    ``extra_config`` is TOML appended to the config (e.g. a ``[dns]`` table pointing at a
    test resolver).
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise UsageError(f"{data_dir}: exists and is not an empty directory")
    if messages < 0:
        raise UsageError(f"--messages must not be negative, got {messages}")
    start = time.monotonic()
    now = time.time() if now is None else now
    # Built in a hidden sibling and renamed into place when complete: a kill at any point
    # leaves DIR as it was (absent or empty), never a half-made data dir verifydata rejects;
    # the store and files hold no absolute path, so the rename moves nothing but the name.
    parent = data_dir.parent
    work = parent / f".{data_dir.name}.gentestdata-{os.getpid()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        res = _generate_into(work, messages, seed, now, extra_config)
        if data_dir.exists():
            data_dir.rmdir()  # empty (checked above); a directory cannot be renamed over one everywhere
        os.rename(work, data_dir)
        osdep.sync_dir(parent)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise OSError(exc.errno, exc.strerror, str(data_dir)) from None  # the name the user gave
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    res.data_dir, res.config_file = data_dir, data_dir / res.config_file.name
    res.seconds = time.monotonic() - start
    return res


def _generate_into(data_dir: Path, messages: int, seed: int, now: float, extra_config: str = "") -> GenResult:
    today = now - now % DAY
    # Nothing else uses the new directory until it is complete: one sync at the end instead
    # of one per file and commit (osdep.deferred_syncs says why a kill loses nothing).
    with osdep.deferred_syncs(data_dir):
        private_dir(data_dir)
        ensure_dir(data_dir, data_dir / "tmp")
        write_file(data_dir / VERSION_FILE, (__version__ + "\n").encode(), root=data_dir)
        config_file = data_dir / "moxcli.toml"
        _write_config(data_dir, config_file, seed, extra_config)
        res = GenResult(data_dir, config_file)

        from moxcli.config import load_config

        config = load_config(config_file, required=True)
        with Store.open(data_dir) as store:
            store.update(lambda tx: _mail(tx, data_dir, today))
            _queue(store, data_dir, today)
            store.update(lambda tx: _tls_results(tx, today))
            _mtasts(store, today)
            store.update(lambda tx: _suppressions(tx, today))
            _dmarc(store, config, data_dir, today)
            _incoming_tls_reports(store, config, data_dir, today)
            if messages:
                _bulk_messages(store, data_dir, messages, seed, today)
            res.counts = {k: v for k, v in store.stat().items() if k not in ("map_size", "last_pgno")}
    return res


# RFC 8410 §7: an Ed25519 private key in PKCS #8 is this DER prefix and the 32-byte key.
_ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def _dkim_key(seed: int, domain: str) -> bytes:
    """An Ed25519 key derived from the seed: the same data dir every time (test data only).

    PEM of the PKCS #8 encoding, byte for byte what the cryptography package writes for it
    (tests/test_gentestdata.py), without importing it (start-up)."""
    import base64

    raw = hashlib.sha256(f"moxcli gentestdata {seed} {domain} {SELECTOR}".encode()).digest()
    der = base64.b64encode(_ED25519_PKCS8_PREFIX + raw)  # 64 characters: one PEM line
    return b"-----BEGIN PRIVATE KEY-----\n" + der + b"\n-----END PRIVATE KEY-----\n"


def _write_config(data_dir: Path, config_file: Path, seed: int, extra: str) -> None:
    from moxcli.domain import parse_domain

    lines = [
        "# moxcli configuration written by `moxcli gentestdata` (test data, deterministic keys).",
        f'hostname = "{HOSTNAME}"',
        "",
        "[postmaster]",
        'account = "postmaster"',
        'mailbox = "Postmaster"',
        "",
        "[host_tlsrpt]",
        'localpart = "tlsreports"',
        'account = "postmaster"',
        'mailbox = "TLSRPT"',
    ]
    for name in (DOMAIN, IDNA_DOMAIN):
        ascii_name = parse_domain(name).ascii
        key = data_dir / "dkim" / ascii_name / f"{SELECTOR}.ed25519.pem"
        write_file(key, _dkim_key(seed, ascii_name), root=data_dir)
        lines += [
            "",
            f'[domains."{ascii_name}".dkim]',
            f'sign = ["{SELECTOR}"]',
            "",
            f'[domains."{ascii_name}".dkim.selectors."{SELECTOR}"]',
            'algorithm = "ed25519"',
            f'private_key_file = "dkim/{ascii_name}/{SELECTOR}.ed25519.pem"',
        ]
        for kind, localpart, mailbox in (("tlsrpt", "tlsreports", "TLSRPT"), ("dmarc", "dmarcreports", "DMARC")):
            lines += [
                "",
                f'[domains."{ascii_name}".{kind}]',
                f'localpart = "{localpart}"',
                'account = "postmaster"',
                f'mailbox = "{mailbox}"',
            ]
    if not re.search(r"^\s*\[dns\]", extra, re.M):
        # Without a resolver of the caller's, DNS answers come from the demo's local zone.
        write_file(data_dir / LOCAL_ZONE_FILE, _local_zone().encode(), root=data_dir)
        lines += [
            "",
            "[dns]",
            "# The demo's DNS data (TLSRPT and MTA-STS records); names below test. and example.",
            "# are answered from it only, so the demo needs no network.",
            f'local_zone = "{LOCAL_ZONE_FILE}"',
        ]
    text = "\n".join(lines) + "\n" + (("\n" + extra.strip() + "\n") if extra.strip() else "")
    write_file(config_file, text.encode(), root=data_dir)


LOCAL_ZONE_FILE = "local-zone.txt"


def _local_zone() -> str:
    """DNS data of the demo's domains: where the TLS results' policy domains want reports.

    `test.` and `example.` (RFC 2606 reserved names) get an SOA, so every name below them is
    answered from this file (NXDOMAIN when absent): the demo works offline.
    """
    from moxcli.domain import parse_domain

    idna = parse_domain(IDNA_DOMAIN).ascii
    soa = "ns.invalid. hostmaster.invalid. 1 3600 600 86400 300"
    return "\n".join(
        [
            "; written by `moxcli gentestdata`: the demo's DNS data ([dns] local_zone in moxcli.toml)",
            "$TTL 300",
            f"test. SOA {soa}",
            f"example. SOA {soa}",
            "; recipient domains the demo delivered to, and where they want TLS reports (RFC 8460 §3)",
            '_smtp._tls.sts.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test"',
            '_mta-sts.sts.test. TXT "v=STSv1; id=20240101T000000"',
            "mx.sts.test. A 127.0.0.1",
            '_smtp._tls.dane-ok.test. TXT "v=TLSRPTv1; '
            'rua=mailto:tls-reports@dane-ok.test,mailto:tlsrpt@bounces.example"',
            '_smtp._tls.mx.dane-ok.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt-host@dane-ok.test"',
            f'_smtp._tls.{idna}. TXT "v=TLSRPTv1; rua=mailto:tls-reports@{idna}"',
            "; the demo's own domain and host",
            f"{DOMAIN}. MX 10 {HOSTNAME}.",
            f'_smtp._tls.{DOMAIN}. TXT "v=TLSRPTv1; rua=mailto:tlsreports@{DOMAIN}"',
            f'_mta-sts.{DOMAIN}. TXT "v=STSv1; id=20261201T000000"',
            f'_smtp._tls.{HOSTNAME}. TXT "v=TLSRPTv1; rua=mailto:tlsreports@{HOSTNAME}"',
            f"{HOSTNAME}. A 127.0.0.1",
            "",
        ]
    )


def _message(sender: str, rcpt: str, subject: str, body: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{hashlib.sha256((sender + rcpt + subject).encode()).hexdigest()[:16]}@{DOMAIN}>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def _mail(tx: Txn, data_dir: Path, today: float) -> None:
    """Accounts (one on the IDNA domain with a UTF-8 localpart), special-use mailboxes, messages."""
    from moxcli.mail.deliver import store_message
    from moxcli.store.mail import ensure_account, ensure_mailbox

    ensure_account(tx, "postmaster", f"postmaster@{DOMAIN}")
    for mb in ("Inbox", "Postmaster", "TLSRPT", "DMARC"):
        ensure_mailbox(tx, "postmaster", mb)
    ensure_account(tx, "test0", f"test0@{DOMAIN}")
    ensure_mailbox(tx, "test0", "Inbox")
    ensure_account(tx, "test1", f"test1@{DOMAIN}")
    ensure_account(tx, "test2", f"☹@{IDNA_DOMAIN}")
    for account in ("test1", "test2"):
        ensure_mailbox(tx, account, "Inbox")
        for name, use in SPECIAL_USE.items():
            ensure_mailbox(tx, account, name, use)
    ensure_mailbox(tx, "test1", "Lists/moxcli")
    t = today - DAY
    store_message(
        tx,
        data_dir,
        "test1",
        "Inbox",
        _message("other@remote.example", f"test1@{DOMAIN}", "test", "the message..."),
        received=t,
    )
    store_message(
        tx,
        data_dir,
        "test1",
        "Inbox",
        _message("other@remote.example", f"test1@{DOMAIN}", "flagged", "important"),
        flags=["\\Seen", "\\Flagged"],
        keywords=["todo"],
        received=t + 60,
    )
    store_message(
        tx,
        data_dir,
        "test1",
        "Lists/moxcli",
        _message("list@lists.example", f"test1@{DOMAIN}", "[moxcli] release", "notes"),
        flags=["\\Seen"],
        received=t + 120,
    )
    store_message(
        tx,
        data_dir,
        "test1",
        "Trash",
        _message("other@remote.example", f"test1@{DOMAIN}", "old", "gone soon"),
        flags=["\\Seen", "\\Deleted"],
        received=t + 180,
    )
    rcpt = f"☹@{IDNA_DOMAIN}"
    store_message(
        tx,
        data_dir,
        "test2",
        "Inbox",
        _message("other@remote.example", rcpt, "test", "the message... ☺"),
        received=t + 240,
    )
    store_message(
        tx,
        data_dir,
        "test2",
        "Sent",
        _message(rcpt, "other@remote.example", "re: test", "reply"),
        flags=["\\Seen", "\\Answered", "$Forwarded"],
        keywords=["sent-by-moxcli"],
        received=t + 300,
    )
    store_message(
        tx,
        data_dir,
        "test2",
        "Junk",
        _message("spam@spam.example", rcpt, "offer", "buy"),
        flags=["$Junk"],
        received=t + 360,
    )
    store_message(
        tx,
        data_dir,
        "test2",
        "Drafts",
        _message(rcpt, "friend@remote.example", "draft", "unfinished"),
        flags=["\\Draft"],
        received=t + 420,
    )


def _queue(store: Store, data_dir: Path, today: float) -> None:
    """Queued messages: one plain (two recipients), one held, one after three failed attempts."""
    from moxcli.delivery import queue as dq
    from moxcli.store import domaintls
    from moxcli.store import queue as qstore

    prefix = f"DKIM-Signature: v=1; a=ed25519-sha256; d={DOMAIN}; s={SELECTOR}; h=from:to:subject; bh=; b=\r\n".encode()
    dq.enqueue(
        store,
        data_dir,
        mail_from=f"test0@{DOMAIN}",
        recipients=["other@remote.example", "second@remote.example"],
        data=_message(f"test0@{DOMAIN}", "other@remote.example", "test", "the message..."),
        prefix=prefix,
        sender_account="test0",
        next_attempt=today + DAY,
    )
    held = dq.enqueue(
        store,
        data_dir,
        mail_from=f"test1@{DOMAIN}",
        recipients=[f"☹@{IDNA_DOMAIN}"],
        data=_message(f"test1@{DOMAIN}", f"☹@{IDNA_DOMAIN}", "held", "on hold"),
        sender_account="test1",
        next_attempt=today + DAY,
    )
    dq.hold(store, held[0])
    retried = dq.enqueue(
        store,
        data_dir,
        mail_from=f"test1@{DOMAIN}",
        recipients=["someone@sts.test"],
        data=_message(f"test1@{DOMAIN}", "someone@sts.test", "retried", "again"),
        prefix=prefix,
        sender_account="test1",
        next_attempt=today,
    )

    def fail(tx: Txn) -> None:
        msg = qstore.get(tx, retried[0])
        assert msg is not None
        msg.attempts = 3
        msg.last_attempt = today - 1800
        msg.next_attempt = today - 1800 + dq.backoff(3)
        msg.last_error = "451 4.7.5 TLS handshake failed: certificate has expired"
        msg.last_code = 451
        msg.last_enhanced = "4.7.5"
        msg.dialed_ips = {"mx.sts.test": ["127.0.0.1"]}
        qstore.put(tx, msg)
        # What earlier deliveries learned about recipient domains (spec §3.7): one over STARTTLS
        # with REQUIRETLS offered, one that was later delivered in plaintext (a downgrade).
        domaintls.record(tx, "sts.test", True, True, "mx.sts.test", today - 2 * DAY)
        domaintls.record(tx, "remote.example", True, False, "mx.remote.example", today - 3 * DAY)
        domaintls.record(tx, "remote.example", False, False, "mx.remote.example", today - DAY)

    store.update(fail)


def _tls_results(tx: Txn, today: float) -> None:
    """TLS results of deliveries on the two previous UTC days, as delivery records them."""
    from moxcli.delivery.tlsresults import AttemptTLS, detail, rows
    from moxcli.tlsrpt import resultsdb as tstore
    from moxcli.tlsrpt.report import make_result, tlsa_policy

    for n, day_start in enumerate((today - 2 * DAY, today - DAY)):
        day = tstore.day_utc(day_start + 3600)
        when = day_start + 3600 * (n + 2)
        # MTA-STS recipient domain: successes, and one failure with a detail.
        sts = AttemptTLS(make_result("sts", "sts.test"), [make_result("no-policy-found", "mx.sts.test")])
        sts.recipient.policy.string = ["version: STSv1", "mode: enforce", "mx: mx.sts.test", "max_age: 86400"]
        sts.recipient.policy.mx_host = ["mx.sts.test"]
        sts.both(sts.hosts[0], 5 + n, 0)
        sts.both(
            sts.hosts[0],
            0,
            1,
            detail("certificate-expired", mx_host="mx.sts.test", remote_ip="127.0.0.1", local_ip="127.0.0.2"),
        )
        tstore.add_results(tx, day, "sts.test", rows(sts, "sts.test", False, False), now=when)
        # DANE host: a tlsa result for the MX host, no-policy-found for the recipient domain.
        dane = AttemptTLS(make_result("no-policy-found", "dane-ok.test"), [])
        host = make_result("tlsa", "mx.dane-ok.test")
        host.policy = tlsa_policy([(3, 1, 1, hashlib.sha256(b"gentest tlsa").digest())], "mx.dane-ok.test")
        dane.hosts.append(host)
        dane.both(host, 3, 0)
        tstore.add_results(tx, day, "dane-ok.test", rows(dane, "dane-ok.test", False, False), now=when)
        # Opportunistic TLS with an untrusted certificate: success with a failure detail.
        plain = AttemptTLS(
            make_result("no-policy-found", IDNA_DOMAIN), [make_result("no-policy-found", f"mx.{IDNA_DOMAIN}")]
        )
        plain.both(
            plain.hosts[0], 2, 0, detail("certificate-not-trusted", mx_host=f"mx.{IDNA_DOMAIN}", remote_ip="127.0.0.3")
        )
        tstore.add_results(tx, day, IDNA_DOMAIN, rows(plain, IDNA_DOMAIN, False, False), now=when)
        # A TLS report's own delivery: recorded, but never a reason to report.
        rep = AttemptTLS(
            make_result("no-policy-found", "reports.test"), [make_result("no-policy-found", "mx.reports.test")]
        )
        rep.both(rep.hosts[0], 1, 0)
        tstore.add_results(tx, day, "reports.test", rows(rep, "reports.test", True, False), now=when)


def _mtasts(store: Store, today: float) -> None:
    """Policy cache rows: enforce, testing, and a backoff row after a failed first fetch."""
    from moxcli.mtasts import cache
    from moxcli.mtasts.fetch import Fetched
    from moxcli.mtasts.policy import parse_policy

    for domain, mode, mx, record_id in (
        ("sts.test", "enforce", ["mx.sts.test"], "20240101T000000"),
        (DOMAIN, "testing", ["mx1.example.com", "mx2.example.com", "*.backup-example.com"], "123"),
    ):
        text = "version: STSv1\r\nmode: {}\r\n{}max_age: 1296000\r\n".format(mode, "".join(f"mx: {m}\r\n" for m in mx))
        url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
        cache.upsert(
            store, cache.as_domain(domain), record_id, Fetched(parse_policy(text), text, url, "text/plain"), today - DAY
        )
    cache.upsert(store, cache.as_domain("sts-404.test"), "20240101T000000", None, today - 60)


def _suppressions(tx: Txn, today: float) -> None:
    from moxcli.store import suppress

    suppress.add(tx, "tls", "tlsrpt@bounces.example", until=None, comment="asked not to get reports", now=today - DAY)
    suppress.add(tx, "tls", "TLS-Reports@☺.example", until=today + 30 * DAY, comment="mailbox full", now=today - DAY)
    suppress.suppress_after_failure(tx, "dmarc", "dmarc@gone.example", "550 5.1.1 no such user", now=today - DAY)


DMARC_REPORT = """<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>remote.example</org_name>
    <email>noreply-dmarc@remote.example</email>
    <report_id>gentest-{seed}</report_id>
    <date_range><begin>{begin}</begin><end>{end}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>127.0.0.1</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results>
      <dkim><domain>{domain}</domain><selector>{selector}</selector><result>pass</result></dkim>
      <spf><domain>{domain}</domain><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>192.0.2.7</source_ip><count>1</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"""


def _dmarc(store: Store, config: Any, data_dir: Path, today: float) -> None:
    """DMARC evaluations (for outgoing reports) and one incoming aggregate report."""
    import json

    from moxcli.dmarc.db import record_evaluations
    from moxcli.reports.incoming_dmarc import import_files as import_dmarc_files

    lines = []
    for i, (domain, ip, aligned) in enumerate(
        (
            ("remote.example", "192.0.2.10", True),
            ("remote.example", "192.0.2.11", False),
            ("☺.example", "2001:db8::25", True),
        )
    ):
        lines.append(
            json.dumps(
                {
                    "policy_domain": domain,
                    "evaluated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(today - 3600 * (i + 1))),
                    "addresses": [f"mailto:dmarc-reports@{'reports.test' if i < 2 else domain}"],
                    "policy_published": {
                        "domain": domain,
                        "p": "reject" if aligned else "quarantine",
                        "sp": "reject",
                        "pct": 100,
                    },
                    "source_ip": ip,
                    "disposition": "none" if aligned else "quarantine",
                    "aligned_dkim_pass": aligned,
                    "aligned_spf_pass": aligned,
                    "header_from": domain,
                    "envelope_from": domain,
                    "envelope_to": DOMAIN,
                    "dkim_results": [{"domain": domain, "selector": "sel1", "result": "pass" if aligned else "fail"}],
                    "spf_results": [{"domain": domain, "scope": "mfrom", "result": "pass" if aligned else "softfail"}],
                }
            )
        )
    record_evaluations(store, config, lines, source="gentestdata", now=today)
    path = data_dir / "tmp" / "dmarc-report.xml"
    write_file(
        path,
        DMARC_REPORT.format(
            seed=1, begin=int(today - DAY), end=int(today - 1), domain=DOMAIN, selector=SELECTOR
        ).encode(),
        sync=False,
        root=data_dir,
    )
    try:
        import_dmarc_files(store, config, [path], now=today)
    finally:
        path.unlink()


def _tls_report(
    org: str, report_id: str, day: float, policy: dict[str, Any], success: int, failures: list[dict[str, Any]]
) -> dict[str, Any]:
    """A TLS report as RFC 8460 §4.4 shapes it (the Appendix B example, our domains)."""
    return {
        "organization-name": org,
        "date-range": {
            "start-datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day)),
            "end-datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + DAY - 1)),
        },
        "contact-info": f"tls-reporting@{org}",
        "report-id": report_id,
        "policies": [
            {
                "policy": policy,
                "summary": {
                    "total-successful-session-count": success,
                    "total-failure-session-count": sum(f["failed-session-count"] for f in failures),
                },
                "failure-details": failures,
            }
        ],
    }


def _incoming_tls_reports(store: Store, config: Any, data_dir: Path, today: float) -> None:
    """Two received TLS reports: a domain report as a JSON file, a host (DANE) report as a
    gzipped attachment of a report message (RFC 8460 §5.3), imported as operators do."""
    import gzip
    import json

    from moxcli.reports.incoming_tls import import_files

    sts_policy = {
        "policy-type": "sts",
        "policy-string": ["version: STSv1", "mode: testing", f"mx: mx1.{DOMAIN}", "max_age: 86400"],
        "policy-domain": DOMAIN,
        "mx-host": [f"mx1.{DOMAIN}"],
    }
    expired = {
        "result-type": "certificate-expired",
        "sending-mta-ip": "2001:db8:abcd:12::1",
        "receiving-mx-hostname": f"mx1.{DOMAIN}",
        "failed-session-count": 100,
    }
    domain_report = _tls_report(
        "company-x.example", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", today - DAY, sts_policy, 5326, [expired]
    )
    tlsa_policy = {
        "policy-type": "tlsa",
        "policy-string": ["3 1 1 " + hashlib.sha256(b"gentest host key").hexdigest()],
        "policy-domain": HOSTNAME,
        "mx-host": [],
    }
    host_report = _tls_report("remote.example", "2026-host-report-1", today - DAY, tlsa_policy, 12, [])

    json_path = data_dir / "tmp" / "company-x.example!mox.example.json"
    write_file(json_path, json.dumps(domain_report, indent=1).encode(), sync=False, root=data_dir)
    msg = _report_message(gzip.compress(json.dumps(host_report).encode(), mtime=0))
    eml_path = data_dir / "tmp" / "host-report.eml"
    write_file(eml_path, msg, sync=False, root=data_dir)
    try:
        import_files(store, config, [json_path, eml_path], now=today)
    finally:
        json_path.unlink()
        eml_path.unlink()


REPORT_BOUNDARY = "===============gentestdata-report=="


def _report_message(attachment: bytes) -> bytes:
    """The host report's mail (RFC 8460 §5.3), as the email package writes it (its
    EmailMessage with set_content and add_attachment; tests/test_gentestdata.py compares),
    with a fixed boundary: written directly, as the email package costs start-up."""
    import base64

    lines = [
        "From: <tlsrpt-noreply@remote.example>",
        f"To: <tlsreports@{HOSTNAME}>",
        f"Subject: Report Domain: {HOSTNAME} Submitter: remote.example Report-ID:",
        " <2026-host-report-1>",
        f"TLS-Report-Domain: {HOSTNAME}",
        "TLS-Report-Submitter: remote.example",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type="tlsrpt";',
        f' boundary="{REPORT_BOUNDARY}"',
        "",
        f"--{REPORT_BOUNDARY}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 7bit",
        "",
        "A TLS report about the MX host, see the attachment.",
        "",
        f"--{REPORT_BOUNDARY}",
        "Content-Type: application/tlsrpt+gzip",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment;",
        f' filename="remote.example!{HOSTNAME}.json.gz"',
        "MIME-Version: 1.0",
        "",
        *base64.encodebytes(attachment).decode().splitlines(),
        "",
        f"--{REPORT_BOUNDARY}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def _bulk_messages(store: Store, data_dir: Path, count: int, seed: int, today: float) -> None:
    """Many messages for benchmarks: all files written, then the records in batched commits
    (nobody else uses a new data dir, so the ids the sequences will hand out are known
    before the files are written); synced with everything else at the end of generate()."""
    import random

    from moxcli.store import mail as store_mail

    rng = random.Random(seed)

    accounts = [("test1", ["Inbox", "Archive", "Lists/moxcli"]), ("test2", ["Inbox", "Sent"])]
    with store.read() as tx:
        next_ids = {a: tx.peek_id(f"message:{a}") + 1 for a, _ in accounts}
    filler = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz      \r\n") for _ in range(16384)).encode()
    plan: list[tuple[str, str, int, int, bool]] = []
    for i in range(count):
        account, boxes = accounts[i % len(accounts)]
        msg_id = next_ids[account]
        next_ids[account] += 1
        head = f"From: <bulk@remote.example>\r\nTo: <{account}@{DOMAIN}>\r\nSubject: bulk {i}\r\n\r\n".encode()
        size = len(head) + min(int(rng.expovariate(1 / 8000)), len(filler))
        write_file(
            message_file(data_dir, account, msg_id), head + filler[: size - len(head)], sync=False, root=data_dir
        )
        plan.append((account, boxes[i % len(boxes)], msg_id, size, rng.random() < 0.7))
    for start in range(0, count, BATCH):

        def batch(
            tx: Txn, part: list[tuple[str, str, int, int, bool]] = plan[start : start + BATCH], first: int = start
        ) -> None:
            mailboxes: dict[tuple[str, str], store_mail.Mailbox] = {}
            for j, (account, box, msg_id, size, seen) in enumerate(part):
                if (account, box) not in mailboxes:
                    mailboxes[(account, box)] = store_mail.ensure_mailbox(tx, account, box)[0]
                if tx.next_id(f"message:{account}") != msg_id:
                    raise UsageError(f"{data_dir}: another process added messages while generating")
                store_mail.add_message(
                    tx,
                    account,
                    mailboxes[(account, box)],
                    msg_id,
                    size,
                    today - DAY + first + j,
                    ["\\Seen"] if seen else [],
                    [],
                )
            for (account, _box), mb in mailboxes.items():
                store_mail.put_mailbox(tx, account, mb)

        store.update(batch)

"""Diagnostics against the lab (issue 12): bogus vs outage with and without EDE, NXDOMAIN and
NODATA named, any-port DANE, fix hints, transcripts, IDNA input errors, mixed rua lists."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest
from conftest import lab_config_text
from helpers.hostile_https import HostileHTTPS

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.dns import BogusDNSError, Resolver, TemporaryDNSError
from moxcli.store import Store
from moxcli.tlsrpt import resultsdb as tlsresults

pytestmark = pytest.mark.lab


def _data(tmp_path, lab, resolver_key: str = "LAB_DNS", name: str = "data"):
    data = tmp_path / name
    data.mkdir()
    (data / "moxcli.toml").write_text(lab_config_text(lab).replace(lab["LAB_DNS"], lab[resolver_key]))
    return data


@pytest.fixture(params=["LAB_DNS", "LAB_DNS_NOEDE"], ids=["ede", "no-ede"])
def any_resolver(request, lab, tmp_path):
    """A data dir using the lab resolver with EDE, and one using the resolver without."""
    return request.param, _data(tmp_path, lab, request.param)


def _json(runner, data, *args):
    r = runner.invoke(cli, ["--data", str(data), *args, "--json"])
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def _resolver(lab, key):
    host, port = lab[key].rsplit(":", 1)
    return Resolver([(host, int(port))], timeout=5)


# ---------------------------------------------------------------- 1. bogus without EDE


def test_bogus_library_both_resolvers(lab):
    with pytest.raises(BogusDNSError) as with_ede:
        _resolver(lab, "LAB_DNS").query("_25._tcp.mx.dane-bogus.test", "TLSA")
    assert with_ede.value.authentication_ede is not None and not with_ede.value.via_cd
    assert with_ede.value.bogus_reason() == "dns-extended-error-6-dnssec-bogus"
    with pytest.raises(BogusDNSError) as no_ede:
        _resolver(lab, "LAB_DNS_NOEDE").query("_25._tcp.mx.dane-bogus.test", "TLSA")
    assert no_ede.value.ede == () and no_ede.value.via_cd and no_ede.value.status == "dnssec-bogus"
    assert no_ede.value.bogus_reason() == "dnssec-bogus"


def test_check_tlsrpt_bogus_exits_1(runner, any_resolver):
    _, data = any_resolver
    r, j = _json(runner, data, "check", "tlsrpt", "bogus.test")
    assert r.exit_code == 1, r.output
    assert (j["status"], j["dnssec"], j["valid"]) == ("dnssec-bogus", "bogus", False)


def test_verify_dane_bogus_tlsa_exits_1(runner, any_resolver):
    key, data = any_resolver
    r, j = _json(runner, data, "verify", "dane", "--mx", "dane-bogus.test")
    assert r.exit_code == 1, r.output
    (h,) = j["hosts"]
    reason = "extended-dns-error-6-dnssec-bogus" if key == "LAB_DNS" else "dnssec-bogus"
    assert (h["status"], h["result_type"], h["reason"]) == ("failed", "dnssec-invalid", reason)
    assert h["addresses"] == []


def test_check_domain_bogus_zone(runner, any_resolver):
    _, data = any_resolver
    r, j = _json(runner, data, "check", "domain", "bogus.test")
    assert r.exit_code == 1, r.output
    assert (j["status"], j["mx_dnssec"], j["mx"]["status"]) == ("error", "bogus", "dnssec-bogus")
    assert "dnssec-bogus" in [f["code"] for f in j["findings"]]


def test_delivery_bogus_without_ede_defers_and_records_bogus(lab, tmp_path):
    data = _data(tmp_path, lab, "LAB_DNS_NOEDE")
    cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
    with Store.open(data) as st:
        body = f"From: <a@moxcli.test>\r\nTo: <x@dane-bogus.test>\r\nMessage-Id: <{uuid.uuid4().hex}@t>\r\n\r\nhi\r\n"
        ids = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@dane-bogus.test"], data=body.encode())
        (res,) = deliver.run_queue(st, data, cfg, ids=ids)
        assert res.outcome == "deferred" and "bogus" in res.error
        with st.read() as tx:
            rows = {r.policy_domain: r for r in tlsresults.iter_rows(tx) if r.recipient_domain == "dane-bogus.test"}
    (d,) = rows["mx.dane-bogus.test"].results[0].to_json()["failure-details"]
    assert (d["result-type"], d["failure-reason-code"]) == ("dnssec-invalid", "dnssec-bogus")


class _DNSStub:
    """A UDP (and TCP) DNS server on loopback: ``mode`` servfail answers every question (with
    or without CD) with SERVFAIL; garbage sends random bytes; truncate sets TC and then drips
    one byte a second over TCP."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        for _ in range(50):  # a UDP and a TCP socket on the same free port
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.bind(("127.0.0.1", 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(4)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._udp, self._tcp)]
        for t in self.threads:
            t.start()

    def _answer(self, query: bytes) -> bytes:
        import dns.flags
        import dns.message
        import dns.rcode

        if self.mode == "garbage":
            return query[:2] + b"\x81\x80\xff\xff" + bytes(range(40))
        q = dns.message.from_wire(query)
        r = dns.message.make_response(q)
        if self.mode == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
        else:
            r.flags |= dns.flags.TC
        return r.to_wire()

    def _udp(self) -> None:
        self.udp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                query, addr = self.udp.recvfrom(4096)
            except OSError:
                continue
            self.udp.sendto(self._answer(query), addr)

    def _tcp(self) -> None:
        self.tcp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                while not self.stop.wait(1.0):
                    try:
                        conn.sendall(b"\x00")  # a length prefix that never completes
                    except OSError:
                        break

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def dns_stub(request):
    stub = _DNSStub(request.param)
    yield stub
    stub.close()


@pytest.mark.parametrize("dns_stub", ["servfail"], indirect=True)
def test_servfail_also_with_cd_is_an_outage(runner, lab, tmp_path, dns_stub):
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(lab_config_text(lab).replace(lab["LAB_DNS"], f"127.0.0.1:{dns_stub.port}"))
    r, j = _json(runner, data, "check", "tlsrpt", "example.test")
    assert r.exit_code == 3, r.output
    assert j["status"] == "dns-error" and "server failure" in j["errors"][0]["message"]
    assert j["errors"][0]["code"] == "dns-error"


@pytest.mark.parametrize("dns_stub", ["garbage", "truncate"], indirect=True)
def test_hostile_dns_server_keeps_the_deadline(dns_stub, monkeypatch):
    """Issue 18: one deadline for the whole DNS exchange (garbage answers, a TCP retry that
    drips): no exchange with the server is granted time past the start plus the timeout.
    A fake clock that moves by the time each exchange was granted (all of it when the
    exchange failed, the worst case) makes this independent of the machine's speed."""
    import dns.query

    import moxcli.dns

    clock = [1000.0]
    expiries: list[float] = []

    def spy(real):
        def exchange(q, where, port, timeout, **kw):
            expiries.append(clock[0] + timeout)
            try:
                answer = real(q, where, port=port, timeout=timeout, **kw)
            except BaseException:
                clock[0] += timeout
                raise
            clock[0] += 0.01
            return answer

        return exchange

    monkeypatch.setattr("moxcli.dns.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("moxcli.dns._udp", spy(moxcli.dns._udp))
    monkeypatch.setattr(dns.query, "tcp", spy(dns.query.tcp))
    res = Resolver([("127.0.0.1", dns_stub.port)], timeout=2.0)
    with pytest.raises(TemporaryDNSError):
        res.query("example.test", "TXT")
    assert expiries
    assert max(expiries) <= 1000.0 + 2.0


# ---------------------------------------------------------------- 2. NXDOMAIN and NODATA


def test_check_domain_nxdomain(runner, lab_data):
    r, j = _json(runner, lab_data, "check", "domain", "nosuchdomain.test")
    assert r.exit_code == 1
    assert (j["status"], j["mx"]["status"], j["hosts"]) == ("nxdomain", "nxdomain", [])
    assert [(f["level"], f["code"]) for f in j["findings"]] == [("error", "nxdomain")]
    r = runner.invoke(cli, ["--data", str(lab_data), "check", "domain", "nosuchdomain.test"], env={"COLUMNS": "200"})
    assert r.exit_code == 1
    assert "does not exist (NXDOMAIN" in r.stdout and "-1" not in r.stdout


def test_check_domain_nodata_mx_host(runner, lab_data):
    """A name without MX records is NODATA: the implicit MX is shown without a preference."""
    _r, j = _json(runner, lab_data, "check", "domain", "--no-connect", "dane-ok.test")
    assert j["mx"]["status"] == "ok" and j["mx"]["hosts"] == [{"host": "mx.dane-ok.test", "preference": 10}]
    _r, j = _json(runner, lab_data, "check", "domain", "--no-connect", "mx.dane-ok.test")
    assert j["mx"]["status"] == "nodata"
    assert j["mx"]["hosts"] == [{"host": "mx.dane-ok.test", "preference": None}]
    assert j["hosts"][0]["preference"] is None and "nodata" in [f["code"] for f in j["findings"]]


def test_check_tlsrpt_nxdomain_and_nodata(runner, lab_data):
    r, j = _json(runner, lab_data, "check", "tlsrpt", "nosuchdomain.test")
    assert r.exit_code == 1 and j["status"] == "nxdomain" and "NXDOMAIN" in j["errors"][0]["message"]
    assert j["errors"][0]["code"] == "no-record"


def test_nodata_code(lab):
    """_tls.mx.sts.test is an empty non-terminal (only _smtp._tls.mx.sts.test has data)."""
    from moxcli.dns import NotFound

    with pytest.raises(NotFound) as exc:
        _resolver(lab, "LAB_DNS").query("_tls.mx.sts.test", "TXT")
    assert (exc.value.status, exc.value.nxdomain, exc.value.authentic) == ("nodata", False, True)


def test_verify_dane_nxdomain_host(runner, lab_data):
    r, j = _json(runner, lab_data, "verify", "dane", "--mx", "nothing-here.test")
    assert r.exit_code == 1
    assert j["mx"]["status"] == "nxdomain" and j["hosts"][0]["code"] == "nxdomain"


# ---------------------------------------------------------------- 5. mixed rua list


def test_check_tlsrpt_mixed_rua(runner, lab_data):
    r, j = _json(runner, lab_data, "check", "tlsrpt", "rua-mixed.test")
    assert r.exit_code == 1
    assert j["status"] == "invalid" and j["rua"] == [{"uri": "mailto:tlsrpt@reports.test", "scheme": "mailto"}]
    assert j["invalid_rua"] == [{"uri": "mailto:bad%zz@reports.test", "problem": "invalid percent-escape"}]
    assert any(e["code"] == "rua-invalid-uri" and "bad%zz" in e["message"] for e in j["errors"])


# ---------------------------------------------------------------- 7. IDNA input


@pytest.mark.parametrize(
    "arg,label",
    [("fo\u200do.test", "'fo\\u200do'"), ("xn--zz.test", "'xn--zz'"), ("bad-.test", "'bad-'")],
)
def test_invalid_labels_exit_2_naming_the_label(runner, lab_data, arg, label):
    for cmd in (["check", "domain"], ["check", "tlsrpt"], ["verify", "dane"], ["fetch", "mtasts"]):
        r = runner.invoke(cli, ["--data", str(lab_data), *cmd, arg])
        assert r.exit_code == 2, (cmd, r.output)
        assert label in r.stderr and r.stderr.startswith("moxcli: ")


def test_idna2008_lookup_name(lab, caplog):
    """straße.test is looked up as xn--strae-oqa.test (UTS 46 non-transitional), not strasse.test."""
    from moxcli.tlsrpt.lookup import check_tlsrpt

    check = check_tlsrpt(_resolver(lab, "LAB_DNS"), "straße.test")
    assert check.name == "_smtp._tls.xn--strae-oqa.test" and check.status == "nxdomain"


# ---------------------------------------------------------------- 4. any-port DANE, 3. fix hints


def test_verify_dane_direct_tls_any_port(runner, lab, lab_data):
    """nginx is a direct-TLS service: TLSA at _PORT._tcp, direct TLS by default (mox dane dial)."""
    port = lab["LAB_HTTPS_PORT"]
    r, j = _json(runner, lab_data, "verify", "dane", f"mta-sts.sts.test:{port}")
    assert r.exit_code == 0, r.output
    (h,) = j["hosts"]
    assert h["tlsa"] == [f"3 1 1 {lab['LAB_TLSA_HTTPS_EE']}"]
    (a,) = h["addresses"]
    assert (a["tls_mode"], a["starttls"], a["status"], a["fix"]) == ("direct", None, "verified", None)
    assert a["tls_version"] == "TLSv1.3" and a["cipher"] and "key_exchange_group" in a
    assert a["certificate"]["spki_sha256"] == lab["LAB_TLSA_HTTPS_EE"]


def test_verify_dane_starttls_on_other_port_needs_tls_option(runner, lab, lab_data):
    """Postfix on the lab SMTP port speaks STARTTLS: direct TLS (the default off 25/587) fails there."""
    port = lab["LAB_SMTP_PORT"]
    r, j = _json(runner, lab_data, "verify", "dane", f"mx.dane-ok.test:{port}")
    assert r.exit_code == 1
    assert j["hosts"][0]["addresses"][0]["tls_mode"] == "direct" and j["hosts"][0]["addresses"][0]["result_type"]
    r, j = _json(runner, lab_data, "verify", "dane", f"mx.dane-ok.test:{port}", "--tls", "starttls-smtp")
    assert r.exit_code == 0 and j["hosts"][0]["addresses"][0]["starttls"] is True


def test_dane_mismatch_fix_hint(runner, lab, lab_data):
    port = lab["LAB_HTTPS_PORT"]
    r, j = _json(runner, lab_data, "verify", "dane", f"mta-sts.sts-404.test:{port}")
    assert r.exit_code == 1
    (a,) = j["hosts"][0]["addresses"]
    fix = a["fix"]
    name = f"_{port}._tcp.mta-sts.sts-404.test"
    assert fix["tlsa_name"] == name and len(fix["published"]) == 1
    assert fix["would_match"] == [f"3 1 1 {lab['LAB_TLSA_HTTPS_EE']}", f"2 1 1 {lab['LAB_TLSA_TA']}"]
    assert fix["publish"][0] == f"{name}. IN TLSA 3 1 1 {lab['LAB_TLSA_HTTPS_EE']}"
    assert fix["certificate"]["subject"] == "CN=mta-sts.sts.test" and fix["certificate"]["not_after"].endswith("Z")
    assert (
        len(fix["certificate"]["cert_sha256"]) == 64 and fix["issuer_certificate"]["spki_sha256"] == lab["LAB_TLSA_TA"]
    )
    r = runner.invoke(cli, ["--data", str(lab_data), "verify", "dane", f"mta-sts.sts-404.test:{port}"])
    assert f"fix: publish: {name}. IN TLSA 3 1 1 {lab['LAB_TLSA_HTTPS_EE']}" in r.stdout
    assert f"SPKI SHA-256: {lab['LAB_TLSA_HTTPS_EE']}" in r.stdout


def test_dane_mx_mismatch_fix_hint(runner, lab, lab_data):
    r, j = _json(runner, lab_data, "verify", "dane", "--mx", "dane-bad.test")
    assert r.exit_code == 1
    (a,) = j["hosts"][0]["addresses"]
    assert a["fix"]["tlsa_name"] == "_25._tcp.mx.dane-bad.test"
    assert a["fix"]["would_match"][0] == f"3 1 1 {lab['LAB_TLSA_EE']}"


def test_dane_record_from_host(runner, lab, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "dane", "record", "--from-host", "mx.dane-ok.test"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        f"_25._tcp.mx.dane-ok.test. IN TLSA 3 1 1 {lab['LAB_TLSA_EE']}",
        f"_25._tcp.mx.dane-ok.test. IN TLSA 2 1 1 {lab['LAB_TLSA_TA']}",
    ]
    port = lab["LAB_HTTPS_PORT"]
    r, j = _json(runner, lab_data, "dane", "record", "--from-host", f"mta-sts.sts.test:{port}")
    assert r.exit_code == 0 and j["records"][0] == f"3 1 1 {lab['LAB_TLSA_HTTPS_EE']}"
    assert j["tlsa_name"] == f"_{port}._tcp.mta-sts.sts.test"
    r = runner.invoke(cli, ["--data", str(lab_data), "dane", "record", "--from-host", "mx.notls.test"])
    assert r.exit_code == 1 and "no TLS" in r.stderr
    r = runner.invoke(cli, ["--data", str(lab_data), "dane", "record", "3", "--from-host", "mx.dane-ok.test"])
    assert r.exit_code == 2


def test_expiry_warning(runner, lab_data):
    """Lab certificates are valid for 30 days from the lab start: a 40-day window warns."""
    r, j = _json(runner, lab_data, "verify", "dane", "--mx", "dane-ok.test")
    assert j["hosts"][0]["addresses"][0]["warnings"] == []
    r, j = _json(runner, lab_data, "verify", "dane", "--mx", "dane-ok.test", "--expiry-warning", "40")
    (w,) = j["hosts"][0]["addresses"][0]["warnings"]
    assert w["code"] == "certificate-expiring" and w["message"].startswith("certificate expires in ")
    assert r.exit_code == 0
    r, j = _json(runner, lab_data, "verify", "dane", "--mx", "dane-ee-expired.test")
    (w,) = j["hosts"][0]["addresses"][0]["warnings"]
    assert w["code"] == "certificate-expired" and w["message"].startswith("certificate expired at 2020-02-01")


def test_check_domain_fix_hints(runner, lab, lab_data):
    r, j = _json(runner, lab_data, "check", "domain", "dane-bad.test", "--expiry-warning", "40")
    assert r.exit_code == 1
    by_code = {f["code"]: f for f in j["findings"]}
    fix = by_code["dane-mismatch"]["fix"]
    assert fix["tlsa_name"] == "_25._tcp.mx.dane-bad.test"
    assert fix["would_match"] == [f"3 1 1 {lab['LAB_TLSA_EE']}", f"2 1 1 {lab['LAB_TLSA_TA']}"]
    assert by_code["certificate-expiry"]["level"] == "warning"
    assert by_code["tlsrpt-none-host"]["fix"]["name"] == "_smtp._tls.mx.dane-bad.test"
    (a,) = j["hosts"][0]["addresses"]
    assert a["cipher"] and "key_exchange_group" in a and a["certificate"]["spki_sha256"] == lab["LAB_TLSA_EE"]
    r, j = _json(runner, lab_data, "check", "domain", "dane-ta.test")
    fix = next(f for f in j["findings"] if f["code"] == "tlsrpt-none")["fix"]
    assert fix == {
        "name": "_smtp._tls.dane-ta.test",
        "type": "TXT",
        "value": "v=TLSRPTv1; rua=mailto:tlsrpt@dane-ta.test",
        "zone_line": '_smtp._tls.dane-ta.test. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@dane-ta.test"',
    }


def test_dmarc_external_rua_fix(runner, lab_data):
    r, j = _json(runner, lab_data, "dmarc", "lookup", "dane-ok.test")
    assert r.exit_code == 1
    (rua,) = j["rua"]
    assert rua["status"] == "refused"
    assert rua["fix"]["zone_line"] == 'dane-ok.test._report._dmarc.reports.test. IN TXT "v=DMARC1"'
    r, j = _json(runner, lab_data, "dmarc", "lookup", "sts.test")
    assert j["rua"][0]["status"] == "authorized" and j["rua"][0]["fix"] is None


# ---------------------------------------------------------------- issue 18: MTA-STS fetch deadline


@pytest.mark.parametrize("mode", ["handshake", "headers", "body"])
def test_mtasts_fetch_keeps_one_deadline(lab, mode):
    """A server that drips one byte at a time never keeps a fetch past its deadline: the
    servers drip for longer than any per-read time-out (10,000 bytes, 0.3 s apart), so only
    the one deadline for the whole fetch can end it with this error."""
    from pathlib import Path

    from moxcli.domain import parse_domain
    from moxcli.mtasts.errors import PolicyFetch
    from moxcli.mtasts.fetch import FetchOptions, fetch_policy

    srv = HostileHTTPS(lab, mode)
    try:
        options = FetchOptions(srv.port, (Path(lab["LAB_CA"]),), timeout=2.0)
        with pytest.raises(PolicyFetch) as exc:
            fetch_policy(_resolver(lab, "LAB_DNS"), parse_domain("sts.test"), options)
        assert "timeout: no complete answer within 2 s (one deadline for the whole fetch)" in str(exc.value)
    finally:
        srv.close()


def test_fetch_mtasts_of_a_never_ending_body_ends_in_bounded_memory(lab, tmp_path):
    """`moxcli fetch mtasts` (a real process under an address-space limit) reads at most
    64 KiB of a body that never ends and exits 1 with one line."""
    from helpers.child import run_limited

    srv = HostileHTTPS(lab, "flood")
    try:
        data = tmp_path / "data"
        data.mkdir()
        (data / "moxcli.toml").write_text(lab_config_text(lab).replace(lab["LAB_HTTPS_PORT"], str(srv.port)))
        p = run_limited(["--data", str(data), "fetch", "mtasts", "--no-cache", "sts.test"])
    finally:
        srv.close()
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip().splitlines()
    assert err == ["error: https://mta-sts.sts.test/.well-known/mta-sts.txt: policy is larger than 65536 bytes"]
    assert "Traceback" not in p.stderr and "MemoryError" not in p.stderr


_FETCH_IN_CHILD = """
import sys
from pathlib import Path
from moxcli.dns import Resolver
from moxcli.domain import parse_domain
from moxcli.mtasts.errors import PolicyFetch
from moxcli.mtasts.fetch import FetchOptions, fetch_policy
host, port, https_port, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
try:
    options = FetchOptions(https_port, (Path(ca),), 2.0)
    fetch_policy(Resolver([(host, port)], timeout=5), parse_domain("sts.test"), options)
except PolicyFetch as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_mtasts_fetch_deadline_in_bounded_memory(lab, mode):
    """The dripping servers of test_mtasts_fetch_keeps_one_deadline, with the fetch in a child
    process under an address-space limit: it ends with the deadline's error, cleanly."""
    from helpers.child import run_limited

    host, port = lab["LAB_DNS"].rsplit(":", 1)
    srv = HostileHTTPS(lab, mode)
    try:
        p = run_limited(["-c", _FETCH_IN_CHILD, host, port, str(srv.port), lab["LAB_CA"]], timeout=60)
    finally:
        srv.close()
    assert p.returncode == 3, p.stderr
    assert "no complete answer within 2 s (one deadline for the whole fetch)" in p.stdout
    assert p.stderr == ""


@pytest.mark.parametrize("dns_stub", ["garbage", "truncate"], indirect=True)
def test_hostile_dns_server_ends_a_command_in_bounded_memory(dns_stub, tmp_path):
    """`moxcli check tlsrpt` against a DNS server answering garbage (or TC, then a TCP answer
    that never completes), as a real process under an address-space limit: exit 3, one line."""
    from helpers.child import run_limited

    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(f'[dns]\nresolvers = ["127.0.0.1:{dns_stub.port}"]\ntimeout = 2\n')
    p = run_limited(["--data", str(data), "check", "tlsrpt", "example.test"], timeout=60)
    assert p.returncode == 3, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, p.stderr
    assert err[0].startswith(
        f"error: TXT lookup for _smtp._tls.example.test: no answer from 127.0.0.1:{dns_stub.port} ("
    )


def test_debug_transcript(runner, lab_data):
    """--log-level debug: DNS questions and answers (rcode, AD, EDE, TTL), the SMTP dialogue
    and the TLS handshake summary, on stderr."""
    r = runner.invoke(cli, ["--data", str(lab_data), "--log-level", "debug", "verify", "dane", "--mx", "dane-ok.test"])
    assert r.exit_code == 0
    err = r.stderr
    assert 'm="dns question" pkg=dns q="dane-ok.test MX"' in err
    assert 'm="dns answer" pkg=dns q="dane-ok.test MX" rcode=NOERROR ad=True cd=False ede=- answers=' in err
    assert 'm="dns record" pkg=dns name=dane-ok.test ttl=' in err and 'data="10 mx.dane-ok.test."' in err
    assert 'm="C: EHLO mail.moxcli.test"' in err and 'm="C: STARTTLS"' in err and 'm="S: 220 ' in err
    assert 'm="tls handshake" pkg=tls sni=mx.dane-ok.test version=TLSv1.' in err
    assert "dns question" not in r.stdout
    r = runner.invoke(cli, ["--data", str(lab_data), "--log-level", "debug", "check", "tlsrpt", "bogus.test"])
    assert "rcode=SERVFAIL" in r.stderr and "ede=" in r.stderr


def test_debug_transcript_cd_reask(runner, lab, tmp_path):
    data = _data(tmp_path, lab, "LAB_DNS_NOEDE")
    r = runner.invoke(cli, ["--data", str(data), "--log-level", "debug", "check", "tlsrpt", "bogus.test"])
    assert r.exit_code == 1
    assert "rcode=SERVFAIL ad=False cd=False ede=-" in r.stderr and "cd=True" in r.stderr


def test_delivery_transcript_has_commands_not_body(lab, tmp_path):
    import io

    from moxcli import log

    data = _data(tmp_path, lab)
    cfg = parse_config((data / "moxcli.toml").read_text(), data / "moxcli.toml")
    stream = io.StringIO()
    log.setup("debug", stream=stream)
    try:
        with Store.open(data) as st:
            msgid = f"<{uuid.uuid4().hex}@t>"
            body = f"From: <a@moxcli.test>\r\nTo: <x@dane-ok.test>\r\nMessage-Id: {msgid}\r\n\r\nSECRET-BODY\r\n"
            ids = q.enqueue(st, data, mail_from="a@moxcli.test", recipients=["x@dane-ok.test"], data=body.encode())
            (res,) = deliver.run_queue(st, data, cfg, ids=ids)
    finally:
        log.setup("warn")
    out = stream.getvalue()
    assert res.outcome == "delivered", res.error
    assert 'm="C: MAIL FROM:<a@moxcli.test>' in out and 'm="C: RCPT TO:<x@dane-ok.test>' in out
    assert 'm="C: STARTTLS"' in out and 'm="tls handshake" pkg=tls sni=mx.dane-ok.test' in out
    assert 'm="S: 250 ' in out and "SECRET-BODY" not in out


def test_check_tlsrpt_missing_record_fix(runner, lab_data):
    r, j = _json(runner, lab_data, "check", "tlsrpt", "dane-ta.test")
    assert r.exit_code == 1 and j["status"] == "nxdomain"
    assert j["fix"]["zone_line"] == '_smtp._tls.dane-ta.test. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@dane-ta.test"'
    r, j = _json(runner, lab_data, "check", "tlsrpt", "sts.test")
    assert r.exit_code == 0 and j["fix"] is None


def test_fetch_mtasts_nxdomain_and_bogus(runner, any_resolver):
    _, data = any_resolver
    r = runner.invoke(cli, ["--data", str(data), "fetch", "mtasts", "nosuchdomain.test"])
    assert r.exit_code == 1 and "(NXDOMAIN: no such name)" in r.stderr
    r = runner.invoke(cli, ["--data", str(data), "fetch", "mtasts", "bogus.test"])
    assert r.exit_code == 1 and "bogus" in r.stderr


def test_check_domain_file_with_invalid_line_exits_2(runner, lab_data, tmp_path):
    f = tmp_path / "domains.txt"
    f.write_text("dane-ok.test\nfo\u200do.test\n")
    r = runner.invoke(cli, ["--data", str(lab_data), "check", "domain", "--no-connect", "--json", "--file", str(f)])
    assert r.exit_code == 2
    ok, bad = (json.loads(line) for line in r.stdout.splitlines())
    assert ok["status"] == "ok" and bad["status"] == "invalid-domain"
    assert bad["findings"][0]["code"] == "invalid-domain" and "label 'fo\\u200do'" in bad["findings"][0]["message"]


def test_dmarc_lookup_names_the_denial(runner, lab_data):
    r = runner.invoke(cli, ["--data", str(lab_data), "dmarc", "lookup", "nosuchdomain.test"])
    assert r.exit_code == 1
    assert "no DMARC record for nosuchdomain.test (_dmarc.nosuchdomain.test: NXDOMAIN)" in r.stderr

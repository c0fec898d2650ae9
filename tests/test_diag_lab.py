"""Diagnostics against the lab (issue 12): bogus vs outage with and without EDE, NXDOMAIN and
NODATA named, any-port DANE, fix hints, transcripts, IDNA input errors, mixed rua lists."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest
from conftest import lab_config_text

from moxcli.cli import cli
from moxcli.config import parse_config
from moxcli.delivery import deliver
from moxcli.delivery import queue as q
from moxcli.dns import BogusDNSError, Resolver, TemporaryDNSError
from moxcli.store import Store, tlsresults

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
    assert no_ede.value.ede == () and no_ede.value.via_cd and no_ede.value.code == "dnssec-bogus"
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
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
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
    assert j["status"] == "dns-error" and "server failure" in j["errors"][0]


@pytest.mark.parametrize("dns_stub", ["garbage", "truncate"], indirect=True)
def test_hostile_dns_server_keeps_the_deadline(dns_stub):
    """Issue 18: one deadline for the whole DNS exchange (garbage answers, a TCP retry that
    drips). The bound is the configured timeout plus scheduling slack."""
    import time

    res = Resolver([("127.0.0.1", dns_stub.port)], timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(TemporaryDNSError):
        res.query("example.test", "TXT")
    assert time.monotonic() - t0 < 2.0 + 1.5


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
    assert r.exit_code == 1 and j["status"] == "nxdomain" and "NXDOMAIN" in j["errors"][0]


def test_nodata_code(lab):
    """_tls.mx.sts.test is an empty non-terminal (only _smtp._tls.mx.sts.test has data)."""
    from moxcli.dns import NotFound

    with pytest.raises(NotFound) as exc:
        _resolver(lab, "LAB_DNS").query("_tls.mx.sts.test", "TXT")
    assert (exc.value.code, exc.value.nxdomain, exc.value.authentic) == ("nodata", False, True)


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
    assert any("bad%zz" in e for e in j["errors"])


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

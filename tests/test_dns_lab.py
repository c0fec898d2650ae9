"""moxcli.dns against the lab's validating resolver (unbound) and signed zones (nsd)."""

import pytest

from moxcli.dns import BogusDNSError, NotFound, Resolver, TemporaryDNSError

pytestmark = pytest.mark.lab


@pytest.fixture
def resolver(lab):
    host, port = lab["LAB_DNS"].rsplit(":", 1)
    return Resolver([(host, int(port))], timeout=5)


def test_secure_answer_is_authentic(resolver):
    a = resolver.query("_25._tcp.mx.dane-ok.test", "TLSA")
    assert a.authentic and len(a.records) == 1


def test_insecure_zone_not_authentic(resolver):
    a = resolver.query("insecure.test", "MX")
    assert not a.authentic


def test_bogus_zone_has_authentication_ede(resolver):
    # unbound says 7 (signature expired) when it first validates an answer and 6 (DNSSEC bogus,
    # RFC 8914 4.7) while it keeps that answer as bogus (val-bogus-ttl, 60 s): so ask twice.
    with pytest.raises(BogusDNSError):
        resolver.query("bogus.test", "MX")
    with pytest.raises(BogusDNSError) as exc:
        resolver.query("bogus.test", "MX")
    assert exc.value.authentication_ede is not None
    assert exc.value.authentication_ede.code == 6


def test_bogus_tlsa_only(resolver):
    assert resolver.query("mx.dane-bogus.test", "A").authentic
    with pytest.raises(BogusDNSError) as exc:
        resolver.query("_25._tcp.mx.dane-bogus.test", "TLSA")
    assert exc.value.authentication_ede.code == 6


def test_signed_nxdomain(resolver):
    with pytest.raises(NotFound) as exc:
        resolver.query("nothing-here.test", "TXT")
    assert exc.value.nxdomain and exc.value.authentic


def test_nodata(resolver):
    with pytest.raises(NotFound) as exc:
        resolver.query("mx.dane-ok.test", "TXT")
    assert not exc.value.nxdomain


def test_txt_and_ips(resolver):
    a = resolver.txt("_smtp._tls.sts.test")
    assert a.texts() == ["v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"]
    addrs, authentic, _canonical = resolver.ips("mx.notls.test")
    assert addrs == ["127.0.0.2"] and authentic


def test_untrusted_resolver_never_authentic(lab):
    r = Resolver([("127.0.0.1", int(lab["LAB_DNS_PORT"]))], timeout=5)
    assert r.trusted
    r.trusted = False
    assert not r.query("_25._tcp.mx.dane-ok.test", "TLSA").authentic


def test_timeout_is_temporary():
    r = Resolver([("127.0.0.1", 9)], timeout=1)
    with pytest.raises(TemporaryDNSError) as exc:
        r.query("example.test", "A")
    assert exc.value.exit_code == 3


def test_non_loopback_resolver_untrusted():
    r = Resolver([("192.0.2.1", 53)])
    assert not r.trusted and "cannot be trusted" in r.untrusted_reason
    assert Resolver([("192.0.2.1", 53)], trust_ad=True).trusted

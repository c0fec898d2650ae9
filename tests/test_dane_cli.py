"""`moxcli dane record` and `moxcli verify dane` argument handling (no network)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers.pki import make_pki

from moxcli.cli import cli
from moxcli.dane.tlsa import spki_der


def _pem(tmp_path, data: bytes):
    f = tmp_path / "cert.pem"
    f.write_bytes(data)
    return str(f)


def test_record_dane_ee(runner, tmp_path):
    leaf = make_pki().leaf
    f = _pem(tmp_path, leaf.public_bytes(serialization.Encoding.PEM))
    r = runner.invoke(cli, ["dane", "record", "dane-ee", "spki", "sha2-256", f])
    assert r.exit_code == 0, r.output
    assert r.output == f"3 1 1 {hashlib.sha256(spki_der(leaf)).hexdigest()}\n"
    r2 = runner.invoke(cli, ["dane", "record", "3", "1", "1", f])
    assert r2.output == r.output


def test_record_private_key_and_skips(runner, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    f = _pem(tmp_path, pem)
    r = runner.invoke(cli, ["dane", "record", "DANE-EE", "SPKI", "SHA2-512", f])
    assert r.exit_code == 0
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert r.stdout.strip() == f"3 1 2 {hashlib.sha512(spki).hexdigest()}"
    r = runner.invoke(cli, ["dane", "record", "dane-ee", "cert", "sha2-256", f])
    assert r.exit_code == 1
    assert 'skipping pem type "PRIVATE KEY", certificate is required' in r.stderr
    assert r.stderr.strip().endswith("no certificate found in pem file")


def test_record_unknown_usage_warns(runner, tmp_path):
    f = _pem(tmp_path, make_pki().leaf.public_bytes(serialization.Encoding.PEM))
    r = runner.invoke(cli, ["dane", "record", "7", "spki", "full", f])
    assert r.exit_code == 0 and r.stdout.startswith("7 1 0 ")
    assert "warning: continuing with unrecognized tlsa usage 7" in r.stderr


def test_record_bad_args(runner, tmp_path):
    f = _pem(tmp_path, b"")
    for args, msg in [
        (["bogus", "spki", "full", f], 'bad usage "bogus"'),
        (["3", "x", "full", f], "bad selector 'x'"),
        (["3", "1", "sha1", f], "bad matchtype 'sha1'"),
    ]:
        r = runner.invoke(cli, ["dane", "record", *args])
        assert r.exit_code == 2, (args, r.output)
        assert msg.replace('"', "'") in r.stderr.replace('"', "'")
    r = runner.invoke(cli, ["dane", "record", "3", "1", "1", str(tmp_path / "missing.pem")])
    assert r.exit_code == 2


def test_verify_dane_usage_errors(runner, data_dir):
    base = ["--data", str(data_dir), "verify", "dane"]
    r = runner.invoke(cli, base)
    assert r.exit_code == 2 and "give either HOST[:PORT] or --mx DOMAIN" in r.stderr
    r = runner.invoke(cli, [*base, "a.example", "--mx", "b.example"])
    assert r.exit_code == 2
    r = runner.invoke(cli, [*base, "a.example:notaport"])
    assert r.exit_code == 2 and "bad port" in r.stderr
    r = runner.invoke(cli, [*base, "a.example", "--usages", "dane-xx"])
    assert r.exit_code == 2 and 'unknown dane usage "dane-xx"' in r.stderr
    r = runner.invoke(cli, [*base, "bad..name"])
    assert r.exit_code == 2 and "parsing domain" in r.stderr

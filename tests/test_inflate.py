"""Decompression bombs in received reports: refused early by the ratio limit (moxcli.inflate),
with one line and reason_code decompression-bomb; the size limits still hold for data that
compresses no better than real reports."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import zipfile
import zlib

import pytest
from click.testing import CliRunner
from helpers import reportmail as rm

from moxcli import inflate
from moxcli.cli import cli
from moxcli.dmarc.parse import MAX_XML, parse_file
from moxcli.dmarc.parse import DecompressionBombError as DmarcBomb
from moxcli.dmarc.parse import ReportError as DmarcError
from moxcli.reports import incoming_tls as itls
from moxcli.tlsrpt.report import MAX_JSON_SIZE
from moxcli.tlsrpt.report import DecompressionBombError as TlsBomb
from moxcli.tlsrpt.report import ReportError as TlsError


def _gzip_of_zeros(n: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    return b"".join(c.compress(block) for _ in range(n >> 20)) + c.flush()


def _zip_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("r.xml", data)
    return buf.getvalue()


def _poorly_compressible(n: int) -> bytes:
    """Hex text of random bytes: compresses about 2 times, like nothing a bomb is made of."""
    block = os.urandom(1 << 18).hex().encode()  # 512 KiB, repeated beyond gzip's 32 KiB window
    return (block * (n // len(block) + 1))[:n]


def test_decompress_stops_at_the_ratio_long_before_the_end():
    bomb = _gzip_of_zeros(1 << 30)  # 1 GiB of zeros in about 1 MB
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with pytest.raises(inflate.DecompressionBomb, match="expands more than 200 times") as err:
        inflate.decompress(d, bomb, 2 << 30)
    produced = int(str(err.value).split("(")[1].split(" bytes")[0])
    assert inflate.RATIO_FROM <= produced <= inflate.RATIO_FROM + inflate.CHUNK


@pytest.mark.parametrize("size", [100, inflate.RATIO_FROM - 1])
def test_small_outputs_have_no_ratio(size):
    """Below RATIO_FROM any ratio is fine: small reports compress very well."""
    data = b"\0" * size
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflate.decompress(d, gzip.compress(data), MAX_JSON_SIZE) == data


def test_decompress_returns_what_zlib_would():
    data = _poorly_compressible(3 << 20)
    packed = gzip.compress(data, 1) + b"\r\n"  # trailing bytes: unused_data, as mimecast sends
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflate.decompress(d, packed, 20 << 20) == data and d.eof and d.unused_data == b"\r\n"
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflate.decompress(d, packed, 1 << 20) == data[: (1 << 20) + 1]


def test_read_member_ratio():
    with pytest.raises(inflate.DecompressionBomb, match="expands more than 200 times"):
        inflate.read_member(io.BytesIO(b"\0" * (4 << 20)), 1000, MAX_XML)
    assert inflate.read_member(io.BytesIO(b"\0" * (4 << 20)), 1 << 20, MAX_XML) == b"\0" * (4 << 20)


def test_tls_gzip_bomb_under_the_size_limit_is_refused():
    """10 MiB of spaces around a valid report (under the 20 MiB cap): a bomb, not a report."""
    bomb = gzip.compress(rm.tls_json("google", 1) + b" " * (10 << 20), 9)
    with pytest.raises(TlsBomb, match="decompression bomb") as err:
        itls.parse_report_bytes(bomb)
    assert err.value.code == "decompression-bomb"
    mail = (
        b'From: r@sender.example\r\nContent-Type: multipart/report; report-type="tlsrpt"; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(bomb).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    with pytest.raises(TlsBomb, match="application/tlsrpt\\+gzip: expands more than 200 times"):
        itls.parse_report_message(mail)


def test_tls_size_limit_still_applies_to_compressible_data():
    data = b"[" + _poorly_compressible(MAX_JSON_SIZE + 10) + b"]"
    with pytest.raises(TlsError, match="decompressed report larger") as err:
        itls.parse_report_bytes(gzip.compress(data, 1))
    assert not isinstance(err.value, TlsBomb)


def test_dmarc_gzip_and_zip_bombs():
    xml = rm.dmarc_xml("google", 1)
    bomb = gzip.compress(xml.replace(b"<feedback", b" " * (10 << 20) + b"<feedback", 1), 9)
    with pytest.raises(DmarcBomb, match="gzip: expands more than 200 times") as err:
        parse_file(bomb)
    assert err.value.code == "decompression-bomb"
    with pytest.raises(DmarcBomb, match=r"declares .* expands more than 200 times"):
        parse_file(_zip_of(b" " * (10 << 20) + xml))


def test_dmarc_zip_that_lies_about_its_size_is_refused_while_reading():
    """A zip entry whose headers declare a small size: read no further than that, then refused."""
    raw = bytearray(_zip_of(b" " * (10 << 20)))
    declared = 1000
    # Patch the uncompressed size in the local and the central directory header.
    local = raw.find(b"PK\x03\x04")
    raw[local + 22 : local + 26] = declared.to_bytes(4, "little")
    central = raw.find(b"PK\x01\x02")
    raw[central + 24 : central + 28] = declared.to_bytes(4, "little")
    with pytest.raises(DmarcError, match="invalid zip data"):
        parse_file(bytes(raw))


def test_dmarc_size_limit_still_applies_to_compressible_data():
    with pytest.raises(DmarcError, match="larger than") as err:
        parse_file(gzip.compress(_poorly_compressible(MAX_XML + 10), 1))
    assert not isinstance(err.value, DmarcBomb)


def test_reports_import_rejects_bombs_with_one_line(data_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "tls.json.gz").write_bytes(gzip.compress(rm.tls_json("google", 1) + b" " * (10 << 20), 9))
    (src / "dmarc.xml.gz").write_bytes(gzip.compress(b" " * (10 << 20) + rm.dmarc_xml("google", 1), 9))
    (src / "ok.json").write_bytes(rm.tls_json("google", 2))
    r = CliRunner().invoke(cli, ["--data", str(data_dir), "reports", "import", "--json", str(src)])
    assert r.exit_code == 1, r.output
    rows = {o["source"].rsplit("/", 1)[1]: o for o in map(json.loads, r.stdout.splitlines()) if "source" in o}
    assert {k: (v["outcome"], v["reason_code"]) for k, v in rows.items()} == {
        "dmarc.xml.gz": ("rejected", "decompression-bomb"),
        "ok.json": ("imported", None),
        "tls.json.gz": ("rejected", "decompression-bomb"),
    }
    assert all("\n" not in v["reason"] for k, v in rows.items() if k != "ok.json")
    assert "Traceback" not in r.output

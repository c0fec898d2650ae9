"""`reports html`: the page's content and escaping, and the page in a real headless Chromium:
it loads with no console error and no network request, and its screenshot is not blank.

Network requests are caught by a proxy of our own on loopback (every request Chromium would
send goes to it; it answers none, so nothing leaves the machine); console messages come from
--enable-logging=stderr. A control page that loads an image from the network proves that
both checks see what they are meant to see.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import pytest
from helpers import reportmail as rm

from moxcli.cli import cli
from moxcli.config import Config
from moxcli.reports import incoming
from moxcli.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOW = rm.BASE + 400 * rm.DAY
HOSTILE_ORG = '<script>alert("x")</script><img src="http://example.com/x.png">'


@pytest.fixture
def data(data_dir):
    mails = [m for i in range(24) for m in (rm.tls_mail("google", i), rm.dmarc_mail("microsoft", i))]
    hostile = json.loads(rm.tls_json("google", 99))
    hostile["organization-name"] = HOSTILE_ORG
    mails += [rm.tls_json("microsoft", 1, domain="example.net"), json.dumps(hostile).encode()]
    msgs = [incoming.Message(f"m{i}", m) for i, m in enumerate(mails)]
    with Store.open(data_dir) as store:
        s = incoming.import_messages(store, Config(), msgs, now=NOW)
    assert s.counts["rejected"] == 0, s.counts
    return data_dir


def _tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every element's tag and attributes, as a browser's tokenizer sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    P().feed(page)
    return found


def _html(runner, data, out, *args):
    r = runner.invoke(cli, ["--data", str(data), "reports", "html", str(out), *args])
    assert r.exit_code == 0, r.output
    return r, out.read_text()


def test_page_content_and_escaping(runner, data, tmp_path):
    r, page = _html(runner, data, tmp_path / "r.html")
    assert "wrote" in r.stderr and "TLS report(s)" in r.stderr
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    tags = _tags(page)
    assert "script" not in {t for t, _ in tags} and "img" not in {t for t, _ in tags}
    assert [a for _, attrs in tags for a, _ in attrs if a in ("src", "href", "srcset", "action")] == []
    assert "url(" not in page and "@import" not in page
    assert "&lt;script&gt;" in page  # the hostile organisation name, escaped
    for text in ("Sessions per day", "Failure types", "certificate-expired", "192.0.2.25", "DMARC pass rate per day"):
        assert text in page
    assert "Top failing sources" in page and "203.0.113.9" in page and "neither (DMARC fail)" in page
    assert "example.net: " in page and "example.org: " in page  # a chart per policy domain
    _, late = _html(runner, data, tmp_path / "late.html", "--since", "2026-02-01", "--domain", "example.org")
    assert "2026-02-01 to" not in late and "2026-02-01" in late and "example.net: " not in late
    r = runner.invoke(cli, ["--data", str(data), "reports", "html", str(tmp_path / "no" / "dir.html")])
    assert r.exit_code == 2 and "does not exist" in r.stderr


# Chromium's own background services (update checks, field trials) call these even with
# --disable-background-networking; their requests are not the page's.
CHROMIUM_SERVICES = (".googleapis.com", ".gvt1.com", ".google.com", ".gstatic.com")


class Trap:
    """A TCP listener standing in for an HTTP proxy: it records the request line of every
    connection (each would be a request leaving the machine) and answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                first = conn.recv(500).split(b"\r\n", 1)[0].decode("latin-1")
            except OSError:
                first = "(no request line)"
            self.requests.append(first)
            conn.close()

    def page_requests(self) -> list[str]:
        """Requests other than Chromium's background services ("GET http://host/..." or
        "CONNECT host:443 ...")."""
        out = []
        for r in self.requests:
            target = r.split(" ")[1] if " " in r else r
            host = target.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
            if not host.endswith(CHROMIUM_SERVICES):
                out.append(r)
        return out

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def _chromium(page: Path, tmp: Path, proxy_port: int) -> tuple[str, bytes]:
    """Load the page headless: (stderr with console messages, PNG screenshot)."""
    shot = tmp / "shot.png"
    profile = tmp / "profile"
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
        "--hide-scrollbars",
        "--window-size=1240,1800",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp)}
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stderr, shot.read_bytes()


def console_errors(stderr: str) -> list[str]:
    """Console messages of the page (Chromium logs them as CONSOLE lines) and load failures."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """(width, height, RGB pixels) of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium
    writes); enough of RFC 2083 to look at a screenshot without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour == 2 and interlace == 0  # 8-bit RGB, not interlaced
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels += [tuple(line[x * bpp : x * bpp + 3]) for x in range(0, width, 4)]  # every 4th column
        prev = line
    return width, height, pixels


def _need_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("chromium not installed (Debian package chromium; scripts/test.sh installs it)")


def test_page_in_headless_chromium(runner, data, tmp_path):
    _need_chromium()
    _, _ = _html(runner, data, tmp_path / "r.html")
    trap = Trap()
    try:
        stderr, png = _chromium(tmp_path / "r.html", tmp_path, trap.port)
        assert console_errors(stderr) == []
        assert trap.page_requests() == []
    finally:
        trap.close()
    width, height, pixels = png_pixels(png)
    assert (width, height) == (1240, 1800)
    background = max(set(pixels), key=pixels.count)
    share = sum(1 for p in pixels if p != background) / len(pixels)
    assert share > 0.2, share  # cards, charts and tables, not a blank page
    assert (0x2E, 0x7D, 0x32) in pixels and (0xC6, 0x28, 0x28) in pixels  # green and red chart bars
    assert (0x1C, 0x27, 0x33) in pixels  # the header band


def test_chromium_checks_catch_a_network_load(tmp_path):
    """Control: a page that loads an image from the network trips the proxy trap; with our
    page's Content-Security-Policy the same image is refused with a console error."""
    _need_chromium()
    open_page = tmp_path / "open.html"
    open_page.write_text('<!DOCTYPE html><html><body><img src="http://example.com/x.png"></body></html>')
    csp_page = tmp_path / "csp.html"
    csp_page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><img src="http://example.com/x.png"></body></html>'
    )
    trap = Trap()
    try:
        (tmp_path / "a").mkdir()
        _chromium(open_page, tmp_path / "a", trap.port)
        assert [r for r in trap.page_requests() if r.startswith("GET http://example.com/x.png ")] != []
        trap.requests.clear()
        (tmp_path / "b").mkdir()
        stderr, _ = _chromium(csp_page, tmp_path / "b", trap.port)
        assert trap.page_requests() == []
        assert any("Content Security Policy" in line for line in console_errors(stderr)), stderr[-2000:]
    finally:
        trap.close()

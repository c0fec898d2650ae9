"""Shared fixtures: CLI runner, data directories, and the loopback mail lab.

The lab (tests/lab/lab: nsd + unbound with DNSSEC, Postfix MX variants, nginx for MTA-STS)
starts once per session on first use and is stopped at the end. Set LAB_DIR to reuse a
running lab while developing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

# Test data directories are made with the umask's mode; tests/test_hostile_paths.py checks the warnings.
os.environ.setdefault("MOXCLI_QUIET_PERMISSIONS", "1")

# open_files_guard: moxcli never renames or removes a file it holds open; helpers.smtpd: the
# `smtpd` and `mini` SMTP server fixtures.
pytest_plugins = ["open_files_guard", "helpers.smtpd"]

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "tests" / "lab" / "lab"
VECTORS = ROOT / "testdata" / "vectors"


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export ") :].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    """LAB_* values (see tests/lab/README.md) of a running lab."""
    d = os.environ.get("LAB_DIR")
    if d and subprocess.run([LAB, "status", d], capture_output=True).returncode == 0:
        yield _parse_env(subprocess.run([LAB, "env", d], check=True, capture_output=True, text=True).stdout)
        return
    d = tempfile.mkdtemp(prefix="moxcli-lab-")
    r = subprocess.run([LAB, "start", d], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        pytest.fail(f"lab start failed:\n{r.stderr}")
    try:
        yield _parse_env(r.stdout)
    finally:
        subprocess.run([LAB, "stop", d], capture_output=True, timeout=60)


def lab_config_text(lab: dict[str, str], extra: str = "") -> str:
    """A moxcli config that points DNS, SMTP, HTTPS and trust at the lab."""
    return textwrap.dedent(
        f"""\
        hostname = "mail.moxcli.test"
        [dns]
        resolvers = ["{lab["LAB_DNS"]}"]
        timeout = 5
        [tls]
        ca_files = ["{lab["LAB_CA"]}"]
        [network]
        smtp_port = {lab["LAB_SMTP_PORT"]}
        https_port = {lab["LAB_HTTPS_PORT"]}
        """
    ) + textwrap.dedent(extra)


@pytest.fixture
def lab_data(lab, tmp_path) -> Path:
    """A data dir whose config points at the lab."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "moxcli.toml").write_text(lab_config_text(lab))
    return data


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d

"""The built wheel installs man pages, shell completions and the license under its prefix."""

import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_installs_man_pages_and_completions(tmp_path):
    # Build from a copy of the tracked files: the build writes build/ and *.egg-info next to them.
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", dist, src],
        check=True,
        capture_output=True,
        text=True,
    )
    # The metadata is in the form setuptools wants (PEP 639 license expression, no license
    # classifier): it prints no deprecation warning about it.
    assert "SetuptoolsDeprecationWarning" not in build.stdout + build.stderr
    (wheel,) = dist.glob("moxcli-*.whl")
    with zipfile.ZipFile(wheel) as z:
        licenses = [n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE")]  # PEP 639 place
        assert len(licenses) == 1 and b"MIT License" in z.read(licenses[0])
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in meta.splitlines()
    assert "License-File: LICENSE" in meta.splitlines()
    assert [line for line in meta.splitlines() if line.startswith("Classifier: License ::")] == []
    # moxcli has no public home yet: no project URL rather than another project's (docs: README.md, docs/, man pages)
    assert [line for line in meta.splitlines() if line.startswith(("Project-URL:", "Home-page:"))] == []
    assert "Summary: Command-line toolkit for mail-server operators" in meta
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    share = venv / "share"
    man = {p.name for p in (share / "man" / "man1").glob("*.1")}
    assert man == {p.name for p in (ROOT / "man").glob("*.1")}
    assert {"moxcli.1", "moxcli-send-tlsreports.1", "moxcli-dns-records.1"} <= man
    assert (
        (share / "bash-completion" / "completions" / "moxcli.bash")
        .read_text()
        .startswith((ROOT / "completions" / "moxcli.bash").read_text()[:40])
    )
    assert (share / "zsh" / "site-functions" / "_moxcli").is_file()
    assert (share / "fish" / "vendor_completions.d" / "moxcli.fish").is_file()

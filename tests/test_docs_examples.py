"""What the README and docs/ show a user must work: config examples parse, the command index is complete."""

import re
import textwrap
from pathlib import Path

import pytest
from helpers.commands import leaf_commands

from moxcli.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The lab examples point at the CA of a lab started in /tmp/lab1 (tests/lab/README.md).
LAB_CA = "/tmp/lab1/ca/ca.crt"


def _toml_examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"^( *)```toml\n(.*?)^ *```", text, re.S | re.M):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{page.name}:{line}", textwrap.dedent(m.group(2))))
    return found


EXAMPLES = _toml_examples()


def test_the_docs_have_config_examples():
    assert any(name.startswith("README.md:") for name, _ in EXAMPLES)
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_config_example_is_accepted(where, text, tmp_path):
    """Every key of a shown config example is one the parser accepts (unknown keys are errors)."""
    ca = tmp_path / "ca.crt"
    ca.write_text("")
    cfg = parse_config(text.replace(LAB_CA, str(ca)), tmp_path / "moxcli.toml")
    assert cfg.hostname


def test_readme_config_example_has_every_section():
    (readme,) = [text for name, text in EXAMPLES if name.startswith("README.md:")]
    cfg = parse_config(readme, Path("/etc/moxcli/moxcli.toml"))
    assert cfg.domains["example.org"].dkim.sign == ("2026a", "2026b")
    assert set(cfg.domains["example.org"].dkim.selectors) == {"2026a", "2026b"}
    assert cfg.dns.local_zone == Path("/etc/moxcli/local-zone.txt")


def _index_commands() -> set[str]:
    """The commands the README's index names: `moxcli a b|c`, `x list`, `suppress tls|dmarc add|list`."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Commands") : text.index("### Setting up")]
    names: set[str] = set()
    for row in re.findall(r"^\| (.*?) \| .* \| .* \|$", section, re.M):
        for code in re.findall(r"`([^`]*)`", row):
            words = [w for w in code.removeprefix("moxcli ").split() if re.fullmatch(r"[a-z][a-z|-]*", w)]
            paths = [[]]
            for w in words:
                paths = [[*p, alt] for p in paths for alt in w.split("|")]
            for p in paths:
                names.update(" ".join(p[:n]) for n in range(1, len(p) + 1))
    return names


def test_readme_command_index_names_every_command():
    leaves = set(leaf_commands(include_hidden=False))
    assert {"send-tlsreports", "queue run", "suppress dmarc remove", "import archive"} <= leaves
    missing = sorted(c for c in leaves if c not in _index_commands())
    assert missing == []


def test_readme_command_index_names_only_real_commands():
    leaves = set(leaf_commands(include_hidden=False))
    groups = {" ".join(c.split()[:n]) for c in leaves for n in range(1, len(c.split()))}
    index = _index_commands()
    # an index entry is a command, a group, or a command followed by a word of its synopsis
    unknown = sorted(e for e in index if e not in leaves | groups and " ".join(e.split()[:-1]) not in leaves)
    assert unknown == []

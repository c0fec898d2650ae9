"""Man pages and completions are generated from the click commands and must be current."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen-docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_man_and_completions_up_to_date():
    files = _generator().generate(ROOT)
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [str(p.relative_to(ROOT)) for d in ("man", "completions") for p in (ROOT / d).glob("*") if p not in files]
    assert not stale and not extra, f"run `python scripts/gen-docs.py`; stale: {stale}, extra: {extra}"


def test_every_command_has_a_man_page_with_example():
    files = _generator().generate(ROOT)
    pages = {p.name: t for p, t in files.items() if p.suffix == ".1"}
    assert "moxcli.1" in pages and "moxcli-init.1" in pages and "moxcli-dns-records.1" in pages
    for name, text in pages.items():
        if name.count("-") >= 1 and "COMMANDS" not in text:
            assert "Example" in text, f"{name} has no example"

"""The JSON contract of docs/json.md as checks (no tests here): each command's schema in
docs/schemas/ and the key and value rules, shared by the tests that read `--json` output."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

# Standard documents embedded whole keep their own keys (docs/json.md, Keys).
EMBEDDED = {"report", "results", "policy_published", "dkim_results", "spf_results", "tlsrpt_result"}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# docs/json.md, Keys: one name for one thing (the names before contract version 1 -> today's).
RENAMED = {"org_name": "organization_name", "begin": "start", "day_utc": "day", "added": "imported"}
FINDINGS = {"errors", "warnings", "notes", "problems", "findings"}
CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _is_finding(f) -> bool:
    return isinstance(f, dict) and bool(CODE.match(f.get("code") or "")) and isinstance(f.get("message"), str)


TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIMEISH = re.compile(r"^\d{4}-\d\d-\d\dT")


def schema(name):
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def contract_problems(obj, path=""):
    """Key and value rules of docs/json.md, outside embedded standard documents."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            where = f"{path}.{k}"
            if not SNAKE.match(k):
                out.append(f"{where}: key not snake_case")
            if k in RENAMED:
                out.append(f"{where}: the same thing is called {RENAMED[k]} everywhere")
            if k in EMBEDDED:
                continue
            if k in FINDINGS and isinstance(v, list):
                out += [f"{where}[]: finding without code and message: {f}" for f in v if not _is_finding(f)]
            if v == "":
                out.append(f'{where}: "" (unknown is null)')
            if isinstance(v, float) and v > 1e8:
                out.append(f"{where}: Unix seconds {v}")
            if isinstance(v, str) and re.fullmatch(r"\d{8}", v):
                out.append(f"{where}: YYYYMMDD {v}")
            names = v if isinstance(v, list) and k.endswith("domains") else [v] if k.endswith("domain") else []
            if any(isinstance(n, str) and not (n.isascii() and n == n.lower()) for n in names):
                out.append(f"{where}: domain not an A-label in lower case: {v}")
            if isinstance(v, str) and TIMEISH.match(v) and not TIME.match(v) and k != "report_id":
                out.append(f"{where}: time not RFC 3339 UTC whole seconds: {v}")
            out += contract_problems(v, where)
    elif isinstance(obj, list):
        for v in obj:
            out += contract_problems(v, f"{path}[]")
    return out

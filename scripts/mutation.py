"""Mutation testing for moxcli: a small AST mutator (no dependency), run by scripts/mutation.sh.

Each mutant changes one thing in one module (an operator flipped, a constant changed, a return
value replaced by None, a condition negated, a statement deleted) and runs ONLY that module's own
fast unit tests (scripts/mutation-tests.txt). A mutant the tests still pass is a survivor: a bug
the tests would let through. Everything runs in a temporary copy of the tree; the worktree is never
written. Not part of CI (minutes per module); see docs/development.md.

Speed: the tests run in a child forked from a parent that has already imported pytest and every
third-party module the tests use, and mutants on lines the tests never execute are survivors
without a run (traced once on the unmutated code).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import fnmatch
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS_MAP = HERE / "mutation-tests.txt"
EQUIVALENT = HERE / "mutation-equivalent.md"
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow and not lab", "--no-header"]

HYPOTHESIS_EXAMPLES = 30

COMPARE_SWAP: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}


@dataclass
class Mutant:
    """One change: where (path, lines, function), what (desc), and how to apply it to a tree copy."""

    path: str
    lineno: int
    end_lineno: int
    func: str
    desc: str
    node_index: int
    covered_by: tuple[int, int]  # lines whose execution means the mutated code ran
    apply: Callable[[ast.AST, ast.AST, str, int | None], None] = field(repr=False)

    @property
    def key(self) -> str:
        """Stable name without the line number (what mutation-equivalent.md lists)."""
        return f"{self.path}: {self.func}: {self.desc}"

    def label(self) -> str:
        return f"{self.path}:{self.lineno}: {self.func}: {self.desc}"


def _short(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, ast.AST | None, str, int | None, str]]:
    """Nodes in a fixed order with their parent slot and enclosing function name."""

    def rec(node: ast.AST, parent: ast.AST | None, fld: str, idx: int | None, func: str):
        yield node, parent, fld, idx, func
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            func = f"{func}.{node.name}" if func != "<module>" else node.name
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        yield from rec(item, node, name, i, func)
            elif isinstance(value, ast.AST):
                yield from rec(value, node, name, None, func)

    yield from rec(tree, None, "", None, "<module>")


def _replace(parent: ast.AST, fld: str, idx: int | None, new: ast.AST) -> None:
    if idx is None:
        setattr(parent, fld, new)
    else:
        getattr(parent, fld)[idx] = new


def _skipped(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, f-string pieces, TYPE_CHECKING blocks."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            mark(first)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
                mark(a.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values if isinstance(v, ast.Constant))
            for v in node.values:
                if isinstance(v, ast.FormattedValue):
                    mark(v.format_spec)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            mark(node)
        if isinstance(node, (ast.ImportFrom, ast.Import)):
            mark(node)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
    return skip


def _ops_for(node: ast.AST, parent: ast.AST | None) -> Iterator[tuple[str, Callable]]:
    """(description, apply(node, parent, field, index)) for every mutation of this node."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            new = COMPARE_SWAP.get(type(op))
            if new is not None:

                def flip(n, p, f, x, i=i, new=new):
                    n.ops[i] = new()

                mutated = copy.deepcopy(node)
                mutated.ops[i] = new()
                yield f"compare: {_short(node)} -> {_short(mutated)}", flip
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        mutated = copy.deepcopy(node)
        mutated.op = other()
        yield f"boolop: {_short(node)} -> {_short(mutated)}", lambda n, p, f, x: setattr(n, "op", other())
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        new = BINOP_SWAP.get(type(node.op))
        if new is not None:
            mutated = copy.deepcopy(node)
            mutated.op = new()
            yield f"operator: {_short(node)} -> {_short(mutated)}", lambda n, p, f, x: setattr(n, "op", new())
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        yield (
            f"unary removed: {_short(node)} -> {_short(node.operand)}",
            lambda n, p, f, x: _replace(p, f, x, n.operand),
        )
    elif isinstance(node, ast.Constant):
        v = node.value
        news: list[object] = []
        if isinstance(v, bool):
            news = [not v]
        elif isinstance(v, int):
            news = [v + 1, v - 1]
        elif isinstance(v, float):
            news = [v + 1.0]
        elif isinstance(v, str):
            news = ["" if v else "XX"]
        elif isinstance(v, bytes):
            news = [b"" if v else b"XX"]
        for new_v in news:
            yield f"constant: {v!r} -> {new_v!r}", lambda n, p, f, x, new_v=new_v: setattr(n, "value", new_v)
    returns_none = isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and node.value.value is None
    if isinstance(node, ast.Return) and node.value is not None and not returns_none:
        yield f"return None instead of: {_short(node)}", lambda n, p, f, x: setattr(n, "value", ast.Constant(None))
    if isinstance(node, (ast.If, ast.While, ast.IfExp)) and not (isinstance(node.test, ast.Constant)):
        yield (
            f"condition negated: {_short(node.test)}",
            lambda n, p, f, x: setattr(n, "test", ast.UnaryOp(ast.Not(), n.test)),
        )
    if isinstance(node, ast.comprehension):
        for i, cond in enumerate(node.ifs):

            def neg(n, p, f, x, i=i):
                n.ifs[i] = ast.UnaryOp(ast.Not(), n.ifs[i])

            yield f"condition negated: {_short(cond)}", neg
    deletable = isinstance(node, (ast.Raise, ast.AugAssign, ast.Continue, ast.Break))
    deletable |= isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
    deletable |= isinstance(node, ast.Assign) and all(
        isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets
    )
    if deletable:
        yield f"statement deleted: {_short(node)}", lambda n, p, f, x: _replace(p, f, x, ast.Pass())


def _statement_lines(tree: ast.AST) -> dict[int, tuple[int, int]]:
    """id(node) -> lines of the enclosing statement's header (for a compound statement, up to its
    body). Python reports no line event for the inner lines of a constant folded over several
    lines (a tuple of strings in a `for` header), so a node counts as run when its statement ran."""
    spans: dict[int, tuple[int, int]] = {}

    def visit(node: ast.AST, span: tuple[int, int]) -> None:
        if isinstance(node, ast.stmt):
            body = getattr(node, "body", None)
            first = body[0].lineno if isinstance(body, list) and body and isinstance(body[0], ast.stmt) else None
            end = first - 1 if first and first > node.lineno else (node.end_lineno or node.lineno)
            span = (node.lineno, end)
        spans[id(node)] = span
        for child in ast.iter_child_nodes(node):
            visit(child, span)

    visit(tree, (1, 1))
    return spans


def mutants_of(path: str, source: str) -> list[Mutant]:
    """Every mutant of one module, in source order; no-op mutants dropped."""
    tree = ast.parse(source)
    skip = _skipped(tree)
    statement_lines = _statement_lines(tree)
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    for index, (node, parent, _fld, _idx, func) in enumerate(_walk(tree)):
        if id(node) in skip or parent is None:
            continue
        ops = list(_ops_for(node, parent))
        if not ops:
            continue
        where = node.target if isinstance(node, ast.comprehension) else node
        end = getattr(node, "end_lineno", None) or where.lineno
        stmt_start, stmt_end = statement_lines.get(id(node), (where.lineno, end))
        covered_by = (min(where.lineno, stmt_start), max(end, stmt_end))
        for desc, apply in ops:
            key = f"{func}: {desc}"
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                desc = f"{desc} (#{seen[key]})"
            out.append(
                Mutant(
                    path,
                    where.lineno,
                    end,
                    func,
                    desc,
                    index,
                    covered_by,
                    apply,
                )
            )
    return out


def mutated_source(source: str, mutant: Mutant) -> str:
    tree = ast.parse(source)
    for index, (node, parent, fld, idx, _func) in enumerate(_walk(tree)):
        if index == mutant.node_index:
            mutant.apply(node, parent, fld, idx)
            break
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def load_test_map() -> list[tuple[str, list[str]]]:
    """(module glob, test file globs) pairs from scripts/mutation-tests.txt."""
    rows = []
    for line in TESTS_MAP.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            module, _, tests = line.partition(":")
            rows.append((module.strip(), tests.split()))
    return rows


def tests_for(module: str, tree: Path, exclude: str = "") -> list[str]:
    files: list[str] = []
    for pattern, tests in load_test_map():
        if fnmatch.fnmatch(module, pattern):
            for t in tests:
                for f in sorted(glob.glob(str(tree / t))):
                    rel = str(Path(f).relative_to(tree))
                    if rel not in files and not (exclude and fnmatch.fnmatch(rel, exclude)):
                        files.append(rel)
    return files


def equivalent_keys() -> set[str]:
    """Keys listed as equivalent (lines `- path:LINE: func: desc — why`)."""
    keys = set()
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            m = re.match(r"^- `([^`]+)`", line)
            if m:
                keys.add(re.sub(r"^([^:]+):\d+:", r"\1:", m.group(1)))
    return keys


def to_module_path(arg: str) -> str:
    if arg.endswith(".py"):
        return str(Path(arg))
    return arg.replace(".", "/") + ".py"


def copy_tree(root: Path, dest: Path) -> None:
    """Tracked and new (untracked, not ignored) files only: no .venv, no caches."""
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        src = root / raw.decode()
        if src.is_file():
            target = dest / raw.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


class FastFirst:
    """pytest plugin: property tests last and at most HYPOTHESIS_EXAMPLES derandomized examples.

    A mutant that a table test kills then dies in a fraction of a second; the property tests
    still run for the mutants that get that far, a few examples each.
    """

    @staticmethod
    def pytest_collection_modifyitems(items: list) -> None:
        def is_property(item) -> bool:
            return hasattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings")

        items.sort(key=is_property)  # stable: table tests keep their order
        for item in items:
            if is_property(item):
                from hypothesis import settings

                old = item.obj._hypothesis_internal_use_settings
                item.obj._hypothesis_internal_use_settings = settings(
                    old,
                    max_examples=min(old.max_examples, HYPOTHESIS_EXAMPLES),
                    database=None,
                    derandomize=True,
                    deadline=None,
                )


class Retrace:
    """pytest plugin for the traced baseline: Python drops a trace function that raises, as
    one does when a test recurses to the limit (deeply nested TOML, JSON, XML); without this,
    every later test would go untraced and its lines' mutants would "survive" without a run."""

    def __init__(self, tracer: Callable) -> None:
        self.tracer = tracer

    def pytest_runtest_setup(self, item: object) -> None:
        if sys.gettrace() is None:
            sys.settrace(self.tracer)


def run_child(
    args: list[str], timeout: float, trace_files: list[str] | None = None, quiet: bool = True
) -> tuple[str, dict]:
    """Run pytest in a forked child: ('pass'|'fail'|'timeout', info from the child)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        rc = 99
        info: dict = {}
        try:
            if quiet:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            lines: dict[str, set[int]] = {}
            if trace_files:
                wanted = {str(Path(f).resolve()) for f in trace_files}

                def local(frame, event, arg):
                    if event == "line":
                        lines.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
                    return local

                def glob_trace(frame, event, arg):
                    if frame.f_code.co_filename in wanted:
                        lines.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
                        return local
                    return None

                import threading

                threading.settrace(glob_trace)
                sys.settrace(glob_trace)
            import pytest

            plugins: list[object] = [FastFirst()]
            if trace_files:
                plugins.append(Retrace(glob_trace))
            rc = int(pytest.main(args, plugins=plugins))
            sys.settrace(None)
            root = str(Path.cwd())
            info = {
                "lines": {k: sorted(v) for k, v in lines.items()},
                "modules": sorted(
                    name
                    for name, mod in list(sys.modules.items())
                    if not name.startswith(("moxcli", "tests", "conftest", "__"))
                    and not str(getattr(mod, "__file__", None) or "").startswith(root)
                    and "." not in name
                ),
                "moxcli": getattr(sys.modules.get("moxcli"), "__file__", None),
            }
        finally:
            data = json.dumps(info).encode()
            with os.fdopen(wfd, "wb") as w:
                w.write(data)
            os._exit(rc)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    os.set_blocking(rfd, False)
    status = None
    while True:
        try:
            chunk = os.read(rfd, 65536)
            if chunk:
                chunks.append(chunk)
        except BlockingIOError:
            pass
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rfd)
            return "timeout", {}
        time.sleep(0.01)
    os.set_blocking(rfd, True)
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    try:
        info = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        info = {}
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return ("pass" if ok else "fail"), info


def _key_of(label: str) -> str:
    return re.sub(r"^([^:]+):\d+:", r"\1:", label.strip())


def run_module(
    module: str, tree: Path, equivalent: set[str], verbose: bool, exclude: str = "", only: set[str] | None = None
) -> dict:
    target = tree / module
    original = target.read_text()
    tests = tests_for(module, tree, exclude)
    if not tests:
        sys.exit(f"mutation: {module}: no tests mapped in {TESTS_MAP.name}")
    args = [*PYTEST_ARGS, *tests]
    t0 = time.monotonic()
    result, info = run_child(args, 600, trace_files=[str(target)])
    base = time.monotonic() - t0
    if result != "pass":
        run_child(args, 600, quiet=False)
        sys.exit(f"mutation: {module}: the unmutated tests fail ({' '.join(tests)})")
    if not str(info.get("moxcli", "")).startswith(str(tree)):
        sys.exit(f"mutation: tests imported moxcli from {info.get('moxcli')}, not the copy")
    for name in info.get("modules", []):  # warm the parent so each fork starts fast
        with contextlib.suppress(Exception):  # one that does not import is just not preloaded
            __import__(name)
    covered = set(info.get("lines", {}).get(str(target.resolve()), []))
    timeout = max(15.0, base * 2)  # the traced baseline is slower than a mutant run
    mutants = mutants_of(module, original)
    if only is not None:
        mutants = [m for m in mutants if m.key in only]
    print(f"{module}: {len(mutants)} mutants, tests: {' '.join(tests)} (baseline {base:.1f}s)")
    killed = timeouts = 0
    survivors: list[Mutant] = []
    equivalents: list[Mutant] = []
    try:
        for n, m in enumerate(mutants, 1):
            src = mutated_source(original, m)
            if only is None and not covered.intersection(range(m.covered_by[0], m.covered_by[1] + 1)):
                # No test executes the line: it survives without a run. Mutants asked for by
                # --only always run (a line reached only after a test's RecursionError, which
                # stops the tracer for that test, counts as not executed).
                outcome = "pass"
            else:
                target.write_text(src)
                outcome, _ = run_child(args, timeout)
            if outcome == "pass":
                if m.key in equivalent:
                    equivalents.append(m)
                else:
                    survivors.append(m)
            else:
                killed += 1
                timeouts += outcome == "timeout"
            if verbose:
                print(f"  [{n}/{len(mutants)}] {outcome:7} {m.label()}", flush=True)
    finally:
        target.write_text(original)
    scored = len(mutants) - len(equivalents)
    score = 100.0 * killed / scored if scored else 100.0
    return {
        "module": module,
        "mutants": len(mutants),
        "killed": killed,
        "timeouts": timeouts,
        "equivalent": len(equivalents),
        "survived": len(survivors),
        "score": score,
        "survivors": [m.label() for m in survivors],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="+", help="moxcli/dane/verify.py or moxcli.dane.verify")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every mutant's outcome")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    ap.add_argument(
        "--only",
        metavar="FILE",
        help="run only the mutants listed in FILE (lines as printed: 'path:line: function: mutation'), "
        "e.g. the survivors of an earlier run after adding tests",
    )
    ap.add_argument(
        "--exclude-tests",
        metavar="GLOB",
        default="",
        help="leave out mapped test files matching GLOB (e.g. 'tests/test_mutation_pins_*' for a before score)",
    )
    opts = ap.parse_args()
    root = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    modules = [to_module_path(m) for m in opts.modules]
    for m in modules:
        if not (root / m).is_file():
            sys.exit(f"mutation: {m}: no such module")
    if opts.list:
        for m in modules:
            for mutant in mutants_of(m, (root / m).read_text()):
                print(mutant.label())
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still remove the temp copy
    equivalent = equivalent_keys()
    json_out = Path(opts.json).resolve() if opts.json else None
    only = None
    if opts.only:
        only = {
            _key_of(line.replace("SURVIVED", "", 1))
            for line in Path(opts.only).read_text().splitlines()
            if line.strip()
        }
    results = []
    with tempfile.TemporaryDirectory(prefix="moxcli-mutation-") as tmp:
        tree = Path(tmp)
        copy_tree(root, tree)
        os.chdir(tree)
        sys.path.insert(0, str(tree))
        sys.dont_write_bytecode = True  # a mutant must never be served from a stale .pyc
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        for m in modules:
            r = run_module(m, tree, equivalent, opts.verbose, opts.exclude_tests, only)
            results.append(r)
            for label in r["survivors"]:
                print(f"  SURVIVED {label}")
            print(
                f"{m}: {r['killed']}/{r['mutants'] - r['equivalent']} killed = {r['score']:.1f}%"
                f" ({r['equivalent']} equivalent, {r['survived']} survived,"
                f" {r['timeouts']} of the killed by timeout: re-run those with --only on a quiet machine)",
                flush=True,
            )
    if len(results) > 1:
        print("\nmodule | mutants | killed | equivalent | survived | score")
        for r in results:
            print(
                f"{r['module']} | {r['mutants']} | {r['killed']} | {r['equivalent']}"
                f" | {r['survived']} | {r['score']:.1f}%"
            )
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

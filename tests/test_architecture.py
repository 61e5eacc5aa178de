"""The package's shape holds: no import cycles, compute never imports plotting, the core never
imports torch/MONAI, nothing imports the CLI, no module over 650 lines, no function hides a
submodule, and every ``__init__.py`` only re-exports. The rules are in docs/ARCHITECTURE.md.

Imports are read from the source (``ast``), function-level imports included, so a lazy import
that would close a cycle at run time counts too.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import metevo

SRC = Path(metevo.__file__).parent
MAX_LINES = 650
#: modules that may draw (import metevo.plotting): the faces
FACES = ("metevo.cli", "metevo.plotting", "metevo.runner", "metevo.report", "metevo.viewer")
#: the only places that may import torch/MONAI
HEAVY_OK = ("metevo.segmentation",)
#: the foundation every module may import
BASE = {"columns", "exceptions", "dictionary", "_version"}
#: what each subpackage may import besides BASE (docs/ARCHITECTURE.md, "Import rules")
ALLOWED = {
    "cohort": set(),
    "tracking": {"cohort"},
    "response": {"cohort"},
    "radiomics": {"cohort"},
    "evolution": {"cohort", "tracking", "radiomics"},
    "patterns": {"survival"},
    "survival": {"patterns"},
    "datasets": set(),
    "evaluation": {"cohort", "tracking", "datasets"},
    "segmentation": {"cohort", "datasets"},
    "export": {"cohort", "tracking"},
    "viewer": {"cohort", "tracking"},
    "followup": {"response", "survival"},
    "plotting": {"cohort", "tracking", "response", "radiomics", "evolution", "patterns", "survival"},
    "report": {"cohort", "tracking", "plotting"},
    "runner": {
        "cohort",
        "tracking",
        "response",
        "radiomics",
        "evolution",
        "patterns",
        "survival",
        "plotting",
        "datasets",
        "segmentation",
        "export",
        "report",
    },
}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def import_graph(mods: dict[str, Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(metevo module -> metevo modules it imports, module -> third-party top names)``."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    external: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                if n.split(".")[0] != "metevo":
                    external[m].add(n.split(".")[0])
                    continue
                r = resolve(n)
                # a module importing its own package (or the root) is not an edge
                if r and r != m and not m.startswith(r + ".") and r != "metevo":
                    graph[m].add(r)
    return graph, external


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        cycles.append(sorted(comp))
    return cycles


MODS = _modules()
GRAPH, EXTERNAL = import_graph(MODS)


def test_cycle_finder_finds_a_known_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_reads_function_level_imports(tmp_path):
    pkg = tmp_path / "metevo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from metevo.sub._a import f\n")
    (pkg / "sub" / "_a.py").write_text(
        "def f():\n    from metevo.sub import _b\n    import torch\n"
    )
    (pkg / "sub" / "_b.py").write_text("from metevo.sub._a import f\n")
    mods = {
        "metevo": pkg / "__init__.py",
        "metevo.sub": pkg / "sub" / "__init__.py",
        "metevo.sub._a": pkg / "sub" / "_a.py",
        "metevo.sub._b": pkg / "sub" / "_b.py",
    }
    graph, external = import_graph(mods)
    assert graph["metevo.sub._a"] == {"metevo.sub._b"} and external["metevo.sub._a"] == {"torch"}
    assert find_cycles(graph) == [["metevo.sub._a", "metevo.sub._b"]]


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_subpackages_import_only_what_the_rules_allow():
    offenders = []
    for m, deps in GRAPH.items():
        part = m.split(".")[1] if "." in m else None
        if part not in ALLOWED:
            continue
        for d in deps:
            target = d.split(".")[1]
            if target != part and target not in BASE and target not in ALLOWED[part]:
                offenders.append(f"{m} -> {d}")
    assert offenders == [], "imports outside docs/ARCHITECTURE.md's rules: " + ", ".join(offenders)


def test_compute_never_imports_plotting():
    offenders = sorted(
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if not _within(m, FACES) and m != "metevo"
        for d in deps
        if _within(d, ("metevo.plotting",))
    )
    assert offenders == [], "compute modules import plotting (only faces may): " + ", ".join(
        offenders
    )


def test_core_never_imports_torch_or_monai():
    offenders = sorted(
        m for m, ext in EXTERNAL.items() if ext & {"torch", "monai"} and not _within(m, HEAVY_OK)
    )
    assert offenders == [], f"modules outside segmentation import torch/MONAI: {offenders}"


def test_nothing_imports_the_cli():
    offenders = sorted(m for m, deps in GRAPH.items() if "metevo.cli" in deps)
    assert offenders == [], f"modules importing metevo.cli: {offenders}"


def test_no_module_over_the_size_limit():
    sizes = {m: len(f.read_text(encoding="utf-8").splitlines()) for m, f in MODS.items()}
    big = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines (split them by concept): {big}"


def _packages() -> list[str]:
    return sorted(m for m, f in MODS.items() if f.name == "__init__.py")


@pytest.mark.parametrize("package", _packages())
def test_no_function_shadows_a_submodule(package):
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not hasattr(pkg, info.name):
            continue
        attr = getattr(pkg, info.name)
        assert getattr(attr, "__name__", None) == f"{package}.{info.name}", (
            f"{package}.{info.name} is {attr!r}, which hides the submodule of that name"
        )


@pytest.mark.parametrize("package", _packages())
def test_init_only_reexports(package):
    tree = ast.parse(MODS[package].read_text(encoding="utf-8"))
    body = tree.body
    assert body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), (
        f"{package}/__init__.py needs a docstring saying what goes in and what comes out"
    )
    for node in body[1:]:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        is_all = isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
            "__all__"
        ]
        assert is_all, f"{package}/__init__.py holds logic at line {node.lineno} (re-exports only)"
        names = ast.literal_eval(node.value)
        assert names == sorted(names), f"{package}.__all__ is not sorted"


def test_top_level_stays_small():
    top = sorted(f.name for f in SRC.glob("*.py"))
    assert len(top) <= 10, top

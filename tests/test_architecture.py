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


#: the only functions an ``__init__.py`` may define: PEP 562's lazy re-export hooks
LAZY_HOOKS = {"__getattr__", "__dir__"}
#: what those hooks may call (import the module named in ``_EXPORTS``, fetch, cache, list)
LAZY_CALLS = {"importlib.import_module", "getattr", "globals", "sorted", "set", "AttributeError"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return getattr(node, "id", "?")


def init_problems(source: str, package: str) -> list[str]:
    """What keeps an ``__init__.py`` from being re-exports only (empty list: it is).

    Eager form: a docstring, imports and a sorted ``__all__``. Lazy form (PEP 562): besides
    those, one ``if TYPE_CHECKING:`` block of imports, a literal ``_EXPORTS`` dict (name -> module)
    and the hooks ``__getattr__`` / ``__dir__`` calling nothing but :data:`LAZY_CALLS`; then the
    block, ``_EXPORTS`` and ``__all__`` must name the same things from the same modules.
    """
    body = ast.parse(source).body
    problems = []
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
        problems.append(
            f"{package}/__init__.py needs a docstring saying what goes in and what comes out"
        )
    eager: set[str] = set()
    typing_names: dict[str, str] = {}
    exports: dict[str, str] | None = None
    names: list[str] = []
    hooks: set[str] = set()

    def imported(node: ast.ImportFrom) -> dict[str, str]:
        return {
            a.asname or a.name: f"{node.module}.{a.name}" if node.module == package else node.module
            for a in node.names
        }

    for node in body[1:]:
        target = [
            getattr(t, "id", "") for t in getattr(node, "targets", [getattr(node, "target", None)])
        ]
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                eager |= set(imported(node))
        elif isinstance(node, ast.If) and _dotted(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            if node.orelse or not all(isinstance(n, ast.ImportFrom) for n in node.body):
                problems.append(
                    f"{package}/__init__.py: the TYPE_CHECKING block holds more than imports"
                )
            for n in node.body:
                typing_names.update(imported(n) if isinstance(n, ast.ImportFrom) else {})
        elif isinstance(node, ast.Assign | ast.AnnAssign) and target == ["__all__"]:
            names = ast.literal_eval(node.value)
            if names != sorted(names):
                problems.append(f"{package}.__all__ is not sorted")
        elif isinstance(node, ast.Assign | ast.AnnAssign) and target == ["_EXPORTS"]:
            exports = ast.literal_eval(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name in LAZY_HOOKS:
            hooks.add(node.name)
            calls = {_dotted(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
            loops = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.For | ast.While | ast.Import | ast.ImportFrom)
            ]
            if calls - LAZY_CALLS or loops:
                problems.append(
                    f"{package}.{node.name} does more than a lazy re-export: calls "
                    f"{sorted(calls - LAZY_CALLS)}, loops/imports at lines {[n.lineno for n in loops]}"
                )
        else:
            problems.append(
                f"{package}/__init__.py holds logic at line {node.lineno} (re-exports only)"
            )
    if exports is None and not hooks and not typing_names:
        return problems
    if exports is None or "__getattr__" not in hooks or not typing_names:
        problems.append(
            f"{package}/__init__.py: a lazy init needs _EXPORTS, __getattr__ and a TYPE_CHECKING "
            "block of the same imports"
        )
        return problems
    if typing_names != exports:
        diff = sorted(set(typing_names.items()) ^ set(exports.items()))
        problems.append(f"{package}: TYPE_CHECKING imports and _EXPORTS differ: {diff}")
    if set(names) != set(exports) | (eager & set(names)) or set(exports) - set(names):
        missing = sorted(set(names) - set(exports) - eager)
        extra = sorted(set(exports) - set(names))
        problems.append(
            f"{package}.__all__ and _EXPORTS differ: in __all__ only {missing}, in _EXPORTS only {extra}"
        )
    return problems


def test_init_checker_catches_a_broken_lazy_init():
    lazy = (
        '"""Doc."""\nimport importlib\nfrom typing import TYPE_CHECKING\n'
        "if TYPE_CHECKING:\n    from metevo.cohort import Cohort, Scan\n"
        "_EXPORTS = NAMES\n__all__ = ['Cohort', 'Scan']\n"
        "def __getattr__(name):\n    return getattr(importlib.import_module(_EXPORTS[name]), name)\n"
    )
    good = {"Cohort": "metevo.cohort", "Scan": "metevo.cohort"}
    assert init_problems(lazy.replace("NAMES", repr(good)), "metevo") == []
    missing = init_problems(lazy.replace("NAMES", repr({"Cohort": "metevo.cohort"})), "metevo")
    assert any("TYPE_CHECKING imports and _EXPORTS differ" in p for p in missing)
    assert any("in __all__ only ['Scan']" in p for p in missing)
    wrong_module = init_problems(
        lazy.replace("NAMES", repr({**good, "Scan": "metevo.tracking"})), "metevo"
    )
    assert any("('Scan', 'metevo.tracking')" in p for p in wrong_module)
    logic = lazy.replace("NAMES", repr(good)).replace(
        "return getattr", "print(name)\n    return getattr"
    )
    assert any("calls ['print']" in p for p in init_problems(logic, "metevo"))
    assert any("holds logic at line" in p for p in init_problems('"""Doc."""\nx = 1\n', "metevo"))


@pytest.mark.parametrize("package", _packages())
def test_init_only_reexports(package):
    assert init_problems(MODS[package].read_text(encoding="utf-8"), package) == []


def test_top_level_stays_small():
    top = sorted(f.name for f in SRC.glob("*.py"))
    assert len(top) <= 10, top

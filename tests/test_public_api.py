"""The flat public namespace: ``metevo.__all__`` is sorted, every name resolves (lazily, PEP 562)
to the object its subpackage defines and is documented, and the ``__init__`` holds no logic
beyond the lazy re-export hooks (the full structural check is ``test_architecture``'s)."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest
from conftest import run_python

import metevo


def test_all_is_sorted_and_importable():
    assert list(metevo.__all__) == sorted(metevo.__all__)
    for name in metevo.__all__:
        assert hasattr(metevo, name), name


def test_every_name_is_the_object_its_module_defines():
    assert set(metevo._EXPORTS) == set(metevo.__all__) - {"__version__"}
    for name, module in metevo._EXPORTS.items():
        source = importlib.import_module(module)
        expected = source if module == f"metevo.{name}" else getattr(source, name)
        assert getattr(metevo, name) is expected, name
    assert set(metevo.__all__) <= set(dir(metevo))


def test_every_public_name_has_a_docstring():
    undocumented = [
        name
        for name in metevo.__all__
        if name != "__version__" and not (inspect.getdoc(getattr(metevo, name)) or "").strip()
    ]
    assert undocumented == []


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="module 'metevo' has no attribute 'not_a_name'"):
        metevo.not_a_name  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'not_a_name' from 'metevo'"):
        from metevo import not_a_name  # noqa: F401


def test_names_resolve_in_a_fresh_process():
    """``from metevo import X`` works for every name before anything else was imported."""
    code = "import metevo\n" + "".join(f"from metevo import {n}\n" for n in metevo.__all__)
    res = run_python("-c", code)
    assert res.returncode == 0, res.stderr


def test_init_has_no_logic():
    tree = ast.parse(inspect.getsource(metevo))
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr)
    for node in tree.body:
        if isinstance(node, ast.If):  # the TYPE_CHECKING block: imports for IDEs only
            assert ast.unparse(node.test) == "TYPE_CHECKING" and not node.orelse
            assert all(isinstance(n, ast.ImportFrom) for n in node.body)
        elif isinstance(node, ast.FunctionDef):
            assert node.name in ("__getattr__", "__dir__"), node.name
        else:
            assert isinstance(node, allowed), ast.dump(node)[:80]

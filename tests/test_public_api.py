import metevo


def test_all_is_sorted_and_importable():
    assert list(metevo.__all__) == sorted(metevo.__all__)
    for name in metevo.__all__:
        assert hasattr(metevo, name), name


def test_init_has_no_logic():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metevo))
    allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr)
    assert all(isinstance(node, allowed) for node in tree.body)

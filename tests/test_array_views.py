"""No NumPy view of a temporary SimpleITK image in the package (issue 18).

``sitk.GetArrayViewFromImage(image)`` does not keep ``image`` alive: when the image is a
temporary (``GetArrayViewFromImage(sitk.Resample(...))``) it is freed as soon as the call
returns and the view reads freed memory, whose content depends on what the allocator did since
(the registration QC's liver Dice came out NaN inside the full test suite that way). Read from
the source with ``ast``: the argument must be a name, an attribute or a subscript.
"""

from __future__ import annotations

import ast
from pathlib import Path

import metevo

SRC = Path(metevo.__file__).parent


def views_of_temporaries(source: str, name: str = "<source>") -> list[str]:
    """``file:line`` of each ``GetArrayViewFromImage`` call whose argument is not a name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = getattr(node.func, "attr", getattr(node.func, "id", None))
        if func == "GetArrayViewFromImage" and node.args:
            if not isinstance(node.args[0], (ast.Name, ast.Attribute, ast.Subscript)):
                found.append(f"{name}:{node.lineno}")
    return found


def test_the_checker_finds_a_view_of_a_temporary():
    bad = "keep = sitk.GetArrayViewFromImage(sitk.Resample(a, b)).astype(bool)\n"
    good = "img = sitk.Resample(a, b)\nkeep = sitk.GetArrayViewFromImage(img) != 0\n"
    assert views_of_temporaries(bad) == ["<source>:1"]
    assert views_of_temporaries(good) == []


def test_no_view_of_a_temporary_image_in_the_package():
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        for hit in views_of_temporaries(path.read_text(), str(path.relative_to(SRC)))
    ]
    assert found == [], f"views of temporary images (keep the image in a name): {found}"

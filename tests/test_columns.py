"""``metevo.columns``: the ``recist_lesions.lesion_id`` format, written and read in one place."""

from __future__ import annotations

import math

import pytest

from metevo.columns import parse_recist_lesion_id, recist_lesion_id


def test_recist_lesion_ids_are_written_as_documented():
    # data_dictionary/recist_lesions.schema.json: L<id> baseline lesion, N<timepoint>:<id> new
    assert recist_lesion_id(3) == "L3"
    assert recist_lesion_id(12, new_at="V2") == "NV2:12"
    assert recist_lesion_id(4, new_at="2021-03-01T10:00") == "N2021-03-01T10:00:4"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("L3", (None, 3)),
        ("L012", (None, 12)),
        ("NV2:12", ("V2", 12)),
        ("N2021-03-01T10:00:4", ("2021-03-01T10:00", 4)),  # a timepoint holding ':'
        ("NL1:5", ("L1", 5)),  # a timepoint that looks like an id is still a timepoint
        ("L", None),
        ("L3a", None),
        ("L-3", None),
        ("N:3", None),
        ("NV2:", None),
        ("NV2", None),
        ("3", None),
        ("l3", None),
        (3, None),
        (math.nan, None),
        (None, None),
    ],
)
def test_parse_recist_lesion_id(value, expected):
    assert parse_recist_lesion_id(value) == expected


@pytest.mark.parametrize(("lesion_id", "new_at"), [(1, None), (27, None), (5, "V1"), (8, "a:b")])
def test_parse_inverts_the_writer(lesion_id, new_at):
    assert parse_recist_lesion_id(recist_lesion_id(lesion_id, new_at=new_at)) == (new_at, lesion_id)

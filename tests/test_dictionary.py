"""Every table metevo writes is documented, and matches its schema."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from metevo.dictionary import (
    coerce_table,
    load_schema,
    main,
    render_markdown,
    schema_names,
    validate_table,
)


@pytest.fixture(scope="session")
def demo_outputs(tiny_analysis, tiny_cohort, tmp_path_factory):
    """The demo's outputs: the analysed tiny cohort plus the cohort-level steps (patterns, figures)."""
    import warnings

    from metevo.runner.demo import post_analysis

    folder = tmp_path_factory.mktemp("demo_outputs") / "analysis"
    shutil.copytree(tiny_analysis.out_dir, folder, ignore=shutil.ignore_patterns("_shards"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statistical warnings on 6 patients are expected
        post_analysis(folder, clinical=tiny_cohort.clinical, min_pattern_patients=0)
    return folder


def test_every_written_table_is_documented_and_valid(demo_outputs):
    written = sorted(p.stem for p in demo_outputs.glob("*.parquet"))
    expected = {
        "scans",
        "lesions",
        "lesion_edges",
        "registrations",
        "recist",
        "patients",
        "radiomics",
        "trajectories",
        "patient_trajectories",
        "failures",
        "patterns",
    }
    assert expected <= set(written), f"missing tables: {expected - set(written)}"
    undocumented = [t for t in written if load_schema(t) is None]
    assert not undocumented, f"add data_dictionary/<table>.schema.json for {undocumented}"
    import pandera.errors

    problems = {}
    for table in written:
        frame = pd.read_parquet(demo_outputs / f"{table}.parquet")
        try:
            validate_table(frame, table)
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases[["column", "check", "failure_case"]].drop_duplicates()
            problems[table] = cases.head(20).to_dict("records")
    assert not problems, problems


def test_undocumented_column_fails():
    import pandera.errors

    frame = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "stage": ["scans"],
            "error_type": ["E"],
            "error": ["x"],
            "extra": [1],
        }
    )
    with pytest.raises(pandera.errors.SchemaErrors, match="extra"):
        validate_table(frame, "failures")
    with pytest.raises(KeyError, match="is not documented"):
        validate_table(frame, "no_such_table")


def test_wrong_type_and_enum_fail():
    import pandera.errors

    scans = pd.DataFrame({"qc_flag": ["fine"]})
    with pytest.raises(pandera.errors.SchemaErrors):
        validate_table(scans, "scans")
    frame = coerce_table(pd.DataFrame({"days": ["3"]}), "scans")
    assert str(frame["days"].dtype) == "Int64"


def test_schemas_are_well_formed():
    for name in schema_names():
        schema = load_schema(name)
        assert schema["name"] == name
        assert schema["description"] and schema["fields"]
        names = [f["name"] for f in schema["fields"]]
        assert len(names) == len(set(names)), f"{name}: duplicated fields"
        key = schema.get("primaryKey", [])
        assert set(key) <= set(names), f"{name}: primary key not among the fields"
        for f in schema["fields"]:
            assert f.get("description"), f"{name}.{f['name']} has no description"


def test_rendered_page_is_up_to_date():
    assert main(["--check"]) == 0, "run: python -m metevo.dictionary"
    assert "## scans" in render_markdown()

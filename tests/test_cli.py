"""The CLI on hand-made cohorts and on the real CT of ../shared/data/ct_example."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import run_python
from typer.testing import CliRunner

from metevo._version import __version__
from metevo.cli import app

runner = CliRunner()


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"metevo {__version__}"


#: what `import metevo`, `import metevo.cli`, `metevo --help` and `--version` must not import:
#: deep learning, numba (radiomics), imaging I/O, scikit-learn/scipy, the pandas/pyarrow stack,
#: plotting and the survival/distributed libraries (each costs 0.1-1.5 s of start-up)
HEAVY = (
    "torch", "monai", "numba", "SimpleITK", "nibabel", "skimage", "sklearn", "scipy", "pandas",
    "pyarrow", "matplotlib", "lifelines", "dask", "radiomics",
)  # fmt: skip


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["segment", "--help"]])
def test_start_up_imports_nothing_heavy(argv):
    code = (
        "import sys, json\nimport metevo\nimport metevo.cli\n"
        f"sys.argv = ['metevo', *{argv!r}]\n"
        "try:\n    metevo.cli.app()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    res = run_python("-c", code)
    assert res.returncode == 0, res.stderr
    exit_code, heavy = json.loads(res.stdout.strip().splitlines()[-1])
    assert exit_code in (0, None) and heavy == []
    assert "Usage: metevo" in res.stdout or res.stdout.startswith("metevo ")


def test_validate_reports_problems(mini_cohort):
    res = runner.invoke(app, ["validate", str(mini_cohort["manifest"])])
    assert res.exit_code == 0, res.output
    assert "9 scan(s) of 3 patient(s) checked; 0 problem(s)." in res.output
    path = mini_cohort["root"] / "P002" / "V2" / "liver.nii.gz"
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    img = sitk.GetImageFromArray(arr[:, :, :-1].copy())
    img.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(img, str(path))
    res = runner.invoke(app, ["validate", str(mini_cohort["manifest"])])
    assert res.exit_code == 1
    assert "P002 V2:" in res.output and "size (32, 32, 12) vs (31, 32, 12)" in res.output


def test_analyze_cli(mini_cohort, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "analyze",
            str(mini_cohort["manifest"]),
            "--out",
            str(out),
            "--clinical",
            str(mini_cohort["clinical"]),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    scans = pd.read_parquet(out / "scans.parquet")
    assert len(scans) == 9
    assert (out / "failures.parquet").exists()


def test_fail_and_echo_warnings(capsys):
    import typer

    from metevo._cli_common import echo_warnings, fail

    with pytest.raises(typer.Exit) as stop:
        fail(ValueError("manifest m.csv lacks column 'date'"))
    assert stop.value.exit_code == 2
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("first", UserWarning, stacklevel=1)
        warnings.warn("second", UserWarning, stacklevel=1)
    echo_warnings(caught)
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        "error: manifest m.csv lacks column 'date'\nwarning: first\nwarning: second\n"
    )


def test_analyze_cli_bad_table_exits_2(mini_cohort, tmp_path):
    bad = tmp_path / "m.csv"
    pd.read_csv(mini_cohort["manifest"]).drop(columns="date").to_csv(bad, index=False)
    res = runner.invoke(app, ["analyze", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "lacks required column(s) ['date']" in res.output


def _paint_lesion(liver: sitk.Image, radius_mm: float = 9.0) -> tuple[sitk.Image, int]:
    """A ball lesion centred in the liver's deepest voxel, on the liver's grid."""
    arr = sitk.GetArrayViewFromImage(liver) > 0
    dist = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(
            liver > 0, insideIsPositive=True, useImageSpacing=True, squaredDistance=False
        )
    )
    center = np.unravel_index(np.argmax(np.where(arr, dist, -np.inf)), arr.shape)
    sz, sy, sx = liver.GetSpacing()[::-1]
    zz, yy, xx = np.indices(arr.shape)
    ball = (
        ((zz - center[0]) * sz) ** 2 + ((yy - center[1]) * sy) ** 2 + ((xx - center[2]) * sx) ** 2
    ) <= radius_mm**2
    ball &= arr
    out = sitk.GetImageFromArray(ball.astype(np.uint8))
    out.CopyInformation(liver)
    return out, int(ball.sum())


@pytest.mark.parametrize("version", ["nifti", "dicom"])
def test_real_ct_validate_and_analyze(shared_data, tmp_path, version):
    ct_dir = shared_data / "ct_example"
    if version == "nifti":
        image, seg_path, resample = (
            ct_dir / "example_ct_sm.nii.gz",
            ct_dir / "example_seg.nii.gz",
            [],
        )
    else:
        image, seg_path, resample = (
            ct_dir / "example_ct_dicom",
            ct_dir / "example_seg_dicom.nii.gz",
            ["--resample-masks"],
        )
    ct = sitk.ReadImage(str(image)) if version == "nifti" else None
    seg = sitk.ReadImage(str(seg_path))
    liver = sitk.Cast(seg == 5, sitk.sitkUInt8)
    if version == "dicom":
        # the segmentation is stored LAS; put the painted lesion on the DICOM (LPS) grid
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(image)))
        ct = reader.Execute()
        liver = sitk.Resample(
            liver, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
        )
    lesion, lesion_voxels = _paint_lesion(liver)
    assert lesion_voxels > 20
    sitk.WriteImage(lesion, str(tmp_path / "lesion.nii.gz"))
    pd.DataFrame(
        [
            {
                "patient_id": "RC01",
                "timepoint": "V0",
                "date": "2022-12-08",
                "image": str(image),
                "lesion_mask": "lesion.nii.gz",
                "liver_mask": str(seg_path),
            }
        ]
    ).to_csv(tmp_path / "manifest.csv", index=False)
    args = [str(tmp_path / "manifest.csv"), "--liver-label", "5", *resample]
    res = runner.invoke(app, ["validate", *args])
    assert res.exit_code == 0, res.output
    if version == "dicom":  # without resampling the LAS segmentation is refused, with the fix named
        res = runner.invoke(app, ["validate", str(tmp_path / "manifest.csv"), "--liver-label", "5"])
        assert res.exit_code == 1 and "direction" in res.output and "--resample-masks" in res.output
    res = runner.invoke(
        app, ["analyze", *args, "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    scans = pd.read_parquet(tmp_path / "out" / "scans.parquet")
    row = scans.iloc[0]
    from metevo.cohort.io import canonical_geometry

    # metevo reads every grid rounded to float32 (so a DICOM series equals its NIfTI copy)
    voxel_ml = np.prod(canonical_geometry(ct).GetSpacing()) / 1000
    assert row.lesion_voxels == lesion_voxels
    expected_liver = int((sitk.GetArrayViewFromImage(liver) > 0).sum()) * voxel_ml
    assert row.liver_volume_ml == pytest.approx(expected_liver)
    assert (row.size_x, row.size_y, row.size_z) == ct.GetSize()

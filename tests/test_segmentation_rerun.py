"""Run-once bookkeeping of metevo.segmentation: what is up to date is known without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_image

pytest.importorskip("torch")
pytest.importorskip("monai")

from metevo.segmentation import segment  # noqa: E402
from metevo.segmentation._backends import describe_spec  # noqa: E402


def _manifest(tmp_path, n=3):
    rows = []
    for i in range(n):
        vol = np.full((12, 40, 40), -1000, np.int16)
        vol[2:10, 6:34, 6:34] = 60
        vol[5:8, 15:20, 15:20] = 10
        path = write_image(tmp_path / "ct" / f"c{i}.nii.gz", vol, spacing=(3.0, 3.0, 3.0))
        rows.append({"patient_id": f"P{i}", "timepoint": "V0", "image": str(path)})
    table = pd.DataFrame(rows)
    table.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


@pytest.fixture
def done(tmp_path):
    """A manifest segmented once with the demo model."""
    import warnings

    manifest = _manifest(tmp_path)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo model may warn about these toy CTs
        new = segment(manifest, "demo", out, device="cpu")
    assert new.attrs["log"].status.tolist() == ["computed"] * 3
    return manifest, out


def test_up_to_date_rerun_imports_no_torch(done):
    manifest, out = done
    code = (
        "import sys, json\n"
        "from metevo.segmentation import segment\n"
        f"new = segment({str(manifest)!r}, 'demo', {str(out)!r}, device='cpu')\n"
        "print(json.dumps({'status': new.attrs['log'].status.tolist(),"
        " 'torch': 'torch' in sys.modules, 'monai': 'monai' in sys.modules,"
        " 'liver_ml': new.attrs['log'].liver_volume_ml.tolist()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["status"] == ["reused"] * 3
    assert not found["torch"] and not found["monai"]
    # the same rerun through the CLI (`metevo segment`) imports nothing heavy either: pandas and
    # pyarrow (manifest and log) only, no torch/MONAI, numba, imaging, scipy/scikit-learn, plots
    heavy = ("torch", "monai", "numba", "SimpleITK", "nibabel", "skimage", "sklearn", "scipy",
             "matplotlib", "lifelines", "dask", "radiomics")  # fmt: skip
    cli = (
        "import sys, json\nimport metevo.cli\n"
        f"sys.argv = ['metevo', 'segment', {str(manifest)!r}, '--out', {str(out)!r}, '--no-progress']\n"
        "try:\n    metevo.cli.app()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(json.dumps([code, sorted(m for m in {heavy!r} if m in sys.modules)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", cli], capture_output=True, text=True, env=env, check=True
    )
    assert "3 scan(s): 0 segmented, 3 up to date" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [0, []]
    log = pd.read_parquet(out / "segmentation_log.parquet")
    # volumes of reused scans come from the provenance and equal those of the masks
    import SimpleITK as sitk

    mask = sitk.ReadImage(str(out / "masks" / "P0" / "V0" / "liver.nii.gz"))
    expected = np.count_nonzero(sitk.GetArrayViewFromImage(mask)) * 27 / 1000
    assert found["liver_ml"][0] == pytest.approx(expected)
    assert log.liver_volume_ml[0] == pytest.approx(expected)


def test_touched_input_is_rehashed_changed_input_recomputed(done):
    manifest, out = done
    images = pd.read_csv(manifest).image
    os.utime(images[0], ns=(1_000_000_000, 1_000_000_000))  # same bytes, new mtime
    new = segment(manifest, "demo", out, device="cpu")
    assert new.attrs["log"].status.tolist() == ["reused"] * 3
    vol = np.full((12, 40, 41), -1000, np.int16)  # new content: new size and mtime
    write_image(Path(images[1]), vol, spacing=(3.0, 3.0, 3.0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = segment(manifest, "demo", out, device="cpu")
    assert again.attrs["log"].status.tolist() == ["reused", "computed", "reused"]


def test_nnunet_options_for_a_card_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"options \['folds'\] apply to nnunet:"):
        describe_spec("demo", folds=[0])
    with pytest.raises(FileNotFoundError, match=r"MONAI bundle .*nowhere: configs/inference.json is missing"):
        describe_spec("bundle:/nowhere")
    with pytest.raises(ValueError, match=r"options \['folds'\] apply to nnunet:.*not to MONAI"):
        describe_spec("bundle:/nowhere", folds=[0])
    with pytest.raises(ValueError, match="nothing after 'nnunet:'"):
        describe_spec("nnunet:")
    with pytest.raises(FileNotFoundError, match="nnU-Net model .*: no such folder"):
        describe_spec(f"nnunet:{tmp_path / 'missing'}")


def test_hash_cache_reads_a_file_again_only_when_it_changed(tmp_path, monkeypatch):
    from metevo.segmentation import _card

    target = tmp_path / "weights.pt"
    target.write_bytes(b"abc")
    calls = []
    real = _card.file_sha256
    monkeypatch.setattr(_card, "file_sha256", lambda p: calls.append(p) or real(p))
    cache = _card.HashCache(tmp_path / "hashes.json")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert cache(target) == expected and len(calls) == 1
    cache.save()
    again = _card.HashCache(tmp_path / "hashes.json")  # a later run
    assert again(target) == expected and len(calls) == 1
    target.write_bytes(b"abcd")
    assert again(target) != expected and len(calls) == 2

"""Several CTs per forward pass (``segmentation._multi``): the same masks as one CT at a time."""

from __future__ import annotations

import concurrent.futures as cf
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from _segmentation_helpers import (  # noqa: E402
    one_torch_thread,  # noqa: F401
    run_segmentation_benchmark_blocked,
)
from conftest import write_image  # noqa: E402

from metevo.exceptions import DataQualityWarning  # noqa: E402
from metevo.segmentation import load_model, predict_labels, segment  # noqa: E402
from metevo.segmentation._multi import WindowBatcher, predict_many  # noqa: E402

AFFINE = np.diag([3.0, 3.0, 5.0, 1.0])


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """Five small CTs: 48 x 48 x 19 voxel crops (3 x 3 x 5 mm) through the liver of the visits
    of a synthetic patient (seed 7, not the demo's training seed); one demo window each."""
    from metevo.datasets import make_synthetic_cohort

    synth = make_synthetic_cohort(tmp_path_factory.mktemp("synth"), n_patients=1, seed=7)
    out = []
    for path in sorted(synth.manifest.parent.rglob("ct.nii.gz")):
        vol = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)
        out.append(np.ascontiguousarray(vol[20:68, 28:76, 8:27]))
    assert len(out) == 5
    return out


@pytest.fixture(scope="module")
def demo():
    model = load_model("demo")
    model.network.eval()
    return model


def test_windows_of_several_cts_share_a_forward_pass_and_masks_are_unchanged(demo, crops):
    cts = crops
    one_at_a_time = [
        predict_labels(demo.network, v, AFFINE, demo.card, device="cpu", check_intensities=False)
        for v in cts
    ]
    sizes: list[int] = []

    def counted(x):
        sizes.append(int(x.shape[0]))
        return demo.network(x)

    jobs = [(n, lambda v=v: (v, AFFINE, {})) for n, v in enumerate(cts)]
    passes: list[int] = []
    found = {
        key: result
        for key, result, _ in predict_many(
            counted, jobs, demo.card, predict=predict_labels, device=torch.device("cpu"),
            batch_size=4, in_flight=4, max_wait_s=30.0, passes=passes, check_intensities=False,
        )
    }  # fmt: skip
    assert sorted(found) == [0, 1, 2, 3, 4]
    # each CT is one window at 3 mm (48 x 48 x 32 = the patch): 4 CTs in the first pass, then 1
    assert sizes == passes == [4, 1]
    for n, expected in enumerate(one_at_a_time):
        labels, extra = found[n]
        assert extra == {} and labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected)
    for expected in one_at_a_time:  # liver and lesions found: the comparison is not of blanks
        assert set(np.unique(expected)) == {0, 1, 2}


def test_a_failing_ct_fails_alone_and_no_client_hangs(demo, crops):
    def broken():
        raise OSError("cannot read ct 1")

    jobs = [(0, lambda: (crops[0], AFFINE, {})), (1, broken), (2, lambda: (crops[2], AFFINE, {}))]
    found = {
        key: result
        for key, result, _ in predict_many(
            demo.network, jobs, demo.card, predict=predict_labels, device=torch.device("cpu"),
            batch_size=4, in_flight=3, check_intensities=False,
        )
    }  # fmt: skip
    assert isinstance(found[1], OSError) and str(found[1]) == "cannot read ct 1"
    assert found[0][0].shape == found[2][0].shape == (48, 48, 19)

    def exploding(x):
        raise RuntimeError("network failed")

    batcher = WindowBatcher(exploding, batch_size=2, device=torch.device("cpu"), bf16=False)
    future: cf.Future = cf.Future()
    batcher._run([(torch.zeros(1, 1, 4, 4, 4), future)])  # the error goes to the waiting client
    with pytest.raises(RuntimeError, match="network failed"):
        future.result(timeout=5)


def test_segment_several_cts_at_once_writes_the_same_masks(demo, crops, tmp_path):
    rows = []
    for n, crop in enumerate(crops):
        vol = crop.transpose(2, 1, 0)  # (z, y, x) for SimpleITK
        path = write_image(tmp_path / "ct" / f"c{n}.nii.gz", vol, spacing=(3.0, 3.0, 5.0))
        rows.append({"patient_id": f"P{n}", "timepoint": "V0", "image": str(path)})
    manifest = pd.DataFrame(rows)
    out = {}
    for k in (1, 4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)  # not the demo's kind of CT
            new = segment(manifest, demo, tmp_path / f"out{k}", device="cpu", cts_per_batch=k)
        assert new.attrs["log"].status.tolist() == ["computed"] * 5
        out[k] = [
            sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"out{k}" / m)))
            for m in [*new.liver_mask, *new.lesion_mask]
        ]
    for a, b in zip(out[1], out[4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert sum(int(a.sum()) for a in out[1][:5]) > 0


def test_interrupted_run_with_several_cts_keeps_what_finished(demo, crops, tmp_path, monkeypatch):
    import metevo.segmentation._core as core_module

    rows = []
    for n, crop in enumerate(crops):
        path = write_image(
            tmp_path / "ct" / f"c{n}.nii.gz", crop.transpose(2, 1, 0), spacing=(3.0, 3.0, 5.0)
        )
        rows.append({"patient_id": f"P{n}", "timepoint": "V0", "image": str(path)})
    manifest, out = pd.DataFrame(rows), tmp_path / "out"
    real, calls = core_module.predict_labels, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while segmenting the third scan
        return real(*args, **kwargs)

    monkeypatch.setattr(core_module, "predict_labels", interrupted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        with pytest.raises(KeyboardInterrupt):
            segment(manifest, demo, out, device="cpu", cts_per_batch=2, batch_size=2)
        monkeypatch.setattr(core_module, "predict_labels", real)
        done = list(out.glob("masks/*/*/provenance.json"))
        assert 1 <= len(done) <= 3  # the scans finished before (or beside) the interrupted one
        new = segment(manifest, demo, out, device="cpu")
    statuses = dict(zip(new.patient_id, new.attrs["log"].status, strict=True))
    assert sum(s == "reused" for s in statuses.values()) == len(done)
    assert sum(s == "computed" for s in statuses.values()) == 5 - len(done)


@pytest.mark.slow
def test_multi_ct_benchmark_runs_with_torch_numpy_and_monai_only(tmp_path):
    args = ["--device", "cpu", "--multi-cts", "3", "--repeats", "1", "--threads", "1"]
    figures = run_segmentation_benchmark_blocked(args, tmp_path / "bench.json")["multi_ct"]
    assert figures["one_ct_at_a_time"]["ct_per_min"] > 0
    assert figures["several_cts_per_pass"]["ct_per_min"] > 0
    assert figures["voxels_total"] == 3 * 96 * 96 * 40 and figures["windows_per_pass_several"]

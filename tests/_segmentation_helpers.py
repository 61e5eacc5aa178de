"""Shared pieces of the segmentation tests: one torch thread, DICOM series written from an image."""

from __future__ import annotations

import locale

import pytest
import SimpleITK as sitk


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two OpenMP threads run several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_dicom_series(image, folder):
    """Write a CT as a DICOM series (int16 + rescale tags), one file per slice.

    GDCM's writer switches the process locale to "C" (Python's default text encoding becomes
    ASCII for the rest of the session); the locale is restored afterwards.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        return _write(image, folder)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write(image, folder):
    folder.mkdir(parents=True)
    image = sitk.Cast(image, sitk.sitkInt16)
    direction = image.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        s = image[:, :, k]
        for tag, value in (
            ("0008|0060", "CT"),
            ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"),
            ("0020|000e", "1.2.826.0.1.3680043.2.1125.2"),
            ("0008|0018", f"1.2.826.0.1.3680043.2.1125.3.{k + 1}"),
            ("0020|0013", str(k + 1)),
            ("0020|0037", "\\".join(f"{v:.6f}" for v in direction[0::3] + direction[1::3])),
            (
                "0020|0032",
                "\\".join(f"{v:.4f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            ),
            ("0018|0050", f"{image.GetSpacing()[2]:.4f}"),
            ("0028|1052", "0"),
            ("0028|1053", "1"),
        ):
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(s)
    return folder


BLOCKED_FOR_BENCHMARK = ("scipy", "pandas", "SimpleITK", "pyarrow")


def run_segmentation_benchmark_blocked(bench_args: list[str], out) -> dict:
    """Run ``benchmarks/bench_segmentation.py`` with scipy, pandas, SimpleITK and pyarrow made
    unimportable (the benchmark must run on a bare GPU box with torch, numpy and MONAI only);
    returns its JSON output."""
    import json
    import os
    import subprocess
    import sys

    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {BLOCKED_FOR_BENCHMARK!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import runpy\n"
        f"sys.argv = ['bench', *{list(bench_args)!r}, '--json', sys.argv[1]]\n"
        "runpy.run_path('benchmarks/bench_segmentation.py', run_name='__main__')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", blocker, str(out)], cwd=root, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())

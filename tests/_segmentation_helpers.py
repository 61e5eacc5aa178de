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

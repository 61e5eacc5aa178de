"""Segment every CT of a manifest once: masks, provenance, resume, a new manifest.

Layout of ``out_dir``::

    manifest.csv                  the input manifest with lesion_mask / liver_mask filled in
    segmentation_log.parquet      one row per scan: computed, reused or failed (and why)
    masks/<patient>/<timepoint>/liver.nii.gz, lesions.nii.gz, provenance.json

A scan is skipped when its ``provenance.json`` matches (same input bytes, model checksum,
preprocessing settings, metevo version) and both masks exist. Every file is written to a
temporary name and renamed, and the provenance is written last, so an interrupted run leaves
no half-written mask that a later run would trust.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metevo._version import __version__
from metevo.columns import Manifest, SegmentationLog
from metevo.exceptions import DataQualityWarning, ManifestError
from metevo.segmentation._card import HashCache, file_sha256

__all__ = ["read_ct", "segment"]

_MASK_OPTIONS = ("lesion_mask_kind", "lesion_label", "liver_mask_kind", "liver_label")
_MASKS = "masks"


def read_ct(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a CT with :func:`metevo.cohort.io.read_image`: ``(volume (x, y, z), LPS affine, header)``.

    ``header`` holds ``size``, ``spacing``, ``origin`` and ``direction`` for writing masks on the
    same grid. Integer volumes keep their dtype (cheaper to move to the GPU); others become
    float32.
    """
    import SimpleITK as sitk

    from metevo.cohort import io as mio
    from metevo.segmentation._core import lps_affine

    image = mio.read_image(path)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{path}: expected a 3-D single-channel CT, found a {image.GetDimension()}-D image "
            f"with {image.GetNumberOfComponentsPerPixel()} component(s) per voxel; give one "
            "volume per scan."
        )
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer) or array.dtype.itemsize > 4:
        array = array.astype(np.float32)
    header = {
        "size": tuple(image.GetSize()),
        "spacing": tuple(image.GetSpacing()),
        "origin": tuple(image.GetOrigin()),
        "direction": tuple(image.GetDirection()),
    }
    affine = lps_affine(header["spacing"], header["origin"], header["direction"])
    return np.ascontiguousarray(array.transpose(2, 1, 0)), affine, header


def input_sha256(path: str | Path) -> str:
    """SHA-256 of an image file, or of a DICOM folder's files (names and bytes, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(path)).encode())
        digest.update(file_sha256(item).encode())
    return digest.hexdigest()


def _load(path: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any], str]:
    """Worker task: read the CT and hash its bytes."""
    volume, affine, header = read_ct(path)
    return volume, affine, header, input_sha256(path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _read_manifest(
    manifest: str | Path | pd.DataFrame, base_dir: str | Path | None
) -> tuple[pd.DataFrame, Path, str]:
    if isinstance(manifest, pd.DataFrame):
        table, base, source = manifest.copy(), Path(base_dir or Path.cwd()), "(DataFrame)"
    else:
        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"manifest {path} does not exist.")
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
        base, source = Path(base_dir) if base_dir else path.parent, str(path)
    required = (Manifest.PATIENT_ID, Manifest.TIMEPOINT, Manifest.IMAGE)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ManifestError(
            f"manifest {source}: missing column(s) {missing}; segmentation needs "
            f"{list(required)} (found {list(table.columns)})."
        )
    table[Manifest.PATIENT_ID] = table[Manifest.PATIENT_ID].astype(str).str.strip()
    table[Manifest.TIMEPOINT] = table[Manifest.TIMEPOINT].astype(str).str.strip()
    dup = table.duplicated([Manifest.PATIENT_ID, Manifest.TIMEPOINT], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise ManifestError(
            f"manifest {source}: patient {first[Manifest.PATIENT_ID]} has several rows for "
            f"timepoint {first[Manifest.TIMEPOINT]!r}; each (patient_id, timepoint) must be unique."
        )
    blank = table[Manifest.IMAGE].isna() | (table[Manifest.IMAGE].astype(str).str.strip() == "")
    if blank.any():
        first = table[blank].iloc[0]
        raise ManifestError(
            f"manifest {source}: empty image path for patient {first[Manifest.PATIENT_ID]}, "
            f"timepoint {first[Manifest.TIMEPOINT]}; every row needs its CT."
        )
    return table.reset_index(drop=True), base, source


def describe_model(model: Any, *, sha256: Any = None, **options: Any) -> dict[str, Any]:
    """Name, checksum and settings of a model, without torch when given as a specification."""
    if not isinstance(model, (str, Path)):
        return {"name": model.name, "checksum": model.checksum, "settings": model.settings()}
    from metevo.segmentation._backends import describe_spec

    return describe_spec(str(model), sha256=sha256, **options)


def _provenance(identity: dict[str, Any], sha: str, overlap: float) -> dict[str, Any]:
    return {
        "metevo_version": __version__,
        "model": {"name": identity["name"], "checksum": identity["checksum"]},
        "preprocessing": {**identity["settings"], "overlap": overlap},
        "input": {"sha256": sha},
    }


def _up_to_date(
    folder: Path, identity: dict[str, Any], image: Path, overlap: float, hashes: HashCache
) -> dict[str, Any] | None:
    """The provenance when it matches, else ``None``.

    The input is re-hashed only when its size or modification time differ from those recorded.
    """
    try:
        found = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not all((folder / f).is_file() for f in ("liver.nii.gz", "lesions.nii.gz")):
        return None
    recorded = found.get("input", {}).get("sha256")
    stat = (found.get("written") or {}).get("input_stat")
    sha = None
    if recorded and stat and image.is_file():
        now = image.stat()
        if [now.st_size, now.st_mtime_ns] == list(stat):
            sha = recorded
    if sha is None:
        sha = hashes(image) if image.is_file() else input_sha256(image)
    expected = _provenance(identity, sha, overlap)
    same = {k: found.get(k) for k in expected} == json.loads(json.dumps(expected))
    return found if same else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_mask(mask_xyz: np.ndarray, header: dict[str, Any], path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(mask_xyz.transpose(2, 1, 0)))
    image.SetSpacing(header["spacing"])
    image.SetOrigin(header["origin"])
    image.SetDirection(header["direction"])
    tmp = path.with_name(f".{path.name[: -len('.nii.gz')]}.{os.getpid()}.tmp.nii.gz")
    sitk.WriteImage(image, str(tmp), True)
    os.replace(tmp, path)


def _store(
    folder: Path,
    liver: np.ndarray,
    lesion: np.ndarray,
    header: dict[str, Any],
    record: dict[str, Any],
) -> tuple[float, float]:
    """Write both masks, then the provenance (last); returns (liver_ml, lesion_ml)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "provenance.json").unlink(missing_ok=True)
    _write_mask(liver.astype(np.uint8), header, folder / "liver.nii.gz")
    _write_mask(lesion.astype(np.uint8), header, folder / "lesions.nii.gz")
    voxel_ml = float(np.prod(header["spacing"])) / 1000.0
    volumes = float(np.count_nonzero(liver)) * voxel_ml, float(np.count_nonzero(lesion)) * voxel_ml
    record["written"]["volumes_ml"] = list(volumes)
    _write_json(folder / "provenance.json", record)
    return volumes


def _prefetch_threads(paths: list[str], prepare: Any) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, (volume, affine, header, sha, prepared) or exception)``, one scan ahead."""

    def task(path: str) -> tuple[Any, ...]:
        volume, affine, header, sha = _load(path)
        return volume, affine, header, sha, prepare(volume, affine, where=path)

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        futures = {0: pool.submit(task, paths[0])} if paths else {}
        for i in range(len(paths)):
            if i + 1 < len(paths):
                futures[i + 1] = pool.submit(task, paths[i + 1])
            try:
                yield i, futures.pop(i).result()
            except Exception as exc:  # recorded as a failed scan by the caller
                yield i, exc


def _prefetch(paths: list[str], num_workers: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, result or exception)`` in order, reading ahead in worker processes."""
    if num_workers <= 0:
        for i, p in enumerate(paths):
            try:
                yield i, _load(p)
            except Exception as exc:  # recorded as a failed scan by the caller
                yield i, exc
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=num_workers, mp_context=ctx) as pool:
        ahead = num_workers + 1
        futures = {i: pool.submit(_load, p) for i, p in enumerate(paths[:ahead])}
        for i in range(len(paths)):
            nxt = i + ahead
            if nxt < len(paths):
                futures[nxt] = pool.submit(_load, paths[nxt])
            try:
                yield i, futures.pop(i).result()
            except Exception as exc:
                yield i, exc


def segment(
    manifest: str | Path | pd.DataFrame,
    model: Any = "demo",
    out_dir: str | Path = "segmentation",
    *,
    device: str = "auto",
    batch_size: int = 4,
    overlap: float = 0.25,
    precision: str = "auto",
    num_workers: int | None = None,
    overwrite: bool = False,
    base_dir: str | Path | None = None,
    progress: bool = False,
    model_options: dict[str, Any] | None = None,
    cts_per_batch: int | None = None,
) -> pd.DataFrame:
    """Segment the liver and the lesions of every CT in a manifest, once.

    Parameters
    ----------
    manifest : path or DataFrame
        Needs ``patient_id``, ``timepoint`` and ``image`` (NIfTI, NRRD, MHA or a DICOM series
        folder; relative paths resolve against the manifest's folder, or ``base_dir`` for a
        DataFrame). Other columns are carried over.
    model : str, path or SegmentationModel
        ``"demo"``, the path of a model card, ``"nnunet:PATH"``, ``"totalsegmentator:TASK"``
        (see :func:`~metevo.segmentation.load_model`) or a loaded model.
    out_dir : path
        Output folder (see the module docstring for its layout).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:n]"``.
    batch_size : int
        Sliding windows per forward pass.
    overlap : float
        Sliding-window overlap (default 25 %).
    precision : {"auto", "bf16", "fp32"}
        ``"auto"``: bf16 autocast on CUDA, fp32 on the CPU.
    num_workers : int, optional
        Processes reading and decoding the next scans while the current one is segmented
        (default 2 on CUDA, 0 on the CPU).
    overwrite : bool
        Recompute every scan even when its provenance matches.
    model_options : dict, optional
        Keyword arguments of :func:`~metevo.segmentation.load_model` (``configuration``,
        ``folds``, ``mirroring``, ``liver``, ``lesion``).
    cts_per_batch : int, optional
        CTs segmented at once by metevo model cards and the demo model (default: ``batch_size``
        on CUDA, 1 on the CPU, where batching saves no compute): their sliding windows share
        forward passes of ``batch_size`` windows, so small CTs (one window each) fill a batch,
        and reading, resampling and post-processing overlap with inference. The network sees
        the same windows as one CT at a time; only the float rounding of a larger batch differs
        (about 1e-5 in the logits), which can flip a voxel whose classes are tied that closely.

    Returns
    -------
    pandas.DataFrame
        The new manifest (also written to ``out_dir/manifest.csv``): the input columns, ``image``
        as an absolute path, ``lesion_mask`` and ``liver_mask`` relative to ``out_dir`` (empty
        for a scan that failed), ``lesion_mask_kind`` / ``liver_mask_kind`` ``"binary"``. It is
        ready for :func:`metevo.open_cohort` and ``metevo analyze``. The per-scan log is in
        ``out_dir/segmentation_log.parquet`` and in ``.attrs["log"]``.

    Warns
    -----
    DataQualityWarning
        When some scans could not be segmented (they are listed in the log; the others are done)
        or a CT's intensities do not look like HU.

    Examples
    --------
    >>> import metevo
    >>> from metevo.segmentation import segment
    >>> demo = metevo.datasets.load_demo_cohort()                    # doctest: +SKIP
    >>> new = segment(demo.manifest_path, "demo", "demo_masks")       # doctest: +SKIP
    """
    table, base, source = _read_manifest(manifest, base_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = dict(model_options or {})
    # what is up to date is decided before torch / MONAI / the weights are loaded; weights files
    # are re-hashed only when their size or modification time changed
    hashes = HashCache(out_dir / ".file_hashes.json")
    identity = describe_model(model, sha256=hashes, **options)
    hashes.save()

    images = []
    for value in table[Manifest.IMAGE]:
        p = Path(str(value).strip())
        images.append(p if p.is_absolute() else (base / p))
    folders = [
        out_dir / _MASKS / _safe(pid) / _safe(tp)
        for pid, tp in zip(table[Manifest.PATIENT_ID], table[Manifest.TIMEPOINT], strict=True)
    ]
    log: list[dict[str, Any]] = []
    todo: list[int] = []
    for i, (img, folder) in enumerate(zip(images, folders, strict=True)):
        if not overwrite and (folder / "provenance.json").is_file() and img.exists():
            found = _up_to_date(folder, identity, img, overlap, hashes)
            if found is not None:
                volumes = (found.get("written") or {}).get("volumes_ml")
                log.append(
                    _log_row(
                        table, i, "reused", 0.0, "", folder,
                        volumes=tuple(volumes) if volumes else None,
                    )
                )
                continue
        todo.append(i)
    hashes.save()
    if not todo:
        return _finish(table, images, folders, log, out_dir, source)

    import torch

    from metevo.segmentation._core import _resolve_device, predict_labels
    from metevo.segmentation._model import SegmentationModel, load_model
    from metevo.segmentation._profile import check_input_profile

    seg_model = load_model(model, **options)
    dev = _resolve_device(device)
    seg_model.to(dev)
    is_card = isinstance(seg_model, SegmentationModel)
    if is_card:
        network = seg_model.network.eval()
    if num_workers is None:
        num_workers = 2 if dev.type == "cuda" else 0

    paths = [str(images[i]) for i in todo]
    profile = seg_model.card.training.get("input_profile") if is_card else None
    writer = cf.ThreadPoolExecutor(max_workers=1)  # compression + writing overlapped too
    pending: list[tuple[int, float, cf.Future]] = []

    def where_of(i: int) -> str:
        pid, tp = table.at[i, Manifest.PATIENT_ID], table.at[i, Manifest.TIMEPOINT]
        return f"patient {pid}, timepoint {tp} ({images[i]})"

    def check(volume: np.ndarray, affine: np.ndarray, where: str) -> None:
        if profile:
            check_input_profile(volume, affine, profile, model=seg_model.name, where=where)

    def fail(i: int, exc: BaseException, seconds: float) -> None:
        first = str(exc).splitlines()[0] if str(exc) else ""
        log.append(_log_row(table, i, "failed", seconds, f"{type(exc).__name__}: {first}", None))

    def store(i: int, labels: np.ndarray, header: dict, sha: str, fallback: str, seconds: float):
        record = _provenance(identity, sha, overlap)
        stat = images[i].stat()
        record["written"] = {
            "image": str(images[i]),
            "input_stat": [stat.st_size, stat.st_mtime_ns],
            "device": str(dev),
            "precision": precision,
            "memory_fallback": fallback,
            "seconds": round(seconds, 3),
            "torch": torch.__version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        lesion = np.isin(labels, seg_model.lesion_labels)
        liver = np.isin(labels, seg_model.liver_labels) | lesion
        pending.append((i, seconds, writer.submit(_store, folders[i], liver, lesion, header, record)))

    if cts_per_batch is None:  # on the CPU batching saves no compute (bench_segmentation.py)
        cts_per_batch = batch_size if dev.type == "cuda" else 1
    in_flight = int(cts_per_batch)
    if is_card and in_flight > 1 and len(todo) > 1:
        # several CTs at once: their windows share forward passes (small CTs), reading and
        # post-processing run in the worker threads meanwhile; CUDA out-of-memory -> one at a time
        from metevo.segmentation._multi import predict_many

        def job(i: int):
            def load():
                volume, affine, header, sha = _load(str(images[i]))
                return volume, affine, {
                    "header": header, "sha": sha,
                    "check": lambda v, a: check(v, a, where_of(i)),
                }  # fmt: skip

            return i, load

        results = predict_many(
            network, (job(i) for i in todo), seg_model.card, predict=predict_labels, device=dev,
            batch_size=batch_size, in_flight=in_flight, precision=precision, overlap=overlap,
        )  # fmt: skip
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(todo), desc="segment", unit="scan")
        retry = []
        try:
            for i, result, seconds in results:
                if isinstance(result, torch.cuda.OutOfMemoryError):
                    retry.append(i)
                elif isinstance(result, Exception):
                    fail(i, result, seconds)
                else:
                    labels, extra = result
                    store(i, labels, extra["header"], extra["sha"], "", seconds)
        except BaseException:
            writer.shutdown(wait=True)
            raise
        todo, paths = retry, [str(images[i]) for i in retry]

    prepare = getattr(seg_model, "preprocess", None)
    if prepare is not None and num_workers == 0:
        # nnU-Net models: reading and CPU preprocessing of the next scan in a thread, overlapped
        # with the current scan's inference
        iterator = _prefetch_threads(paths, prepare)
    else:
        iterator = _prefetch(paths, num_workers)
    if progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(todo), desc="segment", unit="scan")
    try:
        for j, loaded in iterator:
            i = todo[j]
            where = where_of(i)
            tick = time.perf_counter()
            try:
                if isinstance(loaded, Exception):
                    raise loaded
                volume, affine, header, sha = loaded[:4]
                if is_card:
                    check(volume, affine, where)
                    labels, fallback = _predict_bounded(
                        predict_labels, network, volume, affine, seg_model.card, dev,
                        sw_batch_size=batch_size, overlap=overlap, precision=precision,
                        where=where,
                    )  # fmt: skip
                else:
                    prepared = loaded[4] if len(loaded) > 4 else None
                    labels = seg_model.predict(
                        volume, affine, batch_size=batch_size, precision=precision, where=where,
                        prepared=prepared,
                    )
                    fallback = ""
                del volume, loaded
                store(i, labels, header, sha, fallback, time.perf_counter() - tick)
            except Exception as exc:  # the scan fails, the others go on
                fail(i, exc, time.perf_counter() - tick)
    finally:  # an interrupted run still finishes writing the scans already predicted
        writer.shutdown(wait=True)
    for i, seconds, future in pending:
        try:
            volumes = future.result()
        except Exception as exc:
            fail(i, exc, seconds)
            continue
        log.append(_log_row(table, i, "computed", seconds, "", None, volumes=volumes))

    return _finish(table, images, folders, log, out_dir, source)


def _finish(
    table: pd.DataFrame,
    images: list[Path],
    folders: list[Path],
    log: list[dict[str, Any]],
    out_dir: Path,
    source: str,
) -> pd.DataFrame:
    """Write the new manifest and the log; warn about failed scans."""
    log_df = (
        pd.DataFrame(log, columns=list(SegmentationLog.COLUMNS))
        .sort_values([SegmentationLog.PATIENT_ID, SegmentationLog.TIMEPOINT])
        .reset_index(drop=True)
    )
    ok = {
        (r[SegmentationLog.PATIENT_ID], r[SegmentationLog.TIMEPOINT])
        for r in log
        if r["status"] != "failed"
    }
    new = table.drop(columns=[c for c in _MASK_OPTIONS if c in table.columns]).copy()
    new[Manifest.IMAGE] = [str(p.resolve()) for p in images]
    rel = [os.path.relpath(f, out_dir) for f in folders]
    keys = list(zip(table[Manifest.PATIENT_ID], table[Manifest.TIMEPOINT], strict=True))
    new[Manifest.LESION_MASK] = [
        str(Path(r) / "lesions.nii.gz") if k in ok else "" for r, k in zip(rel, keys, strict=True)
    ]
    new[Manifest.LIVER_MASK] = [
        str(Path(r) / "liver.nii.gz") if k in ok else "" for r, k in zip(rel, keys, strict=True)
    ]
    new["lesion_mask_kind"] = "binary"
    new["liver_mask_kind"] = "binary"
    text = new.to_csv(index=False)
    target = out_dir / "manifest.csv"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        tmp = out_dir / f".manifest.{os.getpid()}.tmp.csv"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    tmp = out_dir / f".segmentation_log.{os.getpid()}.tmp.parquet"
    log_df.to_parquet(tmp, index=False)
    os.replace(tmp, out_dir / "segmentation_log.parquet")
    failed = log_df[log_df[SegmentationLog.STATUS] == "failed"]
    if len(failed):
        lines = "; ".join(
            f"{r.patient_id} {r.timepoint}: {r.error}" for r in failed.head(5).itertuples()
        )
        warnings.warn(
            f"{len(failed)} of {len(log_df)} scans from {source} could not be segmented (their "
            f"mask paths are left empty in {out_dir / 'manifest.csv'}): {lines}"
            f"{' ...' if len(failed) > 5 else ''}. Fix or remove those rows and run again; the "
            "scans already done are reused.",
            DataQualityWarning,
            stacklevel=3,
        )
    new.attrs["log"] = log_df
    return new


def _predict_bounded(predict, network, volume, affine, card, dev, **options):
    """Predict; on CUDA out-of-memory retry with CPU-side buffers, then on the CPU.

    Returns ``(labels, fallback)`` where ``fallback`` is ``""``, ``"cpu-buffers"`` or ``"cpu"``.
    """
    import torch

    try:
        return predict(network, volume, affine, card, device=dev, **options), ""
    except torch.cuda.OutOfMemoryError:
        if dev.type != "cuda":  # pragma: no cover - only CUDA raises it
            raise
    torch.cuda.empty_cache()
    small = {**options, "sw_batch_size": 1}
    try:
        labels = predict(
            network, volume, affine, card, device=dev, max_buffer_gb=0.0, chunk_mb=32, **small
        )
        return labels, "cpu-buffers"
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    network.cpu()
    try:
        return predict(network, volume, affine, card, device="cpu", **small), "cpu"
    finally:
        network.to(dev)


def _log_row(
    table: pd.DataFrame,
    i: int,
    status: str,
    seconds: float,
    error: str,
    folder: Path | None,
    *,
    volumes: tuple[float, float] | None = None,
) -> dict[str, Any]:
    liver_ml = lesion_ml = np.nan
    if volumes is not None:
        liver_ml, lesion_ml = volumes
    elif folder is not None:
        liver_ml, lesion_ml = _volumes(folder)
    return {
        SegmentationLog.PATIENT_ID: table.at[i, Manifest.PATIENT_ID],
        SegmentationLog.TIMEPOINT: table.at[i, Manifest.TIMEPOINT],
        SegmentationLog.STATUS: status,
        SegmentationLog.SECONDS: float(seconds),
        SegmentationLog.LIVER_VOLUME_ML: liver_ml,
        SegmentationLog.LESION_VOLUME_ML: lesion_ml,
        SegmentationLog.ERROR: error,
    }


def _volumes(folder: Path) -> tuple[float, float]:
    import SimpleITK as sitk

    out = []
    for name in ("liver.nii.gz", "lesions.nii.gz"):
        image = sitk.ReadImage(str(folder / name))
        voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
        out.append(float(np.count_nonzero(sitk.GetArrayViewFromImage(image))) * voxel_ml)
    return out[0], out[1]

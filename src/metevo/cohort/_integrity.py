"""Integrity of image files, checked before any decoder sees them.

ITK fills the voxels missing from a truncated file with zeros, or reads past a short DICOM
series without a word, so a cut copy would silently become a "scan". :func:`check_image_integrity`
compares what each file's header declares with what the file holds:

- NIfTI-1/2 ``.nii``: ``vox_offset`` + voxels x bytes per voxel against the file size;
- NIfTI ``.nii.gz``: the same against the size of the decompressed stream, counted by streaming
  every gzip member (the gzip ``ISIZE`` trailer is the size modulo 2**32 of the last member
  only, so it is not used);
- NRRD (``.nrrd`` attached, ``.nhdr`` detached) and MetaImage (``.mha``/``.mhd``): the declared
  voxel bytes against the raw bytes, or against the decompressed size for ``gzip``/``bzip2``
  NRRD and zlib-compressed MetaImage;
- a DICOM series folder: one size (rows x columns), one orientation, slice positions along the
  slice normal with one spacing (a missing instance shows as a gap of two spacings), no duplicated
  position, and each slice's pixel data as long as rows x columns x bits allocated says.

Every problem raises :class:`~metevo.exceptions.ImageReadError` whose message says what was
expected and what was found, in bytes and slices, and names the file. Nothing is decoded into
memory: compressed streams are counted in 1 MiB chunks.
"""

from __future__ import annotations

import bz2
import gzip
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from metevo.exceptions import ImageReadError

__all__ = ["check_image_integrity"]

_CHUNK = 1 << 20

# NIfTI datatype code -> bytes per voxel is bitpix / 8 (bitpix is in the header).
_NRRD_TYPES = {
    "signed char": 1, "int8": 1, "int8_t": 1, "uchar": 1, "unsigned char": 1, "uint8": 1,
    "uint8_t": 1, "short": 2, "short int": 2, "signed short": 2, "signed short int": 2,
    "int16": 2, "int16_t": 2, "ushort": 2, "unsigned short": 2, "unsigned short int": 2,
    "uint16": 2, "uint16_t": 2, "int": 4, "signed int": 4, "int32": 4, "int32_t": 4, "uint": 4,
    "unsigned int": 4, "uint32": 4, "uint32_t": 4, "longlong": 8, "long long": 8,
    "long long int": 8, "signed long long": 8, "signed long long int": 8, "int64": 8,
    "int64_t": 8, "ulonglong": 8, "unsigned long long": 8, "unsigned long long int": 8,
    "uint64": 8, "uint64_t": 8, "float": 4, "double": 8,
}
_MET_TYPES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
# DICOM transfer syntaxes whose pixel data is stored uncompressed (native).
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
# Slice spacing: a gap of more than this fraction of the median spacing is a missing slice.
_SPACING_RTOL = 0.1
_ORIENTATION_ATOL = 1e-3


def check_image_integrity(path: str | Path, *, context: str = "") -> None:
    """Raise :class:`ImageReadError` when ``path`` holds fewer (or more) voxels than it declares.

    Parameters
    ----------
    path
        An image or mask file (NIfTI, NRRD, MetaImage) or a DICOM series folder. Other files
        (e.g. a DICOM-SEG object) pass unchecked: their decoder validates them.
    context
        Who the file belongs to, e.g. ``"patient P001, timepoint V2 (image)"``; starts messages.

    Examples
    --------
    >>> check_image_integrity("P001/V2/ct.nii.gz", context="patient P001, timepoint V2")  # doctest: +SKIP
    """
    path = Path(path)
    where = f"{context}: " if context else ""
    name = path.name.lower()
    if path.is_dir():
        _check_dicom_series(path, where)
    elif name.endswith(".nii.gz"):
        _check_nifti(path, where, compressed=True)
    elif name.endswith(".nii"):
        _check_nifti(path, where, compressed=False)
    elif name.endswith((".nrrd", ".nhdr")):
        _check_nrrd(path, where)
    elif name.endswith((".mha", ".mhd")):
        _check_metaimage(path, where)


# --------------------------------------------------------------------------- helpers


def _fail(where: str, path: Path, what: str) -> ImageReadError:
    return ImageReadError(
        f"{where}{path} is truncated or corrupt: {what}. Copy the file again from its source."
    )


def _size_text(n: int) -> str:
    if n >= 1 << 20:
        return f"{n:,} bytes ({n / (1 << 20):.1f} MiB)"
    return f"{n:,} bytes"


def _shortfall(expected: int, found: int, slice_bytes: int, n_slices: int) -> str:
    """``"expected X, found Y: Z missing (about k of n slices)"``."""
    text = f"expected {_size_text(expected)} of voxel data, found {_size_text(found)}"
    if found < expected:
        missing = expected - found
        text += f": {missing:,} bytes missing"
        if slice_bytes > 0:
            k = -(-missing // slice_bytes)
            text += f" (the last {k} of {n_slices} slices)" if k < n_slices else " (every slice)"
    else:
        text += f": {found - expected:,} bytes more than declared"
    return text


def _stream_size(chunks: Iterator[bytes]) -> tuple[int, str | None]:
    """Total size of a decompressed stream and, if it broke off, why."""
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        return total, str(exc) or type(exc).__name__
    return total, None


def _inflate_size(fh, wbits: int) -> tuple[int, str | None]:
    """Decompressed size of a deflate stream (gzip members one after another with ``wbits=31``),
    counted without holding more than a few MiB, and why it broke off (``None`` if complete)."""
    total, dec, open_member = 0, zlib.decompressobj(wbits), False
    while raw := fh.read(_CHUNK):
        data = raw
        while data:
            try:
                out = dec.decompress(data, 4 * _CHUNK)
            except zlib.error as exc:
                return total, f"corrupt compressed data: {exc}"
            total += len(out)
            open_member = True
            data = dec.unconsumed_tail
            if dec.eof:  # a gzip member ended: another may follow (zero padding is tolerated)
                data = dec.unused_data + data
                dec, open_member = zlib.decompressobj(wbits), False
                if not data.strip(b"\0"):
                    data = b""
    if open_member:
        return total, "the compressed stream ends before its end marker"
    return total, None


def _bz2_chunks(fh) -> Iterator[bytes]:
    with bz2.BZ2File(fh) as bz:
        while chunk := bz.read(_CHUNK):
            yield chunk


def _compare_stream(where: str, path: Path, counted: tuple[int, str | None], expected: int,
                    slice_bytes: int, n_slices: int, kind: str, note: str = "") -> None:
    found, broken = counted
    if broken is None and found == expected:
        return
    what = f"{kind} stream decompresses to {_size_text(found)}"
    if broken:
        what += f" and then breaks off ({broken})"
    raise _fail(where, path, f"{note}{what}; {_shortfall(expected, found, slice_bytes, n_slices)}")


# --------------------------------------------------------------------------- NIfTI


def _nifti_layout(head: bytes, where: str, path: Path) -> tuple[int, int, int, int] | None:
    """``(vox_offset, voxel bytes, bytes per slice, slices)`` from a NIfTI-1/2 header."""
    if len(head) < 348:
        raise _fail(where, path, f"the NIfTI header needs 348 bytes, the file holds {len(head)}")
    for endian in ("<", ">"):
        sizeof_hdr = struct.unpack(endian + "i", head[:4])[0]
        if sizeof_hdr in (348, 540):
            break
    else:
        return None  # not a NIfTI header: leave it to ITK
    if sizeof_hdr == 540 and len(head) < 540:
        raise _fail(where, path, f"the NIfTI-2 header needs 540 bytes, the file holds {len(head)}")
    if sizeof_hdr == 348:
        dims = struct.unpack(endian + "8h", head[40:56])
        bitpix = struct.unpack(endian + "h", head[72:74])[0]
        vox_offset = int(struct.unpack(endian + "f", head[108:112])[0])
    else:
        bitpix = struct.unpack(endian + "h", head[14:16])[0]
        dims = struct.unpack(endian + "8q", head[16:80])
        vox_offset = int(struct.unpack(endian + "q", head[168:176])[0])
    ndim = max(1, min(int(dims[0]), 7))
    extent = [max(1, int(d)) for d in dims[1 : ndim + 1]]
    n_voxels = int(np.prod(extent, dtype=np.int64))
    voxel_bytes = n_voxels * int(bitpix) // 8
    slice_bytes = int(np.prod(extent[:2], dtype=np.int64)) * int(bitpix) // 8
    n_slices = n_voxels // max(1, int(np.prod(extent[:2], dtype=np.int64)))
    return max(vox_offset, sizeof_hdr), voxel_bytes, slice_bytes, n_slices


def _check_nifti(path: Path, where: str, *, compressed: bool) -> None:
    with open(path, "rb") as raw:
        if compressed:
            try:
                with gzip.GzipFile(fileobj=raw) as gz:
                    head = gz.read(540)
            except (OSError, EOFError) as exc:
                raise _fail(where, path, f"not a readable gzip stream ({exc})") from exc
        else:
            head = raw.read(540)
        layout = _nifti_layout(head, where, path)
        if layout is None:
            return
        offset, voxel_bytes, slice_bytes, n_slices = layout
        if compressed:
            raw.seek(0)
            found, broken = _inflate_size(raw, 31)
        else:
            found, broken = path.stat().st_size, None
    data = max(0, found - offset)
    if broken is None and data == voxel_bytes:
        return
    if not compressed and data > voxel_bytes:
        return  # trailing bytes after the voxels (allowed for .nii: extensions precede them)
    kind = "the gzip stream decompresses to" if compressed else "the file holds"
    what = f"{kind} {_size_text(found)} (header {offset} bytes + voxel data)"
    if broken:
        what += f" and then breaks off ({broken})"
    raise _fail(where, path, f"{what}; {_shortfall(voxel_bytes, data, slice_bytes, n_slices)}")


# --------------------------------------------------------------------------- NRRD


def _read_text_header(fh, *, stop_blank: bool, stop_key: str | None = None) -> tuple[dict, int]:
    """``key -> value`` lines of a text header and the byte offset where the data starts."""
    fields: dict[str, str] = {}
    offset = 0
    while True:
        line = fh.readline(1 << 16)
        if not line:
            break
        offset += len(line)
        text = line.decode("latin-1").rstrip("\r\n")
        if stop_blank and not text.strip():
            break
        if text.startswith("#"):
            continue
        sep = ": " if stop_blank else "="
        if sep in text:
            key, _, value = text.partition(sep)
            key = key.strip().lower()
            fields[key] = value.strip()
            if stop_key is not None and key == stop_key:
                break
        elif stop_blank and ":=" in text:
            continue  # NRRD key/value comment pairs
    return fields, offset


def _check_nrrd(path: Path, where: str) -> None:
    with open(path, "rb") as fh:
        magic = fh.readline(64)
        if not magic.startswith(b"NRRD"):
            raise _fail(where, path, "the file does not start with the NRRD magic 'NRRD000X'")
        fields, offset = _read_text_header(fh, stop_blank=True)
    offset += len(magic)
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
        type_bytes = _NRRD_TYPES[fields["type"].strip().lower()]
    except (KeyError, ValueError) as exc:
        raise _fail(where, path, f"the NRRD header lacks a valid 'sizes' or 'type' ({exc})") from exc
    encoding = fields.get("encoding", "raw").lower()
    n_voxels = int(np.prod(sizes, dtype=np.int64))
    expected = n_voxels * type_bytes
    slice_bytes = int(np.prod(sizes[:2], dtype=np.int64)) * type_bytes
    n_slices = n_voxels // max(1, int(np.prod(sizes[:2], dtype=np.int64)))
    data_file = fields.get("data file") or fields.get("datafile")
    if data_file:
        if data_file.split()[0].upper() == "LIST" or "%" in data_file:
            return  # multi-file data: each piece is read by ITK
        target, start = path.parent / data_file, 0
        if not target.exists():
            raise ImageReadError(f"{where}{path} names data file {target}, which does not exist.")
    else:
        target, start = path, offset
    skip = int(fields.get("byte skip", "0") or 0)
    if encoding == "raw":
        if skip < 0:
            return  # -1: the data are the last bytes of the file, whatever precedes them
        found = target.stat().st_size - start - skip
        if found != expected:
            raise _fail(where, target, f"raw NRRD data; {_shortfall(expected, found, slice_bytes, n_slices)}")
        return
    if encoding in ("gzip", "gz", "bzip2", "bz2"):
        with open(target, "rb") as fh:
            fh.seek(start)
            if encoding.startswith("gz"):
                found, broken = _inflate_size(fh, 31)
            else:
                found, broken = _stream_size(_bz2_chunks(fh))
        found -= max(skip, 0)
        if broken is None and found == expected:
            return
        kind = "gzip" if encoding.startswith("gz") else "bzip2"
        what = f"the {kind} NRRD data decompress to {_size_text(found)}"
        if broken:
            what += f" and then break off ({broken})"
        raise _fail(where, target, f"{what}; {_shortfall(expected, found, slice_bytes, n_slices)}")
    # ascii/text/hex encodings: lengths are not fixed per voxel; ITK parses them


# --------------------------------------------------------------------------- MetaImage


def _check_metaimage(path: Path, where: str) -> None:
    with open(path, "rb") as fh:
        fields, offset = _read_text_header(fh, stop_blank=False, stop_key="elementdatafile")
    try:
        dims = [int(v) for v in fields["dimsize"].split()]
        type_bytes = _MET_TYPES[fields["elementtype"].strip().upper()]
    except (KeyError, ValueError) as exc:
        raise _fail(where, path, f"the MetaImage header lacks a valid DimSize or ElementType ({exc})") from exc
    channels = int(fields.get("elementnumberofchannels", "1") or 1)
    n_voxels = int(np.prod(dims, dtype=np.int64))
    expected = n_voxels * type_bytes * channels
    slice_bytes = int(np.prod(dims[:2], dtype=np.int64)) * type_bytes * channels
    n_slices = n_voxels // max(1, int(np.prod(dims[:2], dtype=np.int64)))
    data_file = fields.get("elementdatafile", "LOCAL")
    if data_file.upper() == "LOCAL":
        target, start = path, offset
    elif data_file.split()[0].upper() == "LIST" or "%" in data_file:
        return  # one file per slice: ITK reads and checks each
    else:
        target, start = path.parent / data_file, 0
        if not target.exists():
            raise ImageReadError(f"{where}{path} names data file {target}, which does not exist.")
    header_size = int(fields.get("headersize", "0") or 0)
    compressed = fields.get("compresseddata", "False").strip().lower() == "true"
    if not compressed:
        if header_size < 0:
            start = target.stat().st_size - expected  # -1: data are the file's last bytes
        found = target.stat().st_size - start - max(header_size, 0)
        if found != expected:
            raise _fail(where, target, f"raw MetaImage data; {_shortfall(expected, found, slice_bytes, n_slices)}")
        return
    declared = fields.get("compresseddatasize")
    available = target.stat().st_size - start
    note = ""
    if declared is not None and int(declared) != available:
        note = (f"the header declares {_size_text(int(declared))} of compressed data, the file "
                f"holds {_size_text(available)} after the header; ")
    with open(target, "rb") as fh:
        fh.seek(start)
        _compare_stream(where, target, _inflate_size(fh, 15), expected, slice_bytes, n_slices,
                        "the zlib MetaImage", note)


# --------------------------------------------------------------------------- DICOM series


def _check_dicom_series(folder: Path, where: str) -> None:
    import pydicom

    slices = []
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(f, defer_size=256)
        except Exception as exc:
            if _has_dicom_magic(f):
                raise _fail(where, f, f"a DICOM file that cannot be parsed ({exc})") from exc
            continue  # not DICOM (a readme...): ITK's series reader skips it too
        if "PixelData" not in ds:
            if "Rows" in ds and getattr(ds, "Modality", None) != "SEG":
                raise _fail(where, f, f"an image slice of {ds.Rows}x{ds.Columns} pixels whose "
                            "pixel data are missing (the file ends before them)")
            continue
        slices.append((f, ds))
    if not slices:
        return  # the series reader reports "no DICOM series"
    series = {str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        return  # the series reader reports several series with their UIDs
    sizes = {(int(ds.Rows), int(ds.Columns)) for _, ds in slices}
    if len(sizes) > 1:
        counts = _counts((int(ds.Rows), int(ds.Columns)) for _, ds in slices)
        raise ImageReadError(
            f"{where}DICOM series {folder} mixes slice sizes (rows x columns): "
            + ", ".join(f"{r}x{c} in {n} file(s)" for (r, c), n in counts)
            + "; expected one size for every slice."
        )
    orientations = [np.asarray(ds.ImageOrientationPatient, float) for _, ds in slices
                    if "ImageOrientationPatient" in ds]
    if orientations and len(orientations) == len(slices):
        # the orientation most slices share is the series'; the others are the odd ones out
        ref = np.asarray(_counts(tuple(np.round(o, 3)) for o in orientations)[0][0])
        odd = [slices[i][0].name for i, o in enumerate(orientations)
               if np.max(np.abs(o - ref)) > _ORIENTATION_ATOL]
        if odd:
            raise ImageReadError(
                f"{where}DICOM series {folder} mixes orientations: {len(odd)} of {len(slices)} "
                f"slice(s) (e.g. {odd[0]}) differ from {np.round(ref, 4).tolist()}; expected one "
                "orientation (a scout or a reformatted slice in the folder?)."
            )
        _check_positions(folder, where, slices, ref)
    for f, ds in slices:
        _check_pixel_length(f, ds, where)


def _check_positions(folder: Path, where: str, slices: list, orientation: np.ndarray) -> None:
    if not all("ImagePositionPatient" in ds for _, ds in slices) or len(slices) < 2:
        return
    normal = np.cross(orientation[:3], orientation[3:])
    pos = np.array([float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float)))
                    for _, ds in slices])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    names = [slices[i][0].name for i in order]
    steps = np.diff(pos)
    dup = np.flatnonzero(np.abs(steps) < 1e-3)
    if dup.size:
        i = int(dup[0])
        raise ImageReadError(
            f"{where}DICOM series {folder}: {names[i]} and {names[i + 1]} lie at the same slice "
            f"position ({pos[i]:.2f} mm); expected one slice per position (a duplicated instance?)."
        )
    spacing = float(np.median(steps))
    gaps = np.flatnonzero(np.abs(steps - spacing) > _SPACING_RTOL * spacing)
    if gaps.size:
        i = int(gaps[0])
        missing = int(round(steps[i] / spacing)) - 1
        if missing >= 1:
            found = f"a gap of {steps[i]:.2f} mm between {names[i]} ({pos[i]:.2f} mm) and " \
                    f"{names[i + 1]} ({pos[i + 1]:.2f} mm): {missing} slice(s) missing"
        else:
            found = f"a step of {steps[i]:.2f} mm between {names[i]} and {names[i + 1]}"
        raise ImageReadError(
            f"{where}DICOM series {folder} has {len(slices)} slices but inconsistent spacing: "
            f"expected {spacing:.2f} mm between neighbouring slices, found {found}"
            + (f" ({len(gaps)} irregular step(s) in all)" if gaps.size > 1 else "")
            + ". Export the complete series again."
        )


def _check_pixel_length(f: Path, ds, where: str) -> None:
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    if syntax not in _NATIVE_SYNTAXES:
        return  # encapsulated (compressed) pixel data: the decoder checks its fragments
    expected = (int(ds.Rows) * int(ds.Columns) * int(getattr(ds, "SamplesPerPixel", 1))
                * int(ds.BitsAllocated) // 8 * int(getattr(ds, "NumberOfFrames", 1) or 1))
    try:
        found = len(ds.PixelData)
    except Exception as exc:  # the deferred read ran past the end of the file
        raise _fail(where, f, f"its pixel data cannot be read ({exc}); expected "
                    f"{_size_text(expected)} for {ds.Rows}x{ds.Columns} pixels") from exc
    if found < expected:
        raise _fail(where, f, f"the slice's pixel data hold {_size_text(found)}, expected "
                    f"{_size_text(expected)} for {ds.Rows}x{ds.Columns} pixels of "
                    f"{ds.BitsAllocated} bits")


def _has_dicom_magic(f: Path) -> bool:
    with open(f, "rb") as fh:
        fh.seek(128)
        return fh.read(4) == b"DICM"


def _counts(items) -> list:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return sorted(out.items(), key=lambda kv: -kv[1])

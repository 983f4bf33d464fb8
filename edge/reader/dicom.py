"""A DICOM film: check the header first, decode second, then grey values and attributes.

`_read_dicom` is the pipeline; each step is a named function in `dicom_header` (checks that
need no pixel data), `limits` (bombs), `decode` (pixels) or here (grey values, the result).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from .attributes import _age, _dicom_spacing, _height, _sex
from .decode import _decode_dicom
from .dicom_header import (
    Geometry,
    _check_bits,
    _check_native_length,
    _check_pixel_element,
    _check_syntax,
    _geometry,
    _parse_checked,
    _photometric,
)
from .elements import _PIXEL_DATA, _code_string, _get
from .film import Film, ReadError
from .limits import _check_codestream_size, _check_inflated_size
from .photometry import _grey_from_rgb, _grey_pipeline, _normalise_minmax


def _read_dicom(
    path: Path,
    size: int,
    user_spacing: tuple[float, float] | None,
    max_pixels: int,
    notes: list[str],
    has_magic: bool,
) -> Film:
    """Check the header first, decode second; see the package docstring for why."""
    if has_magic:
        _check_inflated_size(path, max_pixels)
    ds, ts = _parse_checked(path, has_magic, notes)
    raw_pixels = _check_pixel_element(ds, ts, size)
    geo = _geometry(ds, max_pixels, notes)
    photometric = _photometric(ds, geo.samples, notes)
    bits_stored = _check_bits(ds, geo.samples, notes)
    ts = _check_syntax(ds, ts, raw_pixels, notes)
    if ts.is_encapsulated:
        _check_codestream_size(ds, geo.rows, geo.cols)
    else:
        _check_native_length(ds, raw_pixels, geo, photometric, size)
    arr = _decode_dicom(ds, ts)
    # The decoded array is all we need from the pixel bytes: free them for big films.
    with contextlib.suppress(Exception):  # freeing memory is best effort
        del ds[_PIXEL_DATA]
    pixels, photometric_out = _grey(arr, ds, geo, photometric, bits_stored, notes)
    del arr
    spacing, spacing_source = _dicom_spacing(ds, user_spacing, notes)
    height_m, height_source = _height(ds, notes)
    return Film(
        pixels=pixels,
        spacing_mm=spacing,
        spacing_source=spacing_source,
        sex=_sex(ds),
        height_m=height_m,
        height_source=height_source,
        age_years=_age(ds, notes),
        source_format="dicom",
        photometric=photometric_out,
        bits_stored=bits_stored,
        transfer_syntax=ts.name,
        modality=_code_string(ds, "Modality"),
        body_part=_code_string(ds, "BodyPartExamined"),
        notes=tuple(notes),
    )


def _grey(
    arr: np.ndarray, ds: Dataset, geo: Geometry, photometric: str, bits_stored: int, notes: list[str]
) -> tuple[np.ndarray, str]:
    """Decoded values to [0, 1] grey with bone bright, and the photometry as reported."""
    if arr.ndim == 3 and arr.shape[:2] == (geo.rows, geo.cols) and geo.samples == 3:
        grey = _grey_from_rgb(arr, float(2**bits_stored - 1), "DICOM")
        notes.append(f"{photometric} image with grey content (channels agree), read as grey")
        return _normalise_minmax(grey), "RGB (grey content)"
    if arr.ndim == 2 and arr.shape == (geo.rows, geo.cols) and geo.samples == 1:
        pixels = _grey_pipeline(arr, ds, notes)
        if photometric == "MONOCHROME1":
            np.subtract(np.float32(1.0), pixels, out=pixels)
        elif str(_get(ds, "PresentationLUTShape") or "").strip().upper() == "INVERSE":
            notes.append("PresentationLUTShape INVERSE on MONOCHROME2 ignored: check bone is bright")
        return pixels, photometric
    raise ReadError(
        "decode_failed",
        f"decoded pixel data has shape {tuple(arr.shape)}, header says {geo.rows} x {geo.cols} x {geo.samples}",
    )

"""Grey values: modality and VOI LUTs, min/max to [0, 1], grey content stored as RGB.

Worked in strips of rows, so a large film never gets a whole float64 copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from .film import ReadError

# Channels differing by less than this fraction of the range are "grey stored as RGB".
_GREY_TOLERANCE = 0.02

# Rows per strip when applying LUTs, so large films never get a whole float64 copy.
_STRIP_PIXELS = 1_000_000


def _grey_pipeline(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Modality LUT/rescale, then VOI LUT/window, then min/max to [0, 1] float32.

    Applied in strips of rows: both LUT steps are per-pixel, and pydicom's versions
    promote to float64, which for a 3000 x 9000 film would be 216 MB per copy.
    A step that fails on the first strip (malformed LUT, zero window width) is
    skipped with a note rather than refusing an otherwise readable film.
    """
    step = max(1, _STRIP_PIXELS // max(1, arr.shape[1]))
    use_modality = _lut_works(apply_modality_lut, arr[:step], ds)
    if not use_modality:
        notes.append("modality LUT / rescale malformed, ignored")
    first = apply_modality_lut(arr[:step], ds) if use_modality else arr[:step]
    use_voi = _lut_works(apply_voi_lut, first, ds)
    if not use_voi:
        notes.append("VOI LUT / window malformed, ignored")
    del first

    out = np.empty(arr.shape, dtype=np.float32)
    for start in range(0, arr.shape[0], step):
        chunk: np.ndarray = arr[start : start + step]
        if use_modality:
            chunk = apply_modality_lut(chunk, ds)
        if use_voi:
            chunk = apply_voi_lut(chunk, ds, index=0)
        out[start : start + step] = chunk
    return _normalise_minmax(out)


def _lut_works(func: Any, sample: np.ndarray, ds: Dataset) -> bool:
    try:
        result = func(sample, ds)
        return bool(np.asarray(result).shape == sample.shape)
    except MemoryError:
        raise
    except Exception:
        return False


def _normalise_minmax(out: np.ndarray) -> np.ndarray:
    """Map to [0, 1] in place by the image's own range; a constant image becomes zeros."""
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    lo = float(out.min())
    hi = float(out.max())
    if not hi > lo:
        out[...] = 0.0
        return out
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _grey_from_rgb(arr: np.ndarray, full_scale: float, what: str) -> np.ndarray:
    """Mean of three channels as float32, or a 'colour' ReadError if they really differ."""
    rows = arr.shape[0]
    step = max(1, _STRIP_PIXELS // max(1, arr.shape[1]))
    grey = np.empty(arr.shape[:2], dtype=np.float32)
    diff_sum = 0.0
    for start in range(0, rows, step):
        chunk = arr[start : start + step, :, :3].astype(np.float32)
        d = np.maximum(
            np.abs(chunk[..., 0] - chunk[..., 1]),
            np.maximum(np.abs(chunk[..., 1] - chunk[..., 2]), np.abs(chunk[..., 0] - chunk[..., 2])),
        )
        diff_sum += float(d.sum(dtype=np.float64))
        grey[start : start + step] = chunk.mean(axis=2)
    mean_diff = diff_sum / max(1, arr.shape[0] * arr.shape[1])
    if mean_diff >= _GREY_TOLERANCE * full_scale:
        raise ReadError(
            "colour",
            f"this is a colour image, not a radiograph ({what} colour channels differ by "
            f"{100 * mean_diff / full_scale:.1f}% on average)",
        )
    return grey

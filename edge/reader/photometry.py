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

# Widest stored-value range looked up in a table of both LUT steps (16-bit films fit).
_TABLE_MAX = 1 << 16


def _grey_pipeline(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Modality LUT/rescale, then VOI LUT/window, then min/max to [0, 1] float32.

    Both LUT steps are functions of the stored value alone, so for integer pixels
    they are computed once per value in the film's range (a table of at most 2**16
    entries for 16-bit films) and the film is looked up in it: the same float32
    values as applying pydicom to every pixel, at a fraction of the cost (pydicom's
    windowing works in float64 and took about 17 ms of a 1.7 MP film's 35 ms read).
    """
    table = _value_table(arr, ds)
    if table is None:
        return _normalise_minmax(_luts_in_strips(arr, ds, notes))
    values, lo, film_lo, film_hi = table
    scaled = _normalised_table(values, film_lo - lo, film_hi - lo)
    out = np.empty(arr.shape, dtype=np.float32)
    step = max(1, _STRIP_PIXELS // max(1, arr.shape[1]))
    # In strips because numpy makes an intp copy of the index; mode "clip" because
    # "raise" buffers `out` (a copy per strip), and the table spans every stored value.
    for start in range(0, arr.shape[0], step):
        index = arr[start : start + step]
        index = index if lo == 0 else index.astype(np.int64) - lo
        np.take(values if scaled is None else scaled, index, out=out[start : start + step], mode="clip")
    return _normalise_minmax(out) if scaled is None else out


def _normalised_table(values: np.ndarray, i_lo: int, i_hi: int) -> np.ndarray | None:
    """The table already mapped to [0, 1] as `_normalise_minmax` maps the film, or None.

    Where the table is monotone between the film's lowest and highest stored value (rescale and
    a linear window always are), the film's own output range is that of those two values, so
    the min/max step is applied to the table's entries (the same float32 operations, element by
    element) instead of making three more passes over the film.
    """
    span = np.nan_to_num(values[i_lo : i_hi + 1], nan=0.0, posinf=0.0, neginf=0.0)
    steps = np.diff(span)
    if not ((steps >= 0).all() or (steps <= 0).all()):
        return None
    a, b = float(span[0]), float(span[-1])
    table = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return _scale(table, min(a, b), max(a, b))


def _value_table(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, int, int, int] | None:
    """Both LUT steps for every value from `lo` to the film's maximum: (table, lo, the film's
    lowest stored value, its highest). `lo` is 0 for unsigned films (no subtraction to index).

    None for float pixels, for a range too wide for a table, or where a LUT step is
    malformed on the table but not checked on the film itself (the strip path then
    decides, and notes, from the film's own pixels, as before).
    """
    if arr.dtype.kind not in "ui" or arr.size == 0:
        return None
    lo, hi = int(arr.min()), int(arr.max())
    film_lo = lo
    if hi - lo >= _TABLE_MAX:
        return None
    if arr.dtype.kind == "u" and hi < _TABLE_MAX:
        lo = 0  # the film indexes the table as it is, no subtraction
    row = np.arange(lo, hi + 1, dtype=arr.dtype)[None, :]
    quiet: list[str] = []
    values = _luts_in_strips(row, ds, quiet)
    if quiet:
        return None
    return values[0], lo, film_lo, hi


def _luts_in_strips(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Modality then VOI LUT, in float32, applied in strips of rows.

    In strips because pydicom's versions promote to float64, which for a 3000 x 9000
    film would be 216 MB per copy. A step that fails on the first strip (malformed
    LUT, zero window width) is skipped with a note rather than refusing an otherwise
    readable film.
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
    return out


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
    return _scale(out, float(out.min()), float(out.max()))


def _scale(out: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`out` (float32, finite) from [lo, hi] to [0, 1] in place; all zeros if hi is not above lo."""
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

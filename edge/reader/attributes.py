"""Pixel spacing and patient attributes from the header, each with where it came from.

The SPEC sets the spacing order (PixelSpacing, then ImagerPixelSpacing corrected by the
magnification factor, then the user's value); implausible values get a note, never a guess.
"""

from __future__ import annotations

import math
import re

from pydicom.dataset import Dataset

from .elements import _floats, _text

# Spacing outside this range (mm) is a placeholder or garbage, not a detector pitch.
_SPACING_MIN_MM = 0.01

_SPACING_MAX_MM = 10.0


def _valid_spacing(values: list[float] | None) -> tuple[float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        values = [values[0], values[0]]
    if len(values) != 2:
        return None
    if not all(math.isfinite(v) and _SPACING_MIN_MM <= v <= _SPACING_MAX_MM for v in values):
        return None
    return (float(values[0]), float(values[1]))


def _user_spacing(spacing_mm: float | None, notes: list[str]) -> tuple[float, float] | None:
    if spacing_mm is None:
        return None
    try:
        value = float(spacing_mm)
    except Exception:
        value = float("nan")
    pair = _valid_spacing([value])
    if pair is None:
        notes.append(f"user spacing {spacing_mm!r} outside {_SPACING_MIN_MM}-{_SPACING_MAX_MM} mm, ignored")
    return pair


def _read_spacing_tag(ds: Dataset, keyword: str, notes: list[str]) -> tuple[float, float] | None:
    """A two-value spacing tag if valid; malformed or implausible values get a note."""
    try:
        values = _floats(ds, keyword)
    except Exception:
        notes.append(f"{keyword} malformed, ignored")
        return None
    if values is None:
        return None
    pair = _valid_spacing(values) if len(values) == 2 else None
    if pair is None:
        notes.append(f"{keyword} malformed, ignored")
    return pair


def _dicom_spacing(
    ds: Dataset, user: tuple[float, float] | None, notes: list[str]
) -> tuple[tuple[float, float] | None, str]:
    """Patient-plane spacing in the order the SPEC sets, saying where it came from."""
    pixel = _read_spacing_tag(ds, "PixelSpacing", notes)
    if pixel is not None:
        if pixel == (1.0, 1.0):
            notes.append("PixelSpacing is exactly 1.0 mm, often a placeholder: check it")
        return pixel, "PixelSpacing"
    imager = _read_spacing_tag(ds, "ImagerPixelSpacing", notes)
    if imager is not None:
        factor: float | None = None
        try:
            factors = _floats(ds, "EstimatedRadiographicMagnificationFactor")
            if factors:
                factor = factors[0]
        except Exception:
            notes.append("EstimatedRadiographicMagnificationFactor malformed, ignored")
        if factor is not None:
            if math.isfinite(factor) and 1.0 <= factor <= 2.0:
                corrected = _valid_spacing([imager[0] / factor, imager[1] / factor])
                if corrected is not None:
                    return corrected, "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
            notes.append("EstimatedRadiographicMagnificationFactor outside 1.0-2.0, ignored")
    if user is not None:
        return user, "user"
    if imager is not None:
        notes.append("spacing is at the detector, not corrected for magnification")
        return imager, "ImagerPixelSpacing (not corrected for magnification)"
    return None, "none"


def _sex(ds: Dataset) -> str | None:
    value = _text(ds, "PatientSex")
    if value is None:
        return None
    value = value.upper()
    return value if value in ("F", "M") else None


def _height(ds: Dataset, notes: list[str]) -> tuple[float | None, str]:
    """PatientSize is metres by the standard; 50-250 is someone typing centimetres."""
    try:
        values = _floats(ds, "PatientSize")
    except Exception:
        notes.append("PatientSize malformed, ignored")
        return None, "none"
    if not values:
        return None, "none"
    value = values[0]
    if math.isfinite(value) and 0.5 <= value <= 2.5:
        return float(value), "PatientSize"
    if math.isfinite(value) and 50.0 <= value <= 250.0:
        notes.append("PatientSize read as centimetres")
        return float(value) / 100.0, "PatientSize (cm)"
    if value != 0:
        notes.append("PatientSize implausible, ignored")
    return None, "none"


_AGE_RE = re.compile(r"^\s*(\d{1,3})\s*([DWMYdwmy]?)\s*$")

_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _age(ds: Dataset, notes: list[str]) -> float | None:
    value = _text(ds, "PatientAge")
    if value is None:
        return None
    match = _AGE_RE.match(value)
    if not match:
        notes.append("PatientAge malformed, ignored")
        return None
    unit = match.group(2).upper()
    if not unit:
        notes.append("PatientAge has no unit, years assumed")
        unit = "Y"
    return int(match.group(1)) * _AGE_UNIT_YEARS[unit]

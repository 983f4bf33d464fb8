"""Thigh muscle area from a mask on the film's own grid: both thighs and each side.

Defined once, here: evaluation, calibration and the clinic report all measure with this.
On an AP film the patient's right thigh is on the image's left.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_SIDE_SHARE = 0.15  # a second blob smaller than this share of the muscle is not a thigh


@dataclass(frozen=True)
class Areas:
    total: float
    right: float | None   # patient's right (image left); None when that thigh is not seen
    left: float | None
    unit: str             # "cm2", or "px" when the film has no spacing
    sides_seen: int       # 0, 1 or 2


def split_column(mask: np.ndarray) -> int | None:
    """Column separating the two thighs (between the two largest blobs), or None if one thigh."""
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1] + 1
    total = float(areas.sum())
    big = [i for i in order[:4] if stats[i, cv2.CC_STAT_AREA] >= MIN_SIDE_SHARE * total]
    if len(big) < 2:
        return None
    xs = sorted(float(cent[i][0]) for i in big)
    # Largest horizontal gap between blob centres splits right from left thigh(s).
    gaps = [(xs[k + 1] - xs[k], k) for k in range(len(xs) - 1)]
    _, k = max(gaps)
    lo_blob = [i for i in big if cent[i][0] <= xs[k]]
    hi_blob = [i for i in big if cent[i][0] >= xs[k + 1]]
    right_edge = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in lo_blob)
    left_edge = min(stats[i, cv2.CC_STAT_LEFT] for i in hi_blob)
    if left_edge <= right_edge:  # overlapping columns: the thighs touch; split at the centres' midpoint
        return int(round((xs[k] + xs[k + 1]) / 2))
    return int((right_edge + left_edge) // 2)


def thigh_areas(mask: np.ndarray, spacing_mm: tuple[float, float] | None) -> Areas:
    """Area of a boolean thigh-muscle mask in cm^2 (or pixels without spacing), per side."""
    mask = mask.astype(bool)
    px = (spacing_mm[0] * spacing_mm[1] / 100.0) if spacing_mm else 1.0
    unit = "cm2" if spacing_mm else "px"
    total_px = int(np.count_nonzero(mask))
    if total_px == 0:
        return Areas(0.0, None, None, unit, 0)
    col = split_column(mask)
    if col is None:
        return Areas(total_px * px, None, None, unit, 1)
    right = int(np.count_nonzero(mask[:, :col]))
    left = total_px - right
    return Areas(total_px * px, right * px, left * px, unit, 2)

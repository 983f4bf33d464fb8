"""Thigh muscle area from a mask on the film's own grid: both thighs and each side.

Defined once, here: evaluation, calibration and the clinic report all measure with this.
On an AP film the patient's right thigh is on the image's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_BLOB_SHARE = 0.05  # smaller blobs are specks, not a thigh or half of one


@dataclass(frozen=True)
class Areas:
    total: float
    right: float | None  # patient's right (image left); None when that thigh is not seen
    left: float | None
    unit: str  # "cm2", or "px" when the film has no spacing
    sides_seen: int  # 0, 1 or 2


def _gap_intensity(lab: np.ndarray, stats: np.ndarray, a: int, b: int, pixels: np.ndarray) -> float | None:
    """Median film intensity between blob a (left) and blob b (right), on rows where both exist
    (every 4th row, inside the two blobs' bounding boxes)."""
    L, T, W, H = cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT
    r0 = max(stats[a, T], stats[b, T])
    r1 = min(stats[a, T] + stats[a, H], stats[b, T] + stats[b, H])
    c0 = min(stats[a, L], stats[b, L])
    c1 = max(stats[a, L] + stats[a, W], stats[b, L] + stats[b, W])
    if r1 <= r0:
        return None
    sub = lab[r0:r1:4, c0:c1]
    cols = np.arange(c0, c1)
    right_of_a = np.where(sub == a, cols, -1).max(axis=1)
    left_of_b = np.where(sub == b, cols, c1 + 1).min(axis=1)
    ok = (right_of_a >= 0) & (left_of_b <= c1) & (left_of_b > right_of_a + 1)
    between = (cols > right_of_a[:, None]) & (cols < left_of_b[:, None]) & ok[:, None]
    vals = pixels[r0:r1:4, c0:c1][between]
    return float(np.median(vals)) if vals.size else None


def mask_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Rows and columns of a mask's bounding box (None for an empty mask): where its blobs are."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, bool).view(np.uint8))
    return (slice(y, y + h), slice(x, x + w)) if w and h else None


def split_sides(mask: np.ndarray, pixels: np.ndarray) -> tuple[int, int] | None:
    """Pixels of the image-left (patient's right) and image-right thigh, or None for one thigh.

    The femur splits each thigh's muscle into a medial and a lateral part, so blobs alone cannot
    tell one thigh from two. What lies between two neighbouring blobs can: bone (brighter than
    muscle) within a thigh, fat or air (darker) between the thighs. The darkest such gap, if it is
    darker than the muscle, separates right from left.
    """
    # Labelled inside the mask's bounding box only (the thighs are a band of the film): the same
    # blobs and counts, with coordinates relative to the box, for half the work on a long film.
    box = mask_box(mask)
    if box is None:
        return None
    mask, pixels = mask[box], pixels[box]
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return None
    area = stats[:, cv2.CC_STAT_AREA]
    total = float(stats[1:, cv2.CC_STAT_AREA].sum())
    blobs = sorted(
        (i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_BLOB_SHARE * total), key=lambda i: cent[i][0]
    )
    if len(blobs) < 2:
        return None
    muscle = float(np.median(pixels[mask][::7]))
    best: tuple[float, int] | None = None
    for a, b in zip(blobs, blobs[1:]):
        g = _gap_intensity(lab, stats, a, b, pixels)
        if g is not None and g < muscle and (best is None or g < best[0]):
            best = (g, (cent[a][0] + cent[b][0]) / 2)
    if best is None:
        return None
    image_left = sum(int(area[i]) for i in range(1, n) if cent[i][0] < best[1])
    return image_left, int(area[1:].sum()) - image_left


def thigh_areas(mask: np.ndarray, spacing_mm: tuple[float, float] | None, pixels: np.ndarray) -> Areas:
    """Area of a boolean thigh-muscle mask in cm^2 (or pixels without spacing), per side.

    `pixels` is the film (bone bright), used to tell the femur from the gap between the thighs.
    """
    mask = mask.astype(bool)
    px = (spacing_mm[0] * spacing_mm[1] / 100.0) if spacing_mm else 1.0
    unit = "cm2" if spacing_mm else "px"
    total_px = int(np.count_nonzero(mask))
    if total_px == 0:
        return Areas(0.0, None, None, unit, 0)
    sides = split_sides(mask, pixels)
    if sides is None:
        return Areas(total_px * px, None, None, unit, 1)
    right, left = sides
    return Areas(total_px * px, right * px, left * px, unit, 2)


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two boolean masks; both empty counts as perfect agreement.

    Here, beside the area, because training, evaluation and the INT8 accuracy check all judge a
    mask with it, and train and quantize may not import each other."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    inter = int(np.count_nonzero(pred & truth))
    a, b = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    if a + b == 0:
        return 1.0, 1.0
    return 2.0 * inter / (a + b), inter / (a + b - inter)

"""Thigh muscle area from a mask on the film's own grid: both thighs and each side.

Defined once, here: evaluation, calibration and the clinic report all measure with this.
On an AP film the patient's right thigh is on the image's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_BLOB_SHARE = 0.05  # smaller blobs are specks, not a thigh or half of one
NEAR_MUSCLE_PX = 4  # a femoral shaft has muscle within this many pixels of each edge (model grid)


@dataclass(frozen=True)
class Areas:
    total: float
    right: float | None  # patient's right (image left); None when that thigh is not seen
    left: float | None
    unit: str  # "cm2", or "px" when the film has no spacing
    sides_seen: int  # 0, 1 or 2
    # The line between the thighs when the femurs gave it: column = midline[0] + midline[1] * row,
    # film pixels; image-left muscle lies left of it. None where split_sides' blobs split them.
    midline: tuple[float, float] | None = None


@dataclass(frozen=True)
class Shaft:
    """A femoral shaft at mid-thigh: its width and its centre line, column = col0 + slope * row."""

    width: float
    col0: float
    slope: float


def femur_shafts(muscle: np.ndarray, bone: np.ndarray) -> list[Shaft]:
    """The femoral shafts at mid-thigh, from a muscle mask and the bone class's probability on
    one grid, left to right.

    Rows between the 35th and 65th percentile of the muscle's mass. A shaft is a bone component
    (probability > 0.5) that runs through most of them with muscle close on both sides (the
    vasti and adductors lie on the femur; a ruler or shield between the thighs has skin and fat
    beside it). In each such row its width is the bone probability summed across it (sub-pixel
    on a coarse grid) and its centre that probability's centroid; the widths' median and a line
    fitted through the centres describe it."""
    cum = np.cumsum(np.count_nonzero(muscle, axis=1))
    if cum.size == 0 or cum[-1] == 0:
        return []
    r0, r1 = int(np.searchsorted(cum, 0.35 * cum[-1])), int(np.searchsorted(cum, 0.65 * cum[-1])) + 1
    m, b = muscle[r0:r1].astype(bool), bone[r0:r1]
    n, lab, stats, _ = cv2.connectedComponentsWithStats((b > 0.5).astype(np.uint8), connectivity=8)
    shafts = []
    for i in range(1, n):
        x, _, w, h, _ = stats[i]
        if h < 0.6 * len(m):
            continue
        lo, hi = max(x - 2, 0), min(x + w + 2, m.shape[1])
        rows = m[:, max(lo - NEAR_MUSCLE_PX, 0) : lo + 2].any(axis=1)
        rows &= m[:, max(hi - 2, 0) : hi + NEAR_MUSCLE_PX].any(axis=1)
        rows &= (lab == i).any(axis=1)
        if np.count_nonzero(rows) < 0.5 * h:
            continue
        p = b[rows, lo:hi]
        widths = p.sum(axis=1)
        centres = lo + (p * np.arange(hi - lo)).sum(axis=1) / np.maximum(widths, 1e-6)
        ys = np.flatnonzero(rows) + r0
        slope, col0 = np.polyfit(ys, centres, 1) if len(ys) > 1 else (0.0, float(centres[0]))
        shafts.append(Shaft(float(np.median(widths)), float(col0), float(slope)))
    return sorted(shafts, key=lambda s: s.col0 + s.slope * (r0 + r1) / 2)


def midline(shafts: list[Shaft]) -> tuple[float, float] | None:
    """The line halfway between the outermost two shafts (col0, slope): the body's midline,
    where two thighs meet whether or not a dark gap shows between them. None for fewer than two."""
    if len(shafts) < 2:
        return None
    a, b = shafts[0], shafts[-1]
    return (a.col0 + b.col0) / 2, (a.slope + b.slope) / 2


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


def _line_band(mask: np.ndarray, line: tuple[float, float]) -> tuple[int, np.ndarray]:
    """(lo, inside): every column before `lo` lies left of the line (column = line[0] + line[1] *
    row) in every row, and `inside` is the mask left of it in the columns the line crosses, from
    `lo` on; past those nothing is left of it. Only that band is compared, not the whole film."""
    edge = line[0] + line[1] * np.arange(mask.shape[0])
    lo = int(np.clip(np.ceil(edge.min()), 0, mask.shape[1]))
    hi = int(np.clip(np.ceil(edge.max()), lo, mask.shape[1]))
    return lo, mask[:, lo:hi] & (np.arange(lo, hi)[None, :] < edge[:, None])


def left_of_line(mask: np.ndarray, line: tuple[float, float]) -> np.ndarray:
    """The mask's pixels left of a line (column = line[0] + line[1] * row)."""
    lo, inside = _line_band(mask, line)
    out = np.zeros_like(mask)
    out[:, :lo] = mask[:, :lo]
    out[:, lo : lo + inside.shape[1]] = inside
    return out


def count_left_of_line(mask: np.ndarray, line: tuple[float, float]) -> int:
    """How many of the mask's pixels lie left of the line (left_of_line's count, without its copy)."""
    lo, inside = _line_band(mask, line)
    return int(np.count_nonzero(mask[:, :lo])) + int(np.count_nonzero(inside))


def thigh_areas(
    mask: np.ndarray,
    spacing_mm: tuple[float, float] | None,
    pixels: np.ndarray,
    line: tuple[float, float] | None = None,
) -> Areas:
    """Area of a boolean thigh-muscle mask in cm^2 (or pixels without spacing), per side.

    `line` is the midline between two femurs (film pixels, see `midline`): the sides split there.
    Without it, `pixels` (the film, bone bright) tells the femur from the gap between the thighs.
    """
    mask = mask.astype(bool)
    px = (spacing_mm[0] * spacing_mm[1] / 100.0) if spacing_mm else 1.0
    unit = "cm2" if spacing_mm else "px"
    total_px = int(np.count_nonzero(mask))
    if total_px == 0:
        return Areas(0.0, None, None, unit, 0)
    if line is not None:
        right = count_left_of_line(mask, line)
        return Areas(total_px * px, right * px, (total_px - right) * px, unit, 2, line)
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

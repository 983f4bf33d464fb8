"""The quality gate: when a film gives no estimate, and why. Every refusal names its reason.

Checked before any flag, each a question a radiographer would ask of the film:
- is it a long-leg film at all (body part, shape, physical height)?
- did the model find thigh muscle, and is it decided about it (a loose floor only: decisiveness
  is not anatomy, and real films are less decided than the phantom)?
- is the film the right way round (soft tissue darker than bone, as on a MONOCHROME2 display)?
- is the muscle where thigh muscle is: its length from gluteal fold to condyles consistent with
  the patient's height and the film's spacing (a wrong spacing shows up here), the two thighs of
  similar size, each thigh's area plausible?

The thresholds live in the bundle manifest (`quality_gate`), chosen on validation films and
widened for real anatomy (see `GateConfig` and README); the defaults below apply to bundles
that carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from .measure import Areas, Shaft

if TYPE_CHECKING:  # the film type only: importing the reader (pydicom) is not this module's start-up cost
    from .reader import Film

NOT_LEG_PARTS = {
    "CHEST",
    "ABDOMEN",
    "HEAD",
    "SKULL",
    "HAND",
    "WRIST",
    "ELBOW",
    "SHOULDER",
    "ARM",
    "CSPINE",
    "TSPINE",
    "LSPINE",
    "SPINE",
    "BREAST",
    "NECK",
    "FOOT",
    "ANKLE",
    "PELVIS",
}
MIN_ASPECT = 1.6  # long-leg films are tall: rows / columns
MIN_FILM_HEIGHT_CM = 60.0

NOT_LONG_LEG = "image is not a long-leg (lower-extremity) film"
NOT_RADIOGRAPH = "image is not a radiograph (too few grey levels: a label map, a drawing or a screenshot?)"
MIN_GREY_LEVELS = 32  # an 8-bit export of a real film shows well over 100
LOW_CONFIDENCE = "segmentation failed quality checks (low confidence or no thigh muscle found)"
IMPLAUSIBLE_AREA = "segmentation failed quality checks (thigh muscle area implausible)"
INVERTED = "film appears inverted (soft tissue brighter than its surroundings): check MONOCHROME1/2 or the export"
SPACING_ANATOMY = "pixel spacing inconsistent with the anatomy (thigh length does not fit the patient's height)"
ASYMMETRY = "segmentation failed quality checks (the two thighs differ implausibly in size)"
NO_FEMUR = "segmentation failed quality checks (no femur beside the muscle: it is not on the thighs)"
SPACING_FEMUR = "pixel spacing inconsistent with the anatomy (femoral shaft width implausible: check the spacing)"


@dataclass(frozen=True)
class GateConfig:
    min_confidence: float = 0.6  # below: the model did not find thigh muscle
    thigh_area_cm2: tuple[float, float] = (60.0, 600.0)  # one thigh, gluteal fold to condyles
    muscle_length_cm: tuple[float, float] = (15.0, 55.0)  # without a height
    length_to_height: tuple[float, float] = (0.12, 0.27)  # muscle length / body height
    max_side_ratio: float = 2.0  # larger / smaller thigh
    min_muscle_level: float = 0.3  # muscle's place in the film's grey range (inverted below)
    min_femur_support: float = 0.5  # share of the muscle's rows with femur inside them
    femur_width_cm: tuple[float, float] = (1.5, 5.0)  # femoral shaft, mid-thigh, on the film

    @classmethod
    def from_dict(cls, d: dict | None) -> GateConfig:
        d = d or {}
        kw = {
            f.name: (tuple(d[f.name]) if isinstance(d[f.name], list) else d[f.name]) for f in fields(cls) if f.name in d
        }
        return cls(**kw)


@dataclass(frozen=True)
class Anatomy:
    muscle_length_cm: float | None  # 2nd to 98th percentile of the mask's rows, in cm
    muscle_level: float  # muscle median within the film's 5th-95th percentile band, 0..1
    side_ratio: float | None


def _grey_levels_below(pixels: np.ndarray, levels: int) -> bool:
    """Fewer than `levels` distinct grey values on a grid of about 250,000 of the film's pixels.

    A spread-out sample of about 4,000 of them is looked at first: a subset never has more
    distinct values than the whole, so a sample with enough settles it without sorting the grid.
    """
    step = max(1, int(np.sqrt(pixels.size / 250_000)))
    grid = pixels[::step, ::step]
    if len(np.unique(grid.ravel()[:: max(1, grid.size // 4096)])) >= levels:
        return False
    return len(np.unique(grid)) < levels


def anatomy(film: Film, mask: np.ndarray, areas: Areas) -> Anatomy:
    counts = np.count_nonzero(mask, axis=1)
    total = counts.sum()
    if total == 0:
        return Anatomy(None, 0.0, None)
    cum = np.cumsum(counts)
    lo, hi = int(np.searchsorted(cum, 0.02 * total)), int(np.searchsorted(cum, 0.98 * total))
    length = (hi - lo + 1) * film.spacing_mm[0] / 10 if film.spacing_mm else None
    band = film.pixels[lo : hi + 1 : 2, ::2]
    q05, q95 = np.percentile(band, [5, 95])
    level = float((np.median(film.pixels[mask][::7]) - q05) / max(q95 - q05, 1e-6))
    ratio = (
        max(areas.right, areas.left) / min(areas.right, areas.left)
        if areas.right and areas.left and min(areas.right, areas.left) > 0
        else None
    )
    return Anatomy(length, level, ratio)


def femur_support(muscle: np.ndarray, bone: np.ndarray) -> float | None:
    """Share of the rows holding thigh muscle in which bone lies between the muscle's outer
    edges: thigh muscle wraps the femur, while a mask on the pelvis, a shield, a ruler or the
    space between the legs has no femur inside it. None when there is no muscle."""
    rows = np.nonzero(np.count_nonzero(muscle, axis=1) >= 2)[0]
    if len(rows) == 0:
        return None
    m, b = muscle[rows].astype(bool), bone[rows].astype(bool)
    first = m.argmax(axis=1)  # the outer edges, all rows at once
    last = m.shape[1] - 1 - m[:, ::-1].argmax(axis=1)
    upto = np.cumsum(b, axis=1)  # bone pixels up to each column
    k = np.arange(len(rows))
    inside = upto[k, last] - np.where(first > 0, upto[k, np.maximum(first - 1, 0)], 0)
    return int(np.count_nonzero(inside > 0)) / len(rows)


def femur_width(shafts: list[Shaft]) -> float | None:
    """Width of the femoral shaft at mid-thigh, in pixels of this grid: the spacing's anatomical
    cross-check. The adult shaft is 2.5-3.3 cm wide on a long-leg film whoever the patient is
    (measured on both phantom generations and the real acceptance film), so a wrong spacing shows
    in it, as it does not in the thigh's length, which varies with height and the film's crop.
    The median over the shafts found (measure.femur_shafts); None when none is."""
    return float(np.median([s.width for s in shafts])) if shafts else None


def femur_width_cm(film: Film, width_px: float | None) -> float | None:
    """femur_width's shaft width (film pixels across) in cm, by the film's column spacing."""
    return None if width_px is None or not film.spacing_mm else width_px * film.spacing_mm[1] / 10


def quality_gate(
    film: Film,
    areas: Areas,
    confidence: float,
    mask: np.ndarray | None = None,
    height_m: float | None = None,
    cfg: GateConfig = GateConfig(),
    femur: float | None = None,
    femur_width_px: float | None = None,
) -> tuple[list[str], dict]:
    """(reasons, quality): reasons is empty when the film and its segmentation may be measured.

    `femur` is femur_support's share, `femur_width_px` femur_width's shaft width in the film's
    pixels (multi-class models)."""
    reasons: list[str] = []
    rows, cols = film.pixels.shape
    part = (film.body_part or "").upper().replace(" ", "")
    tall_enough = film.spacing_mm is None or rows * film.spacing_mm[0] / 10 >= MIN_FILM_HEIGHT_CM
    if part in NOT_LEG_PARTS or rows / cols < MIN_ASPECT or not tall_enough:
        reasons.append(NOT_LONG_LEG)
    if _grey_levels_below(film.pixels, MIN_GREY_LEVELS):
        reasons.append(NOT_RADIOGRAPH)
    quality = {
        "segmentation_confidence": round(confidence, 4),
        "sides_seen": areas.sides_seen,
        "aspect_ratio": round(rows / cols, 3),
    }
    if reasons:
        return reasons, quality
    if areas.sides_seen == 0 or confidence < cfg.min_confidence:
        return [LOW_CONFIDENCE], quality
    if mask is not None:
        reasons += _anatomy_reasons(anatomy(film, mask, areas), height_m, cfg, quality)
    if femur is not None:
        quality["femur_support"] = round(femur, 3)
        if femur < cfg.min_femur_support:
            reasons.append(NO_FEMUR)
    if (width := femur_width_cm(film, femur_width_px)) is not None:
        quality["femur_width_cm"] = round(width, 2)
        if not cfg.femur_width_cm[0] <= width <= cfg.femur_width_cm[1]:
            reasons.append(SPACING_FEMUR)
    if areas.unit == "cm2" and not reasons:
        per_side = [v for v in (areas.right, areas.left) if v is not None] or [areas.total]
        plausible = all(cfg.thigh_area_cm2[0] <= v <= cfg.thigh_area_cm2[1] for v in per_side)
        quality["area_plausible"] = plausible
        if not plausible:
            reasons.append(IMPLAUSIBLE_AREA)
    return reasons, quality


def _anatomy_reasons(a: Anatomy, height_m: float | None, cfg: GateConfig, quality: dict) -> list[str]:
    """Inverted film, muscle length against height (or absolute, without a height) and spacing,
    left/right asymmetry; the measured values go into `quality`."""
    quality.update(
        {
            "muscle_length_cm": None if a.muscle_length_cm is None else round(a.muscle_length_cm, 1),
            "muscle_level": round(a.muscle_level, 3),
            "side_ratio": None if a.side_ratio is None else round(a.side_ratio, 3),
        }
    )
    reasons = []
    if a.muscle_level < cfg.min_muscle_level:
        reasons.append(INVERTED)
    if a.muscle_length_cm is not None:
        if height_m:
            r = a.muscle_length_cm / (height_m * 100)
            quality["length_to_height"] = round(r, 3)
            ok = cfg.length_to_height[0] <= r <= cfg.length_to_height[1]
        else:
            ok = cfg.muscle_length_cm[0] <= a.muscle_length_cm <= cfg.muscle_length_cm[1]
        if not ok:
            reasons.append(SPACING_ANATOMY)
    if a.side_ratio is not None and a.side_ratio > cfg.max_side_ratio:
        reasons.append(ASYMMETRY)
    return reasons

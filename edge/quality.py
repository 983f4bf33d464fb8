"""The quality gate: when a film gives no estimate, and why. Every refusal names its reason.

Checked before any flag: the film must be a long-leg film (body part, shape, height), and the
segmentation must look like two thighs' muscle (found, decided, a plausible area per thigh).
"""
from __future__ import annotations

from .measure import Areas
from .reader import Film

NOT_LEG_PARTS = {"CHEST", "ABDOMEN", "HEAD", "SKULL", "HAND", "WRIST", "ELBOW", "SHOULDER", "ARM", "CSPINE",
                 "TSPINE", "LSPINE", "SPINE", "BREAST", "NECK", "FOOT", "ANKLE", "PELVIS"}
MIN_ASPECT = 1.6             # long-leg films are tall: rows / columns
MIN_FILM_HEIGHT_CM = 60.0
THIGH_AREA_CM2 = (60.0, 600.0)   # one thigh, between gluteal fold and condyles
MIN_CONFIDENCE = 0.85

NOT_LONG_LEG = "image is not a long-leg (lower-extremity) film"
LOW_CONFIDENCE = "segmentation failed quality checks (low confidence or no thigh muscle found)"
IMPLAUSIBLE_AREA = "segmentation failed quality checks (thigh muscle area implausible)"


def quality_gate(film: Film, areas: Areas, confidence: float) -> tuple[list[str], dict]:
    """(reasons, quality): reasons is empty when the film and its segmentation may be measured."""
    reasons: list[str] = []
    rows, cols = film.pixels.shape
    part = (film.body_part or "").upper().replace(" ", "")
    tall_enough = film.spacing_mm is None or rows * film.spacing_mm[0] / 10 >= MIN_FILM_HEIGHT_CM
    if part in NOT_LEG_PARTS or rows / cols < MIN_ASPECT or not tall_enough:
        reasons.append(NOT_LONG_LEG)
    quality = {"segmentation_confidence": round(confidence, 4), "sides_seen": areas.sides_seen,
               "aspect_ratio": round(rows / cols, 3)}
    if not reasons:
        if areas.sides_seen == 0 or confidence < MIN_CONFIDENCE:
            reasons.append(LOW_CONFIDENCE)
        elif areas.unit == "cm2":
            per_side = [a for a in (areas.right, areas.left) if a is not None] or [areas.total]
            plausible = all(THIGH_AREA_CM2[0] <= a <= THIGH_AREA_CM2[1] for a in per_side)
            quality["area_plausible"] = plausible
            if not plausible:
                reasons.append(IMPLAUSIBLE_AREA)
    return reasons, quality

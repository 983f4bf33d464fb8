"""Choose a bundle's quality-gate thresholds on validation films and write them into its manifest.

    sarco gate BUNDLE --data COHORT --split val

Each threshold starts from the validation films' range and is widened by a stated factor,
because the phantom's population is narrower than real patients' (README, the quality gate):
muscle length / height x [0.75, 1.5] of the observed [min, max], absolute length x [0.7, 1.8],
the larger/smaller thigh ratio at least 2.0 and 1.25 x the 99th percentile of the films showing
both thighs, the muscle's grey level at most 0.6 x the lowest seen (an inverted film puts it near 0.2), the share of muscle rows
with femur inside them at most 0.6 x the lowest seen, and the femoral shaft width x [0.75, 1.3]
of the observed range (multi-class models: the spacing's check, tight because the adult shaft
varies little; 0.75 of the phantom's narrowest is still under a small woman's real shaft). The
confidence floor stays at 0.6: decisiveness is not anatomy, and real films are less decided than
the phantom. Several cohorts (generations) may be given; a raster film's spacing is its case's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.bundle import MANIFEST, load_bundle, sha256
from edge.dataset import load_cases, raster_spacing
from edge.files import write_text_atomic
from edge.quality import GateConfig, anatomy, femur_width_cm
from edge.reader import read_film
from edge.screen import Screener


def choose_gate(bundle: Path, cohorts: list[Path], split: str = "val") -> dict:
    scr = Screener(bundle)
    ratio, length, side, level, femur, width = [], [], [], [], [], []
    cases = [c for cohort in cohorts for c in load_cases(cohort, split)]
    for c in cases:
        height_m = c.height_m
        film = read_film(c.image, spacing_mm=raster_spacing(c))
        seg = scr.segment_full(film)
        mask = seg.mask
        if seg.femur_support is not None:
            femur.append(seg.femur_support)
        if (cm := femur_width_cm(film, seg.femur_width_px)) is not None:
            width.append(cm)
        areas = scr.areas(film, seg)
        a = anatomy(film, mask, areas)
        if a.muscle_length_cm is None or not height_m:
            continue
        length.append(a.muscle_length_cm)
        ratio.append(a.muscle_length_cm / (height_m * 100))
        level.append(a.muscle_level)
        if a.side_ratio is not None and c.view == "both":  # a one-leg film's sliver of the other is no pair
            side.append(a.side_ratio)
    d = GateConfig()
    return {
        "min_confidence": d.min_confidence,
        "thigh_area_cm2": list(d.thigh_area_cm2),
        "muscle_length_cm": [round(min(length) * 0.7, 2), round(max(length) * 1.8, 2)],
        "length_to_height": [round(min(ratio) * 0.75, 4), round(max(ratio) * 1.5, 4)],
        "max_side_ratio": round(max(2.0, 1.25 * float(np.percentile(side, 99))), 3),
        "min_muscle_level": round(0.6 * min(level), 3),
        **({"min_femur_support": round(0.6 * min(femur), 3)} if femur else {}),
        **({"femur_width_cm": [round(0.75 * min(width), 2), round(1.3 * max(width), 2)]} if width else {}),
        "chosen_on": f"{len(length)} films of {' + '.join(Path(c).name for c in cohorts)}, split {split} (sarco gate)",
    }


def write_gate(bundle: Path, cohorts: list[Path], split: str = "val") -> dict:
    """Choose the thresholds and write them into the bundle's manifest (checksums renewed)."""
    gate = choose_gate(bundle, cohorts, split)
    m = dict(load_bundle(bundle, require_trust=False).manifest)  # checksums verified before it is rewritten
    m["quality_gate"] = {k: v for k, v in gate.items() if k != "chosen_on"}
    m["quality_gate_chosen_on"] = gate["chosen_on"]
    m["sha256"] = {n: sha256(bundle / n) for n in sorted(set(m["files"].values()))}
    write_text_atomic(bundle / MANIFEST, json.dumps(m, indent=2))
    return gate

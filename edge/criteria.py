"""Sarcopenia criteria: AWGS 2019 and EWGSOP2 cut-offs and the full category when grip strength
and/or gait speed are given. The single source of the cut-offs (training and clinic alike).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Criteria:
    name: str
    smi: dict[str, float]  # low muscle mass: SMI below this, kg/m^2
    grip: dict[str, float]  # low strength: grip below this, kg
    gait: float  # low performance: gait speed below (AWGS) or at/below (EWGSOP2), m/s
    gait_inclusive: bool


CRITERIA = {
    "awgs2019": Criteria("AWGS 2019", {"M": 7.0, "F": 5.4}, {"M": 28.0, "F": 18.0}, 1.0, False),
    "ewgsop2": Criteria("EWGSOP2", {"M": 7.0, "F": 5.5}, {"M": 27.0, "F": 16.0}, 0.8, True),
}


def category(crit: Criteria, sex: str, flag: str, grip_kg: float | None, gait_mps: float | None) -> dict:
    """The criteria's category from mass flag, grip and gait. Missing measures count as not low,
    and the result says which measures it used."""
    low_grip = grip_kg is not None and grip_kg < crit.grip[sex]
    low_gait = gait_mps is not None and (gait_mps <= crit.gait if crit.gait_inclusive else gait_mps < crit.gait)
    low_mass = flag == "low_muscle_mass"
    uncertain_mass = flag == "borderline"
    if crit.name == "EWGSOP2":
        # Strength first: probable sarcopenia, confirmed by low mass, severe with low performance.
        if not low_grip:
            cat = "no_sarcopenia"
        elif low_mass:
            cat = "severe_sarcopenia" if low_gait else "sarcopenia"
        else:
            cat = "possible_sarcopenia"  # EWGSOP2 "probable sarcopenia"
    else:
        if low_mass and low_grip and low_gait:
            cat = "severe_sarcopenia"
        elif low_mass and (low_grip or low_gait):
            cat = "sarcopenia"
        elif low_grip or low_gait:
            cat = "possible_sarcopenia"
        else:
            cat = "no_sarcopenia"
    if uncertain_mass and cat == "no_sarcopenia" and (low_grip or low_gait):
        cat = "possible_sarcopenia"
    return {
        "category": cat,
        "low_strength": low_grip if grip_kg is not None else None,
        "low_performance": low_gait if gait_mps is not None else None,
        "used": [k for k, v in (("grip_kg", grip_kg), ("gait_speed_mps", gait_mps)) if v is not None],
    }

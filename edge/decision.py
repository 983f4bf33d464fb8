"""The flag a clinician acts on, from p_low and the bundle's two thresholds.

`p_low` is the calibrated probability that DEXA SMI is under the criteria's cut-off for this
sex. The thresholds (`clear` <= `refer`) are chosen on held-out films (edge.calibration) and
travel in the bundle's manifest under `decision.<criteria>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Flag(str, Enum):
    LOW_MUSCLE_MASS = "low_muscle_mass"
    BORDERLINE = "borderline"
    NORMAL = "normal"
    NOT_ASSESSABLE = "not_assessable"


MEANING = {
    Flag.LOW_MUSCLE_MASS: "likely low muscle mass: refer for DEXA (or BIA) and measure grip strength and gait speed",
    Flag.BORDERLINE: "cannot tell from this film: consider DEXA (or BIA) and grip strength if there are other risk factors",
    Flag.NORMAL: "muscle mass likely above the cut-off: no further muscle-mass test indicated by this film",
    Flag.NOT_ASSESSABLE: "no estimate from this film: see the reasons",
}


@dataclass(frozen=True)
class Thresholds:
    clear: float  # p_low at or below: normal
    refer: float  # p_low at or above: low_muscle_mass

    @classmethod
    def from_dict(cls, d: dict) -> Thresholds:
        return cls(clear=float(d["clear"]), refer=float(d["refer"]))


def decide(p_low: float, th: Thresholds) -> Flag:
    """Refer first (when the two thresholds meet, a film at them is referred)."""
    if p_low >= th.refer:
        return Flag.LOW_MUSCLE_MASS
    if p_low <= th.clear:
        return Flag.NORMAL
    return Flag.BORDERLINE

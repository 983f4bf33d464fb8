"""The SMI estimate: DEXA-equivalent skeletal muscle index from thigh muscle area, sex and height,
with its 95 % prediction interval and the probability that DEXA SMI is under a cut-off. Fitted
by edge.calibration (both `sarco calibrate` and `sarco-edge calibrate`), carried in the bundle,
applied here without scipy: the fit stores its t quantile and degrees of freedom follow from n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMS = ("linear", "loglinear")
N_COEF = 4


def design_row(form: str, area_cm2: float, sex: str, height_m: float) -> np.ndarray:
    """Feature vector of one film: [1, area term, male, height term]. Height in metres."""
    male = 1.0 if sex == "M" else 0.0
    if form == "linear":
        return np.array([1.0, area_cm2, male, height_m])
    if form == "loglinear":
        return np.array([1.0, math.log(area_cm2), male, math.log(height_m)])
    raise ValueError(f"unknown calibration form {form!r}")


@dataclass(frozen=True)
class SmiCalibration:
    form: str
    coef: tuple[float, ...]
    xtx_inv: tuple[tuple[float, ...], ...]
    residual_sd: float
    t95: float
    n: int
    interval_scale: float = 1.0  # widens the interval to the coverage seen on held-out films
    one_side_sd: float = 0.0  # extra spread of an estimate from one thigh doubled (asymmetry)

    @classmethod
    def from_dict(cls, d: dict) -> SmiCalibration:
        return cls(
            form=d["form"],
            coef=tuple(d["coef"]),
            xtx_inv=tuple(tuple(r) for r in d["xtx_inv"]),
            residual_sd=float(d["residual_sd"]),
            t95=float(d["t95"]),
            n=int(d["n"]),
            interval_scale=float(d.get("interval_scale", 1.0)),
            one_side_sd=float(d.get("one_side_sd", 0.0)),
        )

    @property
    def dof(self) -> int:
        return max(self.n - N_COEF, 1)

    def mean(self, area_cm2: float, sex: str, height_m: float) -> float:
        """The regression's mean on its own scale (log SMI for the loglinear form)."""
        return float(design_row(self.form, area_cm2, sex, height_m) @ np.asarray(self.coef))

    def scale(self, area_cm2: float, sex: str, height_m: float, one_side: bool = False) -> float:
        """SD of a new observation around the mean, on the form's scale (prediction, not confidence)."""
        x = design_row(self.form, area_cm2, sex, height_m)
        s = self.residual_sd * math.sqrt(1.0 + float(x @ np.asarray(self.xtx_inv) @ x)) * self.interval_scale
        return math.sqrt(s * s + self.one_side_sd**2) if one_side else s

    def predict(self, area_cm2: float, sex: str, height_m: float, one_side: bool = False) -> tuple[float, float, float]:
        """(estimate, low, high) in kg/m^2: the 95 % prediction interval."""
        mean = self.mean(area_cm2, sex, height_m)
        half = self.t95 * self.scale(area_cm2, sex, height_m, one_side)
        if self.form == "loglinear":
            return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
        return mean, mean - half, mean + half

    def p_low(self, area_cm2: float, sex: str, height_m: float, cutoff: float, one_side: bool = False) -> float:
        """P(DEXA SMI < cutoff) under the predictive t distribution."""
        from .stats import t_cdf

        target = math.log(cutoff) if self.form == "loglinear" else cutoff
        z = (target - self.mean(area_cm2, sex, height_m)) / self.scale(area_cm2, sex, height_m, one_side)
        return float(t_cdf(z, self.dof))

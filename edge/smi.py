"""The SMI estimate: DEXA-equivalent skeletal muscle index from thigh muscle area, sex and height,
with a 95 % prediction interval. Fitted by `sarco calibrate`, carried in the model bundle, and
applied here, without scipy: the fit stores its t quantile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMS = ("linear", "loglinear")


def design_row(form: str, area_cm2: float, sex: str, height_m: float) -> np.ndarray:
    """Feature vector of one film: [1, area term, male, height term]."""
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

    @classmethod
    def from_dict(cls, d: dict) -> "SmiCalibration":
        return cls(form=d["form"], coef=tuple(d["coef"]), xtx_inv=tuple(tuple(r) for r in d["xtx_inv"]),
                   residual_sd=float(d["residual_sd"]), t95=float(d["t95"]), n=int(d["n"]))

    def predict(self, area_cm2: float, sex: str, height_m: float) -> tuple[float, float, float]:
        """(estimate, low, high) in kg/m^2; the interval is the regression's 95 % prediction interval."""
        x = design_row(self.form, area_cm2, sex, height_m)
        b = np.asarray(self.coef)
        A = np.asarray(self.xtx_inv)
        mean = float(x @ b)
        half = self.t95 * self.residual_sd * math.sqrt(1.0 + float(x @ A @ x))
        if self.form == "loglinear":
            return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
        return mean, mean - half, mean + half

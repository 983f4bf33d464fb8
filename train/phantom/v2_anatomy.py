"""Generator 2's thigh: muscle shape from the Visible Human sections, projected AP.

`../shared/anatomy/vh_thigh_sections.json` (Andreassen et al. 2023, CC BY 4.0) gives, for the
Visible Human female and male left thigh at 41 levels from the hip centre (t = 0) to the knee
centre (t = 1), the muscle union's AP-projected width (medial and lateral edge, relative to the
femur centre) and its AP thickness profile (summed muscle path length along the AP ray in 32
bins across that width): exactly what a frontal radiograph integrates.

A person's thigh is one blend of the two subjects (weight w: 0 female, 1 male, drawn between and
a little beyond), each first normalised to unit mean cross-section, interpolated linearly
between levels, then scaled so the union's volume from hip to knee equals the person's sampled
thigh muscle volume (PHANTOM.md's person -> muscle mass chain): width by sx, AP thickness by sy,
sx * sy = volume / thigh length, sx / sy a person's aspect. The image therefore sees the muscle
through the real sections' shape, never through a formula of the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .person import MUSCLE_DENSITY_G_CM3, Leg, Person

VH_JSON = Path(__file__).resolve().parents[3] / "shared" / "anatomy" / "vh_thigh_sections.json"
N_BINS = 32


@dataclass(frozen=True)
class Sections:
    """Per-level section of one thigh in cm (medial edge, lateral edge, AP depth, thickness)."""

    t: np.ndarray  # (41,)
    xmin: np.ndarray  # medial edge of the muscle union relative to the femur centre (negative)
    xmax: np.ndarray  # lateral edge
    depth: np.ndarray  # AP extent of the union
    thick: np.ndarray  # (41, 32) AP muscle path length per bin

    def area(self) -> np.ndarray:
        return self.thick.sum(axis=1) * (self.xmax - self.xmin) / N_BINS

    def mean_area(self) -> float:
        a = self.area()
        return float(np.sum(0.5 * (a[1:] + a[:-1]) * np.diff(self.t)))

    def scaled(self, sx: float, sy: float) -> Sections:
        return Sections(self.t, self.xmin * sx, self.xmax * sx, self.depth * sy, self.thick * sy)


def vh_path() -> Path:
    for p in (VH_JSON, Path("/work/shared/anatomy/vh_thigh_sections.json")):
        if p.exists():
            return p
    raise FileNotFoundError(f"Visible Human sections not found at {VH_JSON}")


@lru_cache(maxsize=1)
def vh_sections() -> dict[str, Sections]:
    """The female and male sections in cm, as in the JSON (not normalised)."""
    data = json.loads(vh_path().read_text())
    out = {}
    for key, sex in (("VHF", "F"), ("VHM", "M")):
        levels = data["subjects"][key]["levels"]
        out[sex] = Sections(
            t=np.array([lv["t"] for lv in levels], float),
            xmin=np.array([lv["width_mm"][0] for lv in levels], float) / 10.0,
            xmax=np.array([lv["width_mm"][1] for lv in levels], float) / 10.0,
            depth=np.array([lv["depth_mm"][1] - lv["depth_mm"][0] for lv in levels], float) / 10.0,
            thick=np.array([lv["ap_thickness_mm"] for lv in levels], float) / 10.0,
        )
    return out


def unit_sections(sex: str) -> Sections:
    """One subject scaled (isotropically across the section) to a mean cross-section of 1 cm^2."""
    s = vh_sections()[sex]
    c = 1.0 / np.sqrt(s.mean_area())
    return s.scaled(c, c)


def blended(w: float) -> Sections:
    """Female (w = 0) to male (w = 1) shape, linear in every quantity, renormalised to 1 cm^2."""
    f, m = unit_sections("F"), unit_sections("M")
    b = Sections(
        f.t,
        (1 - w) * f.xmin + w * m.xmin,
        (1 - w) * f.xmax + w * m.xmax,
        (1 - w) * f.depth + w * m.depth,
        np.maximum((1 - w) * f.thick + w * m.thick, 0.0),
    )
    c = 1.0 / np.sqrt(b.mean_area())
    return b.scaled(c, c)


def person_sections(leg: Leg, thigh_len: float, w: float, aspect: float) -> Sections:
    """The person's thigh: blend w, scaled so the hip-knee union volume is the leg's muscle volume."""
    vol = leg.thigh_muscle_kg * 1000.0 / MUSCLE_DENSITY_G_CM3
    k = vol / thigh_len  # mean cross-section, cm^2
    return blended(w).scaled(np.sqrt(k * aspect), np.sqrt(k / aspect))


def at_levels(s: Sections, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation between levels: xmin, xmax, depth (n,) and thickness (n, 32)."""
    tc = np.clip(t, s.t[0], s.t[-1])
    f = (tc - s.t[0]) / (s.t[1] - s.t[0])
    i = np.minimum(np.floor(f).astype(int), len(s.t) - 2)
    a = (f - i)[:, None]
    thick = (1 - a) * s.thick[i] + a * s.thick[i + 1]
    a1 = a[:, 0]
    lin = [(1 - a1) * v[i] + a1 * v[i + 1] for v in (s.xmin, s.xmax, s.depth)]
    return lin[0], lin[1], lin[2], thick


def row_thickness(x_lat: np.ndarray, xmin: float, xmax: float, thick: np.ndarray) -> np.ndarray:
    """AP muscle path at positions x_lat (cm, lateral +, from the femur centre) on one level.

    The 32 bin means are knots at the bin centres; the path falls to zero at both edges."""
    knots_u = np.concatenate([[0.0], (np.arange(N_BINS) + 0.5) / N_BINS, [1.0]])
    knots_v = np.concatenate([[0.0], thick, [0.0]])
    u = (x_lat - xmin) / max(xmax - xmin, 1e-6)
    return np.interp(u, knots_u, knots_v, left=0.0, right=0.0)


def sample_shape(p: Person, rng: np.random.Generator) -> tuple[float, float]:
    """A person's blend weight between (and a little around) the two subjects, and aspect sx/sy."""
    w = float(np.clip(rng.normal(0.2, 0.22) if p.sex == "F" else rng.normal(0.8, 0.22), -0.3, 1.3))
    aspect = float(np.exp(np.clip(rng.normal(0.0, 0.08), -0.2, 0.2)))
    return w, aspect


def thigh_rows(
    s: Sections, t: np.ndarray, x: np.ndarray, femur_x: np.ndarray, sgn: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Muscle path map (rows, cols) for rows at levels t, and per-row medial/lateral image edges.

    x: column positions (cm, patient plane); femur_x: femur centre per row; sgn: +1 left leg
    (lateral is +x in the image), -1 right leg."""
    xmin, xmax, _, thick = at_levels(s, t)
    out = np.zeros((len(t), len(x)), np.float32)
    inside = (t >= s.t[0]) & (t <= s.t[-1])
    for r in np.nonzero(inside)[0]:
        out[r] = row_thickness(sgn * (x - femur_x[r]), xmin[r], xmax[r], thick[r])
    return out, femur_x + sgn * xmin, femur_x + sgn * xmax

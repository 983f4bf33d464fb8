"""Generator 2's body: trunk, buttocks, perineum, thighs (Visible Human muscle), knees, calves,
feet on a foot plate, projected AP into per-tissue path lengths and the label map.

Thigh muscle is v2_anatomy's VH-shaped section along the femoral shaft; the skin is an ellipse
per row holding the muscle and a subcutaneous fat rim (PHANTOM.md's fat thickness); each thigh
is flattened at the midline where it meets the other (inner thighs that touch leave no gap).
Bones come from generator 1 (femur, knee, tibia, fibula, foot) and v2_pelvis (pelvis, spine).
Labels follow PHANTOM.md: thigh muscle = projected muscle silhouette from the gluteal fold to the
top of the condyles minus femur pixels; thigh fat = the thigh's skin silhouette minus muscle and
bone at the same levels; bone = any bone or implant; calf muscle = projected calf compartment
minus tibia and fibula.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .anatomy import LABELS, SIDE_CODE, _calf_profile, _femur, _femur_frame, _interp, _shank_bones
from .geometry import Grid, ellipsoid, row_ellipses
from .person import Leg, Person
from .v2_anatomy import Sections, at_levels, person_sections, sample_shape, thigh_rows
from .v2_pelvis import pelvis_and_spine

TISSUES = ("soft", "muscle", "cort", "trab", "marrow", "metal", "gas", "plate")


@dataclass(frozen=True)
class Shape:
    """Per-person generator-2 traits (drawn once per person, shared by all of their films)."""

    blend: float  # VH female (0) -> male (1)
    aspect: float  # muscle width / AP thickness scale ratio
    buttock: float  # buttock size factor
    perineum_cm: float  # AP depth of the perineum soft tissue
    fold_t: float  # gluteal fold level as a fraction of the thigh length
    foot_drop: float  # ankle centre to the sole, cm
    inner_fat: float  # extra medial (inner-thigh) fat, in units of the fat rim
    knee_half: float  # stance: knee centre from the midline, cm (inner thighs often touch)
    ankle_half: float


def sample_shape2(p: Person, rng: np.random.Generator) -> Shape:
    w, aspect = sample_shape(p, rng)
    knee = float(rng.uniform(4.5, 9.0))
    return Shape(
        blend=w,
        aspect=aspect,
        buttock=float(rng.uniform(0.85, 1.2) * (1 + 0.03 * (p.bmi - 23))),
        perineum_cm=float(rng.uniform(3.0, 6.0)),
        fold_t=float(rng.uniform(0.15, 0.19)),
        foot_drop=float(rng.uniform(6.5, 8.5)),
        inner_fat=float(rng.uniform(0.5, 2.0)),
        knee_half=knee,
        ankle_half=float(np.clip(knee + rng.normal(0.0, 1.5), 3.5, 12.0)),
    )


def with_stance(p: Person, sh: Shape) -> Person:
    """The person standing as generator 2 draws it (knees and ankles closer, as older people stand)."""
    legs = tuple(
        replace(leg, knee_x=np.sign(leg.hip_x) * sh.knee_half, ankle_x=np.sign(leg.hip_x) * sh.ankle_half)
        for leg in p.legs
    )
    return replace(p, legs=legs)


@dataclass
class Body:
    maps: dict[str, np.ndarray]
    labels: np.ndarray
    side: np.ndarray
    levels: dict[str, float]
    sections: dict[str, Sections]


def _rows(grid: Grid, ya: float, yb: float) -> slice | None:
    ys = grid.row_y()
    idx = np.nonzero((ys >= ya) & (ys < yb))[0]
    return None if idx.size == 0 else slice(int(idx[0]), int(idx[-1]) + 1)


def _cols(grid: Grid, xa: float, xb: float) -> slice | None:
    c0 = max(int(np.floor((xa - grid.x0) / grid.s)), 0)
    c1 = min(int(np.ceil((xb - grid.x0) / grid.s)) + 1, grid.cols)
    return None if c0 >= c1 else slice(c0, c1)


def _trunk(grid: Grid, p: Person, sh: Shape, maps, levels) -> None:
    """Lower trunk down to the crotch, buttocks (their lower edge is the gluteal fold), perineum."""
    hip, fat = abs(p.legs[0].hip_x), p.fat_mid_cm
    y_crotch = 0.10 * p.thigh_len
    rows = _rows(grid, -200.0, y_crotch)
    if rows is not None:
        y = grid.row_y()[rows]
        a0 = hip + 5.8 + 1.4 * fat
        a = a0 * _interp(y, [(-30.0, 0.88), (-12.0, 0.97), (0.0, 1.0), (2.0, 1.0)])
        shrink = np.sqrt(np.clip(1.0 - ((y - 2.0) / max(y_crotch - 2.0, 0.5)) ** 2, 0.0, 1.0))
        a = np.where(y > 2.0, a * shrink, a).astype(np.float32)
        b = (p.body_depth * np.where(y > 2.0, shrink, 1.0)).astype(np.float32)
        for key, aa, bb in (("soft", a, b), ("muscle", np.maximum(a - 1.6 * fat, 0.1), np.maximum(b - 2.2 * fat, 0.1))):
            res = row_ellipses(grid, rows, np.zeros_like(a), aa, bb, -a0, a0)
            if res is not None:
                sub = maps[key][res[0]]
                np.maximum(sub, res[1], out=sub)
    fold = levels["gluteal_fold"]
    for sgn in (-1.0, 1.0):
        ay = 9.5 * sh.buttock
        e = ellipsoid(grid, sgn * (hip + 1.0), fold - ay, 8.5 * sh.buttock, ay, 3.0 * sh.buttock)
        if e is not None:
            maps["soft"][e[0]] += e[1]
            maps["muscle"][e[0]] += 0.5 * e[1]
    e = ellipsoid(grid, 0.0, y_crotch + 1.5, 0.42 * hip, 5.0, sh.perineum_cm / 2)
    if e is not None:
        sub = maps["soft"][e[0]]
        np.maximum(sub, e[1], out=sub)
    if p.sex == "M":
        e = ellipsoid(grid, 0.0, y_crotch + 4.5, 2.8, 3.6, 2.2)
        if e is not None:
            maps["soft"][e[0]] += e[1]


def _femur_x(p: Person, leg: Leg, y: np.ndarray) -> np.ndarray:
    """Centre of the femoral shaft at rows y (the VH sections' origin), extended to hip and knee."""
    _, K, d, *_ = _femur_frame(leg, p.thigh_len)
    return (K[0] + (y - K[1]) * d[0] / d[1]).astype(np.float32)


def _thigh(grid: Grid, p: Person, sh: Shape, leg: Leg, s: Sections, maps, labels, side, levels) -> None:
    sgn = -1.0 if leg.side == "R" else 1.0
    L = p.thigh_len
    rows = _rows(grid, -4.0, L + 1.5)
    if rows is None:
        return
    y = grid.row_y()[rows]
    t = y / L
    fx = _femur_x(p, leg, y)
    xmin, xmax, depth, _ = at_levels(s, t)
    edge_m, edge_l = fx + sgn * xmin, fx + sgn * xmax
    fat = p.fat_mid_cm * _interp(t, [(-0.3, 1.9), (0.1, 1.5), (0.5, 1.0), (1.0, 0.6), (1.2, 0.5)])
    knee_w = _interp(t, [(0.75, 0.0), (0.9, 3.2), (1.0, 4.3), (1.15, 4.1)])
    a_m = 0.5 * np.abs(edge_l - edge_m)
    pull = _interp(t, [(0.8, 0.0), (1.0, 1.0)])
    xc = 0.5 * (edge_l + edge_m) * (1 - pull) + fx * pull
    inner = fat * sh.inner_fat * _interp(t, [(0.0, 1.0), (0.5, 0.6), (0.9, 0.0)])  # medial fat pad
    xc = xc - sgn * 0.5 * inner
    a_s = np.maximum(a_m + 1.1 * fat + 0.5 * inner, knee_w + 0.7 * fat)
    b_s = np.maximum(0.5 * depth + fat, 0.9 * knee_w + 0.8 * fat)
    lo, hi = float(np.min(xc - a_s)), float(np.max(xc + a_s))
    lo, hi = (max(lo, 0.0), hi) if sgn > 0 else (lo, min(hi, 0.0))  # flattened at the midline
    soft = row_ellipses(grid, rows, xc, a_s, b_s, lo, hi)
    if soft is None:
        return
    box, cs = soft
    x = grid.x0 + np.arange(box[1].start, box[1].stop, dtype=np.float32) * grid.s
    mus, _, _ = thigh_rows(s, t, x, fx, sgn)
    mus[cs <= 0] = 0.0
    np.maximum(maps["soft"][box], np.maximum(cs, mus + 0.3), out=maps["soft"][box], where=cs > 0)
    np.maximum(maps["muscle"][box], mus, out=maps["muscle"][box])
    rows_ok = ((y >= levels["gluteal_fold"]) & (y <= levels["condyle_top"]))[:, None]
    lab, sd = labels[box], side[box]
    m2 = rows_ok & (cs > 0)
    lab[m2] = LABELS["thigh_fat"]
    lab[rows_ok & (mus > 0.05)] = LABELS["thigh_muscle"]
    sd[m2] = SIDE_CODE[leg.side]


def _calf(grid: Grid, p: Person, leg: Leg, maps, labels, side, levels) -> None:
    sgn = -1.0 if leg.side == "R" else 1.0
    L, S = p.thigh_len, p.shank_len
    rows = _rows(grid, L + 1.5, L + S + 9.0)
    if rows is None:
        return
    y = grid.row_y()[rows]
    xc, a_s, b_s, xm, a_m, b_m, _ = _calf_profile(p, leg, y)
    lo, hi = float(np.min(xc - a_s)), float(np.max(xc + a_s))
    lo, hi = (max(lo, 0.0), hi) if sgn > 0 else (lo, min(hi, 0.0))
    soft = row_ellipses(grid, rows, xc, a_s, b_s, lo, hi)
    comp = row_ellipses(grid, rows, xm, a_m, b_m, lo, hi)
    if soft is None or comp is None:
        return
    box, cs = soft
    cm = np.minimum(comp[1], cs)
    bone = maps["cort"][box] + maps["trab"][box] + maps["marrow"][box] + maps["metal"][box]
    mus = np.maximum(cm - bone, 0.0)
    np.maximum(maps["soft"][box], cs, out=maps["soft"][box])
    np.maximum(maps["muscle"][box], mus, out=maps["muscle"][box])
    m4 = ((y >= levels["tibial_plateau"]) & (y <= levels["ankle"] - 2.0))[:, None] & (mus > 0.05)
    labels[box][m4] = LABELS["calf_muscle"]
    side[box][m4] = SIDE_CODE[leg.side]


def _foot_plate(grid: Grid, p: Person, sh: Shape, maps, depth_cm: float) -> float:
    """The step the patient stands on: a thick block under the soles, bright on the film."""
    sole = p.thigh_len + p.shank_len + sh.foot_drop
    rows = _rows(grid, sole, 1e9)
    if rows is not None:
        maps["plate"][rows] += depth_cm
    return sole


def build_body(grid: Grid, p: Person, sh: Shape, rng: np.random.Generator, plate_cm: float) -> Body:
    """Project the person's lower body onto `grid` (patient-plane cm, hip centres at y = 0)."""
    maps = {k: np.zeros((grid.rows, grid.cols), np.float32) for k in TISSUES}
    labels = np.zeros((grid.rows, grid.cols), np.uint8)
    side = np.zeros((grid.rows, grid.cols), np.uint8)
    L = p.thigh_len
    levels = {
        "hip": 0.0,
        "gluteal_fold": float(L * sh.fold_t),
        "condyle_top": L - 4.6,
        "knee": L,
        "tibial_plateau": L + 3.8,
        "ankle": L + p.shank_len,
    }
    levels.update(pelvis_and_spine(grid, maps, abs(p.legs[0].hip_x), rng, grid.y0))
    sections = {}
    for leg in p.legs:
        _femur(grid, p, leg, maps)
        _shank_bones(grid, p, leg, maps)
    _trunk(grid, p, sh, maps, levels)
    for leg in p.legs:
        sections[leg.side] = person_sections(leg, L, sh.blend, sh.aspect)
        _thigh(grid, p, sh, leg, sections[leg.side], maps, labels, side, levels)
        _calf(grid, p, leg, maps, labels, side, levels)
    levels["sole"] = _foot_plate(grid, p, sh, maps, plate_cm)
    bone = (maps["cort"] + maps["trab"] + maps["marrow"] + maps["metal"]) > 0
    labels[bone] = LABELS["bone"]
    return Body(maps=maps, labels=labels, side=side, levels=levels, sections=sections)


def path_lengths(b: Body) -> dict[str, np.ndarray]:
    """Muscle, fat, bone parts and gas: soft tissue not taken by muscle or bone is fat."""
    m = b.maps
    fat = m["soft"] - m["muscle"]
    for k in ("cort", "trab", "marrow", "metal"):
        fat -= m[k]
    np.maximum(fat, 0.0, out=fat)
    muscle = m["muscle"]
    if m["gas"].any():  # gas displaces muscle first, then fat
        gas = np.minimum(m["gas"], muscle + fat)
        gas_m = np.minimum(gas, muscle)
        muscle = muscle - gas_m
        fat -= gas - gas_m
    return {
        "muscle": muscle,
        "fat": fat,
        "cort": m["cort"],
        "trab": m["trab"],
        "marrow": m["marrow"],
        "metal": m["metal"],
        "plate": m["plate"],
    }

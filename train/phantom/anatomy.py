"""3-D anatomy of the lower body, projected AP into per-tissue path-length maps and a label map.

Soft tissue is a stack of elliptical cross-sections along each leg (skin silhouette, muscle
compartment inside it, fat between); bones are ellipsoids and tapered rods with a cortical shell;
implants are metal rods, spheres and shells. The muscle compartment's cross-section area comes
from the person's muscle volume (PHANTOM.md), so the image's muscle width follows the mass only
through geometry: a frontal film sees the width, not the depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Grid, capsule, ellipsoid, rotate, row_ellipses
from .person import MUSCLE_DENSITY_G_CM3, Leg, Person

TISSUES = ("soft", "comp", "cort", "trab", "marrow", "metal", "gas", "lead", "plastic")
LABELS = {"background": 0, "thigh_muscle": 1, "thigh_fat": 2, "bone": 3, "calf_muscle": 4}
SIDE_CODE = {"R": 1, "L": 2}


@dataclass
class Projection:
    grid: Grid
    maps: dict[str, np.ndarray]
    labels: np.ndarray  # uint8, values of LABELS
    side: np.ndarray  # uint8, 1 = patient's right leg, 2 = left, 0 = neither
    levels: dict[str, float] = field(default_factory=dict)

    def path_lengths(self) -> dict[str, np.ndarray]:
        """Soft tissue split into muscle and fat, after bone and gas take their share of the chord."""
        m = self.maps
        bone = m["cort"] + m["trab"] + m["marrow"] + m["metal"]
        muscle = np.maximum(m["comp"] - bone, 0.0)
        fat = np.maximum(m["soft"] - m["comp"] - np.maximum(bone - m["comp"], 0.0), 0.0)
        gas = np.minimum(m["gas"], muscle)
        return {
            "muscle": muscle - gas,
            "fat": fat,
            "cort": m["cort"],
            "trab": m["trab"],
            "marrow": m["marrow"],
            "metal": m["metal"],
            "lead": m["lead"],
            "plastic": m["plastic"],
        }


class _Bone:
    """One bone (or implant) assembled from overlapping parts: max within, sum across bones."""

    def __init__(self) -> None:
        self.parts: list[tuple[tuple[slice, slice], np.ndarray, str]] = []

    def add(self, res, tissue: str, scale: float = 1.0) -> None:
        if res is not None:
            self.parts.append((res[0], res[1] * scale, tissue))

    def shell(self, outer, inner, inner_tissue: str) -> None:
        """Cortical shell: outer minus inner chord is cortex, the inner chord is marrow or trabecular."""
        if outer is None:
            return
        if inner is None:
            self.add(outer, "cort")
            return
        (ob, oc), (ib, ic) = outer, inner
        full = np.zeros_like(oc)
        rs = slice(ib[0].start - ob[0].start, ib[0].stop - ob[0].start)
        cs = slice(ib[1].start - ob[1].start, ib[1].stop - ob[1].start)
        full[rs, cs] = ic
        self.parts.append((ob, np.maximum(oc - full, 0.0), "cort"))
        self.parts.append((ob, full, inner_tissue))

    def commit(self, maps: dict[str, np.ndarray]) -> None:
        if not self.parts:
            return
        r0 = min(b[0].start for b, _, _ in self.parts)
        r1 = max(b[0].stop for b, _, _ in self.parts)
        c0 = min(b[1].start for b, _, _ in self.parts)
        c1 = max(b[1].stop for b, _, _ in self.parts)
        local: dict[str, np.ndarray] = {}
        for (rs, cs), chord, tissue in self.parts:
            buf = local.setdefault(tissue, np.zeros((r1 - r0, c1 - c0), np.float32))
            sub = buf[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0]
            np.maximum(sub, chord, out=sub)
        for tissue, buf in local.items():
            maps[tissue][r0:r1, c0:c1] += buf


def _unit(v):
    n = float(np.hypot(v[0], v[1]))
    return (v[0] / n, v[1] / n)


def _femur_frame(leg: Leg, thigh_len: float):
    """Hip centre H, knee centre K, shaft direction d (pointing up), neck junction J, neck dir n."""
    sgn = -1.0 if leg.side == "R" else 1.0
    H = (leg.hip_x, 0.0)
    K = (leg.knee_x, thigh_len)
    m = _unit((H[0] - K[0], H[1] - K[1]))
    # Anatomical axis through the knee, tilted so the head sits `femoral_offset` from the shaft axis.
    valgus = float(np.degrees(np.arcsin(leg.femoral_offset / np.hypot(H[0] - K[0], H[1] - K[1]))))
    cands = [rotate(m, valgus), rotate(m, -valgus)]
    d = max(cands, key=lambda v: sgn * v[0])  # shaft top leans lateral
    down = (-d[0], -d[1])
    ncands = [rotate(down, leg.neck_shaft_deg), rotate(down, -leg.neck_shaft_deg)]
    n = min(ncands, key=lambda v: sgn * v[0])  # neck points medially to the head
    A = np.array([[d[0], n[0]], [d[1], n[1]]])
    u, ell = np.linalg.solve(A, np.array([H[0] - K[0], H[1] - K[1]]))
    J = (K[0] + u * d[0], K[1] + u * d[1])
    return H, K, d, J, n, sgn, ell


def _interp(t: np.ndarray, knots: list[tuple[float, float]]) -> np.ndarray:
    xs, ys = zip(*knots)
    return np.interp(t, xs, ys).astype(np.float32)


def _thigh_profile(p: Person, leg: Leg, y: np.ndarray):
    """Soft-tissue and compartment ellipses of the thigh for rows y (cm below the hip centre)."""
    L = p.thigh_len
    t = y / L
    knots = [(-0.25, 0.55), (p.peak_t, 1.0), (0.88, p.distal_frac), (1.0, 0.10), (1.1, 0.05)]
    tt = np.linspace(0, 1, 201)
    norm = np.trapezoid(_interp(tt, knots), tt) * L
    vol = leg.thigh_muscle_kg * 1000.0 / MUSCLE_DENSITY_G_CM3
    csa = vol / norm * _interp(t, knots)  # muscle cross-section, cm^2
    femur_area = np.pi * leg.femur_radius**2
    a_m = np.sqrt((csa + femur_area) / (np.pi * p.depth_ratio))
    b_m = a_m * p.depth_ratio
    fat = p.fat_mid_cm * _interp(t, [(-0.3, 1.9), (0.1, 1.5), (0.5, 1.0), (1.0, 0.6), (1.2, 0.5)])
    # Around the knee the silhouette must also hold the condyles.
    knee_w = _interp(t, [(0.75, 0.0), (0.9, 3.2), (1.0, 4.3), (1.15, 4.1)])
    a_s = np.maximum(a_m + 1.1 * fat, knee_w + 0.7 * fat)
    b_s = np.maximum(b_m + fat, 0.9 * knee_w + 0.8 * fat)
    sgn = -1.0 if leg.side == "R" else 1.0
    xc = np.interp(y, [0.0, L], [leg.hip_x + sgn * 1.6, leg.knee_x]).astype(np.float32)
    return xc, a_s, b_s, xc + sgn * leg.muscle_offset, a_m, b_m, csa


def _calf_profile(p: Person, leg: Leg, y: np.ndarray):
    S = p.shank_len
    u = (y - p.thigh_len) / S
    knots = [(0.0, 0.15), (0.08, 0.45), (0.3, 1.0), (0.72, 0.35), (0.9, 0.06), (1.0, 0.0)]
    uu = np.linspace(0, 1, 201)
    norm = np.trapezoid(_interp(uu, knots), uu) * S
    vol = leg.calf_muscle_kg * 1000.0 / MUSCLE_DENSITY_G_CM3
    csa = vol / norm * _interp(u, knots)
    bone_area = _interp(u, [(0.0, 9.0), (0.15, 5.5), (0.9, 4.0), (1.0, 6.0)])
    r = 0.9
    a_m = np.sqrt((csa + bone_area) / (np.pi * r))
    b_m = a_m * r
    fat = p.calf_fat_cm * _interp(u, [(0.0, 1.0), (0.4, 1.0), (1.0, 0.5)])
    bone_w = _interp(u, [(-0.05, 4.1), (0.08, 3.6), (0.2, 2.4), (0.85, 2.2), (1.0, 3.4), (1.12, 3.6), (1.3, 3.4)])
    a_s = np.maximum(a_m + fat, bone_w + 0.5 + 0.5 * fat)
    b_s = np.maximum(b_m + fat, bone_w * 0.9 + 0.6)
    # Below the ankle the beam runs along the foot.
    foot = _interp(u, [(1.02, 0.0), (1.1, 1.0), (1.4, 1.0)])
    b_s = b_s + foot * 7.0
    sgn = -1.0 if leg.side == "R" else 1.0
    xc = np.interp(u, [0.0, 1.0], [leg.knee_x, leg.ankle_x]).astype(np.float32)
    return xc, a_s, b_s, xc - sgn * 0.2, a_m, b_m, csa


def _leg_soft(grid: Grid, p: Person, leg: Leg, maps, labels, side, levels) -> None:
    ys = grid.row_y()
    sgn = -1.0 if leg.side == "R" else 1.0
    code = SIDE_CODE[leg.side]
    L, S = p.thigh_len, p.shank_len
    sections = [
        ("thigh", -8.0, L + 1.5, _thigh_profile),
        ("calf", L + 1.5, L + S + 8.0, _calf_profile),
    ]
    for name, ya, yb, prof in sections:
        idx = np.nonzero((ys >= ya) & (ys < yb))[0]
        if idx.size == 0:
            continue
        rows = slice(int(idx[0]), int(idx[-1]) + 1)
        y = ys[rows]
        xc, a_s, b_s, xm, a_m, b_m, _ = prof(p, leg, y)
        lo = float(np.min(xc - a_s))
        hi = float(np.max(xc + a_s))
        # Each leg stays on its own side of the midline: touching thighs flatten against each other.
        lo, hi = (max(lo, 0.0), hi) if sgn > 0 else (lo, min(hi, 0.0))
        soft = row_ellipses(grid, rows, xc, a_s, b_s, lo, hi)
        comp = row_ellipses(grid, rows, xm, a_m, b_m, lo, hi)
        if soft is None:
            continue
        box, cs = soft
        _, cm = comp
        cm = np.minimum(cm, cs)
        sub = maps["soft"][box]
        np.maximum(sub, cs, out=sub)
        sub = maps["comp"][box]
        np.maximum(sub, cm, out=sub)
        lab = labels[box]
        sd = side[box]
        yy = y[:, None]
        if name == "thigh":
            rows_ok = (yy >= levels["gluteal_fold"]) & (yy <= levels["condyle_top"])
            m2 = rows_ok & (cs > 0)
            lab[m2] = LABELS["thigh_fat"]
            m1 = rows_ok & (cm > 0)
            lab[m1] = LABELS["thigh_muscle"]
            sd[m2] = code
        else:
            rows_ok = yy >= levels["tibial_plateau"]
            m4 = rows_ok & (cm > 0.05)
            lab[m4] = LABELS["calf_muscle"]
            sd[m4] = code


def _femur(grid: Grid, p: Person, leg: Leg, maps) -> None:
    H, K, d, J, n, sgn, ell = _femur_frame(leg, p.thigh_len)
    R, c = leg.femur_radius, leg.cortex
    down = (-d[0], -d[1])
    b = _Bone()
    replaced_head = leg.implant == "hip_prosthesis"
    top = (J[0] + d[0] * 1.5, J[1] + d[1] * 1.5)
    D = (K[0] + d[0] * 9.0, K[1] + d[1] * 9.0)
    b.shell(capsule(grid, top, D, R, R), capsule(grid, top, D, R - c, R - c), "marrow")
    # Metaphysis flares into the condyles.
    C = (K[0] + d[0] * 3.5, K[1] + d[1] * 3.5)
    b.shell(capsule(grid, D, C, R, 3.0, 1.1), capsule(grid, D, C, R - c, 2.7, 1.1), "trab")
    cond = (K[0], K[1] - 2.6)
    b.shell(
        ellipsoid(grid, cond[0], cond[1], 4.0, 2.3, 3.4), ellipsoid(grid, cond[0], cond[1], 3.75, 2.05, 3.1), "trab"
    )
    if leg.implant == "knee_prosthesis":
        b.add(ellipsoid(grid, cond[0], cond[1] + 0.2, 4.0, 2.7, 3.5), "metal", 0.18)
    if not replaced_head:
        b.shell(
            ellipsoid(grid, H[0], H[1], leg.head_radius, leg.head_radius, leg.head_radius),
            ellipsoid(grid, H[0], H[1], leg.head_radius - 0.25, leg.head_radius - 0.25, leg.head_radius - 0.25),
            "trab",
        )
        nm = (0.5 * (H[0] + J[0]), 0.5 * (H[1] + J[1]))
        b.shell(capsule(grid, J, nm, 1.9, 1.55), capsule(grid, J, nm, 1.6, 1.3), "trab")
        b.shell(capsule(grid, nm, H, 1.55, 1.7), capsule(grid, nm, H, 1.3, 1.45), "trab")
    gt = (J[0] + sgn * 2.2 + d[0] * 0.8, J[1] + d[1] * 0.8)
    b.shell(
        ellipsoid(grid, gt[0], gt[1], 2.0, 2.9, 2.4, -sgn * 10),
        ellipsoid(grid, gt[0], gt[1], 1.75, 2.6, 2.1, -sgn * 10),
        "trab",
    )
    lt = (J[0] - sgn * 1.6 + down[0] * 4.5, J[1] + down[1] * 4.5)
    b.add(ellipsoid(grid, lt[0], lt[1], 1.0, 1.4, 0.9), "trab")
    b.commit(maps)
    # Patella lies in front of the femur: a separate bone, so it adds.
    pb = _Bone()
    pb.add(ellipsoid(grid, K[0] + sgn * 0.3, K[1] - 3.2, 2.1, 2.5, 0.8), "trab")
    pb.commit(maps)
    _implant(grid, leg, maps, H, K, d, J, n, sgn, R)


def _implant(grid: Grid, leg: Leg, maps, H, K, d, J, n, sgn, R) -> None:
    if leg.implant is None:
        return
    down = (-d[0], -d[1])
    towards_head = _unit((H[0] - J[0], H[1] - J[1]))
    m = _Bone()
    if leg.implant in ("dhs", "nail"):
        p0 = (J[0] - towards_head[0] * (R + 1.8), J[1] - towards_head[1] * (R + 1.8))
        p1 = (H[0] - towards_head[0] * 0.6, H[1] - towards_head[1] * 0.6)
        m.add(capsule(grid, p0, p1, 0.55, 0.5), "metal")
        if leg.implant == "dhs":
            m.add(
                capsule(grid, p0, (p0[0] + towards_head[0] * 3.5, p0[1] + towards_head[1] * 3.5), 0.85, 0.85), "metal"
            )
            q0 = (J[0] + sgn * (R + 0.35), J[1] - 1.0)
            q1 = (q0[0] + down[0] * 14.0, q0[1] + down[1] * 14.0)
            m.add(capsule(grid, q0, q1, 0.35, 0.35, 2.2), "metal")
            for k in range(4):
                s0 = (q0[0] + down[0] * (4.0 + 3.0 * k), q0[1] + down[1] * (4.0 + 3.0 * k))
                m.add(capsule(grid, s0, (s0[0] - sgn * (2 * R + 0.6), s0[1]), 0.22, 0.22), "metal")
        else:
            top = (J[0] + d[0] * 3.0, J[1] + d[1] * 3.0)
            bot = (K[0] + d[0] * 10.0, K[1] + d[1] * 10.0)
            m.add(capsule(grid, top, bot, 0.6, 0.5), "metal")
            s0 = (bot[0] + d[0] * 3.0 + sgn * (R + 0.5), bot[1] + d[1] * 3.0)
            m.add(capsule(grid, s0, (s0[0] - sgn * (2 * R + 1.0), s0[1]), 0.25, 0.25), "metal")
    elif leg.implant == "hip_prosthesis":
        stem_end = (J[0] + down[0] * 13.0, J[1] + down[1] * 13.0)
        m.add(capsule(grid, (J[0] + d[0] * 1.0, J[1] + d[1] * 1.0), stem_end, 0.9, 0.4), "metal")
        m.add(capsule(grid, J, H, 0.65, 0.65), "metal")
        m.add(ellipsoid(grid, H[0], H[1], 1.4, 1.4, 1.4), "metal")
        cup = ellipsoid(grid, H[0], H[1], 2.6, 2.6, 2.6)
        if cup is not None:
            box, ch = cup
            x, y = grid.coords(box)
            inner = 2.0 * np.sqrt(np.maximum(2.3**2 - (x - H[0]) ** 2 - (y - H[1]) ** 2, 0.0))
            rim = np.where((y - H[1]) - sgn * 0.6 * (x - H[0]) < 0.6, np.maximum(ch - inner, 0), 0)
            m.add((box, rim.astype(np.float32)), "metal")
    elif leg.implant == "knee_prosthesis":
        m.add(ellipsoid(grid, K[0], K[1] + 1.0, 3.7, 0.35, 3.0), "metal")
        m.add(capsule(grid, (K[0], K[1] + 1.2), (K[0], K[1] + 6.0), 0.55, 0.4), "metal")
    m.commit(maps)


def _shank_bones(grid: Grid, p: Person, leg: Leg, maps) -> None:
    sgn = -1.0 if leg.side == "R" else 1.0
    K = (leg.knee_x, p.thigh_len)
    A = (leg.ankle_x, p.thigh_len + p.shank_len)
    tib = _Bone()
    tib.shell(
        ellipsoid(grid, K[0], K[1] + 1.7, 3.9, 1.4, 3.0), ellipsoid(grid, K[0], K[1] + 1.7, 3.65, 1.15, 2.75), "trab"
    )
    tib.shell(
        capsule(grid, (K[0], K[1] + 2.0), (K[0] - sgn * 0.2, K[1] + 8.0), 3.2, 1.45, 1.0),
        capsule(grid, (K[0], K[1] + 2.0), (K[0] - sgn * 0.2, K[1] + 8.0), 2.9, 0.95, 1.0),
        "trab",
    )
    t0 = (K[0] - sgn * 0.2, K[1] + 3.0)
    t1 = (A[0] - sgn * 0.1, A[1] - 4.0)
    tib.shell(capsule(grid, t0, t1, 1.45, 1.15), capsule(grid, t0, t1, 0.95, 0.65), "marrow")
    tib.shell(
        ellipsoid(grid, A[0], A[1] - 1.9, 2.2, 2.3, 2.2), ellipsoid(grid, A[0], A[1] - 1.9, 1.95, 2.05, 1.95), "trab"
    )
    tib.add(ellipsoid(grid, A[0] - sgn * 1.9, A[1] - 0.3, 0.7, 1.1, 1.0), "trab")
    tib.commit(maps)
    fib = _Bone()
    f0 = (K[0] + sgn * 3.1, K[1] + 3.8)
    f1 = (A[0] + sgn * 2.4, A[1] - 0.4)
    fib.shell(capsule(grid, f0, f1, 0.62, 0.55), capsule(grid, f0, f1, 0.35, 0.3), "marrow")
    fib.add(ellipsoid(grid, f0[0], f0[1] - 0.2, 1.0, 1.1, 1.0), "trab")
    fib.commit(maps)
    foot = _Bone()
    foot.shell(
        ellipsoid(grid, A[0], A[1] + 1.5, 2.2, 1.4, 2.6), ellipsoid(grid, A[0], A[1] + 1.5, 2.0, 1.2, 2.4), "trab"
    )
    foot.add(ellipsoid(grid, A[0] + sgn * 0.3, A[1] + 4.0, 2.4, 1.9, 4.0), "trab")
    foot.commit(maps)


def _pelvis(grid: Grid, p: Person, maps, rng: np.random.Generator) -> None:
    hip = abs(p.legs[0].hip_x)
    fat = p.fat_mid_cm
    y_crotch = 0.10 * p.thigh_len
    ys = grid.row_y()
    idx = np.nonzero(ys < y_crotch)[0]
    if idx.size:
        rows = slice(int(idx[0]), int(idx[-1]) + 1)
        y = ys[rows]
        a0 = hip + 5.8 + 1.4 * fat
        a = a0 * _interp(y, [(-30.0, 0.9), (-12.0, 0.97), (0.0, 1.0), (2.0, 1.0)])
        shrink = np.sqrt(np.clip(1.0 - ((y - 2.0) / max(y_crotch - 2.0, 0.5)) ** 2, 0.0, 1.0))
        a = np.where(y > 2.0, a * shrink, a).astype(np.float32)
        b = np.full_like(a, p.body_depth) * np.where(y > 2.0, shrink, 1.0).astype(np.float32)
        xc = np.zeros_like(a)
        res = row_ellipses(grid, rows, xc, a, b, -a0, a0)
        if res is not None:
            box, cs = res
            sub = maps["soft"][box]
            np.maximum(sub, cs, out=sub)
        core_a = np.maximum(a - 1.6 * fat, 0.1)
        core_b = np.maximum(b - 2.2 * fat, 0.1)
        res = row_ellipses(grid, rows, xc, core_a, core_b, -a0, a0)
        if res is not None:
            box, cm = res
            sub = maps["comp"][box]
            np.maximum(sub, cm, out=sub)
    for _ in range(int(rng.integers(0, 4))):
        g = ellipsoid(
            grid,
            float(rng.uniform(-7, 7)),
            float(rng.uniform(-22, -6)),
            float(rng.uniform(1.0, 3.5)),
            float(rng.uniform(0.8, 2.5)),
            float(rng.uniform(1.0, 2.5)),
        )
        if g is not None:
            maps["gas"][g[0]] += g[1]
    for sgn in (-1.0, 1.0):
        il = _Bone()
        c = (sgn * hip * 0.95, -11.0)
        il.shell(
            ellipsoid(grid, c[0], c[1], 7.0, 4.6, 1.4, sgn * 28),
            ellipsoid(grid, c[0], c[1], 6.6, 4.2, 1.1, sgn * 28),
            "trab",
        )
        il.shell(
            capsule(grid, (sgn * (hip - 1.0), -3.0), (sgn * hip * 0.55, -9.0), 2.4, 2.0, 0.8),
            capsule(grid, (sgn * (hip - 1.0), -3.0), (sgn * hip * 0.55, -9.0), 2.1, 1.7, 0.8),
            "trab",
        )
        il.add(ellipsoid(grid, sgn * (hip - 0.3), -2.6, 3.4, 1.8, 2.2), "trab")  # acetabular roof
        il.commit(maps)
        pub = _Bone()
        pc = (sgn * 4.6, 3.0)
        outer = ellipsoid(grid, pc[0], pc[1], 3.8, 3.5, 1.3)
        if outer is not None:
            box, oc = outer
            x, y = grid.coords(box)
            hole = (
                2.0
                * 1.3
                * np.sqrt(np.maximum(1 - ((x - pc[0] - sgn * 0.3) / 2.1) ** 2 - ((y - pc[1] - 0.4) / 2.4) ** 2, 0))
            )
            pub.add((box, np.maximum(oc - 1.3 * hole, 0).astype(np.float32)), "trab")
            pub.add((box, np.maximum(0.35 * oc - 0.6 * hole, 0).astype(np.float32)), "cort")
        pub.commit(maps)
    sac = _Bone()
    sac.shell(ellipsoid(grid, 0.0, -11.5, 4.6, 6.5, 2.4), ellipsoid(grid, 0.0, -11.5, 4.2, 6.1, 2.1), "trab")
    sac.commit(maps)


def build_anatomy(grid: Grid, p: Person, rng: np.random.Generator) -> Projection:
    """Project the person's lower body onto `grid` (patient-plane cm)."""
    maps = {t: np.zeros((grid.rows, grid.cols), np.float32) for t in TISSUES}
    labels = np.zeros((grid.rows, grid.cols), np.uint8)
    side = np.zeros((grid.rows, grid.cols), np.uint8)
    L = p.thigh_len
    levels = {
        "hip": 0.0,
        "gluteal_fold": float(L * rng.uniform(0.15, 0.18)),
        "condyle_top": L - 4.6,
        "knee": L,
        "tibial_plateau": L + 3.8,
        "ankle": L + p.shank_len,
    }
    _pelvis(grid, p, maps, rng)
    for leg in p.legs:
        _leg_soft(grid, p, leg, maps, labels, side, levels)
        _femur(grid, p, leg, maps)
        _shank_bones(grid, p, leg, maps)
    bone = (maps["cort"] + maps["trab"] + maps["marrow"] + maps["metal"]) > 0
    labels[bone] = LABELS["bone"]
    return Projection(grid=grid, maps=maps, labels=labels, side=side, levels=levels)

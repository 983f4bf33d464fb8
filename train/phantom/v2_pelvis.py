"""Generator 2's pelvis, lumbar spine and bowel gas (patient-plane cm, hip centres at y = 0).

Bones are the same analytic solids as generator 1 (ellipsoids and tapered rods with a cortical
shell, see geometry.py), arranged as a full pelvis: iliac wings with their crests, the pelvic
brim, acetabular roofs, pubic rami and ischia around the obturator foramina, the pubic
symphysis, sacrum with its foramina and the sacro-iliac joints, coccyx, and L3-L5 with
pedicles, transverse and spinous processes and disc spaces. Bowel gas is a chain of gas pockets
along a colon path plus loose bubbles and rectal gas. Sizes vary per person.
"""

from __future__ import annotations

import numpy as np

from .anatomy import _Bone
from .geometry import Grid, capsule, ellipsoid

Maps = dict[str, np.ndarray]


def _ilium(maps: Maps, grid: Grid, sgn: float, hip: float, k: float) -> None:
    il = _Bone()
    c = (sgn * (hip * 0.72 + 1.2 * k), -11.0 * k)
    il.shell(
        ellipsoid(grid, c[0], c[1], 7.2 * k, 5.2 * k, 1.3, sgn * 28),
        ellipsoid(grid, c[0], c[1], 6.9 * k, 4.9 * k, 1.15, sgn * 28),
        "trab",
    )
    # Iliac crest: a cortical rim along the upper arc of the wing.
    ang = np.deg2rad(np.linspace(200.0, 340.0, 8))
    rot = np.deg2rad(sgn * 28)
    ex, ey = 6.9 * k * np.cos(ang), 4.9 * k * np.sin(ang)
    pts = [(c[0] + u * np.cos(rot) - v * np.sin(rot), c[1] + u * np.sin(rot) + v * np.cos(rot)) for u, v in zip(ex, ey)]
    for q0, q1 in zip(pts[:-1], pts[1:]):
        il.add(capsule(grid, q0, q1, 0.45, 0.45, 0.9), "cort")
    # Body of the ilium down to the acetabulum, and the acetabular roof.
    il.shell(
        capsule(grid, (sgn * (hip - 1.2), -4.0), (sgn * hip * 0.6, -10.0 * k), 1.7, 1.4, 0.45),
        capsule(grid, (sgn * (hip - 1.2), -4.0), (sgn * hip * 0.6, -10.0 * k), 1.4, 1.1, 0.45),
        "trab",
    )
    il.add(ellipsoid(grid, sgn * (hip - 0.1), -2.4, 3.2, 1.3, 1.8), "trab")
    il.add(ellipsoid(grid, sgn * (hip - 1.4), -1.0, 1.0, 2.4, 1.5), "cort")  # teardrop / acetabular floor
    il.commit(maps)


def _pubis(maps: Maps, grid: Grid, sgn: float, hip: float, k: float) -> None:
    """Superior and inferior pubic rami and the ischium around the obturator foramen."""
    pub = _Bone()
    a, b = 3.1 * k, 3.7 * k
    pc = (sgn * (a + 0.35), 3.2 * k)
    outer = ellipsoid(grid, pc[0], pc[1], a, b, 0.9)
    if outer is not None:
        box, oc = outer
        x, y = grid.coords(box)
        q = 1 - ((x - pc[0] - sgn * 0.2) / (1.6 * k)) ** 2 - ((y - pc[1] + 0.2) / (2.3 * k)) ** 2
        hole = 2.0 * 1.05 * np.sqrt(np.maximum(q, 0))
        ring = np.maximum(oc - hole, 0).astype(np.float32)
        ring *= (x * sgn) >= 0.25  # the symphysis gap
        pub.add((box, ring), "trab")
        pub.add((box, 0.3 * ring), "cort")
    pub.add(ellipsoid(grid, pc[0] + sgn * 1.0, pc[1] + b - 0.6, 1.6, 1.1, 1.4), "trab")  # ischial tuberosity
    # Superior ramus and ischial body joining the ring to the acetabulum.
    pub.add(capsule(grid, (pc[0] + sgn * 1.2, pc[1] - b + 0.6), (sgn * (hip - 1.6), -0.6), 0.9, 1.1, 0.8), "trab")
    pub.add(capsule(grid, (pc[0] + sgn * (a - 0.6), pc[1] + 0.5), (sgn * (hip - 0.8), 1.0), 1.0, 1.2, 0.9), "trab")
    pub.commit(maps)


def _sacrum(maps: Maps, grid: Grid, top: float, k: float) -> None:
    sac = _Bone()
    p0, p1 = (0.0, top + 0.6), (0.0, top + 10.5 * k)
    sac.shell(capsule(grid, p0, p1, 5.0 * k, 1.5 * k, 0.3), capsule(grid, p0, p1, 4.6 * k, 1.2 * k, 0.27), "trab")
    sac.add(ellipsoid(grid, 0.0, top + 0.7, 2.6 * k, 0.8, 1.6), "cort")  # promontory / S1 endplate
    sac.add(capsule(grid, p1, (0.0, p1[1] + 3.0 * k), 1.0, 0.5, 0.8), "trab")  # coccyx
    sac.commit(maps)
    # Sacral foramina: four pairs of holes in the bone.
    for i in range(4):
        y = top + (2.5 + 2.1 * i) * k
        half = (2.4 - 0.3 * i) * k
        for sgn in (-1.0, 1.0):
            h = ellipsoid(grid, sgn * half, y, 0.45, 0.5, 0.9)
            if h is not None:
                sub = maps["trab"][h[0]]
                np.subtract(sub, 0.6 * h[1], out=sub)
    # Sacro-iliac joints: a dark line between sacrum and ilium.
    for sgn in (-1.0, 1.0):
        j = capsule(grid, (sgn * 4.9 * k, top + 0.5), (sgn * 3.0 * k, top + 7.0 * k), 0.22, 0.18, 1.4)
        if j is not None:
            sub = maps["trab"][j[0]]
            np.subtract(sub, j[1], out=sub)


def _vertebra(maps: Maps, grid: Grid, y: float, k: float, level: int) -> None:
    v = _Bone()
    w, h = 2.5 * k, 1.45 * k
    v.shell(ellipsoid(grid, 0.0, y, w, h, 1.9), ellipsoid(grid, 0.0, y, w - 0.3, h - 0.25, 1.7), "trab")
    # The body's square corners: a second, flatter box shape.
    v.add(ellipsoid(grid, 0.0, y, w * 0.95, h * 0.9, 1.4), "trab")
    for sgn in (-1.0, 1.0):
        pc = (sgn * 1.45 * k, y - 0.35 * k)
        v.shell(ellipsoid(grid, pc[0], pc[1], 0.5, 0.7, 1.6), ellipsoid(grid, pc[0], pc[1], 0.3, 0.48, 1.4), "trab")
        tp = (3.2 + 0.5 * (level == 3)) * k
        v.add(capsule(grid, (sgn * 1.8 * k, y - 0.3), (sgn * tp, y - 0.5), 0.42, 0.3, 0.8), "trab")
    v.add(ellipsoid(grid, 0.0, y + 0.5 * k, 0.45, 1.0 * k, 1.3), "trab")  # spinous process
    v.commit(maps)


def _gas(maps: Maps, grid: Grid, rng: np.random.Generator, hip: float, y_top: float) -> None:
    """Bowel gas: pockets along a colon path, loose bubbles, rectal gas."""
    g = maps["gas"]
    n = int(rng.integers(2, 9))
    x, y = float(rng.uniform(-hip, hip)), float(rng.uniform(min(max(y_top, -24.0), -12.5), -12.0))
    for _ in range(n):
        e = ellipsoid(
            grid, x, y, float(rng.uniform(0.8, 3.0)), float(rng.uniform(0.6, 2.2)), float(rng.uniform(0.8, 2.5))
        )
        if e is not None:
            g[e[0]] += e[1]
        x = float(np.clip(x + rng.normal(0.0, 2.5), -hip - 2, hip + 2))
        y = float(np.clip(y + rng.normal(0.0, 2.0), min(max(y_top, -28.0), -6.5), -6.0))
    if rng.random() < 0.6:
        e = ellipsoid(grid, float(rng.normal(0, 0.6)), float(rng.uniform(-8, -4)), 1.2, 1.8, 1.5)
        if e is not None:
            g[e[0]] += e[1]


def pelvis_and_spine(grid: Grid, maps: Maps, hip: float, rng: np.random.Generator, y_top: float) -> dict:
    """Draw the pelvis, sacrum, L3-L5 and bowel gas into `maps`; returns their levels (cm)."""
    k = float(rng.uniform(0.92, 1.08)) * hip / 8.8
    k = float(np.clip(k, 0.85, 1.15))
    for sgn in (-1.0, 1.0):
        _ilium(maps, grid, sgn, hip, k)
        _pubis(maps, grid, sgn, hip, k)
    brim = _Bone()
    brim.shell(
        ellipsoid(grid, 0.0, -4.5 * k, hip * 0.78, 5.4 * k, 1.2),
        ellipsoid(grid, 0.0, -4.5 * k, hip * 0.78 - 0.45, 5.4 * k - 0.45, 1.2),
        "trab",
    )
    brim.commit(maps)
    sac_top = -16.5 * k
    _sacrum(maps, grid, sac_top, k)
    y = sac_top - 0.6 * k
    levels = {"sacrum_top": sac_top}
    for level in (5, 4, 3):
        y -= float(rng.uniform(0.8, 1.1)) * k + 1.45 * k  # disc space, then half the body
        _vertebra(maps, grid, y, k, level)
        levels[f"L{level}"] = y
        y -= 1.45 * k
    _gas(maps, grid, rng, hip, y_top)
    np.maximum(maps["trab"], 0.0, out=maps["trab"])
    return levels

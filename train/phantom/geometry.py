"""Analytic chord lengths through simple solids, evaluated on a pixel grid.

The phantom projects along the AP depth, so every solid is described by how long a ray through
each pixel stays inside it: ellipsoids, tapered capsules (bone shafts, screws, nails) and
per-row ellipses (soft tissue whose size varies along the leg). Each is evaluated only on its
bounding box, which is what keeps a 2-megapixel film under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Pixel grid in the patient plane: pixel (r, c) has centre (x0 + c*s, y0 + r*s) cm."""

    rows: int
    cols: int
    s: float
    x0: float
    y0: float

    def box(self, xa: float, xb: float, ya: float, yb: float) -> tuple[slice, slice] | None:
        c0 = max(int(np.floor((xa - self.x0) / self.s)), 0)
        c1 = min(int(np.ceil((xb - self.x0) / self.s)) + 1, self.cols)
        r0 = max(int(np.floor((ya - self.y0) / self.s)), 0)
        r1 = min(int(np.ceil((yb - self.y0) / self.s)) + 1, self.rows)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def coords(self, box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        rs, cs = box
        y = (self.y0 + np.arange(rs.start, rs.stop, dtype=np.float32) * self.s)[:, None]
        x = (self.x0 + np.arange(cs.start, cs.stop, dtype=np.float32) * self.s)[None, :]
        return x, y

    def row_y(self) -> np.ndarray:
        return self.y0 + np.arange(self.rows, dtype=np.float32) * self.s


def ellipsoid(
    grid: Grid, cx: float, cy: float, ax: float, ay: float, depth: float, angle_deg: float = 0.0
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Chord through an ellipsoid with in-plane semi-axes ax, ay (rotated) and half-depth `depth`."""
    r = max(ax, ay)
    box = grid.box(cx - r, cx + r, cy - r, cy + r)
    if box is None:
        return None
    x, y = grid.coords(box)
    t = np.deg2rad(angle_deg)
    u = (x - cx) * np.cos(t) + (y - cy) * np.sin(t)
    v = -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
    q = 1.0 - (u / ax) ** 2 - (v / ay) ** 2
    return box, (2.0 * depth) * np.sqrt(np.maximum(q, 0.0))


def capsule(
    grid: Grid, p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float, depth_scale: float = 1.0
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Chord through a tapered round rod from p0 (radius r0) to p1 (radius r1)."""
    rmax = max(r0, r1)
    box = grid.box(
        min(p0[0], p1[0]) - rmax, max(p0[0], p1[0]) + rmax, min(p0[1], p1[1]) - rmax, max(p0[1], p1[1]) + rmax
    )
    if box is None:
        return None
    x, y = grid.coords(box)
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n2 = dx * dx + dy * dy + 1e-12
    t = np.clip(((x - p0[0]) * dx + (y - p0[1]) * dy) / n2, 0.0, 1.0)
    px = x - (p0[0] + t * dx)
    py = y - (p0[1] + t * dy)
    rad = r0 + t * (r1 - r0)
    q = rad * rad - px * px - py * py
    return box, (2.0 * depth_scale) * np.sqrt(np.maximum(q, 0.0))


def row_ellipses(
    grid: Grid, rows: slice, xc: np.ndarray, a: np.ndarray, b: np.ndarray, xmin: float, xmax: float
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Chord through a stack of ellipses, one per row (centre xc, half-width a, half-depth b)."""
    box = grid.box(xmin, xmax, grid.y0 + rows.start * grid.s, grid.y0 + (rows.stop - 1) * grid.s)
    if box is None:
        return None
    box = (rows, box[1])
    x, _ = grid.coords(box)
    q = 1.0 - ((x - xc[:, None]) / np.maximum(a[:, None], 1e-3)) ** 2
    return box, 2.0 * b[:, None] * np.sqrt(np.maximum(q, 0.0))


def rotate(v: tuple[float, float], deg: float) -> tuple[float, float]:
    t = np.deg2rad(deg)
    return (float(v[0] * np.cos(t) - v[1] * np.sin(t)), float(v[0] * np.sin(t) + v[1] * np.cos(t)))

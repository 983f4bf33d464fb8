"""Generator 2's acquisition: field, detector, clutter in the beam, stitching, display processing
and export (DICOM 10-16 bit, or 8-bit PNG/JPEG as films are often exported).

Sampled per film from wide ranges (issue 9's list of what real long-leg films show): field from
about L3-L4 to below the feet (110-125 cm at the detector), 35-43 cm wide; detector pitch
0.14-1.5 mm (the pixel count capped at MAX_ROWS rows, which raises the spacing of the finest
full-length films); 1-3 stitched exposures with brightness steps and seam lines; heel effect; a
radio-opaque ruler with numbers (often down the midline), a positioning grid, lead gonad
shields of several shapes, R/L markers, burned-in text, collimator blades (sometimes tilted);
vendor processing (unsharp masking, large-scale equalisation, CLAHE, histogram equalisation);
one-leg films (the other leg behind the shutter) and one-leg crops of raster exports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .film import _blur_cm, _paste, _shift_below, _text_mask, mu
from .geometry import Grid
from .person import Person

MAX_ROWS = 4000
FORMATS = (("dcm", 0.5), ("png", 0.25), ("jpg", 0.25))
SHIELDS = ("none", "ellipse", "triangle", "butterfly", "rect")


@dataclass(frozen=True)
class Acq2:
    view: str  # "both", "R" or "L": one-leg film, the other leg behind the shutter
    crop: str  # "", "R" or "L": a raster export cropped to one leg
    fmt: str  # dcm, png, jpg
    spacing_mm: float  # detector pitch (ImagerPixelSpacing)
    magnification: float
    field_w_cm: float
    field_h_cm: float
    x_centre: float
    y_top: float
    energy_kev: float
    spr: float
    photons: float
    blur_px: float
    exposures: int
    exposure_factors: tuple[float, ...]
    heel: tuple[float, ...]
    seam_shifts: tuple[tuple[int, int], ...]
    seam_lines: bool
    rotation_deg: float
    unsharp: float
    unsharp_cm: float
    equalise: float
    equalise_cm: float
    clahe: float  # 0: none, else clip limit
    hist_eq: bool
    gamma: float
    bits: int
    monochrome1: bool  # DICOM MONOCHROME1, or an inverted raster export
    jpeg_quality: int
    collimation_cm: tuple[float, float, float, float]
    collimation_tilt_deg: float
    ruler_x: float | None
    grid_cm: float  # positioning grid pitch, 0 none
    shield: str
    markers: bool
    text_lines: int
    plate_cm: float

    def as_row(self) -> dict:
        d = asdict(self)
        for k in ("exposure_factors", "heel", "seam_shifts", "collimation_cm"):
            d[k] = str(tuple(round(v, 3) if isinstance(v, float) else v for v in d[k]))
        return d

    @property
    def pixel_spacing_mm(self) -> float:
        return self.spacing_mm / self.magnification


def _spacing(fmt: str, rng: np.random.Generator) -> float:
    if fmt == "dcm":
        return float(rng.uniform(0.14, 0.2) if rng.random() < 0.5 else rng.uniform(0.2, 0.6))
    return float(np.exp(rng.uniform(np.log(0.3), np.log(1.5))))


def _field(p: Person, rng: np.random.Generator, foot_drop: float, M: float) -> tuple[float, float]:
    """Top of the field (patient cm, about L3-L4) and detector height reaching below the soles."""
    y_top = -float(rng.uniform(21.0, 28.0))
    h_det = float(rng.uniform(110.0, 125.0))
    need = p.thigh_len + p.shank_len + foot_drop + float(rng.uniform(1.0, 5.0))
    if y_top + h_det / M < need:
        y_top = max(need - h_det / M, -22.0)
        h_det = max(h_det, (need - y_top) * M)
    return y_top, min(h_det, 135.0)


def _clutter(rng: np.random.Generator, xc: float, w_pat: float) -> dict:
    ruler = None
    if rng.random() < 0.6:
        ruler = (
            float(rng.normal(0.0, 0.7)) if rng.random() < 0.7 else float(xc + rng.choice([-1, 1]) * (w_pat / 2 - 2.5))
        )
    return {
        "ruler_x": ruler,
        "grid_cm": float(rng.choice([1.0, 2.0, 5.0])) if rng.random() < 0.15 else 0.0,
        "shield": str(rng.choice(SHIELDS, p=[0.6, 0.12, 0.1, 0.1, 0.08])),
        "markers": bool(rng.random() < 0.85),
        "text_lines": int(rng.integers(0, 5)) if rng.random() < 0.6 else 0,
    }


def sample_acq2(p: Person, view: str, foot_drop: float, rng: np.random.Generator) -> Acq2:
    fmt = str(rng.choice([f for f, _ in FORMATS], p=[w for _, w in FORMATS]))
    M = round(float(rng.uniform(1.05, 1.20)), 4)
    y_top, h_det = _field(p, rng, foot_drop, M)
    d = max(_spacing(fmt, rng), h_det * 10.0 / MAX_ROWS)
    w_det = float(rng.uniform(35.0, 43.0))
    if view == "both":
        xc = float(rng.normal(0.0, 1.0))
    else:
        leg = p.legs[0] if view == "R" else p.legs[1]
        xc = float(0.5 * (leg.hip_x + leg.knee_x) + rng.normal(0.0, 1.0))
    crop = str(rng.choice(["R", "L"])) if (fmt != "dcm" and view == "both" and rng.random() < 0.15) else ""
    n_exp = int(rng.choice([1, 2, 3], p=[0.25, 0.4, 0.35]))
    coll = tuple(float(rng.uniform(0.5, 3.0)) if rng.random() < 0.45 else 0.0 for _ in range(4))
    return Acq2(
        view=view,
        crop=crop,
        fmt=fmt,
        spacing_mm=round(d, 5),
        magnification=M,
        field_w_cm=w_det,
        field_h_cm=h_det,
        x_centre=xc,
        y_top=y_top,
        energy_kev=float(rng.uniform(45.0, 65.0)),
        spr=float(rng.uniform(0.2, 1.0)),
        photons=float(rng.uniform(1500.0, 8000.0) * (d / 0.5) ** 2),
        blur_px=float(rng.uniform(0.5, 1.3)),
        exposures=n_exp,
        exposure_factors=tuple(float(v) for v in np.exp(rng.normal(0.0, 0.15, n_exp))),
        heel=tuple(float(rng.choice([-1, 1]) * rng.uniform(0.10, 0.20)) for _ in range(n_exp)),
        seam_shifts=tuple((int(rng.integers(-4, 5)), int(rng.integers(-3, 4))) for _ in range(n_exp - 1)),
        seam_lines=bool(rng.random() < 0.6),
        rotation_deg=float(np.clip(rng.normal(0.0, 1.2), -3.0, 3.0)) if rng.random() < 0.5 else 0.0,
        unsharp=float(rng.uniform(0.0, 2.0)),
        unsharp_cm=float(rng.uniform(0.2, 1.5)),
        equalise=float(rng.uniform(0.0, 0.8)),
        equalise_cm=float(rng.uniform(2.0, 8.0)),
        clahe=float(rng.uniform(1.5, 4.0)) if rng.random() < 0.35 else 0.0,
        hist_eq=bool(rng.random() < 0.1),
        gamma=float(rng.uniform(0.7, 1.35)),
        bits=int(rng.choice([10, 12, 12, 14, 14, 15, 16])) if fmt == "dcm" else 8,
        monochrome1=bool(rng.random() < (0.3 if fmt == "dcm" else 0.04)),
        jpeg_quality=int(rng.integers(60, 96)),
        collimation_cm=coll,
        collimation_tilt_deg=float(rng.uniform(-2.0, 2.0)) if rng.random() < 0.3 else 0.0,
        plate_cm=float(rng.uniform(8.0, 25.0)),
        **_clutter(rng, xc, w_det / M),
    )


def film_grid(a: Acq2) -> Grid:
    d = a.spacing_mm / 10.0
    s = d / a.magnification
    cols, rows = int(round(a.field_w_cm / d)), int(round(a.field_h_cm / d))
    return Grid(rows=rows, cols=cols, s=s, x0=a.x_centre - cols * s / 2 + s / 2, y0=a.y_top + s / 2)


def _ruler(P: np.ndarray, grid: Grid, x: float, lead: float) -> None:
    """Radio-opaque ruler: a plastic strip with lead centimetre ticks and numbers every 10 cm."""
    s = grid.s
    c0 = int((x - 1.5 - grid.x0) / s)
    P[:, max(c0, 0) : max(min(c0 + int(3.0 / s), grid.cols), 0)] += 0.12
    y_first = np.ceil(grid.y0)
    tick = max(int(0.1 / s), 1)
    for yv in np.arange(y_first, grid.y0 + grid.rows * s, 1.0):
        r = int((yv - grid.y0) / s)
        n_cm = int(round(yv - y_first))
        ln = 1.5 if n_cm % 10 == 0 else (1.0 if n_cm % 5 == 0 else 0.6)
        _paste(P, np.ones((tick, max(int(ln / s), 1)), np.float32), r, c0, lead)
        if n_cm % 10 == 0 and n_cm > 0:
            m = _text_mask(str(n_cm), max(int(1.0 / s), 8), max(int(0.12 / s), 1))
            _paste(P, m, r + 2, c0 + int(1.6 / s), lead)


def _shield(P: np.ndarray, grid: Grid, kind: str, y_c: float, rng: np.random.Generator) -> None:
    """Lead gonad shield in the midline over the pubis, one of several shapes."""
    s = grid.s
    x, y = np.meshgrid(grid.x0 + np.arange(grid.cols) * s, grid.y0 + np.arange(grid.rows) * s, sparse=True)
    a, b = float(rng.uniform(4.0, 7.5)), float(rng.uniform(3.0, 5.5))
    xc, yc = float(rng.normal(0.0, 0.8)), y_c + float(rng.uniform(-2.0, 3.0))
    u, v = (x - xc) / a, (y - yc) / b
    if kind == "ellipse":
        inside = u**2 + v**2 < 1.0
    elif kind == "triangle":
        inside = (v > -1.0) & (v < 1.0) & (np.abs(u) < 0.5 * (1.0 - v))
    elif kind == "butterfly":
        inside = ((np.abs(u) - 0.5) ** 2 / 0.3 + v**2 < 1.0) | ((np.abs(u) < 0.5 * (1.0 - v)) & (v > 0) & (v < 1))
    else:
        inside = (np.abs(u) < 1.0) & (np.abs(v) < 0.8)
    P += 3.0 * inside


def _markers(P: np.ndarray, grid: Grid, a: Acq2, rng: np.random.Generator) -> None:
    s = grid.s
    for letter, sgn in (("R", -1), ("L", 1)):
        if a.view != "both" and letter != a.view and rng.random() < 0.7:
            continue
        m = _text_mask(letter, max(int(rng.uniform(1.5, 3.0) / s), 10), max(int(0.35 / s), 2))
        xpos = a.x_centre + sgn * (a.field_w_cm / a.magnification / 2 - rng.uniform(3.0, 7.0))
        r = int(rng.uniform(2.0, 40.0) / s)
        c = int((xpos - grid.x0) / s)
        _paste(P, np.ones((m.shape[0] + 6, m.shape[1] + 6), np.float32), r - 3, c - 3, 0.15)
        _paste(P, m, r, c, 4.0)


def objects_in_beam(P: np.ndarray, grid: Grid, a: Acq2, p: Person, rng: np.random.Generator) -> None:
    """Ruler, positioning grid, gonad shield, lead R/L markers: attenuation added to the body's."""
    if a.ruler_x is not None:
        _ruler(P, grid, a.ruler_x, 1.2)
    if a.grid_cm:
        step = max(int(a.grid_cm / grid.s), 2)
        off = int(rng.integers(0, step))
        P[off::step, :] += 0.08
        P[:, off::step] += 0.08
    if a.shield != "none":
        _shield(P, grid, a.shield, 0.10 * p.thigh_len + (0.0 if p.sex == "M" else -5.0), rng)
    if a.markers:
        _markers(P, grid, a, rng)


def stitch(arrays: list[np.ndarray], a: Acq2, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seam rows (after shifting everything below each seam) and the beam profile per row."""
    bounds = np.linspace(0, rows, a.exposures + 1).astype(int)
    bounds[1:-1] += rng.integers(-rows // 20, rows // 20 + 1, a.exposures - 1)
    for k, (dy, dx) in enumerate(a.seam_shifts):
        for arr in arrays:
            _shift_below(arr, int(bounds[k + 1]), dy, dx)
    beam = np.empty(rows, np.float32)
    for k in range(a.exposures):
        r0, r1 = bounds[k], bounds[k + 1]
        t = np.linspace(-0.5, 0.5, r1 - r0, dtype=np.float32)
        beam[r0:r1] = a.exposure_factors[k] * (1.0 + a.heel[k] * t)
    if a.seam_lines:
        for r in bounds[1:-1]:
            w = max(int(rng.integers(1, 4)), 1)
            beam[max(r - w, 0) : r + w] *= float(rng.choice([0.55, 1.6]))
    return bounds, beam


def shutters(a: Acq2, grid: Grid) -> np.ndarray:
    d = a.spacing_mm / 10.0
    lft, rgt, top, bot = (int(v / d) for v in a.collimation_cm)
    rr = np.arange(grid.rows, dtype=np.float32)[:, None]
    cc = np.arange(grid.cols, dtype=np.float32)[None, :]
    tilt = np.tan(np.deg2rad(a.collimation_tilt_deg))
    shut = np.zeros((grid.rows, grid.cols), bool)
    if lft:
        shut |= cc < lft + tilt * (rr - grid.rows / 2)
    if rgt:
        shut |= cc > grid.cols - rgt + tilt * (rr - grid.rows / 2)
    if top:
        shut |= rr < top - tilt * (cc - grid.cols / 2)
    if bot:
        shut |= rr > grid.rows - bot - tilt * (cc - grid.cols / 2)
    if a.view != "both":
        edge = int((0.0 - grid.x0) / grid.s) + (int(0.5 / grid.s) if a.view == "R" else -int(0.5 / grid.s))
        edge = int(np.clip(edge, 0, grid.cols))
        shut[:, edge:] |= a.view == "R"
        shut[:, :edge] |= a.view == "L"
    return shut


def attenuation(lens: dict[str, np.ndarray], p: Person, kev: float) -> np.ndarray:
    mu_f, mu_m, mu_b = mu("fat", kev), mu("muscle", kev), mu("bone", kev)
    mu_muscle = (1 - p.myosteatosis) * mu_m + p.myosteatosis * mu_f
    P = (
        mu_muscle * lens["muscle"]
        + mu_f * lens["fat"]
        + mu_b * lens["cort"]
        + (0.3 * mu_b + 0.7 * mu_f) * lens["trab"]
        + mu_f * lens["marrow"]
        + 8.0 * (kev / 55.0) ** -2.5 * lens["metal"]
        + 0.9 * mu_m * lens["plate"]
    )
    return P.astype(np.float32)


def detector(P: np.ndarray, body_P: np.ndarray, beam: np.ndarray, a: Acq2, ref: np.ndarray, rng) -> np.ndarray:
    """Primary + scatter, quantum noise, detector blur, log: the raw log image."""
    d = a.spacing_mm / 10.0
    primary = beam[:, None] * np.exp(-P)
    sc = _blur_cm((beam[:, None] * (1.0 - np.exp(-body_P))).astype(np.float32), 4.0 / d)
    gain = a.spr * float(np.median(primary[ref])) / max(float(np.median(sc[ref])), 1e-9) if ref.any() else a.spr
    total = primary + gain * sc
    noisy = total + np.sqrt(np.maximum(total, 1e-9) / a.photons) * rng.standard_normal(total.shape, dtype=np.float32)
    noisy = cv2.GaussianBlur(np.maximum(noisy, 1e-5).astype(np.float32), (0, 0), a.blur_px)
    return -np.log(noisy)


def display(L: np.ndarray, a: Acq2, rng: np.random.Generator) -> np.ndarray:
    """Vendor processing to a [0, 1] image, bone bright: unsharp, equalisation, window, CLAHE."""
    d = a.spacing_mm / 10.0
    L = L + a.unsharp * (L - _blur_cm(L, a.unsharp_cm / d))
    big = _blur_cm(L, a.equalise_cm / d)
    L = L - a.equalise * (big - float(big.mean()))
    lo, hi = np.percentile(L[::4, ::4], [0.5, 99.7])
    v = np.clip((L - lo) / max(hi - lo, 1e-6), 0.0, 1.0) ** a.gamma
    if a.clahe:
        tiles = int(rng.integers(4, 17))
        op = cv2.createCLAHE(clipLimit=a.clahe, tileGridSize=(max(tiles // 2, 2), tiles))
        v = op.apply(np.rint(v * 65535).astype(np.uint16)).astype(np.float32) / 65535.0
    if a.hist_eq:
        v = cv2.equalizeHist(np.rint(v * 255).astype(np.uint8)).astype(np.float32) / 255.0
    return v.astype(np.float32)


def burn_text(v: np.ndarray, a: Acq2, rng: np.random.Generator) -> None:
    """Burned-in annotations (white), a few lines in a corner, about 0.8-1.5 cm tall."""
    if not a.text_lines:
        return
    px = a.spacing_mm / 10.0
    hgt = max(int(rng.uniform(0.8, 1.5) / px), 8)
    chars = np.array(list("ABCDEFGHKLMNPRSTUVWXYZ0123456789 :/.-"))
    top = int(rng.choice([0.02, 0.8]) * v.shape[0])
    left = int(rng.choice([0.02, 0.55]) * v.shape[1])
    for i in range(a.text_lines):
        m = _text_mask("".join(rng.choice(chars, int(rng.integers(5, 16)))), hgt, max(hgt // 10, 1))
        _paste(v, m, top + int(1.3 * hgt * i), left, 1.0)
    np.clip(v, 0.0, 1.0, out=v)

"""One phantom film: the acquisition (field, beam, detector, vendor processing, artefacts), the
image chain from path lengths to stored pixel values, and the label map on the same grid.

Order matters and follows the physics: anatomy (rotated if the patient stands askew) ->
objects in the beam (ruler, lead markers, gonad shield) -> stitched exposures (each with its
own heel effect and exposure, small position mismatch at the seams) -> collimator shutters ->
primary + scatter -> quantum noise -> detector blur -> log -> vendor processing -> window and
quantisation -> optional MONOCHROME1 inversion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .anatomy import LABELS, SIDE_CODE, Projection, build_anatomy
from .geometry import Grid
from .person import Person

# Linear attenuation (cm^-1) at 50 and 60 keV (NIST/ICRU-44, PHANTOM.md), power-law in energy between.
MU_50_60 = {"fat": (0.205, 0.188), "muscle": (0.238, 0.215), "bone": (0.81, 0.60)}


def mu(tissue: str, kev: float) -> float:
    a, b = MU_50_60[tissue]
    k = np.log(a / b) / np.log(60.0 / 50.0)
    return float(a * (kev / 50.0) ** (-k))


@dataclass(frozen=True)
class Acquisition:
    view: str  # "both", "R" or "L" (one leg, the other behind the shutter)
    spacing_mm: float  # detector pixel pitch (ImagerPixelSpacing)
    magnification: float
    field_w_cm: float  # at the detector
    field_h_cm: float
    x_centre: float  # patient plane
    y_top: float
    cropped_top: bool
    cropped_bottom: bool
    energy_kev: float
    spr: float
    photons: float  # quanta per pixel in the open beam
    blur_px: float
    exposures: int
    exposure_factors: tuple[float, ...]
    heel: tuple[float, ...]
    seam_shifts: tuple[tuple[int, int], ...]
    rotation_deg: float
    unsharp: float
    unsharp_cm: float
    equalise: float
    equalise_cm: float
    gamma: float
    bits: int
    monochrome1: bool
    collimation_cm: tuple[float, float, float, float]  # left, right, top, bottom
    ruler_x: float | None
    markers: bool
    gonad_shield: bool

    def as_row(self) -> dict:
        d = asdict(self)
        for k in ("exposure_factors", "heel", "seam_shifts", "collimation_cm"):
            d[k] = str(d[k])
        return d


def sample_acquisition(p: Person, rng: np.random.Generator, spacing_mm: float, view: str) -> Acquisition:
    M = round(float(rng.uniform(1.05, 1.20)), 4)  # as written to the DICOM
    ankle = p.thigh_len + p.shank_len
    cropped_top = rng.random() < 0.12
    cropped_bottom = rng.random() < 0.12
    y_top = float(rng.uniform(-2.0, 3.0) if cropped_top else -rng.uniform(13.0, 19.0))
    y_bot = float(ankle - rng.uniform(6.0, 15.0) if cropped_bottom else ankle + rng.uniform(3.0, 7.0))
    h_det = (y_bot - y_top) * M
    if h_det < 90.0:
        h_det = 90.0
    if h_det > 130.0:
        h_det, cropped_bottom = 130.0, True
    w_det = float(rng.uniform(35.0, 43.0))
    if view == "both":
        xc = float(rng.normal(0.0, 1.0))
    else:
        leg = p.legs[0] if view == "R" else p.legs[1]
        xc = float(0.5 * (leg.hip_x + leg.knee_x) + rng.normal(0.0, 1.0))
    n_exp = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    coll = tuple(float(rng.uniform(0.5, 2.5)) if rng.random() < 0.4 else 0.0 for _ in range(4))
    ruler = None
    if rng.random() < 0.5:
        ruler = (
            float(rng.normal(0.0, 0.8))
            if rng.random() < 0.6
            else float(xc + np.sign(rng.normal()) * (w_det / M / 2 - 2.5))
        )
    return Acquisition(
        view=view,
        spacing_mm=spacing_mm,
        magnification=M,
        field_w_cm=w_det,
        field_h_cm=float(h_det),
        x_centre=xc,
        y_top=y_top,
        cropped_top=bool(cropped_top),
        cropped_bottom=bool(cropped_bottom),
        energy_kev=float(rng.uniform(45.0, 65.0)),
        spr=float(rng.uniform(0.2, 1.0)),
        photons=float(rng.uniform(1500.0, 8000.0) * (spacing_mm / 0.5) ** 2),
        blur_px=float(rng.uniform(0.5, 1.2)),
        exposures=n_exp,
        exposure_factors=tuple(float(v) for v in rng.normal(1.0, 0.05, n_exp)),
        heel=tuple(float(np.sign(rng.normal()) * rng.uniform(0.10, 0.20)) for _ in range(n_exp)),
        seam_shifts=tuple((int(rng.integers(-4, 5)), int(rng.integers(-3, 4))) for _ in range(n_exp - 1)),
        rotation_deg=float(np.clip(rng.normal(0.0, 1.2), -3.0, 3.0)) if rng.random() < 0.5 else 0.0,
        unsharp=float(rng.uniform(0.0, 1.5)),
        unsharp_cm=float(rng.uniform(0.2, 0.6)),
        equalise=float(rng.uniform(0.0, 0.6)),
        equalise_cm=float(rng.uniform(2.0, 6.0)),
        gamma=float(rng.uniform(0.8, 1.25)),
        bits=int(rng.choice([10, 12, 12, 14, 14, 15, 16])),
        monochrome1=bool(rng.random() < 0.3),
        collimation_cm=coll,
        ruler_x=ruler,
        markers=bool(rng.random() < 0.8),
        gonad_shield=bool(rng.random() < 0.2),
    )


def _grid(a: Acquisition) -> Grid:
    d = a.spacing_mm / 10.0
    s = d / a.magnification
    cols = int(round(a.field_w_cm / d))
    rows = int(round(a.field_h_cm / d))
    return Grid(rows=rows, cols=cols, s=s, x0=a.x_centre - cols * s / 2 + s / 2, y0=a.y_top + s / 2)


def _blur_cm(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Large Gaussian blur done on a downsampled copy: scatter and equalisation are smooth."""
    k = max(int(sigma_px // 6), 1)
    if k == 1:
        return cv2.GaussianBlur(img, (0, 0), sigma_px)
    small = cv2.resize(img, (max(img.shape[1] // k, 1), max(img.shape[0] // k, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / k)
    return cv2.resize(small, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)


def _shift_below(arr: np.ndarray, row: int, dy: int, dx: int) -> None:
    """Shift everything below a stitching seam by (dy, dx) pixels, repeating the edge."""
    block = arr[row:].copy()
    out = np.roll(block, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = block[0]
    elif dy < 0:
        out[dy:] = block[-1]
    if dx > 0:
        out[:, :dx] = out[:, dx : dx + 1]
    elif dx < 0:
        out[:, dx:] = out[:, dx - 1 : dx]
    arr[row:] = out


def _text_mask(text: str, height_px: int, thickness: int) -> np.ndarray:
    scale = height_px / 22.0
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    m = np.zeros((h + base + 4, w + 4), np.uint8)
    cv2.putText(m, text, (2, h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return m.astype(np.float32) / 255.0


def _paste(dst: np.ndarray, src: np.ndarray, r: int, c: int, gain: float) -> None:
    r0, c0 = max(r, 0), max(c, 0)
    r1, c1 = min(r + src.shape[0], dst.shape[0]), min(c + src.shape[1], dst.shape[1])
    if r0 < r1 and c0 < c1:
        dst[r0:r1, c0:c1] += gain * src[r0 - r : r1 - r, c0 - c : c1 - c]


def _objects_in_beam(P: np.ndarray, grid: Grid, a: Acquisition, p: Person, rng: np.random.Generator) -> None:
    """Ruler with metal ticks and numbers, lead L/R markers, a gonad shield: added attenuation."""
    s = grid.s
    lead = 60.0
    if a.ruler_x is not None:
        c0 = int((a.ruler_x - 1.5 - grid.x0) / s)
        c1 = c0 + int(3.0 / s)
        cs = slice(max(c0, 0), max(min(c1, grid.cols), 0))
        P[:, cs] += 0.2 * 0.6
        y_first = np.ceil(grid.y0)
        for _k, yv in enumerate(np.arange(y_first, grid.y0 + grid.rows * s, 1.0)):
            r = int((yv - grid.y0) / s)
            n_cm = int(round(yv - y_first))
            ln = 1.5 if n_cm % 10 == 0 else (1.0 if n_cm % 5 == 0 else 0.6)
            tick = max(int(0.08 / s), 1)
            _paste(P, np.ones((tick, max(int(ln / s), 1)), np.float32), r, c0, lead * 0.02)
            if n_cm % 10 == 0 and n_cm > 0:
                _paste(
                    P,
                    _text_mask(str(n_cm), max(int(1.0 / s), 8), max(int(0.12 / s), 1)),
                    r + 2,
                    c0 + int(1.6 / s),
                    lead * 0.02,
                )
    if a.markers:
        for letter, sgn in (("R", -1), ("L", 1)):
            m = _text_mask(letter, max(int(2.2 / s), 10), max(int(0.35 / s), 2))
            box = np.ones((m.shape[0] + 6, m.shape[1] + 6), np.float32)
            xpos = a.x_centre + sgn * (a.field_w_cm / a.magnification / 2 - rng.uniform(3.0, 6.0))
            ypos = grid.y0 + rng.uniform(2.0, 15.0)
            r = int((ypos - grid.y0) / s)
            c = int((xpos - grid.x0) / s)
            _paste(P, box, r - 3, c - 3, 0.15)
            _paste(P, m, r, c, lead * 0.1)
    if a.gonad_shield:
        x, y = np.meshgrid(grid.x0 + np.arange(grid.cols) * s, grid.y0 + np.arange(grid.rows) * s, sparse=True)
        if p.sex == "F":
            inside = ((x / 5.0) ** 2 + ((y + 6.0) / 4.0) ** 2) < 1.0
        else:
            inside = (y > 3.0) & (y < 10.0) & (np.abs(x) < 0.5 * (10.0 - y) + 0.5)
        P += lead * 0.05 * inside


def rotate(P: np.ndarray, labels: np.ndarray, side: np.ndarray, deg: float) -> tuple[np.ndarray, ...]:
    """The patient turned in the beam: the path lengths (linear) and both label maps (nearest)
    rotated together about the film's centre, by `deg`."""
    rows, cols = P.shape
    M = cv2.getRotationMatrix2D((cols / 2, rows / 2), deg, 1.0)
    P = cv2.warpAffine(P, M, (cols, rows), flags=cv2.INTER_LINEAR, borderValue=0)
    labels = cv2.warpAffine(labels, M, (cols, rows), flags=cv2.INTER_NEAREST, borderValue=0)
    side = cv2.warpAffine(side, M, (cols, rows), flags=cv2.INTER_NEAREST, borderValue=0)
    return P, labels, side


def render(p: Person, a: Acquisition, rng: np.random.Generator) -> tuple[np.ndarray, Projection]:
    """Render the stored pixel array (uint16, `a.bits` stored) and the projection with labels."""
    grid = _grid(a)
    proj = build_anatomy(grid, p, rng)
    E = a.energy_kev
    mu_f, mu_m, mu_b = mu("fat", E), mu("muscle", E), mu("bone", E)
    mu_muscle = (1 - p.myosteatosis) * mu_m + p.myosteatosis * mu_f
    mu_metal = 8.0 * (E / 55.0) ** -2.5
    lens = proj.path_lengths()
    P = (
        mu_muscle * lens["muscle"]
        + mu_f * lens["fat"]
        + mu_b * lens["cort"]
        + (0.3 * mu_b + 0.7 * mu_f) * lens["trab"]
        + mu_f * lens["marrow"]
        + mu_metal * lens["metal"]
    )
    P = P.astype(np.float32)
    labels, side = proj.labels, proj.side
    if a.rotation_deg:
        P, labels, side = rotate(P, labels, side, a.rotation_deg)
    body_P = P.copy()
    _objects_in_beam(P, grid, a, p, rng)
    # Stitched exposures: each has its own heel gradient and exposure; a small shift at each seam.
    bounds = np.linspace(0, grid.rows, a.exposures + 1).astype(int)
    bounds[1:-1] += rng.integers(-grid.rows // 20, grid.rows // 20 + 1, a.exposures - 1)
    for k, (dy, dx) in enumerate(a.seam_shifts):
        for arr in (P, body_P, labels, side):
            _shift_below(arr, int(bounds[k + 1]), dy, dx)
    beam = np.empty(grid.rows, np.float32)
    for k in range(a.exposures):
        r0, r1 = bounds[k], bounds[k + 1]
        t = np.linspace(-0.5, 0.5, r1 - r0, dtype=np.float32)
        beam[r0:r1] = a.exposure_factors[k] * (1.0 + a.heel[k] * t)
    beam = beam[:, None]
    # Collimator shutters: lead blocks the beam, the anatomy beneath is not seen (labels cleared).
    d = a.spacing_mm / 10.0
    lft, rgt, top, bot = (int(v / d) for v in a.collimation_cm)
    shutter = np.zeros((grid.rows, grid.cols), bool)
    if lft:
        shutter[:, :lft] = True
    if rgt:
        shutter[:, grid.cols - rgt :] = True
    if top:
        shutter[:top] = True
    if bot:
        shutter[grid.rows - bot :] = True
    if a.view != "both":
        edge = int((0.0 - grid.x0) / grid.s) + (int(0.5 / grid.s) if a.view == "R" else -int(0.5 / grid.s))
        edge = int(np.clip(edge, 0, grid.cols))
        if a.view == "R":
            shutter[:, edge:] = True
        else:
            shutter[:, :edge] = True
    P[shutter] += 7.0
    labels = np.where(shutter, 0, labels).astype(np.uint8)
    side = np.where(shutter, 0, side).astype(np.uint8)
    primary = beam * np.exp(-P)
    # Scatter: photons that interacted in the body, spread over ~centimetres, scaled to the SPR.
    source = beam * (1.0 - np.exp(-body_P))
    sc = _blur_cm(source.astype(np.float32), 4.0 / d)
    ref = labels == LABELS["thigh_muscle"]
    if ref.any():
        gain = a.spr * float(np.median(primary[ref])) / max(float(np.median(sc[ref])), 1e-9)
    else:
        gain = a.spr
    total = primary + gain * sc
    noisy = total + np.sqrt(np.maximum(total, 1e-9) / a.photons) * rng.standard_normal(total.shape, dtype=np.float32)
    noisy = cv2.GaussianBlur(np.maximum(noisy, 1e-5).astype(np.float32), (0, 0), a.blur_px)
    L = -np.log(noisy)
    # Vendor processing: unsharp masking and large-scale contrast equalisation.
    L = L + a.unsharp * (L - cv2.GaussianBlur(L, (0, 0), a.unsharp_cm / d))
    big = _blur_cm(L, a.equalise_cm / d)
    L = L - a.equalise * (big - float(big.mean()))
    sample = L[::4, ::4]
    lo, hi = np.percentile(sample, [0.5, 99.7])
    v = np.clip((L - lo) / max(hi - lo, 1e-6), 0.0, 1.0) ** a.gamma
    top_val = (1 << a.bits) - 1
    stored = np.rint(v * top_val).astype(np.uint16)
    if a.monochrome1:
        stored = (top_val - stored).astype(np.uint16)
    return stored, Projection(grid=grid, maps={}, labels=labels, side=side, levels=proj.levels)


def truths(proj: Projection, a: Acquisition) -> dict:
    """Phantom truths measured on the label map (what a perfect segmentation would report)."""
    ps_mm = a.spacing_mm / a.magnification
    px_cm2 = (ps_mm / 10.0) ** 2
    m1 = proj.labels == LABELS["thigh_muscle"]
    right = int(np.count_nonzero(m1 & (proj.side == SIDE_CODE["R"])))
    left = int(np.count_nonzero(m1 & (proj.side == SIDE_CODE["L"])))
    total = int(np.count_nonzero(m1))
    return {
        "thigh_muscle_area_cm2": round(total * px_cm2, 3),
        "right_cm2": round(right * px_cm2, 3),
        "left_cm2": round(left * px_cm2, 3),
        "thigh_fat_area_cm2": round(int(np.count_nonzero(proj.labels == LABELS["thigh_fat"])) * px_cm2, 3),
        "calf_muscle_area_cm2": round(int(np.count_nonzero(proj.labels == LABELS["calf_muscle"])) * px_cm2, 3),
        "pixel_spacing_mm": round(ps_mm, 6),
    }

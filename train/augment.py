"""Augmentations on preprocessed (normalised, letterboxed) arrays: what real films vary in.

The phantom is one idealised population of films; real long-leg films differ in processing,
export and clutter (issue 9 lists what was seen). Training therefore randomises everything a
film can vary in that does not change the anatomy, so the model cannot lean on the phantom's
look:

- geometry, to image and labels alike: mirror, rotation/scale/shift, crops re-letterboxed as
  the clinic would (one leg, partial pelvis, cut above the ankle), shutters that hide tissue
  (labels removed under them);
- processing and export, to the image: exposure, gamma, inversion, heel-effect gradient,
  stitching steps and seams, CLAHE / histogram equalisation / strong unsharp masking, lower
  resolution, 8-bit quantisation and JPEG compression, blur, noise;
- clutter in the beam, to the image only (the anatomy under a ruler is still anatomy): a ruler
  with numbers (often down the midline), lead letters, burned-in text, a positioning grid,
  lead gonad shields of several shapes.
"""

from __future__ import annotations

import cv2
import numpy as np


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x: (H, W) float32 in [0, 1]; y: (H, W) uint8 labels. Returns new arrays of the same shape.

    Four stages in a fixed order (the random draws come in the same order as ever, so a seed
    gives the same films): geometry (image and labels), processing, clutter, detector and export."""
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)
    x, y = _geometry(x, y, rng)
    x = _processing(x, rng)
    _clutter(x, rng)
    x = _detector(x, rng)
    return np.clip(x, 0, 1).astype(np.float32), np.ascontiguousarray(y)


def _geometry(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mirror, crops re-letterboxed, rotation/scale/shift, a film cut at one end, shutters."""
    h, w = x.shape
    if rng.random() < 0.5:
        x, y = x[:, ::-1].copy(), y[:, ::-1].copy()
    if rng.random() < 0.35:
        x, y = _crop_relletterbox(x, y, rng)
    if rng.random() < 0.8:
        ang = rng.uniform(-5, 5)
        sc = rng.uniform(0.85, 1.12)
        M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
        M[:, 2] += (rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.04, 0.04) * h)
        x = cv2.warpAffine(x, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        y = cv2.warpAffine(y, M, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    if rng.random() < 0.15:  # film cropped at the top or bottom
        k = int(rng.uniform(0.05, 0.2) * h)
        if rng.random() < 0.5:
            x[:k], y[:k] = 0, 0
        else:
            x[h - k :], y[h - k :] = 0, 0
    if rng.random() < 0.2:
        _shutter(x, y, rng)
    return x, y


def _processing(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The vendor's or the export's processing chain: heel, stitching, local contrast, exposure."""
    if rng.random() < 0.4:
        _heel(x, rng)
    if rng.random() < 0.3:
        _stitch(x, rng)
    r = rng.random()
    if r < 0.3:
        x = _clahe(x, rng)
    elif r < 0.4:
        x = cv2.equalizeHist((x * 255).astype(np.uint8)).astype(np.float32) / 255.0
    if rng.random() < 0.35:
        sigma = rng.uniform(2, 15)
        x = x + rng.uniform(0.3, 1.5) * (x - cv2.GaussianBlur(x, (0, 0), sigma))
    if rng.random() < 0.8:
        x = np.clip(x * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1), 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.1:
        x = 1.0 - x
    return x


def _clutter(x: np.ndarray, rng: np.random.Generator) -> None:
    """Things in the beam, drawn into the image in place (the anatomy under them keeps its label)."""
    for p, draw in ((0.45, _ruler), (0.35, _letter), (0.3, _text), (0.12, _grid), (0.25, _shield)):
        if rng.random() < p:
            draw(x, rng)


def _detector(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Detector and export: lower resolution, blur, noise, 8 bits and JPEG."""
    h, w = x.shape
    if rng.random() < 0.35:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(np.clip(x, 0, 1), (max(int(w * f), 8), max(int(h * f), 8)), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.4:
        x = x + rng.normal(0, rng.uniform(0.005, 0.04), x.shape).astype(np.float32)
    if rng.random() < 0.5:
        q = (np.clip(x, 0, 1) * 255).astype(np.uint8)
        if rng.random() < 0.7:
            ok, buf = cv2.imencode(".jpg", q, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 96))])
            q = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        x = q.astype(np.float32) / 255.0
    return x


def _crop_relletterbox(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cut part of the film out and letterbox it again, as the clinic's preprocessing would:
    one leg (half the width), the pelvis cut off, or the film ending above the ankle."""
    h, w = x.shape
    cols = np.nonzero(x.max(axis=0) > 0)[0]
    rows = np.nonzero(x.max(axis=1) > 0)[0]
    if len(cols) < 8 or len(rows) < 8:
        return x, y
    c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    kind = rng.choice(["leg", "top", "bottom"], p=[0.5, 0.25, 0.25])
    if kind == "leg":
        mid = (c0 + c1) // 2 + int(rng.uniform(-0.05, 0.05) * (c1 - c0))
        if rng.random() < 0.5:
            c1 = min(c1, mid + int(rng.uniform(0.0, 0.1) * (c1 - c0)))
        else:
            c0 = max(c0, mid - int(rng.uniform(0.0, 0.1) * (c1 - c0)))
    elif kind == "top":
        r0 = r0 + int(rng.uniform(0.05, 0.2) * (r1 - r0))
    else:
        r1 = r1 - int(rng.uniform(0.1, 0.35) * (r1 - r0))
    cx, cy = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
    ch, cw = cx.shape
    scale = min(h / ch, w / cw)
    nh, nw = min(max(int(round(ch * scale)), 1), h), min(max(int(round(cw * scale)), 1), w)
    ox, oy = np.zeros_like(x), np.zeros_like(y)
    top, left = (h - nh) // 2, (w - nw) // 2
    ox[top : top + nh, left : left + nw] = cv2.resize(cx, (nw, nh), interpolation=cv2.INTER_LINEAR)
    oy[top : top + nh, left : left + nw] = cv2.resize(cy, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return ox, oy


def _shutter(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
    """A collimator blade: unexposed (bright after display) and nothing to label under it."""
    h, w = x.shape
    k = int(rng.uniform(0.03, 0.18) * w)
    value = rng.uniform(0.7, 1.0) if rng.random() < 0.7 else rng.uniform(0.0, 0.1)
    sl = np.s_[:, :k] if rng.random() < 0.5 else np.s_[:, w - k :]
    x[sl] = value
    y[sl] = 0


def _heel(x: np.ndarray, rng: np.random.Generator) -> None:
    h = x.shape[0]
    g = np.linspace(1 - rng.uniform(0.1, 0.2), 1 + rng.uniform(0.1, 0.2), h, dtype=np.float32)
    x *= (g if rng.random() < 0.5 else g[::-1])[:, None]


def _stitch(x: np.ndarray, rng: np.random.Generator) -> None:
    """2-3 exposures: brightness steps between them and a thin seam line."""
    h = x.shape[0]
    for r in sorted(rng.uniform(0.25, 0.75, int(rng.integers(1, 3))) * h):
        r = int(r)
        x[r:] = x[r:] * rng.uniform(0.85, 1.15) + rng.uniform(-0.08, 0.08)
        x[r : r + int(rng.integers(1, 3))] = rng.uniform(0.0, 1.0)


def _clahe(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    tiles = int(rng.integers(4, 17))
    op = cv2.createCLAHE(clipLimit=float(rng.uniform(1.0, 4.0)), tileGridSize=(tiles, max(tiles // 2, 2)))
    return op.apply((np.clip(x, 0, 1) * 255).astype(np.uint8)).astype(np.float32) / 255.0


def _ruler(x: np.ndarray, rng: np.random.Generator) -> None:
    """A radio-opaque ruler: mostly down the middle, between the legs, with numbers."""
    h, w = x.shape
    c = int((rng.uniform(0.44, 0.52) if rng.random() < 0.6 else rng.uniform(0.05, 0.9)) * w)
    width = max(int(rng.uniform(0.02, 0.05) * w), 3)
    x[:, c : c + width] = np.clip(x[:, c : c + width] * rng.uniform(0.3, 1.0) + rng.uniform(0.05, 0.5), 0, 1)
    step = max(int(h / rng.uniform(60, 120)), 3)
    m = np.zeros(x.shape, np.uint8)
    for k, r in enumerate(range(int(rng.integers(0, step)), h, step)):
        x[r, c : c + width // 2 + (width // 2 if k % 5 == 0 else 0)] = 1.0
        if k % 10 == 0:
            cv2.putText(m, str(k // 10), (c, r), cv2.FONT_HERSHEY_PLAIN, 0.6, 255, 1)
    np.maximum(x, m.astype(np.float32) / 255.0, out=x)


def _letter(x: np.ndarray, rng: np.random.Generator) -> None:
    h, w = x.shape
    size = rng.uniform(0.6, 1.4)
    org = (int(rng.uniform(0.05, 0.8) * w), int(rng.uniform(0.05, 0.95) * h))
    m = np.zeros(x.shape, np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(m, str(rng.choice(["R", "L", "RT", "LT"])), org, cv2.FONT_HERSHEY_SIMPLEX, size, 255, 2, cv2.LINE_AA)
    np.maximum(x, m.astype(np.float32) / 255.0, out=x)


def _text(x: np.ndarray, rng: np.random.Generator) -> None:
    """Burned-in annotations: a few lines of characters in a corner."""
    h, w = x.shape
    m = np.zeros(x.shape, np.uint8)
    top = int(rng.uniform(0.01, 0.9) * h)
    left = int(rng.uniform(0.0, 0.5) * w)
    chars = np.array(list("ABCDEFGHKLMNPRSTUVWXYZ0123456789 :/.-"))
    for i in range(int(rng.integers(1, 4))):
        s = "".join(rng.choice(chars, int(rng.integers(4, 14))))
        cv2.putText(m, s, (left, top + 9 * i), cv2.FONT_HERSHEY_PLAIN, 0.55, 255, 1)
    np.maximum(x, m.astype(np.float32) / 255.0 * rng.uniform(0.6, 1.0), out=x)


def _grid(x: np.ndarray, rng: np.random.Generator) -> None:
    h, w = x.shape
    step = int(rng.integers(10, 30))
    a = rng.uniform(0.03, 0.12)
    x[::step, :] += a
    x[:, ::step] += a


def _shield(x: np.ndarray, rng: np.random.Generator) -> None:
    """A lead gonad shield near the top of the thighs, in the midline: opaque, so bright."""
    h, w = x.shape
    cx = int(rng.uniform(0.4, 0.6) * w)
    cy = int(rng.uniform(0.12, 0.32) * h)
    a, b = int(rng.uniform(0.06, 0.16) * w), int(rng.uniform(0.03, 0.07) * h)
    m = np.zeros(x.shape, np.uint8)
    shape = rng.integers(0, 3)
    if shape == 0:
        cv2.ellipse(m, (cx, cy), (a, b), float(rng.uniform(-20, 20)), 0, 360, 255, -1)
    elif shape == 1:
        pts = np.array([[cx - a, cy - b], [cx + a, cy - b], [cx, cy + 2 * b]], np.int32)
        cv2.fillPoly(m, [pts], 255)
    else:
        cv2.ellipse(m, (cx - a // 2, cy), (a // 2 + 2, b), 0, 0, 360, 255, -1)
        cv2.ellipse(m, (cx + a // 2, cy), (a // 2 + 2, b), 0, 0, 360, 255, -1)
        cv2.fillPoly(m, [np.array([[cx - a, cy], [cx + a, cy], [cx, cy + 2 * b]], np.int32)], 255)
    level = rng.uniform(0.85, 1.0)
    x[m > 0] = level

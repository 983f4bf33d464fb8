"""Augmentations on preprocessed (normalised, letterboxed) arrays: what real films vary in.

Geometry (rotation, scale, shift, flip, cropped film) is applied to image and labels alike;
intensity (exposure, gamma, inversion, noise, blur) and objects in the beam (ruler, lead letters)
to the image only: the anatomy under a ruler is still anatomy.
"""
from __future__ import annotations

import cv2
import numpy as np


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x: (H, W) float32 in [0, 1]; y: (H, W) uint8 labels. Returns new arrays."""
    h, w = x.shape
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    if rng.random() < 0.8:
        ang = rng.uniform(-5, 5)
        sc = rng.uniform(0.9, 1.1)
        M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
        M[:, 2] += (rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.04, 0.04) * h)
        x = cv2.warpAffine(np.ascontiguousarray(x), M, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        y = cv2.warpAffine(np.ascontiguousarray(y), M, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    x = np.ascontiguousarray(x, np.float32)
    y = np.ascontiguousarray(y)
    if rng.random() < 0.15:  # film cropped at the top or bottom
        k = int(rng.uniform(0.05, 0.2) * h)
        if rng.random() < 0.5:
            x[:k], y[:k] = 0, 0
        else:
            x[h - k:], y[h - k:] = 0, 0
    if rng.random() < 0.3:
        _ruler(x, rng)
    if rng.random() < 0.3:
        _letter(x, rng)
    if rng.random() < 0.8:
        x = np.clip(x * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1), 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.1:
        x = 1.0 - x
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.4:
        x = x + rng.normal(0, rng.uniform(0.005, 0.04), x.shape).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32), y


def _ruler(x: np.ndarray, rng: np.random.Generator) -> None:
    h, w = x.shape
    c = int(rng.uniform(0.1, 0.9) * w)
    width = max(int(0.03 * w), 3)
    x[:, c:c + width] = np.clip(x[:, c:c + width] + 0.08, 0, 1)
    step = max(int(h / rng.uniform(60, 120)), 3)
    for r in range(int(rng.integers(0, step)), h, step):
        x[r, c:c + width // 2] = 1.0


def _letter(x: np.ndarray, rng: np.random.Generator) -> None:
    h, w = x.shape
    size = rng.uniform(0.6, 1.2)
    org = (int(rng.uniform(0.05, 0.8) * w), int(rng.uniform(0.05, 0.95) * h))
    m = np.zeros(x.shape, np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(m, str(rng.choice(["R", "L"])), org, cv2.FONT_HERSHEY_SIMPLEX, size, 255, 2, cv2.LINE_AA)
    np.maximum(x, m.astype(np.float32) / 255.0, out=x)

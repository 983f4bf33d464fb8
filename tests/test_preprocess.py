"""The one preprocessing: robust to the vendor's window, and invertible onto the film's grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.preprocess import DEFAULT_SIZE, normalise, plan_letterbox, resize_mask, to_film_grid, to_model_input
from edge.reader import read_film


def test_letterbox_keeps_aspect_and_is_divisible_by_32():
    box = plan_letterbox((2200, 800), (640, 256))
    assert box.height == 640 and box.width == round(800 * 640 / 2200)
    assert box.left == (256 - box.width) // 2 and box.top == 0
    with pytest.raises(ValueError):
        plan_letterbox((100, 100), (600, 250))


def test_normalise_ignores_window_and_bit_depth():
    rng = np.random.default_rng(0)
    film = rng.random((900, 300)).astype(np.float32)
    a = normalise(film)
    b = normalise(film * 0.3 + 0.5)  # another window: linear change of the stored values
    assert a.dtype == np.float32 and a.min() == 0.0 and a.max() == 1.0
    assert np.abs(a - b).max() < 1e-4
    assert not normalise(np.full((10, 10), 0.7, np.float32)).any()


def test_mask_round_trip_through_the_model_grid(demo_cohort):
    img_path = next((demo_cohort / "images").glob("*.dcm"))
    mask = cv2.imread(str(demo_cohort / "masks" / (img_path.stem + ".png")), cv2.IMREAD_UNCHANGED)
    film = read_film(img_path)
    x, box = to_model_input(film.pixels)
    assert x.shape == (1, 1, *DEFAULT_SIZE) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    truth = mask == 1
    small = resize_mask(truth.astype(np.uint8), box).astype(np.float32)
    back = to_film_grid(cv2.GaussianBlur(small, (0, 0), 0.7), box) > 0.5
    assert back.shape == truth.shape
    dice = 2 * np.count_nonzero(back & truth) / (np.count_nonzero(back) + np.count_nonzero(truth))
    assert dice > 0.95
    # Area error of a perfect low-resolution segmentation mapped back: a few percent at most.
    assert abs(np.count_nonzero(back) / np.count_nonzero(truth) - 1) < 0.03


def test_flip_average_is_mirror_consistent_and_exact_for_an_equivariant_model():
    from edge.preprocess import flip_average

    rng = np.random.default_rng(3)
    x = rng.random((1, 1, 64, 32), dtype=np.float32)
    lopsided = lambda t: t[0, 0] * np.linspace(0, 1, t.shape[-1], dtype=np.float32)  # noqa: E731
    a = flip_average(lopsided, x)
    b = flip_average(lopsided, np.ascontiguousarray(x[..., ::-1]))
    assert np.allclose(a, b[:, ::-1])  # the mirrored film gets the mirrored answer
    assert not np.allclose(a, lopsided(x))  # ... which one pass alone does not give
    assert np.allclose(flip_average(lambda t: t[0, 0] ** 2, x), x[0, 0] ** 2)  # equivariant: unchanged
    assert a.dtype == np.float32 and a.shape == (64, 32)

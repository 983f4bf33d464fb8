"""edge.measure on masks whose answer is known: the area per side, Dice and IoU."""

from __future__ import annotations

import numpy as np
import pytest

from edge.measure import dice_iou, thigh_areas


def test_dice_and_iou_of_known_masks():
    a = np.zeros((10, 10), bool)
    a[:, :5] = True  # 50 px
    b = np.zeros((10, 10), bool)
    b[:, 2:7] = True  # 50 px, 30 shared
    d, j = dice_iou(a, b)
    assert d == pytest.approx(0.6) and j == pytest.approx(30 / 70)
    assert dice_iou(a, a) == (1.0, 1.0)
    assert dice_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == (1.0, 1.0)


def test_thigh_areas_tell_the_femur_from_the_gap_between_thighs():
    # Two thighs, each split by a bright femur; a dark (fat/air) gap between them.
    film = np.full((100, 80), 0.5, np.float32)
    m = np.zeros((100, 80), bool)
    m[10:90, 2:12] = m[10:90, 16:30] = True  # image left = patient's right: 10 + 14 columns
    m[10:90, 44:56] = m[10:90, 60:70] = True  # patient's left: 12 + 10 columns
    film[:, 12:16] = film[:, 56:60] = 0.9  # femurs, brighter than muscle
    film[:, 30:44] = 0.1  # between the thighs
    a = thigh_areas(m, (0.5, 0.5), film)
    assert a.sides_seen == 2 and a.unit == "cm2"
    assert a.right == pytest.approx(80 * 24 * 0.0025) and a.left == pytest.approx(80 * 22 * 0.0025)
    # One thigh (the other off the film): two blobs around a femur are still one side.
    one = thigh_areas(m[:, :36], None, film[:, :36])
    assert one.sides_seen == 1 and one.unit == "px" and one.total == 80 * 24 and one.right is None

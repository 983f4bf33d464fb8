"""edge.measure on masks whose answer is known: the area per side, Dice and IoU."""

from __future__ import annotations

import numpy as np
import pytest

from edge.measure import Areas, dice_iou, split_sides, thigh_areas


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


def two_thighs(rows: int = 100, width: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """One blob per thigh (no femur split), a dark gap between, muscle at 0.5."""
    film = np.full((rows, width), 0.5, np.float32)
    m = np.zeros((rows, width), bool)
    m[10:90, 5:20] = True  # 15 columns: patient's right
    m[10:90, 30:40] = True  # 10 columns: patient's left
    film[:, 20:30] = 0.1
    return m, film


def test_thigh_areas_of_an_empty_and_a_one_pixel_mask():
    film = np.full((10, 10), 0.5, np.float32)
    m = np.zeros((10, 10), bool)
    assert thigh_areas(m, (0.5, 0.2), film) == Areas(0.0, None, None, "cm2", 0)
    assert thigh_areas(m, None, film) == Areas(0.0, None, None, "px", 0)
    m[3, 3] = True
    assert thigh_areas(m, None, film) == Areas(1.0, None, None, "px", 1)
    assert thigh_areas(m.astype(np.uint8) * 255, (2.0, 5.0), film) == Areas(0.1, None, None, "cm2", 1)


def test_thigh_areas_use_both_spacings():
    m, film = two_thighs()
    a = thigh_areas(m, (0.5, 0.2), film)  # 0.001 cm2 per pixel
    assert a == Areas(pytest.approx(2.0), pytest.approx(1.2), pytest.approx(0.8), "cm2", 2)
    one = thigh_areas(m[:, :25], (0.5, 0.2), film[:, :25])
    assert one == Areas(pytest.approx(1.2), None, None, "cm2", 1)


def test_two_blobs_are_two_thighs_only_across_a_dark_gap():
    m, film = two_thighs()
    assert split_sides(m, film) == (1200, 800)
    assert split_sides(m, np.full_like(film, 0.5)) is None  # gap as bright as muscle: not between thighs
    film[:, 20:30] = 0.9  # brighter than muscle: a femur, one thigh
    assert split_sides(m, film) is None
    assert split_sides(m[:, :25], film[:, :25]) is None  # one blob
    assert split_sides(np.zeros_like(m), film) is None


def test_blobs_are_ordered_left_to_right_whatever_their_height():
    m, film = two_thighs()
    m[:] = False
    m[40:90, 5:20] = True  # the image-left thigh starts lower: labelled second
    m[10:90, 30:40] = True
    assert split_sides(m, film) == (750, 800)


def test_a_thigh_at_the_film_edge_and_a_one_column_gap():
    film = np.full((100, 20), 0.5, np.float32)
    m = np.zeros((100, 20), bool)
    m[10:90, 0] = True  # only column 0
    m[10:90, 5:7] = True
    film[:, 1:5] = 0.1
    assert split_sides(m, film) == (80, 160)
    m2 = np.zeros((100, 20), bool)
    m2[10:90, 2:6] = m2[10:90, 7:10] = True  # one dark column between
    film2 = np.full((100, 20), 0.5, np.float32)
    film2[:, 6] = 0.1
    assert split_sides(m2, film2) == (320, 240)


def test_the_darkest_gap_wins_and_a_tie_goes_to_the_first():
    # Three blobs, two gaps.
    film = np.full((100, 60), 0.5, np.float32)
    m = np.zeros((100, 60), bool)
    m[10:90, 0:10] = m[10:90, 11:30] = m[10:90, 40:50] = True  # a | narrow gap | b | wide gap | c
    film[:, 10] = 0.1
    film[:, 30:40] = 0.15
    assert split_sides(m, film) == (800, 80 * 29)  # the narrow, darker gap: a | b c
    film[:, 10] = 0.2
    assert split_sides(m, film) == (80 * 29, 800)  # now the wide one is darker: a b | c
    film[:, 10] = 0.15
    assert split_sides(m, film) == (800, 80 * 29)  # a tie: the first


def test_the_split_lies_midway_between_the_blobs_beside_the_gap():
    # Muscle low on a tall film (each centroid's row far from its column); the right thigh split
    # by its femur into parts centred on columns 19.5 and 37.5, the left into 61.5 and 77.5; the
    # gap between 37.5 and 61.5 is the darkest, so the split is at column 49.5. Specks too small to
    # be blobs go by their centre: one on that line belongs to the image-right side, one at 47.5 to
    # the image-left; the background to neither.
    film = np.full((200, 90), 0.5, np.float32)
    m = np.zeros((200, 90), bool)
    m[100:180, 14:26] = m[100:180, 30:46] = True  # 960 + 1280 px
    film[:, 26:30] = 0.9
    m[100:180, 56:68] = m[100:180, 72:84] = True  # 960 + 960 px
    film[:, 68:72] = 0.9
    film[:, 46:56] = 0.1
    m[140:150, 49:51] = True  # 20 px, centre column 49.5
    m[160:170, 47:49] = True  # 20 px, centre column 47.5
    assert split_sides(m, film) == (960 + 1280 + 20, 960 + 960 + 20)


@pytest.mark.parametrize("speck, sides", [(100, (950, 1050)), (99, (950 + 99, 950))])
def test_a_blob_is_at_least_5_percent_of_the_mask(speck, sides):
    # Two 950-px blobs and a third of 100 px (exactly 5 % of 2000: a blob) or 99 px (a speck)
    # between them. As a blob, it is split off by the darker gap on its left; as a speck, it goes
    # with the image-left side (its centre is left of the midline between the two blobs).
    film = np.full((60, 70), 0.5, np.float32)
    m = np.zeros((60, 70), bool)
    m[0:50, 0:19] = m[0:50, 45:64] = True
    m[20:30, 25:35] = True
    if speck == 99:
        m[29, 34] = False
    film[:, 19:25] = 0.1
    film[:, 35:45] = 0.2
    assert split_sides(m, film) == sides


def test_the_muscle_level_is_the_median_of_every_7th_mask_pixel():
    # Two 7-column blobs: every 7th mask pixel (row by row) is a first column, here 0.7; the
    # rest of the muscle is 0.3. A gap of 0.5 is darker than that muscle level: two thighs.
    film = np.full((100, 20), 0.3, np.float32)
    m = np.zeros((100, 20), bool)
    m[10:90, 0:7] = m[10:90, 10:17] = True
    film[:, 0] = film[:, 10] = 0.7
    film[:, 7:10] = 0.5
    assert split_sides(m, film) == (560, 560)


def test_touching_thighs_split_at_the_femurs_midline():
    """Thighs that touch (no dark gap: split_sides sees one thigh) are split by the line between
    the femurs, tilted as the film is; the SEG's side labels are the same pixels."""
    from edge.dicom_out import side_labels

    film = np.full((100, 80), 0.5, np.float32)
    m = np.zeros((100, 80), bool)
    m[:, 4:76] = True  # one band of muscle from the right thigh's outer edge to the left's
    assert split_sides(m, film) is None
    a = thigh_areas(m, (0.5, 0.5), film, line=(40.0, 0.0))
    assert a.sides_seen == 2 and a.right == pytest.approx(100 * 36 * 0.0025) == a.left and a.midline == (40.0, 0.0)
    tilted = thigh_areas(m, None, film, line=(30.0, 0.2))  # column 30 at row 0, 49.8 at row 99
    right = sum(int(np.ceil(30.0 + 0.2 * r)) - 4 for r in range(100))
    assert tilted.right == right and tilted.left == 7200 - right
    labels = side_labels(m, film, tilted)
    assert int(np.count_nonzero(labels == 1)) == right and int(np.count_nonzero(labels == 2)) == 7200 - right
    assert labels[0, 29] == 1 and labels[0, 30] == 2 and labels[99, 49] == 1 and labels[99, 50] == 2


def test_the_line_split_equals_comparing_every_pixel():
    """left_of_line and count_left_of_line compare only the columns the line crosses: the same
    pixels as comparing every column with the line, for lines inside, across and outside the film."""
    from edge.measure import count_left_of_line, left_of_line

    rng = np.random.default_rng(3)
    for _ in range(200):
        rows, cols = rng.integers(1, 40, size=2)
        mask = rng.random((rows, cols)) < 0.5
        line = (float(rng.uniform(-20, cols + 20)), float(rng.uniform(-2, 2)))
        every = mask & (np.arange(cols)[None, :] < (line[0] + line[1] * np.arange(rows))[:, None])
        assert np.array_equal(left_of_line(mask, line), every), line
        assert count_left_of_line(mask, line) == int(np.count_nonzero(every)), line

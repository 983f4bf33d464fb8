"""edge.quality with known answers: each refusal reason at and just past its threshold, on
constructed films and masks (no model, no CLI), and the measured values it reports."""

from __future__ import annotations

import numpy as np
import pytest

from edge import quality as q
from edge.measure import Areas
from edge.quality import Anatomy, GateConfig, _anatomy_reasons, anatomy, femur_support, quality_gate
from edge.reader.film import Film

CFG = GateConfig()
BOTH = Areas(200.0, 100.0, 100.0, "cm2", 2)


def film(pixels: np.ndarray, spacing=(3.0, 3.0), body_part: str | None = None) -> Film:
    return Film(
        pixels=pixels.astype(np.float32),
        spacing_mm=spacing,
        spacing_source="test",
        sex="F",
        height_m=1.6,
        height_source="test",
        age_years=70.0,
        source_format="test",
        photometric="MONOCHROME2",
        bits_stored=12,
        transfer_syntax=None,
        modality="DX",
        body_part=body_part,
        notes=(),
    )


def ramp(rows: int = 200, cols: int = 100) -> np.ndarray:
    """A film with `rows` grey levels (one per row): a radiograph as far as the gate can tell."""
    return np.repeat(np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None], cols, axis=1)


def levels(n: int, rows: int = 200, cols: int = 100) -> np.ndarray:
    """A film of exactly `n` grey levels."""
    return np.repeat((np.arange(rows) % n / max(n - 1, 1)).astype(np.float32)[:, None], cols, axis=1)


def reasons(*args, **kw) -> list[str]:
    return quality_gate(*args, **kw)[0]


def test_gate_config_from_dict():
    assert GateConfig.from_dict(None) == GateConfig() == GateConfig.from_dict({})
    c = GateConfig.from_dict({"min_confidence": 0.5, "thigh_area_cm2": [50, 500], "unknown": 1})
    assert c.min_confidence == 0.5 and c.thigh_area_cm2 == (50, 500) and isinstance(c.thigh_area_cm2, tuple)
    assert c.max_side_ratio == 2.0 and c.muscle_length_cm == (15.0, 55.0)
    assert GateConfig() == GateConfig(0.6, (60.0, 600.0), (15.0, 55.0), (0.12, 0.27), 2.0, 0.3, 0.5)


def test_a_plain_long_leg_film_passes_and_reports_its_numbers():
    r, quality = quality_gate(film(ramp()), BOTH, 0.87654321)
    assert r == []
    assert quality == {
        "segmentation_confidence": 0.8765,
        "sides_seen": 2,
        "aspect_ratio": 2.0,
        "area_plausible": True,
    }


@pytest.mark.parametrize(
    "part, refused",
    [("CHEST", True), ("chest", True), ("C SPINE", True), ("pelvis", True), ("LEG", False), ("KNEE", False)],
)
def test_body_part(part, refused):
    r, quality = quality_gate(film(ramp(), body_part=part), BOTH, 0.9)
    assert r == ([q.NOT_LONG_LEG] if refused else [])
    if refused:  # a refused film is not measured further
        assert set(quality) == {"segmentation_confidence", "sides_seen", "aspect_ratio"}


def test_film_shape_at_and_under_the_aspect_ratio():
    assert reasons(film(ramp(160, 100), spacing=(4.0, 4.0)), BOTH, 0.9) == []  # 1.6: long enough
    r, quality = quality_gate(film(ramp(159, 100), spacing=(4.0, 4.0)), BOTH, 0.9)
    assert r == [q.NOT_LONG_LEG] and quality["aspect_ratio"] == 1.59
    assert quality_gate(film(ramp(170, 99), spacing=(4.0, 4.0)), BOTH, 0.9)[1]["aspect_ratio"] == 1.717


def test_film_height_at_and_under_60_cm_uses_the_row_spacing():
    assert reasons(film(ramp(200, 100), spacing=(3.0, 9.0)), BOTH, 0.9) == []  # 200 rows * 3 mm = 60 cm
    assert reasons(film(ramp(200, 100), spacing=(2.99, 3.0)), BOTH, 0.9) == [q.NOT_LONG_LEG]
    assert reasons(film(ramp(200, 100), spacing=(2.0, 3.0)), BOTH, 0.9) == [q.NOT_LONG_LEG]
    assert reasons(film(ramp(200, 100), spacing=(9.0, 2.0)), BOTH, 0.9) == []
    # without a spacing the height cannot be judged: not refused for it (px areas: no area check)
    r, quality = quality_gate(film(ramp(200, 100), spacing=None), Areas(5e5, None, None, "px", 1), 0.9)
    assert r == [] and "area_plausible" not in quality


def test_grey_levels_at_and_under_32():
    assert reasons(film(levels(32)), BOTH, 0.9) == []
    assert reasons(film(levels(31)), BOTH, 0.9) == [q.NOT_RADIOGRAPH]
    both = reasons(film(levels(2, 150, 100), body_part="HAND"), BOTH, 0.9)
    assert both == [q.NOT_LONG_LEG, q.NOT_RADIOGRAPH]


def test_grey_levels_are_counted_on_a_subsample_of_large_films():
    # 1600 x 625 = 1,000,000 pixels, 4 x 250,000: every 2nd row and column. The sampled pixels
    # hold 31 levels, the others many more: a sampling mistake counts them and passes the film.
    px = np.repeat((np.arange(1600) // 2 % 31 / 30).astype(np.float32)[:, None], 625, axis=1)
    px[1::2, 1::2] = np.linspace(0.0, 1.0, 800 * 312).reshape(800, 312)
    assert reasons(film(px, spacing=(0.5, 0.5)), BOTH, 0.9) == [q.NOT_RADIOGRAPH]
    px[::2, ::2] = np.linspace(0.0, 1.0, 800 * 313).reshape(800, 313)  # now the sample varies
    assert reasons(film(px, spacing=(0.5, 0.5)), BOTH, 0.9) == []


def test_confidence_at_and_under_the_floor():
    assert reasons(film(ramp()), BOTH, 0.6) == []
    assert reasons(film(ramp()), BOTH, 0.5999) == [q.LOW_CONFIDENCE]
    assert reasons(film(ramp()), BOTH, 0.5, cfg=GateConfig(min_confidence=0.5)) == []
    r, quality = quality_gate(film(ramp()), Areas(0.0, None, None, "cm2", 0), 0.99)
    assert r == [q.LOW_CONFIDENCE] and quality["sides_seen"] == 0 and "area_plausible" not in quality


def test_femur_support_at_and_under_its_floor():
    r, quality = quality_gate(film(ramp()), BOTH, 0.9, femur=0.5)
    assert r == [] and quality["femur_support"] == 0.5
    r, quality = quality_gate(film(ramp()), BOTH, 0.9, femur=0.49996)
    assert r == [q.NO_FEMUR] and quality["femur_support"] == 0.5 and "area_plausible" not in quality
    assert reasons(film(ramp()), BOTH, 0.9, femur=0.3, cfg=GateConfig(min_femur_support=0.3)) == []
    assert quality_gate(film(ramp()), BOTH, 0.9, femur=0.56789)[1]["femur_support"] == 0.568


@pytest.mark.parametrize(
    "areas, ok",
    [
        (Areas(120.0, 60.0, 60.0, "cm2", 2), True),
        (Areas(1200.0, 600.0, 600.0, "cm2", 2), True),
        (Areas(119.9, 59.9, 60.0, "cm2", 2), False),
        (Areas(1200.1, 600.0, 600.1, "cm2", 2), False),
        (Areas(60.0, None, None, "cm2", 1), True),  # one thigh: its total is the side
        (Areas(59.9, None, None, "cm2", 1), False),
        (Areas(600.1, None, None, "cm2", 1), False),
        (Areas(700.0, 100.0, None, "cm2", 1), True),  # a side given: the side is judged, not the total
        (Areas(700.0, None, 100.0, "cm2", 1), True),
        (Areas(5.0, None, None, "px", 1), True),  # no spacing: no area check
    ],
)
def test_area_plausibility_per_side(areas, ok):
    r, quality = quality_gate(film(ramp()), areas, 0.9)
    assert r == ([] if ok else [q.IMPLAUSIBLE_AREA])
    if areas.unit == "cm2":
        assert quality["area_plausible"] is ok


def test_area_range_comes_from_the_config():
    cfg = GateConfig(thigh_area_cm2=(10.0, 20.0))
    assert reasons(film(ramp()), Areas(30.0, 10.0, 20.0, "cm2", 2), 0.9, cfg=cfg) == []
    assert reasons(film(ramp()), BOTH, 0.9, cfg=cfg) == [q.IMPLAUSIBLE_AREA]


def test_anatomy_reasons_inverted_at_and_under_the_level():
    quality: dict = {}
    assert _anatomy_reasons(Anatomy(None, 0.3, None), None, CFG, quality) == []
    assert quality == {"muscle_length_cm": None, "muscle_level": 0.3, "side_ratio": None}
    assert _anatomy_reasons(Anatomy(None, 0.2999, None), None, CFG, {}) == [q.INVERTED]
    assert _anatomy_reasons(Anatomy(None, 0.2, None), None, GateConfig(min_muscle_level=0.2), {}) == []


@pytest.mark.parametrize(
    "length, ok", [(24.0, True), (23.9, False), (54.0, True), (54.1, False), (40.0, True), (10.0, False)]
)
def test_anatomy_reasons_length_against_height(length, ok):
    quality: dict = {}
    r = _anatomy_reasons(Anatomy(length, 0.5, None), 2.0, CFG, quality)  # 0.12 * 200 cm .. 0.27 * 200 cm
    assert r == ([] if ok else [q.SPACING_ANATOMY])
    assert quality["length_to_height"] == round(length / 200, 3)
    assert quality["muscle_length_cm"] == round(length, 1)


@pytest.mark.parametrize("length, ok", [(15.0, True), (14.9, False), (55.0, True), (55.1, False)])
@pytest.mark.parametrize("height", [None, 0.0])
def test_anatomy_reasons_length_without_height(length, ok, height):
    quality: dict = {}
    assert _anatomy_reasons(Anatomy(length, 0.5, None), height, CFG, quality) == ([] if ok else [q.SPACING_ANATOMY])
    assert "length_to_height" not in quality


def test_anatomy_reasons_length_ranges_come_from_the_config():
    cfg = GateConfig(muscle_length_cm=(1.0, 2.0), length_to_height=(0.5, 0.6))
    assert _anatomy_reasons(Anatomy(1.5, 0.5, None), None, cfg, {}) == []
    assert _anatomy_reasons(Anatomy(30.0, 0.5, None), None, cfg, {}) == [q.SPACING_ANATOMY]
    assert _anatomy_reasons(Anatomy(110.0, 0.5, None), 2.0, cfg, {}) == []
    assert _anatomy_reasons(Anatomy(40.0, 0.5, None), 2.0, cfg, {}) == [q.SPACING_ANATOMY]


def test_anatomy_reasons_asymmetry_at_and_over_the_ratio():
    quality: dict = {}
    assert _anatomy_reasons(Anatomy(None, 0.5, 2.0), None, CFG, quality) == []
    assert quality["side_ratio"] == 2.0
    quality = {}
    assert _anatomy_reasons(Anatomy(None, 0.5, 2.00049), None, CFG, quality) == [q.ASYMMETRY]
    assert quality["side_ratio"] == 2.0
    assert _anatomy_reasons(Anatomy(None, 0.5, 3.0), None, GateConfig(max_side_ratio=3.0), {}) == []


def test_anatomy_reasons_come_in_order_and_all_at_once():
    quality: dict = {}
    r = _anatomy_reasons(Anatomy(12.34, 0.12345, 2.34567), None, CFG, quality)
    assert r == [q.INVERTED, q.SPACING_ANATOMY, q.ASYMMETRY]
    assert quality == {"muscle_length_cm": 12.3, "muscle_level": 0.123, "side_ratio": 2.346}


def thigh_film(muscle: float = 0.4) -> tuple[Film, np.ndarray]:
    """200 x 100 film, spacing 5 mm x 1 mm: air (0) left, muscle (`muscle`) in columns 20-39 of
    rows 10-89, bone (1) right. The mask is the muscle."""
    px = np.zeros((200, 100), np.float32)
    px[:, 40:] = 1.0
    px[10:90, 20:40] = muscle
    mask = np.zeros((200, 100), bool)
    mask[10:90, 20:40] = True
    return film(px, spacing=(5.0, 1.0)), mask


def test_anatomy_of_a_known_mask():
    f, mask = thigh_film(0.4)
    a = anatomy(f, mask, BOTH)
    # 2 % of the muscle is reached in row 11, 98 % in row 88: 78 rows of 5 mm
    assert a.muscle_length_cm == pytest.approx(39.0)
    # within the band, 20 % air (0) and 60 % bone (1): the muscle sits at 0.4 of the range
    assert a.muscle_level == pytest.approx(0.4)
    assert a.side_ratio == 1.0
    assert anatomy(f, mask, Areas(350.0, 100.0, 250.0, "cm2", 2)).side_ratio == pytest.approx(2.5)
    assert anatomy(f, mask, Areas(350.0, 250.0, 100.0, "cm2", 2)).side_ratio == pytest.approx(2.5)
    assert anatomy(f, mask, Areas(100.0, 100.0, None, "cm2", 1)).side_ratio is None
    assert anatomy(f, mask, Areas(100.0, None, 100.0, "cm2", 1)).side_ratio is None
    assert anatomy(f, mask, Areas(100.0, 0.0, 100.0, "cm2", 2)).side_ratio is None
    assert anatomy(f, mask, Areas(2.0, 0.5, 1.5, "cm2", 2)).side_ratio == pytest.approx(3.0)
    no_spacing = film(f.pixels, spacing=None)
    assert anatomy(no_spacing, mask, BOTH).muscle_length_cm is None


def test_anatomy_level_on_a_ramp():
    # One row of muscle (columns 70-83) on a film whose value is column / 100. The band is that
    # row, every 2nd column: 0, 0.02, ..., 1, so its 5th and 95th percentiles are 0.05 and 0.95.
    # Every 7th muscle pixel: columns 70 and 77, median 0.735. Level (0.735 - 0.05) / 0.9.
    px = np.repeat((np.arange(101) / 100)[None, :], 200, axis=0)
    mask = np.zeros(px.shape, bool)
    mask[120, 70:84] = True
    a = anatomy(film(px, spacing=(5.0, 1.0)), mask, BOTH)
    assert a.muscle_level == pytest.approx(0.685 / 0.9, abs=1e-6)
    assert a.muscle_length_cm == pytest.approx(0.5)


def test_anatomy_of_an_empty_mask():
    f, mask = thigh_film()
    assert anatomy(f, np.zeros_like(mask), BOTH) == Anatomy(None, 0.0, None)


def test_anatomy_length_uses_the_rows_of_the_mask():
    f, mask = thigh_film()
    m = np.zeros_like(mask)
    m[50:150, 30:31] = True  # 100 rows, one pixel each: 2 % at row 51, 98 % at row 147
    assert anatomy(f, m, BOTH).muscle_length_cm == pytest.approx(97 * 0.5)


def test_anatomy_level_of_a_flat_band():
    f, mask = thigh_film()
    flat = film(np.full((200, 100), 0.7, np.float32), spacing=(5.0, 1.0))
    assert anatomy(flat, mask, BOTH).muscle_level == 0.0  # no range: 0, not a division by zero


def test_quality_gate_refuses_an_inverted_film_from_its_mask():
    f, mask = thigh_film(0.8)
    f = film(f.pixels + ramp() * 1e-3, spacing=(5.0, 1.0))  # enough grey levels
    r, quality = quality_gate(f, BOTH, 0.9, mask=mask)
    assert r == [] and quality["muscle_length_cm"] == 39.0 and quality["muscle_level"] == pytest.approx(0.8, abs=2e-3)
    assert quality["area_plausible"] is True
    inverted = film(1.0 - f.pixels, spacing=(5.0, 1.0))
    r, quality = quality_gate(inverted, BOTH, 0.9, mask=mask)
    assert r == [q.INVERTED] and "area_plausible" not in quality
    # with a height: 39 cm of 1.5 m is 0.26, inside; of 1.4 m 0.279, outside
    assert quality_gate(f, BOTH, 0.9, mask=mask, height_m=1.5)[0] == []
    r, quality = quality_gate(f, BOTH, 0.9, mask=mask, height_m=1.4)
    assert r == [q.SPACING_ANATOMY] and quality["length_to_height"] == 0.279
    cfg = GateConfig(min_muscle_level=0.85)
    assert quality_gate(f, BOTH, 0.9, mask=mask, cfg=cfg)[0] == [q.INVERTED]


def test_femur_support_of_known_rows():
    muscle = np.zeros((6, 10), bool)
    bone = np.zeros((6, 10), bool)
    muscle[0, [2, 7]] = True
    bone[0, 5] = True  # between the edges: a hit
    muscle[1, [2, 7]] = True
    bone[1, 8] = True  # outside: no hit
    muscle[2, [2, 7]] = True
    bone[2, 7] = True  # on the right edge: a hit
    muscle[3, [2, 7]] = True
    bone[3, 2] = True  # on the left edge: a hit
    muscle[4, 4] = True
    bone[4, 4] = True  # one muscle pixel: not a row of thigh muscle
    muscle[5, [1, 2, 8]] = True
    bone[5, 5] = True  # between the outer edges, not the first two: a hit
    assert femur_support(muscle, bone) == pytest.approx(4 / 5)
    assert femur_support(np.zeros((4, 4), bool), bone[:4, :4]) is None
    one_px = np.zeros((4, 4), bool)
    one_px[1, 1] = True
    assert femur_support(one_px, one_px) is None


def test_the_grey_band_is_every_second_row_between_the_muscle_rows():
    """The reference band for the muscle's grey level: rows lo..hi of the muscle, every 2nd row and
    column. Rows outside it (the row after hi) or odd rows must not move q05/q95: here the even
    rows hold 0.2 and 0.4, the odd rows 0.9 and the row after the muscle 1.0."""
    px = np.full((40, 40), 0.2, np.float32)
    px[:, 20:] = 0.4
    px[11:20:2, :] = 0.9  # odd rows inside the muscle rows
    px[20, :] = 1.0  # the row after the muscle
    mask = np.zeros((40, 40), bool)
    mask[10:20, :] = True  # rows 10..19: lo 10, hi 19
    a = anatomy(film(px), mask, BOTH)
    muscle = float(np.median(px[mask][::7]))
    assert a.muscle_level == pytest.approx((muscle - 0.2) / (0.4 - 0.2))


def test_grey_levels_counted_on_the_whole_grid_when_the_sample_has_too_few() -> None:
    from edge.quality import MIN_GREY_LEVELS, _grey_levels_below

    rng = np.random.default_rng(5)
    few = rng.integers(0, MIN_GREY_LEVELS - 1, size=(1000, 400)).astype(np.float32) / 64
    assert _grey_levels_below(few, MIN_GREY_LEVELS)  # 31 levels: not a radiograph
    assert not _grey_levels_below(np.linspace(0, 1, 400_000, dtype=np.float32).reshape(1000, 400), MIN_GREY_LEVELS)
    # Constant but for one row of ramp: the spread-out sample misses most of it, the grid does not.
    ramp = np.zeros((1000, 400), np.float32)
    ramp[501] = np.linspace(0.1, 1, 400)
    assert not _grey_levels_below(ramp, MIN_GREY_LEVELS)


def test_femur_support_row_by_row_reference_on_random_masks() -> None:
    """The vectorised share equals the plain reading of its definition, row by row."""
    from edge.quality import femur_support

    def by_rows(muscle: np.ndarray, bone: np.ndarray) -> float | None:
        rows = [r for r in range(muscle.shape[0]) if muscle[r].sum() >= 2]
        if not rows:
            return None
        hits = 0
        for r in rows:
            cols = np.nonzero(muscle[r])[0]
            hits += bool(bone[r, cols[0] : cols[-1] + 1].any())
        return hits / len(rows)

    rng = np.random.default_rng(11)
    for _ in range(200):
        h, w = rng.integers(1, 30, 2)
        muscle = rng.random((h, w)) < rng.random()
        bone = rng.random((h, w)) < 0.3 * rng.random()
        assert femur_support(muscle, bone) == by_rows(muscle, bone)
    edge_bone = np.zeros((3, 6), bool)
    edge_bone[:, 0] = True  # bone left of the muscle only: outside its edges
    muscle = np.zeros((3, 6), bool)
    muscle[:, 1] = muscle[:, 4] = True
    assert femur_support(muscle, edge_bone) == 0.0
    edge_bone[1, 1] = True  # on the muscle's own first column: inside
    assert femur_support(muscle, edge_bone) == pytest.approx(1 / 3)


def _thighs_with_shafts(rows: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Two thighs: muscle either side of a femoral shaft 6 px wide with soft (0.6) edges, and a
    ruler 4 px wide read as bone in the fat between the thighs, no muscle within 4 px of it."""
    muscle = np.zeros((rows, 90), bool)
    bone = np.zeros((rows, 90), np.float32)
    for c in (10, 55):  # each thigh: muscle [c, c+11) and [c+19, c+30), shaft in between
        muscle[:, c : c + 11] = muscle[:, c + 19 : c + 30] = True
        bone[:, c + 12 : c + 18] = 1.0
        bone[:, [c + 11, c + 18]] = 0.6
    bone[:, 46:50] = 1.0  # the ruler
    return muscle, bone


def test_femur_shafts_and_their_width_of_known_thighs():
    from edge.measure import femur_shafts
    from edge.quality import femur_width

    muscle, bone = _thighs_with_shafts()
    shafts = femur_shafts(muscle, bone)
    assert [round(s.width, 3) for s in shafts] == [7.2, 7.2]  # 6 + 2 x 0.6; the ruler is no shaft
    assert [round(s.col0, 3) for s in shafts] == [24.5, 69.5] and all(abs(s.slope) < 1e-9 for s in shafts)
    assert femur_width(shafts) == pytest.approx(7.2)
    assert femur_width(femur_shafts(muscle[:, :45], bone[:, :45])) == pytest.approx(7.2)  # one thigh
    short = bone.copy()
    short[30:, :] = 0  # bone in the top third only (a pelvis): no shaft through the mid-thigh band
    assert femur_shafts(muscle, short) == [] and femur_width([]) is None
    assert femur_shafts(np.zeros_like(muscle), bone) == []
    bare = muscle.copy()
    bare[:, 10:21] = False  # the left shaft without muscle on its outer side
    assert len(femur_shafts(bare, bone)) == 1


def test_a_tilted_pair_of_femurs_gives_the_midline_between_them():
    """Shafts drawn along known lines (a film rotated: both lean the same way) give those lines,
    and the midline halfway between them."""
    from edge.measure import femur_shafts, midline

    rows = 200
    muscle = np.zeros((rows, 120), bool)
    bone = np.zeros((rows, 120), np.float32)
    for r in range(rows):
        for c in (20.0, 80.0):
            x = int(round(c + 0.1 * r))
            muscle[r, x - 12 : x - 3] = muscle[r, x + 4 : x + 13] = True
            bone[r, x - 3 : x + 4] = 1.0
    shafts = femur_shafts(muscle, bone)
    assert len(shafts) == 2 and all(s.slope == pytest.approx(0.1, abs=0.01) for s in shafts)
    c0, slope = midline(shafts)
    assert c0 == pytest.approx(50.0, abs=0.6) and slope == pytest.approx(0.1, abs=0.01)
    assert midline(shafts[:1]) is None


def test_a_femoral_shaft_of_implausible_width_refuses_the_spacing():
    """A 7.2-pixel shaft is 2.16 cm at 3 mm (inside 1.5-5.0) and 1.08 cm at 1.5 mm (a spacing
    half the truth): refused with its own reason, the width in the quality record."""
    f = film(ramp(500), spacing=(3.0, 3.0))
    r, quality = quality_gate(f, BOTH, 0.9, femur_width_px=7.2)
    assert r == [] and quality["femur_width_cm"] == 2.16
    r, quality = quality_gate(film(ramp(500), spacing=(1.5, 1.5)), BOTH, 0.9, femur_width_px=7.2)
    assert r == [q.SPACING_FEMUR] and quality["femur_width_cm"] == 1.08
    tight = GateConfig(femur_width_cm=(2.5, 3.5))
    assert quality_gate(f, BOTH, 0.9, femur_width_px=7.2, cfg=tight)[0] == [q.SPACING_FEMUR]
    assert quality_gate(f, BOTH, 0.9, femur_width_px=None, cfg=tight)[0] == []  # no shaft found: not judged
    in_pixels = quality_gate(
        film(ramp(500), spacing=None), Areas(200.0, 100.0, 100.0, "px", 2), 0.9, femur_width_px=7.2
    )
    assert "femur_width_cm" not in in_pixels[1]  # no spacing: nothing to check it against

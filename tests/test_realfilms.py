"""Acceptance on the one real long-leg film the project may redistribute (shared/realdata,
never training data) and its degradations: assessed, both thighs, the variants' areas within
10 % of the original, the mask beside the femur between hip and knee, inverted films refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.quality import INVERTED, SPACING_ANATOMY, SPACING_FEMUR
from tests.helpers import run_cli

ETRO = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "etro_full_leg.png"
WHO = ["--sex", "F", "--height-cm", "160"]


def screen(path: Path, spacing: float, *extra: str) -> dict:
    res = run_cli("edge.cli", "screen", str(path), "--spacing-mm", str(spacing), *WHO, "--json", *extra)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, tuple[Path, float]]:
    assert ETRO.is_file(), "shared/realdata must sit beside the repository (README: tests)"
    d = tmp_path_factory.mktemp("etro")
    img = cv2.imread(str(ETRO), cv2.IMREAD_GRAYSCALE)
    h, w = img.shape
    out = {"original": (ETRO, 1.5)}
    for name, arr, s in (
        ("mirrored", img[:, ::-1], 1.5),
        ("halved", cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA), 3.0),
        ("right_leg", img[:, : w // 2], 1.5),
        ("left_leg", img[:, w // 2 :], 1.5),
        ("inverted", 255 - img, 1.5),
    ):
        cv2.imwrite(str(d / f"{name}.png"), np.ascontiguousarray(arr))
        out[name] = (d / f"{name}.png", s)
    cv2.imwrite(str(d / "jpeg60.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 60])
    out["jpeg60"] = (d / "jpeg60.jpg", 1.5)
    return out


def test_the_real_film_is_assessed_with_both_thighs(variants, tmp_path: Path):
    rep = screen(*variants["original"], "--overlay", str(tmp_path / "o.png"))
    assert rep["flag"] != "not_assessable", rep["reasons"]
    assert rep["sides_seen"] == 2 and rep["right_cm2"] and rep["left_cm2"]
    assert 0.8 < rep["right_cm2"] / rep["left_cm2"] < 1.25
    assert rep["smi_estimate"] is not None and rep["p_low"] is not None


@pytest.mark.parametrize("name", ["mirrored", "halved", "jpeg60"])
def test_degraded_copies_measure_within_10_percent(variants, name):
    ref = screen(*variants["original"])
    rep = screen(*variants[name])
    assert rep["flag"] != "not_assessable", rep["reasons"]
    assert rep["thigh_muscle_area_cm2"] == pytest.approx(ref["thigh_muscle_area_cm2"], rel=0.10)
    if name == "mirrored":  # the patient's right thigh moves to the image's right
        assert rep["right_cm2"] == pytest.approx(ref["left_cm2"], rel=0.02)


RIGHT_CROP_KNOWN = pytest.mark.xfail(
    strict=True,
    reason="default 0.3.0 measures the right-leg crop 10.1 % above the whole film's right thigh: on the whole "
    "film it leaves out part of that thigh's medial edge at mid-thigh (probability 0.3-0.5 there), which the "
    "crop includes; the left crop is within 3 % (issue 9 stays open on this)",
)


@pytest.mark.parametrize(
    "name,side", [pytest.param("right_leg", "right_cm2", marks=RIGHT_CROP_KNOWN), ("left_leg", "left_cm2")]
)
def test_a_one_leg_crop_is_measured_on_the_thigh_shown(variants, name, side):
    ref = screen(*variants["original"])
    rep = screen(*variants[name])
    assert rep["flag"] != "not_assessable", rep["reasons"]
    assert rep["sides_seen"] == 1 and rep["smi_basis"].startswith("one thigh")
    assert rep["thigh_muscle_area_cm2"] == pytest.approx(ref[side], rel=0.10)  # not doubled


def test_an_inverted_film_is_refused(variants):
    rep = screen(*variants["inverted"])
    assert rep["flag"] == "not_assessable" and INVERTED in rep["reasons"]


def test_a_spacing_that_contradicts_the_anatomy_is_refused(variants):
    rep = screen(variants["original"][0], 2.5)  # a 1.8 m tall film for a 1.6 m patient
    assert rep["flag"] == "not_assessable" and SPACING_ANATOMY in rep["reasons"]


def test_a_spacing_too_small_is_caught_by_the_femur(variants):
    """At 0.88 mm instead of 1.5 the thigh is still long enough for a short patient (length over
    height 0.11), so only the femoral shaft tells: 1.7 cm wide, against 2.9 cm at the truth."""
    true = screen(*variants["original"])
    assert 2.5 <= true["quality"]["femur_width_cm"] <= 3.3
    rep = screen(variants["original"][0], 0.88)
    assert rep["flag"] == "not_assessable" and rep["reasons"] == [SPACING_FEMUR], rep["reasons"]
    assert rep["quality"]["femur_width_cm"] == pytest.approx(true["quality"]["femur_width_cm"] * 0.88 / 1.5, abs=0.02)


def test_the_mask_lies_beside_the_femur_between_hip_and_knee(variants, tmp_path: Path):
    """Overlay: mask rows within the thigh (below the femoral heads, above the knees: 20-62 % of
    the film's height, measured on this film by eye), none on the pelvis or the lower legs."""
    from edge.reader import read_film
    from edge.screen import Screener

    film = read_film(ETRO, spacing_mm=1.5)
    mask, _ = Screener().segment(film)
    rows = np.nonzero(mask.any(axis=1))[0] / mask.shape[0]
    assert rows.min() > 0.18 and rows.max() < 0.64, (rows.min(), rows.max())
    mid = mask[:, int(0.47 * mask.shape[1]) : int(0.53 * mask.shape[1])]
    assert mid.mean() < 0.02, "muscle in the midline between the thighs"

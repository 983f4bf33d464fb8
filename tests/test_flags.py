"""End to end with the shipped bundle: films that must give each flag and each refusal reason."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.measure import Areas
from edge.quality import (
    ASYMMETRY,
    IMPLAUSIBLE_AREA,
    INVERTED,
    LOW_CONFIDENCE,
    NOT_LONG_LEG,
    SPACING_ANATOMY,
    GateConfig,
    quality_gate,
)
from edge.reader import read_film
from tests.helpers import REPO, run_cli

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
ANKLE = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "RG3_J2KR.dcm"


def screen(*args: str) -> dict:
    res = run_cli("edge.cli", "screen", *args, "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def sample_png(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("png") / "sample.png"
    cv2.imwrite(str(p), (read_film(SAMPLE).pixels * 65535).astype(np.uint16))
    return p


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--sex", "F", "--height-cm", "140"], "normal"),
        (["--sex", "F", "--height-cm", "147"], "borderline"),
        (["--sex", "F", "--height-cm", "150"], "low_muscle_mass"),
        (["--sex", "M"], "low_muscle_mass"),
    ],
)
def test_the_sample_film_gives_each_flag(args, flag):
    rep = screen(str(SAMPLE), *args)
    assert rep["flag"] == flag, (rep["p_low"], rep["decision_thresholds"])
    assert rep["reasons"] == [] and rep["flag_meaning"]
    if flag == "normal":
        assert rep["p_low"] <= rep["decision_thresholds"]["clear"]
    if flag == "low_muscle_mass":
        assert rep["p_low"] >= rep["decision_thresholds"]["refer"]


def test_taller_person_same_muscle_lower_smi():
    short, tall = screen(str(SAMPLE), "--height-cm", "140"), screen(str(SAMPLE), "--height-cm", "170")
    assert tall["thigh_muscle_area_cm2"] == short["thigh_muscle_area_cm2"]
    assert tall["smi_estimate"] < short["smi_estimate"] and tall["p_low"] > short["p_low"]


def _refused(rep: dict, reason: str) -> None:
    assert rep["flag"] == "not_assessable" and rep["smi_estimate"] is None and rep["p_low"] is None
    assert any(reason in r for r in rep["reasons"]), rep["reasons"]


def test_each_refusal_reason(sample_png: Path, tmp_path: Path):
    _refused(screen(str(sample_png), "--sex", "F", "--height-cm", "150"), "no pixel spacing")
    _refused(screen(str(sample_png), "--spacing-mm", "0.417", "--height-cm", "150"), "no sex")
    _refused(screen(str(sample_png), "--spacing-mm", "0.417", "--sex", "F"), "no height")
    # 2022 rows at 0.1 mm: a 20 cm film is no long-leg film
    _refused(screen(str(sample_png), "--spacing-mm", "0.1", "--sex", "F", "--height-cm", "150"), NOT_LONG_LEG)
    # a wrong site-wide spacing (1 mm instead of 0.42): a thigh 2.4 times too long for 1.5 m
    _refused(screen(str(sample_png), "--spacing-mm", "1.0", "--sex", "F", "--height-cm", "150"), SPACING_ANATOMY)
    _refused(screen(str(ANKLE), "--spacing-mm", "0.2", "--sex", "F", "--height-cm", "150"), NOT_LONG_LEG)
    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).integers(0, 255, (1500, 500), dtype=np.uint8))
    _refused(screen(str(noise), "--spacing-mm", "0.8", "--sex", "F", "--height-cm", "150"), LOW_CONFIDENCE)
    # the same film through PNG and spacing given: assessed like the DICOM
    ok = screen(str(sample_png), "--spacing-mm", "0.417084", "--sex", "F", "--height-cm", "150")
    dcm = screen(str(SAMPLE), "--sex", "F", "--height-cm", "150")
    assert ok["flag"] == dcm["flag"] and ok["thigh_muscle_area_cm2"] == pytest.approx(
        dcm["thigh_muscle_area_cm2"], rel=0.02
    )


def _film(rows: int = 1000, cols: int = 400, spacing: float = 1.0, bright_muscle: bool = False):
    """A synthetic film: dark air, grey soft tissue in two thighs, bright femur in each."""
    from edge.reader import Film

    px = np.zeros((rows, cols), np.float32)
    mask = np.zeros((rows, cols), bool)
    for c0 in (60, 230):
        px[:, c0 : c0 + 110] = 0.75
        px[:, c0 + 45 : c0 + 65] = 0.95
        mask[250:550, c0 + 5 : c0 + 45] = True
        mask[250:550, c0 + 65 : c0 + 105] = True
    px = np.clip(px + np.random.default_rng(0).normal(0, 0.01, px.shape).astype(np.float32), 0, 1)
    if bright_muscle:
        px = 1.0 - px
    film = Film(
        pixels=px,
        spacing_mm=(spacing, spacing),
        spacing_source="user",
        sex="F",
        height_m=1.6,
        height_source="option",
        age_years=None,
        source_format="png",
        photometric="GREY",
        bits_stored=8,
        transfer_syntax=None,
        modality=None,
        body_part=None,
        notes=(),
    )
    return film, mask


def _areas(mask, spacing, right=None, left=None):
    total = mask.sum() * spacing * spacing / 100
    half = total / 2
    return Areas(total, half if right is None else right, half if left is None else left, "cm2", 2)


def test_gate_passes_a_plausible_film_and_names_each_anatomical_refusal():
    film, mask = _film()
    areas = _areas(mask, 1.0)  # 2 x 240 cm2, muscle 30 cm long
    assert quality_gate(film, areas, 0.9, mask, 1.6)[0] == []
    assert quality_gate(film, areas, 0.5, mask, 1.6)[0] == [LOW_CONFIDENCE]
    inv, _ = _film(bright_muscle=True)
    assert INVERTED in quality_gate(inv, areas, 0.9, mask, 1.6)[0]
    assert quality_gate(film, areas, 0.9, mask, 1.0)[0] == [SPACING_ANATOMY]  # 30 cm of a 1 m person
    assert quality_gate(film, areas, 0.9, mask, 2.0)[0] == []  # 0.15 of 2 m: fits
    lopsided = _areas(mask, 1.0, right=400, left=80)
    assert quality_gate(film, lopsided, 0.9, mask, 1.6)[0] == [ASYMMETRY]
    big = Areas(1400, 700, 700, "cm2", 2)
    assert quality_gate(film, big, 0.9, mask, 1.6)[0] == [IMPLAUSIBLE_AREA]
    strict = GateConfig.from_dict({"length_to_height": [0.2, 0.3]})
    assert quality_gate(film, areas, 0.9, mask, 1.6, strict)[0] == [SPACING_ANATOMY]


def test_a_label_mask_png_is_not_screened_as_a_film(tmp_path: Path):
    """Regression (hardening issue): masks/case_00001_1.png of a phantom cohort, given a spacing,
    was screened as a long-leg film and flagged."""
    from edge.quality import NOT_RADIOGRAPH

    labels = np.zeros((2022, 851), np.uint8)
    labels[400:1100, 150:380] = 1
    labels[400:1100, 470:700] = 1
    labels[300:1150, 120:410] = np.where(labels[300:1150, 120:410] == 1, 1, 2)
    labels[:, 255:275] = 3
    labels[1200:1800, 200:330] = 4
    p = tmp_path / "case_mask.png"
    cv2.imwrite(str(p), labels)
    rep = screen(str(p), "--spacing-mm", "0.42", "--sex", "F", "--height-cm", "150")
    assert rep["flag"] == "not_assessable" and NOT_RADIOGRAPH in rep["reasons"]


@pytest.mark.parametrize("kind", ["rows_and_columns", "pixels", "blocks", "columns_swapped"])
def test_scrambled_films_are_never_flagged(tmp_path: Path, kind: str):
    """Pixels scrambled (correlation with the original well under 0.5) must end not_assessable."""
    import pydicom

    ds = pydicom.dcmread(SAMPLE)
    a = ds.pixel_array.copy()
    rng = np.random.default_rng(3)
    if kind == "rows_and_columns":
        b = a[rng.permutation(a.shape[0])][:, rng.permutation(a.shape[1])]
    elif kind == "pixels":
        b = rng.permutation(a.ravel()).reshape(a.shape)
    elif kind == "blocks":
        h = a.shape[0] // 8 * 8
        b = a.copy()
        b[:h] = a[:h].reshape(8, h // 8, -1)[[3, 6, 0, 7, 1, 5, 2, 4]].reshape(h, -1)
    else:
        w = a.shape[1] // 4 * 4
        b = a.copy()
        b[:, :w] = a[:, :w].reshape(a.shape[0], 4, -1)[:, [2, 0, 3, 1]].reshape(a.shape[0], w)
    assert np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1] < 0.5
    ds.PixelData = b.astype(a.dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    p = tmp_path / f"{kind}.dcm"
    ds.save_as(p)
    rep = screen(str(p))
    assert rep["flag"] == "not_assessable", (rep["reasons"], rep["quality"])


def test_femur_support_tells_a_thigh_from_a_mask_elsewhere():
    from edge.quality import NO_FEMUR, femur_support

    muscle = np.zeros((100, 60), bool)
    muscle[20:80, 10:25] = True
    muscle[20:80, 35:50] = True
    bone = np.zeros_like(muscle)
    bone[15:85, 27:33] = True  # the femur between the two muscle blobs
    assert femur_support(muscle, bone) == 1.0
    bone_short = np.zeros_like(muscle)
    bone_short[20:50, 27:33] = True  # bone for half the muscle's rows
    assert femur_support(muscle, bone_short) == pytest.approx(0.5)
    assert femur_support(muscle, np.zeros_like(muscle)) == 0.0  # a mask on a shield or the pelvis
    assert femur_support(np.zeros_like(muscle), bone) is None
    film, mask = _film()
    areas = _areas(mask, 1.0)
    assert quality_gate(film, areas, 0.9, mask, 1.6, GateConfig(), femur=0.95)[0] == []
    assert quality_gate(film, areas, 0.9, mask, 1.6, GateConfig(), femur=0.2)[0] == [NO_FEMUR]

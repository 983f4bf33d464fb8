"""End to end with the shipped bundle: films that must give each flag and each refusal reason."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, run_cli
from edge.quality import IMPLAUSIBLE_AREA, LOW_CONFIDENCE, NOT_LONG_LEG
from edge.reader import read_film

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


@pytest.mark.parametrize("args,flag", [
    (["--sex", "F", "--height-cm", "140"], "normal"),
    (["--sex", "F", "--height-cm", "147"], "borderline"),
    (["--sex", "F", "--height-cm", "150"], "low_muscle_mass"),
    (["--sex", "M"], "low_muscle_mass"),
])
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
    # a wrong site-wide spacing (1 mm instead of 0.42): each thigh would be over 1000 cm2
    _refused(screen(str(sample_png), "--spacing-mm", "1.0", "--sex", "F", "--height-cm", "150"), IMPLAUSIBLE_AREA)
    _refused(screen(str(ANKLE), "--spacing-mm", "0.2", "--sex", "F", "--height-cm", "150"), NOT_LONG_LEG)
    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).integers(0, 255, (1500, 500), dtype=np.uint8))
    _refused(screen(str(noise), "--spacing-mm", "0.8", "--sex", "F", "--height-cm", "150"), LOW_CONFIDENCE)
    # the same film through PNG and spacing given: assessed like the DICOM
    ok = screen(str(sample_png), "--spacing-mm", "0.417084", "--sex", "F", "--height-cm", "150")
    dcm = screen(str(SAMPLE), "--sex", "F", "--height-cm", "150")
    assert ok["flag"] == dcm["flag"] and ok["thigh_muscle_area_cm2"] == pytest.approx(dcm["thigh_muscle_area_cm2"], rel=0.02)

"""Generator 2 (issue 9): layout and labels like generator 1, determinism for any number of workers,
truths equal to the label maps, raster exports that carry their spacing, the PHANTOM.md population,
and thigh muscle shaped by the Visible Human sections."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.dataset import load_cases, raster_spacing
from edge.reader import read_film
from tests.helpers import cohort_rows, run_cli
from train.phantom.anatomy import LABELS
from train.phantom.cohort import plan_people
from train.phantom.geometry import Grid
from train.phantom.v2_anatomy import at_levels, blended, person_sections, vh_sections
from train.phantom.v2_body import build_body, sample_shape2, with_stance

N_FILMS, SEED = 8, 4


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.parent.name in ("images", "masks") or p.name == "cases.csv"
    }


@pytest.fixture(scope="module")
def gen2(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen2") / "cohort"
    res = run_cli("train.cli", "phantom", str(out), "--generator", "2", "--n", str(N_FILMS), "--seed", str(SEED))
    assert res.returncode == 0, res.stderr
    assert "ceiling Pearson r" in res.stderr
    return out


def test_layout_like_generator_1(gen2: Path):
    info = json.loads((gen2 / "dataset.json").read_text())
    assert info["labels"] == {"background": 0, "thigh_muscle": 1, "thigh_fat": 2, "bone": 3, "calf_muscle": 4}
    assert info["generator"]["version"].startswith("2.") and info["generator"]["generation"] == 2
    assert info["n_films"] == N_FILMS and set(info["ceiling"]) >= {"r_pooled", "r_F", "r_M"}
    rows = cohort_rows(gen2)
    for col in ("case_id", "person_id", "image", "mask", "sex", "dexa_smi", "split", "view", "pixel_spacing_mm"):
        assert col in rows[0]
    for col in ("thigh_muscle_area_cm2", "right_cm2", "left_cm2", "thigh_fat_area_cm2", "calf_muscle_area_cm2"):
        assert col in rows[0]
    people: dict[str, set] = {}
    for r in rows:
        people.setdefault(r["person_id"], set()).add(r["split"])
        assert (gen2 / r["image"]).exists() and (gen2 / r["mask"]).exists()
    assert all(len(s) == 1 for s in people.values())  # person-grouped splits
    assert {r["format"] for r in rows} >= {"dcm", "png"} or {r["format"] for r in rows} >= {"dcm", "jpg"}


def test_all_labels_and_truths_from_the_label_map(gen2: Path):
    seen: set[int] = set()
    for r in cohort_rows(gen2):
        mask = cv2.imread(str(gen2 / r["mask"]), cv2.IMREAD_UNCHANGED)
        seen |= set(np.unique(mask).tolist())
        px = (float(r["pixel_spacing_mm"]) / 10.0) ** 2
        for label, col in (("thigh_muscle", "thigh_muscle_area_cm2"), ("calf_muscle", "calf_muscle_area_cm2")):
            assert float(r[col]) == pytest.approx(np.count_nonzero(mask == LABELS[label]) * px, abs=2e-3)
        total = float(r["right_cm2"]) + float(r["left_cm2"])
        assert total == pytest.approx(float(r["thigh_muscle_area_cm2"]), abs=3e-3)
        if r["view"] == "both":
            assert float(r["right_cm2"]) > 0 and float(r["left_cm2"]) > 0
        elif r["view"] in ("R", "L"):
            assert float(r["left_cm2" if r["view"] == "R" else "right_cm2"]) == 0
    assert seen == {0, 1, 2, 3, 4}


def test_raster_exports_carry_their_spacing(gen2: Path):
    rows = {r["case_id"]: r for r in cohort_rows(gen2)}
    n_raster = 0
    for case in load_cases(gen2):
        r = rows[case.case_id]
        film = read_film(case.image, spacing_mm=raster_spacing(case))
        mask = cv2.imread(str(case.mask), cv2.IMREAD_UNCHANGED)
        assert film.pixels.shape == mask.shape
        assert film.spacing_mm == pytest.approx((float(r["pixel_spacing_mm"]),) * 2, rel=1e-4)
        if r["format"] != "dcm":
            n_raster += 1
            assert raster_spacing(case) == pytest.approx(float(r["pixel_spacing_mm"]))
            assert film.spacing_source == "user"
        else:
            assert raster_spacing(case) is None  # DICOM keeps its header's spacing
        assert 0.12 <= float(r["pixel_spacing_mm"]) <= 1.5
    assert n_raster >= 1


def test_same_seed_same_pixels_with_two_workers(gen2: Path, tmp_path: Path):
    out = tmp_path / "again"
    res = run_cli(
        "train.cli", "phantom", str(out), "--generator", "2", "--n", str(N_FILMS), "--seed", str(SEED), "--workers", "2"
    )
    assert res.returncode == 0, res.stderr
    a, b = _digest(gen2), _digest(out)
    # cases.csv holds per-film seconds: compare it without that column
    a.pop("cases.csv"), b.pop("cases.csv")
    assert a == b and len(a) == 2 * N_FILMS
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in cohort_rows(gen2)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in cohort_rows(out)]


def test_population_and_dexa_within_phantom_md():
    plan = plan_people(400, 11)
    people = [p for p, _ in plan]
    women = [p for p in people if p.sex == "F"]
    men = [p for p in people if p.sex == "M"]
    assert 0.6 <= len(women) / len(people) <= 0.8
    assert 5.2 <= np.mean([p.dexa_smi for p in women]) <= 6.0
    assert 6.6 <= np.mean([p.dexa_smi for p in men]) <= 7.5
    assert 21.5 <= np.mean([p.bmi for p in people]) <= 24.5
    low = [p for p in people if p.dexa_smi < (7.0 if p.sex == "M" else 5.4)]
    assert 0.25 <= len(low) / len(people) <= 0.5
    # the VH-shaped thigh keeps the person's muscle volume: hip-knee union volume = thigh muscle volume
    for i, p in enumerate(people[:40]):
        sh = sample_shape2(p, np.random.default_rng([11, i, 2001]))
        s = person_sections(p.legs[0], p.thigh_len, sh.blend, sh.aspect)
        vol = p.legs[0].thigh_muscle_kg * 1000.0 / 1.06
        assert s.mean_area() * p.thigh_len == pytest.approx(vol, rel=1e-6)


def test_mid_thigh_follows_the_visible_human_sections():
    # Pure female and pure male shapes keep each subject's width^2 / area at mid-thigh (scale-free).
    def ratio(s, i: int) -> float:
        return (s.xmax[i] - s.xmin[i]) ** 2 / s.area()[i]

    for sex, w in (("F", 0.0), ("M", 1.0)):
        vh, b = vh_sections()[sex], blended(w)
        i = int(np.argmin(np.abs(vh.t - 0.5)))
        assert ratio(b, i) == pytest.approx(ratio(vh, i), rel=1e-6)
    assert blended(0.0).xmin[20] / blended(0.0).xmax[20] == pytest.approx(-73.2 / 45.1, rel=1e-3)


def test_label_map_width_is_the_projected_section_width():
    """On a rendered body, the muscle label (with the femur it covers) at mid-thigh spans the
    section's projected width, and its medial part is wider than its lateral part, as in the VH."""
    p0, _ = plan_people(1, 21)[0]
    sh = sample_shape2(p0, np.random.default_rng([21, 0, 2001]))
    p = with_stance(p0, sh)
    s = 0.1
    grid = Grid(rows=int(110 / s), cols=int(44 / s), s=s, x0=-22.0 + s / 2, y0=-25.0 + s / 2)
    body = build_body(grid, p, sh, np.random.default_rng(0), 10.0)
    y = 0.5 * p.thigh_len
    r = int(round((y - grid.y0) / s))
    xs = grid.x0 + np.arange(grid.cols) * s
    for leg in p.legs:
        sec = person_sections(leg, p.thigh_len, sh.blend, sh.aspect)
        xmin, xmax, _, _ = at_levels(sec, np.array([grid.y0 + r * s]) / p.thigh_len)
        own = (body.side[r] == (1 if leg.side == "R" else 2)) & (xs * np.sign(leg.hip_x) > 0)
        lab = body.labels[r]
        m = own & ((lab == LABELS["thigh_muscle"]) | (lab == LABELS["bone"]))
        width = np.count_nonzero(m) * s
        assert width == pytest.approx(xmax[0] - xmin[0], abs=4 * s)
        assert -xmin[0] > xmax[0]  # the femur sits lateral in the muscle, as in both subjects


def test_screen_cohort_counts_refusals_among_two_thigh_films():
    from train.screen_cohort import summary

    rows = [
        {"view": "both", "refused": False, "reasons": "", "area_err_pct": -4.0},
        {"view": "both", "refused": False, "reasons": "", "area_err_pct": 2.0},
        {"view": "both", "refused": True, "reasons": "film appears inverted (x) | low confidence", "area_err_pct": ""},
        {"view": "R", "refused": True, "reasons": "one thigh", "area_err_pct": ""},
    ]
    lines = summary(rows)
    assert lines[0] == "4 films, 3 show both thighs, refused 1 (33.3 %)"
    assert "median |area error| 3.00 %" in lines[1] and "(n=2)" in lines[1]
    assert any("film appears inverted" in x for x in lines[2:]) and not any("one thigh" in x for x in lines)

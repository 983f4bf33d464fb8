"""The phantom cohort: layout, tags, labels, determinism, truths and the ceiling it reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from edge.reader import read_film
from tests.helpers import cohort_rows, run_cli
from train.phantom.anatomy import LABELS, _thigh_profile
from train.phantom.cohort import ceiling
from train.phantom.film import mu
from train.phantom.geometry import Grid, capsule, ellipsoid
from train.phantom.person import sample_person


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".dcm", ".png", ".csv") and p.name != "preview.png"
    }


def test_layout_and_dataset_json(demo_cohort: Path):
    info = json.loads((demo_cohort / "dataset.json").read_text())
    assert info["labels"] == {"background": 0, "thigh_muscle": 1, "thigh_fat": 2, "bone": 3, "calf_muscle": 4}
    assert info["seed"] == 1 and info["n_films"] == 8
    assert info["generator"]["name"] and info["generator"]["version"]
    assert set(info["ceiling"]) >= {"r_pooled", "r_F", "r_M", "n_pooled"}
    assert 0.0 <= info["awgs2019_low_smi_share"] <= 1.0
    rows = cohort_rows(demo_cohort)
    assert len(rows) == 8
    for col in (
        "case_id",
        "image",
        "mask",
        "sex",
        "age",
        "height_m",
        "weight_kg",
        "dexa_alm_kg",
        "dexa_smi",
        "split",
        "thigh_muscle_area_cm2",
        "thigh_muscle_volume_cm3",
        "person_id",
    ):
        assert col in rows[0], col
    assert (demo_cohort / "preview.png").stat().st_size > 10_000
    # Recomputing the ceiling from cases.csv gives what dataset.json says.
    recomputed = ceiling(
        [
            {**r, "thigh_muscle_area_cm2": float(r["thigh_muscle_area_cm2"]), "dexa_smi": float(r["dexa_smi"])}
            for r in rows
        ]
    )
    assert recomputed["r_pooled"] == info["ceiling"]["r_pooled"]


def test_every_dicom_carries_the_tags_and_masks_hold_labels(demo_cohort: Path):
    for r in cohort_rows(demo_cohort):
        ds = pydicom.dcmread(demo_cohort / r["image"])
        for tag in (
            "PixelSpacing",
            "ImagerPixelSpacing",
            "EstimatedRadiographicMagnificationFactor",
            "PatientSex",
            "PatientSize",
        ):
            assert tag in ds, (r["case_id"], tag)
        ips = float(ds.ImagerPixelSpacing[0])
        mag = float(ds.EstimatedRadiographicMagnificationFactor)
        assert 1.05 <= mag <= 1.20
        assert float(ds.PixelSpacing[0]) == pytest.approx(ips / mag, rel=1e-5)
        assert ds.PatientSex == r["sex"] and float(ds.PatientSize) == pytest.approx(float(r["height_m"]))
        assert ds.Modality == "DX" and ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
        assert 10 <= ds.BitsStored <= 16 and int(ds.pixel_array.max()) < (1 << ds.BitsStored)
        mask = cv2.imread(str(demo_cohort / r["mask"]), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.shape == (ds.Rows, ds.Columns)
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 4}
        n1 = int(np.count_nonzero(mask == 1))
        assert n1 > 0, r["case_id"]
        ps = float(ds.PixelSpacing[0])
        assert float(r["thigh_muscle_area_cm2"]) == pytest.approx(n1 * ps * ps / 100.0, rel=1e-4)
        assert float(r["right_cm2"]) + float(r["left_cm2"]) == pytest.approx(
            float(r["thigh_muscle_area_cm2"]), rel=1e-3
        )
        if r["view"] == "both":
            assert float(r["right_cm2"]) > 50 and float(r["left_cm2"]) > 50


def test_splits_are_by_person(demo_cohort: Path):
    seen: dict[str, str] = {}
    for r in cohort_rows(demo_cohort):
        assert seen.setdefault(r["person_id"], r["split"]) == r["split"]
    assert set(seen.values()) <= {"train", "val", "test"}


def test_same_seed_same_pixels_any_worker_count(demo_cohort: Path, tmp_path: Path):
    again = tmp_path / "again"
    res = run_cli("train.cli", "phantom", str(again), "--n", "8", "--seed", "1", "--workers", "2", "--no-preview")
    assert res.returncode == 0, res.stderr
    assert _digest(again) == _digest(demo_cohort)
    other = tmp_path / "other"
    assert run_cli("train.cli", "phantom", str(other), "--n", "2", "--seed", "2", "--no-preview").returncode == 0
    a = pydicom.dcmread(demo_cohort / "images" / "case_00001_1.dcm").pixel_array
    b = pydicom.dcmread(next((other / "images").glob("*.dcm"))).pixel_array
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_refuses_to_overwrite_a_cohort(demo_cohort: Path):
    res = run_cli("train.cli", "phantom", str(demo_cohort), "--n", "1", "--seed", "1")
    assert res.returncode == 2
    assert "already holds a cohort" in res.stderr and "Traceback" not in res.stderr


def test_reader_round_trip_spacing_sex_height_and_bone_bright(demo_cohort: Path):
    for r in cohort_rows(demo_cohort):
        path = demo_cohort / r["image"]
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        film = read_film(path)
        assert film.spacing_source == "PixelSpacing"
        assert film.spacing_mm == pytest.approx((float(ds.PixelSpacing[0]),) * 2)
        assert film.sex == r["sex"] and film.height_m == pytest.approx(float(r["height_m"]))
        mask = cv2.imread(str(demo_cohort / r["mask"]), cv2.IMREAD_UNCHANGED)
        # Bone is bright and thigh fat darker than bone, whatever the photometric interpretation.
        femur = np.median(film.pixels[mask == LABELS["bone"]])
        fat = np.median(film.pixels[mask == LABELS["thigh_fat"]])
        assert femur > fat, (r["case_id"], r["photometric"])


def test_reader_falls_back_to_imager_spacing_over_magnification(demo_cohort: Path, tmp_path: Path):
    src = demo_cohort / "images" / "case_00001_1.dcm"
    ds = pydicom.dcmread(src)
    expected = float(ds.ImagerPixelSpacing[0]) / float(ds.EstimatedRadiographicMagnificationFactor)
    del ds.PixelSpacing
    dst = tmp_path / "no_pixel_spacing.dcm"
    ds.save_as(dst)
    film = read_film(dst)
    assert film.spacing_source == "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
    assert film.spacing_mm[0] == pytest.approx(expected, rel=1e-4)


def test_attenuation_table_and_chords():
    assert mu("muscle", 50) == pytest.approx(0.238) and mu("muscle", 60) == pytest.approx(0.215)
    assert mu("fat", 50) == pytest.approx(0.205) and mu("bone", 60) == pytest.approx(0.60)
    assert mu("bone", 45) > mu("bone", 65)
    g = Grid(rows=201, cols=201, s=0.1, x0=-10.0, y0=-10.0)
    box, chord = ellipsoid(g, 0.0, 0.0, 3.0, 2.0, 1.5)
    assert chord.max() == pytest.approx(3.0, rel=1e-3)  # 2 x half-depth at the centre
    area = np.count_nonzero(chord) * g.s**2
    assert area == pytest.approx(np.pi * 3.0 * 2.0, rel=0.03)
    box, chord = capsule(g, (0.0, -5.0), (0.0, 5.0), 1.0, 1.0)
    assert chord.max() == pytest.approx(2.0, rel=1e-3)
    # Chord volume of a rod: pi r^2 per unit length (plus the two half-sphere caps).
    vol = chord.sum() * g.s**2
    assert vol == pytest.approx(np.pi * 10.0 + 4 / 3 * np.pi, rel=0.02)


def test_people_match_the_cohort_description():
    people = [sample_person(np.random.default_rng([5, i]), str(i)) for i in range(3000)]
    sex = np.array([p.sex for p in people])
    assert 0.66 < np.mean(sex == "F") < 0.74
    smi = np.array([p.dexa_smi for p in people])
    assert abs(smi[sex == "F"].mean() - 5.6) < 0.15 and abs(smi[sex == "M"].mean() - 7.0) < 0.2
    low = np.where(sex == "F", smi < 5.4, smi < 7.0)
    assert 0.30 <= low.mean() <= 0.45
    age = np.array([p.age for p in people])
    assert age.min() >= 65 and age.max() <= 95 and abs(age.mean() - 77) < 1.0
    h = np.array([p.height_m for p in people])
    assert abs(h[sex == "F"].mean() - 1.51) < 0.01 and abs(h[sex == "M"].mean() - 1.64) < 0.01
    # Mid-thigh muscle CSA per thigh and circumference (PHANTOM.md section 3).
    csa, circ = {"F": [], "M": []}, {"F": [], "M": []}
    for p in people[:600]:
        leg = p.legs[0]
        xc, a_s, b_s, xm, a_m, b_m, c = _thigh_profile(p, leg, np.array([0.5 * p.thigh_len], np.float32))
        csa[p.sex].append(float(c[0]))
        a, b = float(a_s[0]), float(b_s[0])
        circ[p.sex].append(np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b))))
    assert 70 <= np.median(csa["F"]) <= 110 and 95 <= np.median(csa["M"]) <= 150
    assert 40 <= np.median(circ["F"]) <= 50 and 42 <= np.median(circ["M"]) <= 52
    fat = {s: np.array([p.fat_mid_cm for p in people if p.sex == s]) for s in "FM"}
    assert fat["F"].min() >= 1.0 and fat["F"].max() <= 3.0 and fat["M"].min() >= 0.5 and fat["M"].max() <= 1.8
    # DEXA truth is not written in: it carries its own error around the true muscle mass.
    true_alm = np.array([sum(l.thigh_muscle_kg + l.calf_muscle_kg for l in p.legs) + p.arm_muscle_kg for p in people])
    ratio = np.array([p.dexa_alm_kg for p in people]) / (true_alm * np.array([p.lean_factor for p in people]))
    assert 0.025 < ratio.std() < 0.035

"""The clinic commands as a user runs them, with the shipped default bundle: screen, batch, info."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from tests.helpers import REPO, run_cli
from tests.hostile import make_hostile_corpus

DEFAULT = REPO / "models" / "default"
SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
KEYS = {
    "thigh_muscle_area_cm2",
    "left_cm2",
    "right_cm2",
    "smi_estimate",
    "smi_interval_95",
    "criteria",
    "cutoff",
    "flag",
    "reasons",
    "sex",
    "sex_source",
    "height_m",
    "height_source",
    "pixel_spacing_mm",
    "pixel_spacing_source",
    "quality",
    "model",
    "note",
}


MANIFEST = json.loads((DEFAULT / "manifest.json").read_text())


def independent_p_low(rep: dict) -> float:
    """P(DEXA SMI < cut-off) recomputed from the shipped manifest with scipy (loglinear form)."""
    import math

    stats = pytest.importorskip("scipy.stats", reason="scipy is the reference: pip install -e '.[test]'")

    cal = MANIFEST["smi_calibration"]
    assert cal["form"] == "loglinear"
    one = rep["sides_seen"] == 1
    area = rep["thigh_muscle_area_cm2"] * (2 if one else 1)
    x = np.array([1.0, math.log(area), 1.0 if rep["sex"] == "M" else 0.0, math.log(rep["height_m"])])
    mean = float(x @ np.array(cal["coef"]))
    s = cal["residual_sd"] * math.sqrt(1 + x @ np.array(cal["xtx_inv"]) @ x) * cal["interval_scale"]
    if one:
        s = math.hypot(s, cal["one_side_sd"])
    return float(stats.t.cdf((math.log(rep["cutoff"]) - mean) / s, cal["n"] - 4))


def screen(*args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    res = run_cli("edge.cli", "screen", *args, "--json")
    return res, (json.loads(res.stdout) if res.returncode == 0 else None)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def mixed_cohort(tmp_path_factory) -> Path:
    """Seed 2 gives women and men, bilateral and one-leg films (views R and L)."""
    out = tmp_path_factory.mktemp("mixed") / "cohort"
    res = run_cli("train.cli", "phantom", str(out), "--n", "6", "--seed", "2", "--no-preview")
    assert res.returncode == 0, res.stderr
    return out


def test_screen_phantom_films_of_both_sexes_against_truth(mixed_cohort: Path):
    cases = list(csv.DictReader(Path(mixed_cohort / "cases.csv").read_text().splitlines()))
    assert {c["sex"] for c in cases} == {"F", "M"} and {c["view"] for c in cases} >= {"both", "R", "L"}
    seen_sex = set()
    for c in cases:
        res, rep = screen(str(mixed_cohort / c["image"]))
        assert res.returncode == 0, res.stderr
        assert set(rep) >= KEYS, KEYS - set(rep)
        assert rep["sex"] == c["sex"] and rep["sex_source"] == "DICOM PatientSex"
        assert rep["height_m"] == pytest.approx(float(c["height_m"])) and rep["height_source"].startswith("DICOM")
        assert rep["pixel_spacing_source"] == "PixelSpacing"
        truth = float(c["thigh_muscle_area_cm2"])
        assert rep["thigh_muscle_area_cm2"] == pytest.approx(truth, rel=0.08), c["case_id"]
        assert rep["model"]["precision"] == "INT8" and len(rep["model"]["sha256"]) == 64
        if rep["flag"] != "not_assessable":
            lo, hi = rep["smi_interval_95"]
            assert lo < rep["smi_estimate"] < hi
            p = independent_p_low(rep)  # scipy's t, the manifest's numbers: not the runtime's code
            assert rep["p_low"] == pytest.approx(p, abs=2e-3)
            th = MANIFEST["decision"]["awgs2019"]
            expected = "low_muscle_mass" if p >= th["refer"] else ("normal" if p <= th["clear"] else "borderline")
            assert rep["flag"] == expected
            assert abs(rep["smi_estimate"] - float(c["dexa_smi"])) < 2.0, c["case_id"]
            assert rep["cutoff"] == {"F": 5.4, "M": 7.0}[c["sex"]]
            if c["view"] == "both":
                assert rep["sides_seen"] == 2 and rep["smi_basis"] == "both thighs"
                assert rep["right_cm2"] == pytest.approx(float(c["right_cm2"]), rel=0.1)
                assert rep["left_cm2"] == pytest.approx(float(c["left_cm2"]), rel=0.1)
            else:  # one leg on the film: measured on that thigh, and the estimate says so
                assert rep["sides_seen"] == 1 and rep["smi_basis"].startswith("one thigh")
            seen_sex.add(c["sex"])
        assert "not a diagnosis" in rep["note"]
    assert seen_sex == {"F", "M"}, "a sex had no assessable film"


def test_monochrome1_and_compressed_films_measure_the_same(demo_cohort: Path, tmp_path: Path):
    src = demo_cohort / "images" / "case_00001_1.dcm"
    ds = pydicom.dcmread(src)
    top = (1 << ds.BitsStored) - 1
    ds.PixelData = (top - ds.pixel_array).astype(np.uint16).tobytes()
    ds.PhotometricInterpretation = "MONOCHROME2" if ds.PhotometricInterpretation == "MONOCHROME1" else "MONOCHROME1"
    flipped = tmp_path / "flipped.dcm"
    ds.save_as(flipped)
    ds.compress(pydicom.uid.RLELossless)
    rle = tmp_path / "rle"  # no extension, as PACS exports often are
    ds.save_as(rle)
    _, a = screen(str(src))
    _, b = screen(str(flipped))
    _, c = screen(str(rle))
    assert b["thigh_muscle_area_cm2"] == pytest.approx(a["thigh_muscle_area_cm2"], rel=0.01)
    assert c["thigh_muscle_area_cm2"] == b["thigh_muscle_area_cm2"]
    res, rep = screen(str(SAMPLE))
    assert res.returncode == 0 and rep["thigh_muscle_area_cm2"] > 100


def test_png_without_spacing_and_missing_sex_or_height(demo_cohort: Path, tmp_path: Path):
    from edge.reader import read_film

    film = read_film(demo_cohort / "images" / "case_00001_1.dcm")
    png = tmp_path / "film.png"
    cv2.imwrite(str(png), (film.pixels * 65535).astype(np.uint16))
    res, rep = screen(str(png), "--sex", "F", "--height-cm", "155")
    assert rep["flag"] == "not_assessable" and rep["thigh_muscle_area_cm2"] is None
    assert rep["thigh_muscle_area_px"] > 1000 and any("spacing" in r for r in rep["reasons"])
    res, rep = screen(str(png), "--sex", "F", "--height-cm", "155", "--spacing-mm", "0.45")
    assert rep["pixel_spacing_source"] == "user" and rep["thigh_muscle_area_cm2"] > 100
    ds = pydicom.dcmread(demo_cohort / "images" / "case_00001_1.dcm")
    del ds.PatientSex, ds.PatientSize
    anon = tmp_path / "anon.dcm"
    ds.save_as(anon)
    _, rep = screen(str(anon))
    assert rep["flag"] == "not_assessable" and rep["smi_estimate"] is None
    assert any("sex" in r for r in rep["reasons"]) and any("height" in r for r in rep["reasons"])
    _, rep = screen(
        str(anon), "--sex", "m", "--height-cm", "168", "--criteria", "ewgsop2", "--grip-kg", "20", "--gait-speed", "0.7"
    )
    assert rep["sex_source"] == "option" and rep["height_m"] == pytest.approx(1.68) and rep["cutoff"] == 7.0
    assert rep["flag"] != "not_assessable" and rep["category"] in {
        "sarcopenia",
        "severe_sarcopenia",
        "possible_sarcopenia",
    }


def test_films_that_are_not_long_leg_films_are_never_flagged():
    for name in ("331_DDH_1.dcm", "RG3_J2KR.dcm"):
        path = REALDATA / name
        assert path.exists(), f"realdata missing: {path}"
        res, rep = screen(str(path), "--sex", "F", "--height-cm", "150", "--spacing-mm", "0.2")
        assert res.returncode == 0, res.stderr
        assert rep["flag"] == "not_assessable" and rep["smi_estimate"] is None
        assert any("not a long-leg" in r for r in rep["reasons"])


def test_hostile_files_exit_3_with_one_line(tmp_path: Path):
    corpus = make_hostile_corpus(tmp_path)
    for name in list(corpus)[:8]:
        res = run_cli("edge.cli", "screen", str(tmp_path / name))
        assert res.returncode == 3 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_tampered_model_is_refused(tmp_path: Path):
    bad = tmp_path / "bundle"
    shutil.copytree(DEFAULT, bad)
    data = bytearray((bad / "model.bin").read_bytes())
    data[100] ^= 0x01
    (bad / "model.bin").write_bytes(bytes(data))
    res = run_cli("edge.cli", "screen", str(SAMPLE), "--model", str(bad))
    assert res.returncode == 4 and "sha256" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("edge.cli", "info", "--model", str(bad))
    assert res.returncode == 4


def test_info_verifies_the_bundle_and_lists_devices():
    res = run_cli("edge.cli", "info")
    assert res.returncode == 0, res.stderr
    assert "checksums verified" in res.stdout and "device CPU" in res.stdout and "synthetic" in res.stdout.lower()


def test_screen_leaks_no_identity(tmp_path: Path):
    """(Network silence is observed with strace in test_network.py.)"""
    ds = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    res = run_cli("edge.cli", "screen", str(SAMPLE), "--overlay", str(tmp_path / "o.png"))
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout + res.stderr
    assert str(ds.PatientName) not in text and str(ds.PatientID) not in text
    assert cv2.imread(str(tmp_path / "o.png")) is not None


def _mixed_folder(root: Path, demo_cohort: Path) -> int:
    (root / "a" / "b").mkdir(parents=True)
    for i, p in enumerate(sorted((demo_cohort / "images").glob("*.dcm"))[:4]):
        shutil.copy(p, (root / "a" / "b" if i % 2 else root) / (p.stem if i == 1 else p.name))
    corpus = make_hostile_corpus(root / "hostile")
    shutil.copy(REALDATA / "RG3_J2KI.dcm", root / "a" / "ankle.dcm")
    return 4 + len(corpus) + 1


def test_batch_mixed_folder_killed_and_resumed(demo_cohort: Path, tmp_path: Path):
    folder = tmp_path / "in"
    n = _mixed_folder(folder, demo_cohort)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    out = tmp_path / "results.csv"
    cmd = [
        sys.executable,
        "-m",
        "edge.cli",
        "batch",
        str(folder),
        "--out",
        str(out),
        "--overlays",
        str(tmp_path / "ov"),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _rows(out)
    assert 3 <= len(partial) < n
    res = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _rows(out)
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files)) == n
    assert {r["file"] for r in partial} <= set(files)
    errors = [r for r in rows if r["status"] == "error"]
    assert len(errors) >= 15 and all(r["error_kind"] and r["error"] for r in errors)
    ok = [r for r in rows if r["status"] == "ok"]
    assert any(r["flag"] == "not_assessable" for r in ok if "ankle" in r["file"])
    assert sum(1 for r in ok if r["thigh_muscle_area_cm2"]) >= 4
    assert all((tmp_path / "ov").resolve() in p.resolve().parents for p in (tmp_path / "ov").iterdir())
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    again = run_cli("edge.cli", "batch", str(folder), "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr

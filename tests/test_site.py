"""A site's own calibration and validation through the clinic CLI, on a phantom 'site'."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli

DEFAULT = REPO / "models" / "default"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("site") / "cohort"
    res = run_cli("train.cli", "phantom", str(out), "--n", "110", "--seed", "31", "--workers", "2", "--no-preview")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [
        {
            "file": r["image"],
            "person": r["person_id"],
            "sex": r["sex"],
            "height_cm": round(float(r["height_m"]) * 100, 1),
            "dexa_smi": r["dexa_smi"],
        }
        for r in csv.DictReader(Path(out / "cases.csv").read_text().splitlines())
    ]
    return out, rows


def _csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _cli(tmp_path: Path, *args: str):
    env = dict(os.environ, SARCO_EDGE_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=900
    )


def _digests() -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in DEFAULT.iterdir()}


def test_calibrate_then_validate_on_the_clinic_side(site, tmp_path: Path):
    folder, rows = site
    before = _digests()
    fit_rows, test_rows = rows[:90], rows[90:]
    bundle = tmp_path / "site-bundle"
    res = _cli(
        tmp_path,
        "calibrate",
        str(folder),
        "--dexa",
        str(_csv(tmp_path / "fit.csv", fit_rows)),
        "--out",
        str(bundle),
        "--skip-unusable",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["sha256"]["model.bin"] == json.loads((DEFAULT / "manifest.json").read_text())["sha256"]["model.bin"]
    for d in m["decision"].values():
        assert 0 <= d["clear"] <= d["refer"] <= 1 and d["sensitivity"] >= 0.9 and d["borderline_share"] <= 0.15 + 1e-9
    assert 0.9 <= m["site_calibration"]["oof_interval_coverage"] <= 1.0
    assert _digests() == before, "the shipped bundle was touched"
    rep = tmp_path / "report"
    res = _cli(
        tmp_path,
        "validate",
        str(folder),
        "--dexa",
        str(_csv(tmp_path / "test.csv", test_rows)),
        "--out",
        str(rep),
        "--model",
        str(bundle),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    v = json.loads((rep / "validation.json").read_text())
    assert v["films"] == len(test_rows) and v["assessed"] + v["refused"] == v["films"]
    assert v["bundle"]["trust"] == "trusted"
    a = v["all"]
    assert a["n"] == v["assessed"] and -1 <= a["pearson"]["r"] <= 1 and a["pearson"]["r"] > 0.3
    assert set(a["decision"]) >= {"sensitivity", "specificity", "refer_ppv", "clear_npv", "borderline_share"}
    assert "validation" in (rep / "validation.html").read_text()
    # another machine (no trust store entry) refuses the site bundle until it is trusted there
    other = _cli(tmp_path / "elsewhere", "screen", str(folder / rows[0]["file"]), "--model", str(bundle))
    assert other.returncode == 4


def test_calibrate_refuses_what_it_cannot_use(site, tmp_path: Path):
    folder, rows = site
    cases = {
        "too_few": (rows[:20], "too few"),
        "bad_dexa": ([{**rows[0], "dexa_smi": "54"}] + rows[1:], "out of range"),
        "unreadable": ([{**rows[0], "file": "images/missing.dcm"}] + rows[1:], "missing.dcm"),
        "few_men": ([r for r in rows if r["sex"] == "F"] + [r for r in rows if r["sex"] == "M"][:3], "men"),
    }
    for name, (subset, words) in cases.items():
        res = _cli(
            tmp_path,
            "calibrate",
            str(folder),
            "--dexa",
            str(_csv(tmp_path / f"{name}.csv", subset)),
            "--out",
            str(tmp_path / name),
            *([] if name == "unreadable" else ["--skip-unusable"]),
        )
        assert res.returncode == 2, (name, res.stderr[-1000:])
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (name, res.stderr)
        assert not (tmp_path / name).exists()

"""Training side end to end on a tiny cohort (a few steps, no real training), and the metrics
checked on inputs whose answer is known."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

# The training stack: a clinic install (no torch, no scipy) collects this module and skips it.
torch = pytest.importorskip("torch", reason="needs the training stack: pip install -e '.[train]'")
pytest.importorskip("scipy", reason="needs the training stack: pip install -e '.[train]'")

from edge.smi import SmiCalibration  # noqa: E402
from tests.helpers import run_cli  # noqa: E402
from train.augment import augment  # noqa: E402
from train.calibrate import auc, bland_altman, fit, flag_metrics, pearson_ci  # noqa: E402
from train.models import ARCHS, build_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "cohort"
    res = run_cli("train.cli", "phantom", str(out), "--n", "24", "--seed", "4", "--spacing-mm", "2.0", "--no-preview")
    assert res.returncode == 0, res.stderr
    return out


def test_pearson_bland_altman_and_auc_of_known_data():
    x = np.arange(10, dtype=float)
    r = pearson_ci(x, 2 * x + 1)
    assert r["r"] == pytest.approx(1.0) and r["p"] < 1e-6
    r = pearson_ci(np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 1, 4, 3, 5]))
    assert r["r"] == pytest.approx(0.8) and r["ci95"][0] < 0.8 < r["ci95"][1]
    ba = bland_altman(np.array([2.0, 3, 4, 5]), np.array([1.0, 2, 3, 6]))
    assert ba["bias"] == pytest.approx(0.5) and ba["sd"] == pytest.approx(1.0)
    assert ba["loa"] == pytest.approx([0.5 - 1.96, 0.5 + 1.96])
    assert auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False])) == pytest.approx(1.0)
    assert auc(np.array([0.5, 0.1, 0.9, 0.3]), np.array([True, True, False, False])) == pytest.approx(0.25)
    fm = flag_metrics(np.array([5.0, 6.0, 6.5, 7.5]), np.array([5.2, 5.9, 6.8, 7.4]), ["F", "F", "M", "M"])
    # AWGS: truth low = [T, F, T, F], flagged = [T, F, T, F]
    assert fm["awgs2019"]["sensitivity"] == 1.0 and fm["awgs2019"]["specificity"] == 1.0


def test_calibration_recovers_a_known_relation_and_its_interval():
    rng = np.random.default_rng(0)
    n = 400
    area = rng.uniform(250, 500, n)
    sex = list(rng.choice(["F", "M"], n))
    h = rng.uniform(1.4, 1.8, n)
    smi = 1.0 + 0.01 * area + 0.8 * (np.array(sex) == "M") + 0.5 * h + rng.normal(0, 0.3, n)
    cal = fit("linear", area, sex, h, smi)
    assert cal.coef[1] == pytest.approx(0.01, abs=0.001) and cal.residual_sd == pytest.approx(0.3, abs=0.03)
    c2 = SmiCalibration.from_dict(json.loads(json.dumps(cal.__dict__)))
    est, lo, hi = c2.predict(400.0, "F", 1.6)
    assert est == pytest.approx(1.0 + 4.0 + 0.8, abs=0.1)
    assert hi - lo == pytest.approx(2 * 1.966 * 0.3, rel=0.1)
    # 95 % of new people fall inside their interval.
    a2, s2, h2 = rng.uniform(250, 500, 2000), list(rng.choice(["F", "M"], 2000)), rng.uniform(1.4, 1.8, 2000)
    y2 = 1.0 + 0.01 * a2 + 0.8 * (np.array(s2) == "M") + 0.5 * h2 + rng.normal(0, 0.3, 2000)
    inside = [lo <= y <= hi for (_, lo, hi), y in zip((c2.predict(a, s, hh) for a, s, hh in zip(a2, s2, h2)), y2)]
    assert 0.93 < np.mean(inside) < 0.97


def test_augment_keeps_labels_aligned_with_the_image():
    """Checked on pixels: an off-centre bright block labelled 1 must stay under its label whatever
    geometry, processing and clutter the augmentation draws: over 60 draws, the median gap between
    the image's median under the label and outside it stays wide (0.68 here; 0.03 if the label
    were mirrored without the image)."""
    rng = np.random.default_rng(1)
    x = np.full((128, 64), 0.2, np.float32)
    y = np.zeros((128, 64), np.uint8)
    x[30:90, 8:28] = 0.9
    y[30:90, 8:28] = 1
    gaps = []
    for _ in range(60):
        xa, ya = augment(x, y, rng)
        assert xa.shape == x.shape and ya.dtype == np.uint8 and xa.min() >= 0 and xa.max() <= 1
        assert set(np.unique(ya)) <= {0, 1}
        if ya.sum() > 50 and (ya == 0).sum() > 50:
            gaps.append(abs(np.median(xa[ya == 1]) - np.median(xa[ya == 0])))
    assert len(gaps) > 40 and np.median(gaps) > 0.4, np.median(gaps)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_gives_full_resolution_logits(arch):
    m = build_model(arch).eval()
    with torch.no_grad():
        out = m(torch.zeros(1, 1, 64, 32))
    assert out.shape == (1, 1, 64, 32)


def test_train_evaluate_calibrate_end_to_end(tiny_cohort: Path, tmp_path: Path):
    runs = {}
    for arch in ARCHS:
        run = tmp_path / arch
        res = run_cli(
            "train.cli",
            "train",
            str(tiny_cohort),
            "--run",
            str(run),
            "--arch",
            arch,
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--batch",
            "2",
        )
        assert res.returncode == 0, res.stderr[-2000:]
        for f in ("best.pt", "last.pt", "log.csv", "curves.png", "run.json", "train_summary.json"):
            assert (run / f).exists(), (arch, f)
        runs[arch] = run
    # Resume continues, and a second plain start refuses to overwrite.
    run = runs["unet"]
    res = run_cli(
        "train.cli",
        "train",
        str(tiny_cohort),
        "--run",
        str(run),
        "--arch",
        "unet",
        "--epochs",
        "2",
        "--max-steps",
        "4",
        "--batch",
        "2",
        "--resume",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    log = list(csv.DictReader(Path(run / "log.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in log] == [2, 4]
    res = run_cli("train.cli", "train", str(tiny_cohort), "--run", str(run), "--arch", "unet")
    assert res.returncode == 2 and "--resume" in res.stderr

    res = run_cli("train.cli", "evaluate", str(run), "--data", str(tiny_cohort), "--split", "test")
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((run / "eval_test" / "summary.json").read_text())
    rows = list(csv.DictReader(Path(run / "eval_test" / "cases.csv").read_text().splitlines()))
    assert summary["n"] == len(rows) > 0
    assert summary["dice"]["mean"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]), abs=1e-4)
    truth = {
        r["case_id"]: float(r["thigh_muscle_area_cm2"])
        for r in csv.DictReader(Path(tiny_cohort / "cases.csv").read_text().splitlines())
    }
    for r in rows:  # the evaluator's true area is the cohort's truth, measured on the native grid
        assert float(r["area_true_cm2"]) == pytest.approx(truth[r["case_id"]], rel=1e-3)

    res = run_cli("train.cli", "calibrate", str(run), "--data", str(tiny_cohort))
    assert res.returncode == 0, res.stderr[-2000:]
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["model"]["form"] in ("linear", "loglinear")
    assert set(cal["ceiling"]["test"]) >= {"pearson", "bland_altman", "flags", "regression_est_on_dexa"}
    SmiCalibration.from_dict(cal["calibration"]).predict(300.0, "F", 1.55)
    assert (run / "bland_altman_model.png").exists() and (run / "calibration.md").exists()

    # A stored evaluation made with other weights is not reused: calibrate evaluates again.
    val = run / "eval_val"
    good = (val / "cases.csv").read_text()
    stale = json.loads((val / "summary.json").read_text())
    stale["weights_sha256"] = "0" * 64
    (val / "summary.json").write_text(json.dumps(stale))
    (val / "cases.csv").write_text(good.splitlines()[0] + "\n")
    res = run_cli("train.cli", "calibrate", str(run), "--data", str(tiny_cohort))
    assert res.returncode == 0, res.stderr[-2000:]
    assert (val / "cases.csv").read_text() == good

    # The results document reads every number from these files; the resumed run lists both commands.
    hist = json.loads((run / "run.json").read_text())["history"]
    assert [h["resume"] for h in hist] == [False, True] and hist[1]["from_epoch"] == 1
    out = tmp_path / "RESULTS.md"
    res = run_cli("sarco", "report", str(tiny_cohort), str(run), "--final", str(run), "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    text = out.read_text()
    assert f"--run {run} --arch unet --encoder mobilenet_v2 --epochs 2 --resume" in text
    assert f"{summary['iou']['mean']:.4f} +- {summary['iou']['sd']:.4f}" in text
    assert f"| U-Net++ IoU >= 0.93 | {summary['iou']['mean']:.4f} | no |" in text
    assert f"{cal['model']['test']['pearson']['r']:.3f} vs {cal['ceiling']['test']['pearson']['r']:.3f}" in text


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tiny_cohort: Path, tmp_path: Path):
    """Weights, optimiser state, schedule and random state all survive a resume: two epochs in one
    go and one epoch + --resume end with the same weights (fails if any of them is discarded)."""
    import torch

    common = ["train", str(tiny_cohort), "--arch", "unet", "--epochs", "2", "--batch", "4", "--threads", "1"]
    a = run_cli("train.cli", *common, "--run", str(tmp_path / "a"))
    assert a.returncode == 0, a.stderr[-2000:]
    b1 = run_cli("train.cli", *common, "--run", str(tmp_path / "b"), "--stop-after-epochs", "1")
    assert b1.returncode == 0, b1.stderr[-2000:]
    mid = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert mid["state"]["epoch"] == 1
    b2 = run_cli("train.cli", *common, "--run", str(tmp_path / "b"), "--resume")
    assert b2.returncode == 0, b2.stderr[-2000:]
    wa = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    changed = [k for k in wa if wa[k].is_floating_point() and not torch.equal(wa[k], mid["model"][k])]
    assert changed, "the second epoch did not train"
    diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert diff < 1e-5, diff


def test_a_fine_tune_starts_from_the_given_weights_and_joins_cohorts(tiny_cohort: Path, tmp_path: Path):
    """--init loads another run's weights (at a learning rate of ~0 they come out unchanged, while
    a fresh start does not), refuses another architecture, and --also adds a cohort's films."""
    import torch

    common = ["train", str(tiny_cohort), "--arch", "unet", "--batch", "4", "--threads", "1", "--epochs", "1"]
    a = run_cli("train.cli", *common, "--run", str(tmp_path / "a"), "--max-steps", "2")
    assert a.returncode == 0, a.stderr[-2000:]
    still = ["--lr", "1e-12", "--max-steps", "1"]
    b = run_cli("train.cli", *common, *still, "--run", str(tmp_path / "b"), "--init", str(tmp_path / "a"))
    c = run_cli("train.cli", *common, *still, "--run", str(tmp_path / "c"))
    assert b.returncode == 0 and c.returncode == 0, (b.stderr[-2000:], c.stderr[-2000:])

    def params(run: str) -> dict:
        w = torch.load(tmp_path / run / "last.pt", weights_only=False)["model"]
        return {k: v.float() for k, v in w.items() if "running" not in k and "num_batches" not in k}

    wa, wb, wc = params("a"), params("b"), params("c")
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-6
    assert max(float((wa[k] - wc[k]).abs().max()) for k in wa) > 1e-4

    bad = run_cli("train.cli", *common, "--arch", "vnet", "--run", str(tmp_path / "d"), "--init", str(tmp_path / "a"))
    assert bad.returncode == 2 and "--init" in bad.stderr and "unet" in bad.stderr

    one = run_cli("train.cli", *common, "--run", str(tmp_path / "e"))
    two = run_cli("train.cli", *common, "--run", str(tmp_path / "f"), "--also", str(tiny_cohort))
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-2000:], two.stderr[-2000:])
    steps = [int(next(csv.DictReader((tmp_path / r / "log.csv").open()))["step"]) for r in ("e", "f")]
    assert steps[1] == 2 * steps[0] > 0, steps
    assert len(json.loads((tmp_path / "f" / "run.json").read_text())["also"]) == 1

"""Per-case evaluation on the film's own grid, like nnU-Net's summary: Dice, IoU and area error.

Any predictor works (torch model, OpenVINO FP32 or INT8): a callable that takes the (1, 1, H, W)
model input and returns the thigh-muscle probability (H, W) on the model grid.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.bundle import MANIFEST
from edge.dataset import Case, load_cases, raster_spacing, read_mask
from edge.files import write_csv_atomic, write_text_atomic
from edge.markdown import table
from edge.measure import dice_iou, thigh_areas
from edge.preprocess import DEFAULT_SIZE, flip_average, to_film_grid, to_model_input
from edge.reader import read_film

Predictor = Callable[[np.ndarray], np.ndarray]


def predict_mask(predictor: Predictor, pixels: np.ndarray, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    x, box = to_model_input(pixels, size)
    return to_film_grid(predictor(x), box) > 0.5


def evaluate_cases(
    predictor: Predictor, cases: list[Case], size: tuple[int, int] = DEFAULT_SIZE, progress=None
) -> list[dict]:
    rows = []
    for i, case in enumerate(cases):
        film = read_film(case.image, spacing_mm=raster_spacing(case))
        pred = predict_mask(predictor, film.pixels, size)
        truth = read_mask(case) == 1
        d, j = dice_iou(pred, truth)
        ap = thigh_areas(pred, film.spacing_mm, film.pixels)
        at = thigh_areas(truth, film.spacing_mm, film.pixels)
        rows.append(
            {
                "case_id": case.case_id,
                "person_id": case.person_id,
                "split": case.split,
                "view": case.view,
                "sex": case.sex or "",
                "height_m": case.height_m if case.height_m is not None else "",
                "dexa_smi": case.dexa_smi if case.dexa_smi is not None else "",
                "dice": round(d, 5),
                "iou": round(j, 5),
                "area_true_cm2": round(at.total, 3),
                "area_pred_cm2": round(ap.total, 3),
                "area_err_cm2": round(ap.total - at.total, 3),
                "area_err_pct": round(100.0 * (ap.total - at.total) / at.total, 3) if at.total else "",
                "right_pred_cm2": "" if ap.right is None else round(ap.right, 3),
                "left_pred_cm2": "" if ap.left is None else round(ap.left, 3),
                "sides_seen": ap.sides_seen,
                "unit": ap.unit,
            }
        )
        if progress:
            progress(i + 1, len(cases))
    return rows


def summarise(rows: list[dict]) -> dict:
    out: dict = {"n": len(rows)}
    for k in ("dice", "iou", "area_err_cm2", "area_err_pct"):
        v = np.array([float(r[k]) for r in rows if r[k] != ""], float)
        if v.size:
            out[k] = {
                "mean": round(float(v.mean()), 5),
                "sd": round(float(v.std(ddof=1)) if v.size > 1 else 0.0, 5),
                "median": round(float(np.median(v)), 5),
                "min": round(float(v.min()), 5),
                "max": round(float(v.max()), 5),
            }
    v = np.array([abs(float(r["area_err_pct"])) for r in rows if r["area_err_pct"] != ""], float)
    if v.size:
        out["abs_area_err_pct"] = {"mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4)}
    return out


def write_report(rows: list[dict], summary: dict, out: Path, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "cases.csv", rows)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    lines = [
        f"# {title}",
        "",
        f"{summary['n']} films, metrics on each film's own pixel grid.",
        "",
    ]
    stats = ("mean", "sd", "median", "min", "max")
    keys = [k for k in ("dice", "iou", "area_err_cm2", "area_err_pct") if k in summary]
    lines += table(
        ["metric", "mean", "SD", "median", "min", "max"], [[k] + [f"{summary[k][s]:.4f}" for s in stats] for k in keys]
    )
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")


def torch_predictor(model, classes: str) -> Predictor:
    import torch

    from .trainer import muscle_prob

    @torch.no_grad()
    def once(x: np.ndarray) -> np.ndarray:
        return muscle_prob(model(torch.from_numpy(x)), classes)[0].numpy()

    def run(x: np.ndarray) -> np.ndarray:
        return flip_average(once, x)

    return run


def bundle_predictor(bundle_dir: Path) -> tuple[Predictor, tuple[int, int], str]:
    """The clinic's own OpenVINO model (checksums verified), as a predictor."""
    from edge.bundle import compile_bundle, load_bundle, muscle_probability

    b = load_bundle(bundle_dir, require_trust=False)  # the training side checks files, not trust
    compiled = compile_bundle(b)
    return (
        (lambda x: muscle_probability(compiled, x)),
        b.input_size,
        f"{b.manifest['architecture']} {b.manifest['precision']}",
    )


# Bump when the way a film becomes a mask changes, so stored evaluations are not reused.
PREDICT_VERSION = "2: flip_average, bilinear to the film grid, > 0.5"


def evaluation_key(run: Path) -> dict:
    """What a stored evaluation of a run was computed with: its weights and the prediction path."""
    from edge.bundle import sha256

    return {"weights_sha256": sha256(Path(run) / "best.pt"), "predict": PREDICT_VERSION}


def evaluate_run(run: Path, cohort: Path, split: str = "test", progress=None) -> dict:
    """Evaluate a training run (best.pt) or a model bundle (manifest.json) on a cohort split."""
    run = Path(run)
    cases = load_cases(cohort, split)
    if not cases:
        raise ValueError(f"no films in split {split!r} of {cohort}")
    if (run / MANIFEST).exists():
        predictor, size, what = bundle_predictor(run)
        out = Path.cwd() / f"eval_{run.name}_{Path(cohort).name}_{split}"
        key = {}
    else:
        from .trainer import load_run

        model, cfg = load_run(run)
        predictor, size, what = torch_predictor(model, cfg.classes), tuple(cfg.size), cfg.arch
        out = run / f"eval_{split}"
        key = evaluation_key(run)
    rows = evaluate_cases(predictor, cases, size, progress)
    summary = {"run": str(run), "cohort": str(cohort), "split": split, "arch": what, **key, **summarise(rows)}
    write_report(rows, summary, out, f"{what} on {Path(cohort).name}, split {split}")
    return summary

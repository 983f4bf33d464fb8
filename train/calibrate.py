"""Calibration: thigh muscle area (+ sex, height) -> DEXA SMI, and how well it agrees with DEXA.

Two forms are compared by person-grouped 5-fold cross-validation on train+val:
`linear` (SMI = b0 + b1 area + b2 male + b3 height) and `loglinear` (log SMI = b0 + b1 log area +
b2 male + b3 log height, the allometric form: a film sees width x length, muscle mass goes with
CSA x length). The one with the lower cross-validated RMSE is kept. The test split then gets
Pearson r (95 % CI, p), the regression of the estimate on DEXA, Bland-Altman, and the
low-muscle-mass flag at the AWGS 2019 and EWGSOP2 cut-offs (sensitivity, specificity, AUC).
The same is computed with the true mask area: the ceiling, side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from edge.calibration import calibrate as fit_with_decision
from edge.calibration import cv_rmse, fit
from edge.criteria import CRITERIA
from edge.files import write_text_atomic
from edge.markdown import row as md_row
from edge.markdown import table
from edge.smi import FORMS, SmiCalibration

# The cut-offs live in edge.criteria (one source for both sides).
CUTOFFS = {name: dict(c.smi) for name, c in CRITERIA.items()}


def predict(cal: SmiCalibration, area, sex, height) -> np.ndarray:
    return np.array([cal.predict(a, s, h) for a, s, h in zip(area, sex, height)])


def pearson_ci(x: np.ndarray, y: np.ndarray) -> dict:
    r, p = stats.pearsonr(x, y)
    n = len(x)
    z, se = np.arctanh(r), 1 / np.sqrt(max(n - 3, 1))
    return {
        "r": float(r),
        "ci95": [float(np.tanh(z - 1.96 * se)), float(np.tanh(z + 1.96 * se))],
        "p": float(p),
        "n": n,
    }


def bland_altman(est: np.ndarray, ref: np.ndarray) -> dict:
    d = est - ref
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa": [bias - 1.96 * sd, bias + 1.96 * sd]}


def auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC by the Mann-Whitney statistic (ties count one half)."""
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return None
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (len(pos) * len(neg)))


def flag_metrics(est: np.ndarray, ref: np.ndarray, sex: list[str]) -> dict:
    out = {}
    for name, cut in CUTOFFS.items():
        c = np.array([cut[s] for s in sex])
        truth, flag = ref < c, est < c
        tp, tn = int((flag & truth).sum()), int((~flag & ~truth).sum())
        out[name] = {
            "sensitivity": tp / truth.sum() if truth.sum() else None,
            "specificity": tn / (~truth).sum() if (~truth).sum() else None,
            "auc": auc(c - est, truth),
            "n_low_dexa": int(truth.sum()),
            "n": len(ref),
        }
    return out


def agreement(est: np.ndarray, ref: np.ndarray, sex: list[str]) -> dict:
    lr = stats.linregress(ref, est)
    return {
        "pearson": pearson_ci(est, ref),
        "regression_est_on_dexa": {"slope": float(lr.slope), "intercept": float(lr.intercept)},
        "bland_altman": bland_altman(est, ref),
        "flags": flag_metrics(est, ref, sex),
    }


def bland_altman_png(est: np.ndarray, ref: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ba = bland_altman(est, ref)
    m = (est + ref) / 2
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.scatter(m, est - ref, s=10)
    for v, ls in ((ba["bias"], "-"), (ba["loa"][0], "--"), (ba["loa"][1], "--")):
        ax.axhline(v, ls=ls, color="k", lw=1)
    ax.set_xlabel("mean of estimate and DEXA SMI (kg/m$^2$)")
    ax.set_ylabel("estimate - DEXA (kg/m$^2$)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibrate_rows(fit_rows: list[dict], test_rows: list[dict], area_key: str) -> tuple[dict, SmiCalibration]:
    """Choose the form by CV on fit_rows, fit it, and report agreement on test_rows."""

    def arrays(rows):
        return (
            np.array([float(r[area_key]) for r in rows]),
            [r["sex"] for r in rows],
            np.array([float(r["height_m"]) for r in rows]),
            np.array([float(r["dexa_smi"]) for r in rows]),
        )

    a, s, h, y = arrays(fit_rows)
    groups = np.array([r["person_id"] for r in fit_rows])
    cv = {form: cv_rmse(form, a, s, h, y, groups) for form in FORMS}
    best = min(cv, key=cv.get)
    cal = fit(best, a, s, h, y)
    at, st, ht, yt = arrays(test_rows)
    est = predict(cal, at, st, ht)[:, 0]
    report = {
        "form": best,
        "cv_rmse": cv,
        "residual_sd": cal.residual_sd,
        "n_fit": cal.n,
        "n_test": len(test_rows),
        "test": agreement(est, yt, st),
    }
    return report, cal


def usable(rows: list[dict]) -> list[dict]:
    """Films that show both thighs and carry sex, height and DEXA."""
    return [
        r
        for r in rows
        if r["view"] == "both" and r["sex"] in ("F", "M") and r["height_m"] != "" and r["dexa_smi"] != ""
    ]


STUDY = {"r": 0.72, "slope": 0.74, "source": "Park, Kim, Yoo, Healthcare 2025, 13(19), 2488 (351 films, 157 patients)"}


def _eval_rows(run: Path, cohort: Path, split: str, key: dict) -> list[dict]:
    """The run's per-case evaluation of a split; `key` is `evaluation_key(run)`."""
    import csv

    from .evaluate import evaluate_run

    f = Path(run) / f"eval_{split}" / "cases.csv"
    summary = f.with_name("summary.json")
    stored = json.loads(summary.read_text()) if summary.exists() else {}
    if not f.exists() or any(stored.get(k) != v for k, v in key.items()) or stored.get("cohort") != str(cohort):
        evaluate_run(run, cohort, split)  # none yet, or made with other weights, pipeline or cohort
    with open(f, newline="") as fh:
        return list(csv.DictReader(fh))


def calibrate_run(run: Path, cohort: Path, console=None) -> dict:
    """Calibrate a run's model on train+val and report on test, beside the mask-area ceiling."""
    from dataclasses import asdict

    run, cohort = Path(run), Path(cohort)
    from .evaluate import evaluation_key

    key = evaluation_key(run)
    fit_rows = usable(_eval_rows(run, cohort, "train", key) + _eval_rows(run, cohort, "val", key))
    test_rows = usable(_eval_rows(run, cohort, "test", key))
    if len(fit_rows) < 8 or len(test_rows) < 3:
        raise ValueError(
            f"too few bilateral films with sex, height and DEXA (fit {len(fit_rows)}, test {len(test_rows)})"
        )
    model_rep, cal = calibrate_rows(fit_rows, test_rows, "area_pred_cm2")
    ceil_rep, ceil_cal = calibrate_rows(fit_rows, test_rows, "area_true_cm2")
    # The clinic's calibration and decision thresholds, by the same module as `sarco-edge calibrate`.
    fitted = fit_with_decision(
        [float(r["area_pred_cm2"]) for r in fit_rows],
        [r["sex"] for r in fit_rows],
        [float(r["height_m"]) for r in fit_rows],
        [float(r["dexa_smi"]) for r in fit_rows],
        [r["person_id"] for r in fit_rows],
    )
    cal = SmiCalibration(**fitted["calibration"])
    out = {
        "model": model_rep,
        "ceiling": ceil_rep,
        "calibration": {**asdict(cal), "area_source": "model", "fit_on": "train+val films showing both thighs"},
        "decision": fitted["decision"],
        "decision_fit": fitted["report"],
        "study": STUDY,
    }
    write_text_atomic(run / "calibration.json", json.dumps(out, indent=2))
    for key, area_key, c in (("model", "area_pred_cm2", cal), ("ceiling", "area_true_cm2", ceil_cal)):
        est = predict(
            c,
            np.array([float(r[area_key]) for r in test_rows]),
            [r["sex"] for r in test_rows],
            np.array([float(r["height_m"]) for r in test_rows]),
        )[:, 0]
        bland_altman_png(
            est,
            np.array([float(r["dexa_smi"]) for r in test_rows]),
            run / f"bland_altman_{key}.png",
            f"{'model' if key == 'model' else 'mask (ceiling)'} area -> SMI, test split",
        )
    write_text_atomic(run / "calibration.md", calibration_markdown(out))
    return out


def _fmt(v, nd=3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def calibration_markdown(out: dict) -> str:
    m, c = out["model"], out["ceiling"]
    lines = [
        f"SMI calibration ({m['form']} form, chosen by 5-fold person-grouped CV RMSE: "
        + ", ".join(f"{k} {v:.3f}" for k, v in m["cv_rmse"].items())
        + f"), fit on {m['n_fit']} films, "
        f"test {m['n_test']} films",
        "",
        *table(["", "model area", "mask area (ceiling)", "study"], []),
    ]

    def row(name, f, study=""):
        lines.append(md_row([name, f(m), f(c), study]))

    row(
        "Pearson r [95% CI]",
        lambda x: (
            f"{x['test']['pearson']['r']:.3f} [{x['test']['pearson']['ci95'][0]:.3f}, {x['test']['pearson']['ci95'][1]:.3f}]"
        ),
        "0.72",
    )
    row("p", lambda x: f"{x['test']['pearson']['p']:.2g}")
    row("slope (estimate on DEXA)", lambda x: _fmt(x["test"]["regression_est_on_dexa"]["slope"]), "0.74")
    row("intercept", lambda x: _fmt(x["test"]["regression_est_on_dexa"]["intercept"]))
    row("Bland-Altman bias (kg/m2)", lambda x: _fmt(x["test"]["bland_altman"]["bias"]))
    row(
        "limits of agreement",
        lambda x: f"{x['test']['bland_altman']['loa'][0]:.3f} to {x['test']['bland_altman']['loa'][1]:.3f}",
    )
    row("residual SD (fit)", lambda x: _fmt(x["residual_sd"], 4))
    for crit in ("awgs2019", "ewgsop2"):
        row(f"{crit} sensitivity", lambda x, k=crit: _fmt(x["test"]["flags"][k]["sensitivity"]))
        row(f"{crit} specificity", lambda x, k=crit: _fmt(x["test"]["flags"][k]["specificity"]))
        row(f"{crit} AUC", lambda x, k=crit: _fmt(x["test"]["flags"][k]["auc"]))
    return "\n".join(lines) + "\n"

"""What `sarco-edge validate` reports: agreement with the site's DEXA (r, CCC, ICC, regression,
Bland-Altman), the decision's sensitivity/specificity/PPV/NPV, ROC AUC and interval coverage,
per sex, as JSON numbers and an HTML page with plots (matplotlib, the optional `report` extra)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import stats
from .calibration import decision_metrics
from .criteria import CRITERIA
from .files import write_text_atomic


def render_validation(res: list, report: dict, out: Path) -> None:
    """validation.html (and its plots, when matplotlib is there) into `out`."""
    plots = _plots(res, out)
    write_text_atomic(out / "validation.html", _html(report, plots))


def validation_report(res: list, criteria: str) -> dict:
    ok = [(r, rep) for r, rep, why in res if why is None]
    refusals: dict[str, int] = {}
    for _, _, why in res:
        if why:
            refusals[why] = refusals.get(why, 0) + 1
    out = {
        "criteria": criteria,
        "films": len(res),
        "people": len({r.person for r, _, _ in res}),
        "assessed": len(ok),
        "refused": len(res) - len(ok),
        "refusals_by_reason": refusals,
    }
    out["all"] = _agreement(ok, criteria)
    for sex in ("F", "M"):
        sub = [(r, rep) for r, rep in ok if r.sex == sex]
        out["women" if sex == "F" else "men"] = _agreement(sub, criteria) if len(sub) >= 3 else {"n": len(sub)}
    return out


def _agreement(ok: list, criteria: str) -> dict:
    if len(ok) < 3:
        return {"n": len(ok)}
    est = np.array([rep["smi_estimate"] for _, rep in ok])
    ref = np.array([r.dexa_smi for r, _ in ok])
    cut = np.array([CRITERIA[criteria].smi[r.sex] for r, _ in ok])
    low = ref < cut
    flags = [rep["flag"] for _, rep in ok]
    p = np.array([rep["p_low"] for _, rep in ok])
    cover = np.mean([rep["smi_interval_95"][0] <= r.dexa_smi <= rep["smi_interval_95"][1] for r, rep in ok])
    return {
        "n": len(ok),
        "pearson": stats.pearson(est, ref),
        "ccc": stats.lin_ccc(est, ref),
        "icc_a1": stats.icc_a1(est, ref),
        "regression_est_on_dexa": stats.linregress(ref, est),
        "bland_altman": stats.bland_altman(est, ref),
        "decision": decision_metrics(
            np.array([f == "normal" for f in flags]), np.array([f == "low_muscle_mass" for f in flags]), low
        ),
        "auc_p_low": stats.roc_auc(p, low),
        "interval_coverage_95": float(cover),
        "flags": {f: flags.count(f) for f in sorted(set(flags))},
    }


def _plots(res: list, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    ok = [(r, rep) for r, rep, why in res if why is None]
    if len(ok) < 3:
        return []
    est = np.array([rep["smi_estimate"] for _, rep in ok])
    ref = np.array([r.dexa_smi for r, _ in ok])
    ba = stats.bland_altman(est, ref)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    axes[0].scatter(ref, est, s=10)
    lim = [min(ref.min(), est.min()) - 0.3, max(ref.max(), est.max()) + 0.3]
    axes[0].plot(lim, lim, "k--", lw=1)
    axes[0].set_xlabel("DEXA SMI (kg/m$^2$)")
    axes[0].set_ylabel("estimate (kg/m$^2$)")
    m = (est + ref) / 2
    axes[1].scatter(m, est - ref, s=10)
    for v, ls in ((ba["bias"], "-"), (ba["loa"][0], "--"), (ba["loa"][1], "--")):
        axes[1].axhline(v, ls=ls, color="k", lw=1)
    axes[1].set_xlabel("mean of estimate and DEXA")
    axes[1].set_ylabel("estimate - DEXA")
    fig.tight_layout()
    fig.savefig(out / "agreement.png", dpi=110)
    plt.close(fig)
    return ["agreement.png"]


def _html(report: dict, plots: list[str]) -> str:
    def fmt(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) and math.isfinite(v) else str(v))

    rows = []
    for key in ("all", "women", "men"):
        a = report.get(key, {})
        if "pearson" not in a:
            rows.append(f"<tr><td>{key}</td><td>{a.get('n', 0)}</td>" + "<td>-</td>" * 10 + "</tr>")
            continue
        d = a["decision"]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{fmt(v)}</td>"
                for v in (
                    key,
                    a["n"],
                    a["pearson"]["r"],
                    a["ccc"],
                    a["bland_altman"]["bias"],
                    d["sensitivity"],
                    d["specificity"],
                    d["clear_specificity"],
                    d["refer_ppv"],
                    d["clear_npv"],
                    d["borderline_share"],
                    a["interval_coverage_95"],
                )
            )
            + "</tr>"
        )
    imgs = (
        "".join(f'<p><img src="{p}" alt="agreement plots"></p>' for p in plots)
        or "<p>Plots need matplotlib: pip install 'sarco-edge[report]'.</p>"
    )
    refusals = "".join(f"<li>{k}: {v}</li>" for k, v in report["refusals_by_reason"].items()) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sarco-edge validation</title></head><body>
<h1>sarco-edge validation ({report["criteria"]})</h1>
<p>Bundle {report["bundle"]["name"]} {report["bundle"]["version"]} ({report["bundle"]["precision"]}, manifest
{report["bundle"]["manifest_sha256"][:12]}, {report["bundle"]["trust"]}). {report["films"]} films of {report["people"]}
people; {report["assessed"]} assessed, {report["refused"]} refused.</p>
<h2>Agreement with DEXA</h2>
<table border="1" cellpadding="3"><tr><th>group</th><th>n</th><th>r</th><th>CCC</th><th>bias</th><th>sensitivity</th>
<th>specificity</th><th>cleared (strict specificity)</th><th>refer PPV</th><th>clear NPV</th><th>borderline</th><th>95% interval coverage</th></tr>
{"".join(rows)}</table>
<p>Sensitivity: films truly under the cut-off that were not cleared as normal (referred or borderline).
Specificity: films at or over the cut-off that were cleared as normal.</p>
{imgs}<h2>Refusals</h2><ul>{refusals}</ul>
<p>A screening aid, not a diagnosis.</p></body></html>
"""

"""Carry a calibration made by `sarco-edge calibrate` into a shipped bundle's manifest.

The maintainer's step when the default bundle is recalibrated without retraining: the site
bundle's smi_calibration, decision and its fit report replace the shipped ones, the card gets a
section that says so, checksums are recomputed, and the new manifest digest is printed to pin in
edge/bundle.py (PINNED_MANIFESTS).

    sarco adopt SITE_BUNDLE --into models/default --command "the command that made it"
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edge.bundle import MANIFEST, load_bundle, sha256
from edge.files import write_text_atomic
from edge.markdown import table


def adopt(site: Path, into: Path, command: str) -> str:
    s = load_bundle(site, require_trust=False)
    t = load_bundle(into, require_trust=False)
    if s.manifest["sha256"]["model.bin"] != t.manifest["sha256"]["model.bin"]:
        raise ValueError("the site bundle was made from other model files")
    m = dict(t.manifest)
    fit = dict(s.manifest["site_calibration"])
    fit["command"] = command
    fit.pop("from_bundle_manifest_sha256", None)
    m["smi_calibration"] = {
        **s.manifest["smi_calibration"],
        "fit_on": "train+val films of the training cohort showing both thighs (sarco-edge calibrate)",
    }
    m["decision"] = s.manifest["decision"]
    m["calibration_fit"] = fit
    card_name = m["files"]["card"]
    card = (into / card_name).read_text().split("\n## Calibration and decision")[0].rstrip() + "\n"
    lines = [
        f"\n## Calibration and decision\n\nRefitted with `{command}` ({fit['form']} form, {fit['n_films']} films of "
        f"{fit['n_people']} people, out-of-fold 95 % interval coverage {fit['oof_interval_coverage']:.3f}, interval "
        f"scale {fit['interval_scale']:.3f}, one-thigh extra SD {fit['one_side_sd']:.4f}).\n",
    ]
    keys = ("clear", "refer", "sensitivity", "specificity", "clear_specificity", "borderline_share")
    lines += table(
        ["criteria", "normal at p_low <=", "refer at p_low >=", "sensitivity", "specificity"]
        + ["cleared (strict spec.)", "borderline"],
        [[k] + [f"{d[key]:.3f}" for key in keys] for k, d in m["decision"].items()],
    )
    lines.append(
        "\nOut-of-fold (5 folds by person) on the fitting films. Sensitivity: films under the cut-off not "
        "cleared as normal (referred or borderline); specificity: films at or over it not referred (cleared or "
        "borderline); cleared: films at or over it cleared as normal.\n"
    )
    write_text_atomic(into / card_name, card + "\n".join(lines))
    m["sha256"] = {n: sha256(into / n) for n in sorted(set(m["files"].values()))}
    text = json.dumps(m, indent=2)
    write_text_atomic(into / MANIFEST, text)
    return hashlib.sha256(text.encode()).hexdigest()

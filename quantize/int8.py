"""NNCF INT8 post-training quantization under an accuracy check, and the model bundle it writes.

Calibration uses train-split films (300 or all); the check is the project's own metric, Dice on
the val split on each film's own grid, FP32 IR (run in f32) against INT8. If plain PTQ drops more
than `max_drop`, accuracy-aware quantization keeps the most sensitive layers in higher
precision; if that still misses, nothing is written and the caller exits non-zero.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from edge import __version__
from edge.bundle import MANIFEST, muscle_probability, sha256
from edge.dataset import PREP_VERSION, cache_dir, cached_arrays, load_cases, read_mask
from edge.measure import dice_iou
from edge.preprocess import PERCENTILES, to_film_grid, to_model_input
from edge.reader import read_film

from .export import ModelSpec, convert

LABELS = {"background": 0, "thigh_muscle": 1}
ALL_LABELS = {"background": 0, "thigh_muscle": 1, "thigh_fat": 2, "bone": 3, "calf_muscle": 4}


class QuantizeRefused(Exception):
    """INT8 could not meet the accuracy bound; nothing was written."""


def _val_items(cases, size) -> list[tuple[np.ndarray, object, np.ndarray]]:
    items = []
    for c in cases:
        film = read_film(c.image)
        x, box = to_model_input(film.pixels, size)
        items.append((x, box, read_mask(c) == 1))
    return items


def native_dice(compiled, items) -> float:
    """Mean Dice on the films' own grids. NNCF may call this on any subset of the items."""
    scores = []
    for x, box, truth in items:
        pred = to_film_grid(muscle_probability(compiled, x), box) > 0.5
        scores.append(dice_iou(pred, truth)[0])
    return float(np.mean(scores)) if scores else 0.0


def _compile(model):
    import openvino as ov

    from edge.ov import F32

    return ov.Core().compile_model(model, "CPU", F32)


def quantize_model(
    model,
    cfg: ModelSpec,
    run: Path,
    cohort: Path,
    out: Path,
    max_drop: float = 0.003,
    calib_films: int = 300,
    name: str | None = None,
    version: str = __version__,
    log=print,
) -> dict:
    """INT8 of `model` (its run folder gives the calibration and metadata files) into bundle `out`."""
    import nncf

    size = tuple(cfg.size)
    ov_fp32 = convert(model, size)
    calib_cases = load_cases(cohort, "train")[:calib_films]
    cache = cache_dir(cohort, size)
    xs, _ = cached_arrays(calib_cases, cache, size)
    calib = nncf.Dataset([x.astype(np.float32)[None, None] for x in xs])
    val_cases = load_cases(cohort, "val")
    items = _val_items(val_cases, size)
    val = nncf.Dataset(items, lambda it: it[0])
    t0 = time.perf_counter()
    dice_fp32 = native_dice(_compile(ov_fp32), items)
    q = nncf.quantize(ov_fp32, calib, subset_size=len(xs))
    dice_int8 = native_dice(_compile(q), items)
    method = "nncf.quantize"
    log(f"val Dice FP32 {dice_fp32:.5f}, INT8 {dice_int8:.5f} (drop {dice_fp32 - dice_int8:+.5f}, bound {max_drop})")
    if dice_fp32 - dice_int8 > max_drop:
        log("drop above the bound: retrying with nncf.quantize_with_accuracy_control")
        try:
            q = nncf.quantize_with_accuracy_control(
                ov_fp32,
                calib,
                val,
                validation_fn=native_dice,
                max_drop=max_drop,
                drop_type=nncf.DropType.ABSOLUTE,
                subset_size=len(xs),
            )
            dice_int8 = native_dice(_compile(q), items)
            method = "nncf.quantize_with_accuracy_control"
            log(f"accuracy control: INT8 {dice_int8:.5f} (drop {dice_fp32 - dice_int8:+.5f})")
        except Exception as e:  # NNCF gives up in its own ways; the bound decides below
            log(f"accuracy control gave no model: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    drop = dice_fp32 - dice_int8
    if drop > max_drop:
        raise QuantizeRefused(
            f"INT8 misses the accuracy bound by {drop - max_drop:.5f} "
            f"(val Dice drop {drop:.5f} > --max-drop {max_drop}); nothing written"
        )
    metrics = {
        "val_films": len(items),
        "val_dice_fp32": round(dice_fp32, 5),
        "val_dice_int8": round(dice_int8, 5),
        "val_dice_drop": round(drop, 5),
        "max_drop": max_drop,
        "method": method,
        "calibration_films": len(xs),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_bundle(q, run, cohort, out, cfg, metrics, name or Path(out).name, version)
    return metrics


def write_bundle(
    ov_model, run: Path, cohort: Path, out: Path, cfg: ModelSpec, metrics: dict, name: str, version: str
) -> None:
    """IR + manifest + card into a temporary folder, then moved into place in one rename."""
    import openvino as ov

    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    ov.save_model(ov_model, tmp / "model.xml", compress_to_fp16=False)
    run = Path(run)
    cal_path = run / "calibration.json"
    calibration = json.loads(cal_path.read_text()) if cal_path.exists() else None
    test_eval = run / "eval_test" / "summary.json"
    run_meta = json.loads((run / "run.json").read_text())
    manifest = {
        "name": name,
        "version": version,
        "architecture": cfg.arch,
        "encoder": cfg.encoder if cfg.arch != "vnet" else None,
        "precision": "INT8",
        "input": {
            "size": list(cfg.size),
            "layout": "NCHW",
            "channels": 1,
            "dtype": "float32",
            "preprocessing": {
                "module": "edge.preprocess",
                "version": PREP_VERSION,
                "normalise_percentiles": list(PERCENTILES),
                "letterbox": "aspect kept, zero pad, centred",
            },
        },
        "output": {
            "kind": "logits",
            "activation": "sigmoid" if cfg.classes == "binary" else "softmax",
            "channels": 1 if cfg.classes == "binary" else len(ALL_LABELS),
            "threshold": 0.5,
            "test_time": "mean of the film and its mirror image (edge.preprocess.flip_average)",
        },
        "labels": LABELS if cfg.classes == "binary" else ALL_LABELS,
        "smi_calibration": calibration["calibration"] if calibration else None,
        "decision": calibration.get("decision") if calibration else None,
        "calibration_report": {k: calibration[k] for k in ("model", "ceiling")} if calibration else None,
        "accepted_metrics": {**metrics, "test": json.loads(test_eval.read_text()) if test_eval.exists() else None},
        "cohort": {
            k: run_meta.get("cohort", {}).get(k)
            for k in ("name", "generator", "seed", "n_films", "n_people", "ceiling")
        },
        "also_cohorts": [
            {k: c.get(k) for k in ("name", "generator", "seed", "n_films", "n_people")}
            for c in run_meta.get("also", [])
        ],
        "initialised_from": run_meta.get("config", {}).get("init"),
        "trained_on": "synthetic phantom films only (PHANTOM.md); validate on your own films before clinical use",
        "files": {"model_xml": "model.xml", "model_bin": "model.bin", "card": "MODEL_CARD.md"},
    }
    (tmp / "MODEL_CARD.md").write_text(model_card(manifest))
    manifest["sha256"] = {f: sha256(tmp / f) for f in ("model.xml", "model.bin", "MODEL_CARD.md")}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)


def model_card(m: dict) -> str:
    a = m["accepted_metrics"]
    lines = [
        f"# {m['name']} {m['version']}: thigh muscle segmentation, {m['architecture']} ({m['encoder'] or '-'}), INT8",
        "",
        "**Trained on synthetic films only** (the sarco-edge phantom). A screening aid, not a diagnosis: a site "
        "validates this model on its own films and DEXA results before any clinical use.",
        "",
        f"- input: {m['input']['size'][0]} x {m['input']['size'][1]} greyscale, preprocessing `edge.preprocess` v{m['input']['preprocessing']['version']}",
        f"- output: {m['output']['activation']} of the logits, {m['output'].get('test_time', 'one pass')}, "
        f"mapped bilinearly to the film's grid, threshold {m['output']['threshold']}",
        f"- accepted by `sarco quantize` with {a['method']}: val Dice FP32 {a['val_dice_fp32']}, INT8 {a['val_dice_int8']} "
        f"(drop {a['val_dice_drop']}, bound {a['max_drop']}), {a['val_films']} val films, {a['calibration_films']} calibration films",
    ]
    if a.get("test"):
        t = a["test"]
        lines.append(
            f"- FP32 torch on the test split ({t['n']} films): Dice {t['dice']['mean']:.4f} +- {t['dice']['sd']:.4f}, "
            f"IoU {t['iou']['mean']:.4f} +- {t['iou']['sd']:.4f}"
        )
    c = m.get("calibration_report")
    if c:
        p = c["model"]["test"]["pearson"]
        lines.append(
            f"- SMI estimate ({c['model']['form']}): test Pearson r {p['r']:.3f} (ceiling with mask area "
            f"{c['ceiling']['test']['pearson']['r']:.3f}), residual SD {c['model']['residual_sd']:.4f}"
        )
    for co in [m["cohort"], *m.get("also_cohorts", [])]:
        gen = (co.get("generator") or {}).get("version")
        lines.append(
            f"- cohort: {co.get('name')} ({co.get('n_films')} films, {co.get('n_people')} people, seed "
            f"{co.get('seed')}, phantom generator {gen})"
        )
    if m.get("initialised_from"):
        lines.append(f"- fine-tuned from the weights of `{m['initialised_from']}` (sarco train --init)")
    return "\n".join(lines) + "\n"

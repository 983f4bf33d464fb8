"""The comparison document: cohort, the default model, the architectures and encoders at an equal
budget, and the calibration of the default model next to the mask ceiling and the study. Every
number is read from the files the commands wrote (dataset.json, run.json, train_summary.json,
eval_test/summary.json, calibration.json), except the latency column, which this module measures.

    sarco report COHORT RUN [RUN ...] --final RUN --out train/RESULTS.md
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from edge.markdown import table

from .calibrate import calibration_markdown

HEADER = (
    "| model | encoder | params (M) | GFLOPs / film | torch ms / film | input | epochs | training time | "
    "Dice mean +- SD | IoU mean +- SD | abs area err % (median) |"
)


def gflops(model, size: tuple[int, int]) -> float:
    """Forward multiply-adds x 2 for one film at the model's input size, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 1, *size))
    return fc.get_total_flops() / 1e9


def torch_latency_ms(model, size: tuple[int, int], repeats: int = 10) -> float:
    """Median torch eager FP32 forward time at batch 1 (the CPU cost that picks the encoder)."""
    import torch

    m = model.to(memory_format=torch.channels_last)
    x = torch.zeros(1, 1, *size).to(memory_format=torch.channels_last)
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            m(x)
            if i >= 2:
                times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def commands(run: Path, cohort: Path) -> list[str]:
    """The `sarco train` invocations that built the run, from its recorded history."""
    meta = json.loads((run / "run.json").read_text())
    cfg = meta["config"]
    enc = "" if cfg["arch"] == "vnet" else f" --encoder {cfg['encoder']}"
    hist = meta.get("history") or [{"epochs": cfg["epochs"], "resume": False, "threads": cfg["threads"]}]
    out = []
    for h in hist:
        thr = f" --threads {h['threads']}" if h.get("threads") else ""
        out.append(
            f"sarco train {cohort} --run {run} --arch {cfg['arch']}{enc} --epochs {h['epochs']}"
            f"{' --resume' if h.get('resume') else ''}{thr}"
        )
    return out


def row(run: Path) -> tuple[str, dict]:
    s = json.loads((run / "train_summary.json").read_text())
    meta = json.loads((run / "run.json").read_text())
    size = tuple(meta["preprocessing"]["size"])
    ev = json.loads((run / "eval_test" / "summary.json").read_text())
    enc = meta["config"]["encoder"] if s["arch"] != "vnet" else "-"
    from .models import build_model

    model = build_model(s["arch"], meta["config"]["encoder"]).eval()
    g, ms = gflops(model, size), torch_latency_ms(model, size)
    line = (
        f"| {s['arch']} | {enc} | {s['params'] / 1e6:.2f} | {g:.1f} | {ms:.0f} | {size[0]}x{size[1]} | {s['epochs']} | "
        f"{s['train_seconds'] / 60:.0f} min | {ev['dice']['mean']:.4f} +- {ev['dice']['sd']:.4f} | "
        f"{ev['iou']['mean']:.4f} +- {ev['iou']['sd']:.4f} | {ev['abs_area_err_pct']['median']:.2f} |"
    )
    return line, ev


def target_lines(ev: dict | None, cal: dict | None) -> list[str]:
    """The training issue's targets, each with the measured value and whether it was met."""
    rows: list[list[str]] = []
    if ev:
        d, i = ev["dice"]["mean"], ev["iou"]["mean"]
        rows += [
            ["U-Net++ Dice >= 0.95", f"{d:.4f}", "yes" if d >= 0.95 else "no"],
            ["U-Net++ IoU >= 0.93", f"{i:.4f}", "yes" if i >= 0.93 else "no"],
        ]
    if cal:
        m, c = cal["model"]["test"], cal["ceiling"]["test"]
        dr = m["pearson"]["r"] - c["pearson"]["r"]
        rows.append(
            [
                "r within 0.01 of the mask ceiling (or above it)",
                f"{m['pearson']['r']:.3f} vs {c['pearson']['r']:.3f} ({dr:+.3f})",
                "yes" if dr >= -0.01 else "no",
            ]
        )
        for k in m["flags"]:
            am, ac = m["flags"][k]["auc"], c["flags"][k]["auc"]
            if am is None or ac is None:  # a test split without both classes has no AUC
                rows.append([f"{k} flag AUC within 0.02 of the ceiling", "not computable", "-"])
                continue
            rows.append(
                [
                    f"{k} flag AUC within 0.02 of the ceiling (or above it)",
                    f"{am:.3f} vs {ac:.3f} ({am - ac:+.3f})",
                    "yes" if am - ac >= -0.02 else "no",
                ]
            )
    return table(["target", "measured", "met"], rows)


def main(cohort: Path, runs: list[Path], final: Path | None, out: Path) -> None:
    """Write the results page (`sarco report`)."""
    import torch

    torch.set_num_threads(2)
    runs = runs or []
    info = json.loads((cohort / "dataset.json").read_text())
    c = info["ceiling"]
    lines = [
        "# Reproducing the study's comparison on the phantom cohort",
        "",
        "Generated by `sarco report "
        + " ".join([str(cohort), *map(str, runs)])
        + (f" --final {final}" if final else "")
        + f" --out {out}` from the files the commands below wrote; "
        "the torch ms column is measured by the report itself (median of 10 forward passes at batch 1, "
        "2 threads, FP32). Synthetic films only.",
        "",
        "## Cohort",
        "",
        f"`sarco phantom {cohort} --n {info['n_films']} --seed {info['seed']} --workers 2`: "
        f"{info['n_films']} films of {info['n_people']} people, generator {info['generator']['name']} "
        f"{info['generator']['version']}, seed {info['seed']}, ImagerPixelSpacing {info['parameters']['imager_pixel_spacing_mm']} mm, "
        f"splits by person {info['splits']}. People under the AWGS 2019 SMI cut-offs: {info['awgs2019_low_smi_share']:.1%}.",
        "",
        f"Ceiling Pearson r (mask thigh muscle area vs DEXA SMI, {c['films']} bilateral films): pooled {c['r_pooled']}, "
        f"women {c['r_F']} (n={c['n_F']}), men {c['r_M']} (n={c['n_M']}).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, 2 CPU cores, torch eager FP32, no GPU. "
        "Segmentation metrics are on the test split, on each film's own pixel grid "
        f"(`sarco evaluate RUN --data {cohort} --split test`), with the clinic's prediction path: the "
        "model's probability on the film and on its mirror image averaged (`edge.preprocess.flip_average`), "
        "mapped bilinearly to the film's grid, threshold 0.5.",
        "",
    ]
    final_ev = cal = None
    if final:
        line, final_ev = row(final)
        lines += [
            "## The default model",
            "",
            HEADER,
            "|" + "---|" * 11,
            line,
            "",
            "Trained by:",
            "",
            *[f"    {cmd}" for cmd in commands(final, cohort)],
            "",
            "Training time is the sum of the training loops' wall time over these commands "
            "(validation included, start-up and caching excluded).",
            "",
        ]
        if (final / "calibration.json").exists():
            cal = json.loads((final / "calibration.json").read_text())
    if runs:
        epochs = sorted({json.loads((r / "train_summary.json").read_text())["epochs"] for r in runs})
        lines += [
            "## Architectures and encoders at an equal budget",
            "",
            f"Each trained for {', '.join(map(str, epochs))} epochs with the same seed, batch, learning rate "
            "and schedule, one torch thread per run, two runs side by side on the 2 cores (so a training "
            "time here is a one-core time; other work shared the machine during parts of these runs, so the "
            "times are upper bounds; Dice and IoU do not depend on it).",
            "",
            HEADER,
            "|" + "---|" * 11,
        ]
        cmds = []
        for run in runs:
            lines.append(row(run)[0])
            cmds += commands(run, cohort)
        lines += ["", "Trained by:", "", *[f"    {cmd}" for cmd in cmds], ""]
    if cal:
        lines += [
            f"## SMI calibration of the default model ({final})",
            "",
            f"`sarco calibrate {final} --data {cohort}`",
            "",
            calibration_markdown(cal),
            f"Study figures: {cal['study']['source']}.",
            "",
        ]
    if final_ev or cal:
        lines += ["## Targets of the training issue", "", *target_lines(final_ev, cal), ""]
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())

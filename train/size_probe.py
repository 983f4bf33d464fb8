"""Choose the model input size by measurement: how much area a perfect segmentation loses by
passing through the model grid and back (the resolution floor), against the CPU cost of a
training step and of one inference of U-Net++ at that size.

    sarco size-probe COHORT [--films 40] [--out size_probe.md]
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from edge.dataset import load_cases, read_mask
from edge.markdown import row, table
from edge.measure import dice_iou
from edge.preprocess import resize_mask, to_film_grid, to_model_input
from edge.reader import read_film

SIZES = [(384, 160), (448, 160), (512, 192), (640, 256), (768, 288)]


def floor_metrics(cohort: Path, n: int, size: tuple[int, int]) -> tuple[float, float, float]:
    """Median Dice, median and 95th-percentile |area error| % of the truth mask sent through the grid."""
    dices, errs = [], []
    for case in load_cases(cohort)[:n]:
        film = read_film(case.image)
        truth = read_mask(case) == 1
        _, box = to_model_input(film.pixels, size)
        small = resize_mask(truth.astype(np.uint8), box).astype(np.float32)
        back = to_film_grid(cv2.GaussianBlur(small, (0, 0), 0.7), box) > 0.5
        d, _ = dice_iou(back, truth)
        dices.append(d)
        errs.append(100 * abs(np.count_nonzero(back) / np.count_nonzero(truth) - 1))
    return float(np.median(dices)), float(np.median(errs)), float(np.percentile(errs, 95))


def step_seconds(size: tuple[int, int], encoder: str) -> tuple[float, float]:
    import torch

    from .models import build_model

    m = build_model("unetpp", encoder).to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, *size).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters())
    for i in range(3):
        if i == 1:
            t = time.perf_counter()
        loss = m(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = (time.perf_counter() - t) / 2
    m.eval()
    with torch.no_grad():
        x1 = x[:1]
        m(x1)
        t = time.perf_counter()
        for _ in range(3):
            m(x1)
    return train_s, (time.perf_counter() - t) / 3


def main(cohort: Path, films: int = 40, encoder: str = "mobilenet_v2", out: Path = Path("size_probe.md")) -> None:
    """The table of `sarco size-probe`, printed row by row and written to `out`."""
    lines = [
        f"Input size probe on {cohort.name} ({films} films), U-Net++ {encoder}, torch eager FP32, "
        f"{__import__('os').cpu_count()} CPU cores, channels_last, batch 4 for the training step.",
        "",
        *table(
            ["H x W", "floor Dice (median)", "floor abs area err % (median)", "(95th pct)", "train step s"]
            + ["inference s"],
            [],
        ),
    ]
    for size in SIZES:
        d, e50, e95 = floor_metrics(cohort, films, size)
        tr, inf = step_seconds(size, encoder)
        lines.append(row([f"{size[0]} x {size[1]}", f"{d:.4f}", f"{e50:.2f}", f"{e95:.2f}", f"{tr:.2f}", f"{inf:.3f}"]))
        print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")

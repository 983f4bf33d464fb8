"""Export a trained model to OpenVINO IR (FP32 and FP16-compressed) with a static input shape,
checked against torch on real cohort films: a mismatch is refused, not written.

The model comes in as a torch module with its `ModelSpec`; loading a training run is the
training side's business (`train.trainer.load_run`), and the `sarco` entry composes the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edge.dataset import load_cases
from edge.measure import dice_iou
from edge.preprocess import to_model_input
from edge.reader import read_film

MAX_LOGIT_DIFF = 1e-3  # FP32 IR vs torch, relative to the logit range
MIN_MASK_DICE = 0.999


class ExportMismatch(Exception):
    pass


class ModelSpec(Protocol):
    """What quantize needs to know of a trained model (train's TrainConfig is one)."""

    arch: str
    encoder: str
    classes: str  # "binary" or "multi"
    size: tuple[int, int]


def convert(model, size: tuple[int, int]):
    import openvino as ov
    import torch

    return ov.convert_model(model, example_input=torch.zeros(1, 1, *size), input=[1, 1, *size])


def check_against_torch(ov_model, model, classes: str, films: list[np.ndarray], size: tuple[int, int]) -> dict:
    """Max abs logit difference and mask Dice (model grid) of the IR against torch, in f32."""
    import openvino as ov
    import torch

    from edge.ov import F32

    compiled = ov.Core().compile_model(ov_model, "CPU", F32)
    worst, dices, span = 0.0, [], 1.0
    for pixels in films:
        x, _ = to_model_input(pixels, size)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = compiled(x)[compiled.output(0)]
        span = max(span, float(np.abs(ref).max()))
        worst = max(worst, float(np.abs(ref - got).max()))
        if classes == "binary":
            dices.append(dice_iou(ref[0, 0] > 0, got[0, 0] > 0)[0])
    return {
        "max_abs_logit_diff": worst,
        "logit_span": span,
        "min_mask_dice": min(dices) if dices else None,
        "films": len(films),
    }


def export_model(model, cfg: ModelSpec, cohort: Path, out: Path, n_check: int = 8) -> dict:
    """Write out/model_fp32.xml and out/model_fp16.xml after the torch check; returns the check."""
    import openvino as ov

    size = tuple(cfg.size)
    ov_model = convert(model, size)
    cases = load_cases(cohort, "val")[:n_check] or load_cases(cohort)[:n_check]
    films = [read_film(c.image).pixels for c in cases]
    check = check_against_torch(ov_model, model, cfg.classes, films, size)
    if check["max_abs_logit_diff"] > MAX_LOGIT_DIFF * check["logit_span"] or (
        check["min_mask_dice"] is not None and check["min_mask_dice"] < MIN_MASK_DICE
    ):
        raise ExportMismatch(
            f"IR disagrees with torch: max |logit diff| {check['max_abs_logit_diff']:.3g}, "
            f"min mask Dice {check['min_mask_dice']}"
        )
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, out / "model_fp32.xml", compress_to_fp16=False)
    ov.save_model(ov_model, out / "model_fp16.xml", compress_to_fp16=True)
    return check

"""`sarco`: the developer's command line, composed from the rooms below it.

The training room (`train.cli`) and the quantization room (`quantize.cli`) never import each
other; this thin entry adds both sub-apps' commands and the three commands that need both a
trained run and quantization: it loads the run through `train.trainer.load_run` and hands the
torch model to `quantize` (`export`, `quantize`, `benchmark`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

import quantize.cli
import train.cli
from edge import __version__
from edge.console import composed, fail

console = Console(stderr=True)

_STACK = ["torch", "segmentation_models_pytorch"]
NEEDS: dict[str, list[str]] = {
    **train.cli.NEEDS,
    **quantize.cli.NEEDS,
    "export": _STACK + ["openvino"],
    "quantize": _STACK + ["nncf"],
    "benchmark": _STACK + ["onnxruntime"],
}
app = composed(
    "sarco-edge developer side: cohorts, training, evaluation, calibration, export, INT8, benchmarks.",
    NEEDS,
    train.cli.app,
    quantize.cli.app,
)


def _load(run: Path):
    from train.trainer import load_run

    try:
        return load_run(run)
    except FileNotFoundError:
        raise fail(f"no trained model in {run} (best.pt missing)", 2)


@app.command()
def export(
    run: Path = typer.Argument(..., help="A training run folder (best.pt)."),
    out: Path = typer.Option(..., "--out", help="Folder for model_fp32.xml / model_fp16.xml."),
    data: Path = typer.Option(..., "--data", help="Cohort whose films check the IR against torch."),
) -> None:
    """OpenVINO IR (FP32 and FP16-compressed), static input shape, checked against torch."""
    from quantize.export import ExportMismatch, export_model

    model, cfg = _load(run)
    try:
        check = export_model(model, cfg, data, out)
    except ExportMismatch as e:
        raise fail(f"{e}", 1)
    console.print_json(data=check)


@app.command()
def quantize(
    run: Path = typer.Argument(..., help="A training run folder (best.pt, calibration.json)."),
    data: Path = typer.Option(..., "--data", help="Cohort: train split calibrates, val split checks."),
    out: Path = typer.Option(..., "--out", help="Bundle folder to write, e.g. models/default."),
    max_drop: float = typer.Option(0.003, "--max-drop", help="Largest accepted val Dice drop, FP32 -> INT8."),
    calib_films: int = typer.Option(300, "--calib-films", min=1),
    version: str = typer.Option(__version__, "--version"),
) -> None:
    """NNCF INT8 under an accuracy check; writes the model bundle only if the check passes."""
    from quantize.int8 import QuantizeRefused, quantize_model

    model, cfg = _load(run)
    try:
        metrics = quantize_model(model, cfg, run, data, out, max_drop, calib_films, version=version, log=console.print)
    except QuantizeRefused as e:
        raise fail(f"{e}", 1, "refused")
    console.print_json(data=metrics)


@app.command()
def benchmark(
    run: Path = typer.Argument(..., help="The training run the bundle came from (torch and ONNX baselines)."),
    bundle: Path = typer.Option(Path("models/default"), "--bundle", help="The INT8 bundle."),
    data: Path = typer.Option(..., "--data", help="Cohort whose test films are timed."),
    films: int = typer.Option(20, "--films", min=2),
    out: Path = typer.Option(Path("benchmark.md"), "--out", help="Where the table is written."),
) -> None:
    """torch, ONNX Runtime, OpenVINO FP32/FP16/bf16 and INT8 on the same films: a table."""
    from quantize.benchmark import BACKENDS
    from quantize.benchmark import main as run_benchmark

    model, cfg = _load(run)
    run_benchmark(model, tuple(cfg.size), run, bundle, data, films, out, ",".join(BACKENDS))


if __name__ == "__main__":
    app()

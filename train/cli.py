"""`sarco`: the training-side command line (cohort generation now; training, evaluation, export later)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from edge import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help="sarco-edge training side.")
console = Console(stderr=True)


def fail(message: str, code: int, label: str = "error") -> typer.Exit:
    """One plain line on stderr (rich would wrap it), and the exit code to raise."""
    print(f"{label}: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def _bar() -> Progress:
    """The progress bar of the long training-side commands (phantom, evaluate)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@app.callback()
def main(ctx: typer.Context) -> None:
    """sarco-edge training side: cohorts, models, calibration, export."""
    import importlib.util

    # `sarco phantom` needs only the clinic install; every other command needs the training stack.
    if ctx.invoked_subcommand not in (None, "phantom"):

        def absent(m: str) -> bool:
            try:
                return importlib.util.find_spec(m) is None
            except (ImportError, ValueError):
                return True

        needs = ["torch", "segmentation_models_pytorch"] + (["nncf"] if ctx.invoked_subcommand == "quantize" else [])
        missing = [m for m in needs if absent(m)]
        if missing:
            raise fail(
                f"'sarco {ctx.invoked_subcommand}' needs the training stack ({', '.join(missing)} missing): "
                "pip install -e '.[train]'",
                2,
            )


@app.command()
def phantom(
    out: Path = typer.Argument(..., help="New folder for the cohort."),
    n: int = typer.Option(8, "--n", min=1, help="Number of films."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same pixels."),
    spacing_mm: float = typer.Option(
        0.5, "--spacing-mm", min=0.05, max=2.0, help="Detector pixel pitch (ImagerPixelSpacing), mm."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes; the cohort is identical for any number."),
    preview: bool = typer.Option(
        True, "--preview/--no-preview", help="Write preview.png, a contact sheet of the first films."
    ),
    compress: str = typer.Option(
        "none",
        "--compress",
        help="Transfer syntax of the DICOMs: none (explicit VR little endian), rle or j2k (lossless).",
    ),
) -> None:
    """Generate a synthetic long-leg cohort (PHANTOM.md layout) and print its ceiling r."""
    from .phantom.cohort import COMPRESSION, generate

    if compress != "none" and compress not in COMPRESSION:
        raise fail(f"--compress must be none, rle or j2k, not {compress!r}", 2)
    with _bar() as bar:
        tid = bar.add_task("films", total=n)
        try:
            info = generate(
                out,
                n,
                seed,
                spacing_mm,
                workers,
                preview,
                progress=lambda k, _: bar.update(tid, completed=k),
                compress=compress,
            )
        except FileExistsError as e:
            raise fail(f"{e}", 2)
    c = info["ceiling"]
    console.print(f"wrote {info['n_films']} films of {info['n_people']} people to {out} (splits {info['splits']})")
    console.print(
        f"median {info['timing']['median_s_per_film']} s per film per process, wall {info['timing']['wall_s']} s"
    )
    console.print(
        f"ceiling Pearson r (mask thigh muscle area vs DEXA SMI, {c['films']} bilateral films): "
        f"pooled {c['r_pooled']}, women {c['r_F']} (n={c['n_F']}), men {c['r_M']} (n={c['n_M']})"
    )
    console.print(f"share of people under the AWGS 2019 SMI cut-offs: {info['awgs2019_low_smi_share']:.1%}")
    if preview:
        console.print(f"preview: {out / 'preview.png'}")


@app.command()
def train(
    cohort: Path = typer.Argument(..., help="Cohort folder (dataset.json, cases.csv, images/, masks/)."),
    run: Path = typer.Option(..., "--run", help="Folder for this run: checkpoints, log.csv, curves.png."),
    arch: str = typer.Option("unetpp", "--arch", help="unet, unetpp or vnet."),
    encoder: str = typer.Option(None, "--encoder", help="smp encoder for unet/unetpp (default mobilenet_v2)."),
    classes: str = typer.Option("binary", "--classes", help="binary (thigh muscle) or multi (all five labels)."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    batch: int = typer.Option(4, "--batch", min=1),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after this many steps (quick probes)."),
    stop_after_epochs: int = typer.Option(
        None, "--stop-after-epochs", min=1, help="End this command after N epochs (--resume continues)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run from its last checkpoint."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: torch's default)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes augmenting batches ahead of the model."),
) -> None:
    """Train U-Net, U-Net++ or V-Net on the thigh muscle label; best checkpoint by val Dice."""
    from .models import ARCHS, DEFAULT_ENCODER
    from .trainer import TrainConfig
    from .trainer import train as run_training

    if arch not in ARCHS or classes not in ("binary", "multi"):
        raise fail(f"--arch must be one of {', '.join(ARCHS)}; --classes binary or multi", 2)
    cfg = TrainConfig(
        cohort=str(cohort),
        arch=arch,
        encoder=encoder or DEFAULT_ENCODER,
        classes=classes,
        epochs=epochs,
        batch=batch,
        lr=lr,
        seed=seed,
        max_steps=max_steps,
        stop_after_epochs=stop_after_epochs,
        threads=threads,
        device=device,
        workers=workers,
    )
    try:
        summary = run_training(cfg, run, resume=resume, console=console)
    except (FileExistsError, ValueError, FileNotFoundError) as e:
        raise fail(f"{e}", 2)
    console.print_json(data=summary)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A training run folder (best.pt) or a model bundle (manifest.json)."),
    data: Path = typer.Option(..., "--data", help="Cohort folder."),
    split: str = typer.Option("test", "--split", help="train, val, test, or e.g. train+val."),
) -> None:
    """Per-case Dice, IoU and area error on each film's own grid; CSV, summary.json and summary.md."""
    from .evaluate import evaluate_run

    with _bar() as bar:
        tid = bar.add_task(f"evaluate {split}", total=None)
        try:
            summary = evaluate_run(run, data, split, progress=lambda k, n: bar.update(tid, completed=k, total=n))
        except (ValueError, FileNotFoundError) as e:
            raise fail(f"{e}", 2)
    console.print_json(data={k: summary[k] for k in ("n", "dice", "iou", "abs_area_err_pct") if k in summary})


@app.command()
def calibrate(
    run: Path = typer.Argument(..., help="A training run folder (best.pt)."),
    data: Path = typer.Option(..., "--data", help="Cohort folder with DEXA columns."),
) -> None:
    """Fit area (+ sex, height) -> DEXA SMI on train+val, report agreement on test next to the mask ceiling."""
    from .calibrate import calibrate_run

    try:
        calibrate_run(run, data, console=console)
    except (ValueError, FileNotFoundError) as e:
        raise fail(f"{e}", 2)
    console.print((Path(run) / "calibration.md").read_text())


@app.command()
def export(
    run: Path = typer.Argument(..., help="A training run folder (best.pt)."),
    out: Path = typer.Option(..., "--out", help="Folder for model_fp32.xml / model_fp16.xml."),
    data: Path = typer.Option(..., "--data", help="Cohort whose films check the IR against torch."),
) -> None:
    """OpenVINO IR (FP32 and FP16-compressed), static input shape, checked against torch."""
    from quantize.export import ExportMismatch, export_run

    try:
        check = export_run(run, data, out)
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
    from quantize.int8 import QuantizeRefused, quantize_run

    try:
        metrics = quantize_run(run, data, out, max_drop, calib_films, version=version, log=console.print)
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
    """torch eager, ONNX Runtime, OpenVINO FP32/FP16/bf16 and INT8 on the same films: a table."""
    from quantize.benchmark import BACKENDS
    from quantize.benchmark import main as run_benchmark

    run_benchmark(run, bundle, data, films, out, ",".join(BACKENDS))


if __name__ == "__main__":
    app()

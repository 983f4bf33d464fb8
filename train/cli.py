"""The training room's commands (`sarco phantom/train/evaluate/calibrate/size-probe`): a Typer
sub-app that the top-level `sarco` entry (sarco.py) composes with the quantization room's.

Run alone with `python -m train.cli`. Every command but `phantom` needs the training stack
(`NEEDS`, checked before the command runs, here as in `sarco`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from edge.console import composed, fail, progress_bar

app = typer.Typer(add_completion=False, no_args_is_help=True, help="sarco-edge training side.")
console = Console(stderr=True)

_STACK = ["torch", "segmentation_models_pytorch"]
# What each command imports beyond the clinic install (`phantom` needs nothing more).
NEEDS: dict[str, list[str]] = {
    "train": _STACK,
    "evaluate": _STACK,
    "calibrate": _STACK,
    "size-probe": _STACK,
    "report": _STACK + ["scipy"],
}


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
    generator: int = typer.Option(
        1,
        "--generator",
        min=1,
        max=2,
        help="1: the PHANTOM.md phantom; 2: Visible Human thighs, clutter, raster exports.",
    ),
) -> None:
    """Generate a synthetic long-leg cohort (PHANTOM.md layout) and print its ceiling r.

    Generator 2 samples each film's spacing (0.14-1.5 mm) and format itself; --spacing-mm is for generator 1."""
    from .phantom.cohort import COMPRESSION, generate
    from .phantom.v2_cohort import generate2

    if compress != "none" and compress not in COMPRESSION:
        raise fail(f"--compress must be none, rle or j2k, not {compress!r}", 2)
    with progress_bar(console) as bar:
        tid = bar.add_task("films", total=n)
        step = lambda k, _: bar.update(tid, completed=k)  # noqa: E731
        try:
            if generator == 2:
                info = generate2(out, n, seed, workers, preview, progress=step, compress=compress)
            else:
                info = generate(out, n, seed, spacing_mm, workers, preview, progress=step, compress=compress)
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
    also: list[Path] = typer.Option(
        [], "--also", help="Another cohort whose train and val splits join the first's (repeatable)."
    ),
    init: Path = typer.Option(None, "--init", help="Start from this run's best weights (fine-tune)."),
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
        also=tuple(str(c) for c in also),
        init=str(init) if init else None,
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

    with progress_bar(console) as bar:
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


@app.command("size-probe")
def size_probe(
    cohort: Path = typer.Argument(..., help="Cohort folder."),
    films: int = typer.Option(40, "--films", min=1),
    encoder: str = typer.Option("mobilenet_v2", "--encoder"),
    out: Path = typer.Option(Path("size_probe.md"), "--out"),
) -> None:
    """Model input size against the floor it sets (Dice, area error) and the CPU time it costs."""
    from .size_probe import main as run_probe

    run_probe(cohort, films, encoder, out)


@app.command("screen-cohort")
def screen_cohort(
    cohort: Path = typer.Argument(
        ..., help="Cohort folder (cases.csv with sex, height and, for raster films, spacing)."
    ),
    model: Path = typer.Option(Path("models/default"), "--model", help="Model bundle."),
    out: Path = typer.Option(Path("screened.csv"), "--out", help="Per-film CSV."),
) -> None:
    """Screen every film of a cohort as the clinic would; count refusals among two-thigh films."""
    from .screen_cohort import main as run_screen_cohort

    run_screen_cohort(cohort, model, out)


@app.command()
def report(
    cohort: Path = typer.Argument(..., help="The cohort the runs were trained and tested on."),
    runs: list[Path] = typer.Argument(None, help="Runs trained at an equal budget."),
    final: Path = typer.Option(None, "--final", help="The run the default bundle is quantized from."),
    out: Path = typer.Option(Path("train/RESULTS.md"), "--out"),
) -> None:
    """train/RESULTS.md: the architectures compared at an equal budget, the final model, calibration."""
    from .report import main as write_report

    write_report(cohort, runs or [], final, out)


if __name__ == "__main__":
    composed("sarco-edge training side.", NEEDS, app)()

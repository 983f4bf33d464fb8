"""`sarco-edge info`, `calibrate`, `validate`, `benchmark` and `trust`: the bundle, a site's own
calibration and validation, what this laptop does, and which bundles it accepts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from . import __version__
from .cli_common import (
    _DEVICE,
    CRIT,
    DEVICE,
    EXIT_MODEL,
    EXIT_OUTPUT,
    MODEL,
    SPACING,
    _screener,
    err,
    fail,
    out,
)

app = typer.Typer()


@app.command()
def info(model: Path = MODEL) -> None:
    """The model bundle (its card, checksums verified) and the OpenVINO devices found."""
    from .bundle import BundleError, load_bundle
    from .ov import openvino

    ov = openvino()

    core = ov.Core()
    out.print(f"sarco-edge {__version__}, OpenVINO {ov.get_version()}")
    devices = core.available_devices
    for dev in devices:
        out.print(f"device {dev}: {core.get_property(dev, 'FULL_DEVICE_NAME')}")
    out.print(f"device used by default: CPU (AUTO would pick {devices[0] if devices else 'none'})")
    try:
        b = load_bundle(model)
    except BundleError as e:
        raise fail(f"model bundle: {e}", EXIT_MODEL)
    out.print(
        f"model bundle {b.root}: checksums verified ({len(b.manifest['sha256'])} files), "
        f"manifest sha256 {b.digest} ({b.trust})"
    )
    out.print((b.root / b.manifest["files"]["card"]).read_text())


def _run_site(label: str, what: str, work):
    """Run a site command's work with a progress bar; its errors become one line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .site import SiteError

    try:
        with Progress(
            f"[progress.description]{label}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            tid = bar.add_task(label, total=None)
            return work(lambda k, n: bar.update(tid, completed=k, total=n))
    except SiteError as e:
        raise fail(str(e), 2)
    except OSError as e:
        raise fail(f"{what} cannot be written ({e.strerror or type(e).__name__})", EXIT_OUTPUT)


@app.command()
def calibrate(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with the site's films."),
    dexa: Path = typer.Option(
        ...,
        "--dexa",
        exists=True,
        dir_okay=False,
        help="CSV: file, person, sex, height_cm, dexa_smi [, alm_kg, days_between].",
    ),
    out_dir: Path = typer.Option(..., "--out", help="New folder for the site bundle."),
    model: Path = MODEL,
    device: str = DEVICE,
    spacing_mm: float = SPACING,
    skip_unusable: bool = typer.Option(
        False, "--skip-unusable", help="Calibrate without films that cannot be read or assessed."
    ),
) -> None:
    """Fit this site's SMI calibration and decision thresholds on its own films and DEXA; write a new bundle."""
    from .site import site_calibrate

    scr = _screener(model, device)
    res = _run_site(
        "measuring",
        "the site bundle",
        lambda progress: site_calibrate(folder, dexa, out_dir, scr, spacing_mm, skip_unusable, progress),
    )
    t = Table(title=f"site bundle {out_dir.name} (trusted on this machine)", show_header=False)
    rep = res["report"]
    t.add_row("films / people", f"{res['films']} / {res['people']} ({res['excluded']} excluded)")
    t.add_row("form", f"{rep['form']} (cv RMSE " + ", ".join(f"{k} {v:.3f}" for k, v in rep["cv_rmse"].items()) + ")")
    t.add_row("interval", f"scale {rep['interval_scale']:.2f}, out-of-fold coverage {rep['oof_interval_coverage']:.3f}")
    for name, d in res["decision"].items():
        t.add_row(
            name,
            f"normal at p_low <= {d['clear']:.3f}, refer at >= {d['refer']:.3f}: sensitivity "
            f"{d['sensitivity']:.2f}, specificity {d['specificity']:.2f} (cleared {d['clear_specificity']:.2f}), "
            f"borderline {d['borderline_share']:.2f}",
        )
    out.print(t)


@app.command()
def validate(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with the site's films."),
    dexa: Path = typer.Option(..., "--dexa", exists=True, dir_okay=False, help="CSV as for calibrate."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for validation.json and validation.html."),
    model: Path = MODEL,
    device: str = DEVICE,
    criteria: str = CRIT,
    spacing_mm: float = SPACING,
) -> None:
    """How the bundle agrees with this site's DEXA: r, CCC, Bland-Altman, sensitivity/specificity, coverage."""
    from .criteria import CRITERIA
    from .site import site_validate

    if criteria not in CRITERIA:
        raise fail(f"--criteria must be one of {', '.join(CRITERIA)}", 2)
    scr = _screener(model, device)
    rep = _run_site(
        "screening",
        "the report",
        lambda progress: site_validate(folder, dexa, out_dir, scr, criteria, spacing_mm, progress),
    )
    a = rep["all"]
    if "pearson" in a:
        d = a["decision"]
        out.print(
            f"{rep['assessed']} of {rep['films']} films assessed: r {a['pearson']['r']:.3f}, CCC {a['ccc']:.3f}, "
            f"sensitivity {d['sensitivity']:.2f}, specificity {d['specificity']:.2f} (cleared "
            f"{d['clear_specificity']:.2f}), borderline {d['borderline_share']:.2f}, 95% interval coverage "
            f"{a['interval_coverage_95']:.3f}"
        )
    else:
        out.print(f"{rep['assessed']} of {rep['films']} films assessed: too few for agreement statistics")
    out.print(f"report: {out_dir / 'validation.html'}")


@app.command()
def benchmark(
    folder: Path = typer.Option(
        None, "--folder", exists=True, file_okay=False, help="Also time `batch` on this folder."
    ),
    model: Path = MODEL,
    device: list[str] = typer.Option(
        None, "--device", help="Device(s) to time (default: every device OpenVINO finds)."
    ),
    calls: int = typer.Option(40, "--calls", min=5, help="Films timed per device."),
    out_md: Path = typer.Option(None, "--out", help="Also write the table as Markdown."),
) -> None:
    """What this machine does: ms per film and films/s per device, and `batch` end to end."""
    from .benchmark import batch_films_per_s, markdown, model_rows
    from .bundle import BundleError
    from .files import write_text_atomic
    from .ov import openvino

    devices = list(device) if device else list(openvino().Core().available_devices)
    bad = [d for d in devices if not _DEVICE.match(d)]
    if bad:
        raise fail(f"--device must be CPU, GPU, GPU.N, NPU or AUTO, not {bad[0]!r}", 2)
    try:
        rows = model_rows(model, devices, calls)
        batch_res = batch_films_per_s(folder, model, devices[0]) if folder else None
    except BundleError as e:
        raise fail(f"model bundle: {e}", EXIT_MODEL)
    t = Table(title="sarco-edge benchmark")
    for col in ("device", "ms per film", "model calls/s", "films/s (model)", "requests"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["device"],
            f"{r['film_ms']:.1f}",
            f"{r['calls_per_s']:.1f}",
            f"{r['model_films_per_s']:.1f}",
            str(r["infer_requests"]),
        )
    out.print(t)
    if batch_res:
        out.print(f"batch end to end: {batch_res[0]} files at {batch_res[1]:.1f} films/s")
    if out_md:
        cmd = "sarco-edge benchmark" + (f" --folder {folder}" if folder else "") + f" --calls {calls}"
        try:
            write_text_atomic(out_md, markdown(rows, batch_res, cmd))
        except OSError as e:
            raise fail(f"{out_md.name} cannot be written ({e.strerror or type(e).__name__})", EXIT_OUTPUT)


@app.command()
def trust(
    bundle: Path = typer.Argument(..., help="A model bundle folder this site made (sarco-edge calibrate) or accepts."),
) -> None:
    """Record a bundle in this site's trust store, after checking every file against its manifest.

    The shipped bundle is pinned in the package; any other bundle runs only once trusted here,
    so an edited manifest (calibration, thresholds) or model file is refused.
    """
    from .bundle import BundleError, trust_bundle, trust_store

    try:
        digest = trust_bundle(bundle)
    except BundleError as e:
        raise fail(f"model bundle: {e}", EXIT_MODEL)
    except OSError as e:
        raise fail(f"trust store {trust_store()} cannot be written ({e.strerror or type(e).__name__})", 5)
    out.print(f"trusted {bundle.name}: manifest sha256 {digest}")

"""`sarco-edge inspect`, `screen` and `batch`: one film, or a folder into one CSV."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .cli_common import (
    _DEVICE,
    CRIT,
    DEVICE,
    EXIT_BAD_INPUT,
    EXIT_MODEL,
    EXIT_OUTPUT,
    GAIT,
    GRIP,
    HEIGHT,
    MODEL,
    SEX,
    SPACING,
    _new_screener,
    _options,
    _screener,
    check_device,
    err,
    fail,
    out,
)

app = typer.Typer()


def film_summary(path: Path, spacing_mm: float | None) -> dict:
    """What the reader found in a file, without the patient's name or id."""
    from .reader import read_film

    f = read_film(path, spacing_mm=spacing_mm)
    return {
        "file": path.name,
        "format": f.source_format,
        "rows": int(f.pixels.shape[0]),
        "columns": int(f.pixels.shape[1]),
        "photometric": f.photometric,
        "bits_stored": f.bits_stored,
        "transfer_syntax": f.transfer_syntax,
        "modality": f.modality,
        "body_part": f.body_part,
        "pixel_spacing_mm": list(f.spacing_mm) if f.spacing_mm else None,
        "pixel_spacing_source": f.spacing_source,
        "sex": f.sex,
        "height_m": f.height_m,
        "height_source": f.height_source,
        "age_years": f.age_years,
        "notes": list(f.notes),
    }


@app.command()
def inspect(
    image: Path = typer.Argument(..., help="DICOM (.dcm or no extension), PNG, JPEG or TIFF."),
    spacing_mm: float = typer.Option(None, "--spacing-mm", help="Pixel spacing to use when the file has none, mm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Read one film and show what the clinic runtime sees: size, photometry, spacing and its source, sex, height."""
    from .reader import ReadError

    try:
        info = film_summary(image, spacing_mm)
    except ReadError as e:
        raise fail(f"{image.name}: {e}", EXIT_BAD_INPUT)
    if as_json:
        print(json.dumps(info))
        return
    t = Table(title=f"{info['file']}", show_header=False)
    for k, v in info.items():
        if k != "file":
            t.add_row(k, "-" if v is None or v == [] else str(v))
    out.print(t)


def _check_overlay_path(overlay: Path, image: Path) -> None:
    """--overlay must be a new or existing .png in an existing folder, never the input itself."""
    if overlay.suffix.lower() != ".png":
        raise fail("--overlay must name a .png file", 2)
    if not overlay.parent.is_dir():
        raise fail(f"--overlay folder does not exist: {overlay.parent.name or overlay.parent}", 2)
    try:
        same = overlay.exists() and image.exists() and overlay.resolve().samefile(image.resolve())
    except OSError:
        same = False
    if same:
        raise fail("--overlay names the input image; choose another file", 2)


def _human(rep, name: str) -> None:
    t = Table(title=f"sarco-edge screen: {name}", show_header=False)
    for label, value in rep.table_rows():
        t.add_row(label, value)
    out.print(t)
    out.print(rep.note)


def _dicom_out():
    """edge.dicom_out, imported only when asked for (highdicom is not needed to screen)."""
    from . import dicom_out

    return dicom_out


@app.command()
def screen(
    image: Path = typer.Argument(..., help="DICOM (.dcm or no extension), PNG, JPEG or TIFF."),
    sex: str = SEX,
    height_cm: float = HEIGHT,
    criteria: str = CRIT,
    grip_kg: float = GRIP,
    gait_speed: float = GAIT,
    spacing_mm: float = SPACING,
    model: Path = MODEL,
    device: str = DEVICE,
    overlay: Path = typer.Option(None, "--overlay", help="Write a PNG of the measured muscle over the film."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Folder for DICOM SEG, SR and overlay SC (DICOM films)."),
) -> None:
    """Screen one long-leg film: thigh muscle area, SMI estimate with its 95% interval, and a flag."""
    from concurrent.futures import ThreadPoolExecutor

    opts = _options(sex, height_cm, criteria, grip_kg, gait_speed, spacing_mm)
    if overlay is not None:
        _check_overlay_path(overlay, image)
    # Start-up: the bundle is verified and compiled (OpenVINO, OpenCV) in a thread while this one
    # imports the reader (pydicom and its decoders) and reads the film; the compile itself runs
    # without the interpreter lock, so on two cores the two overlap.
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(_new_screener, model, device) if _DEVICE.match(device or "") else None
        from .reader import ReadError, read_film

        try:
            film = read_film(image, spacing_mm=spacing_mm)
        except ReadError as e:
            raise fail(f"{image.name}: {e}", EXIT_BAD_INPUT)
        if dicom_out is not None and (problem := _dicom_out().source_problem(film, dicom_out)):
            raise fail(f"{image.name}: {problem}", 2)
        scr = _screener(model, device, loading=loading)
    res = scr.screen(film, opts)
    if overlay:
        from .screen import write_overlay

        write_overlay(overlay, res.film, res.mask, res.report)
    if dicom_out is not None and (problem := _dicom_out().write_for_cli(dicom_out, image, res)):
        raise fail(problem, EXIT_OUTPUT)
    if as_json:
        print(json.dumps(res.report.to_dict()))
    else:
        _human(res.report, image.name)


def _check_batch_outputs(out_csv: Path, resume: bool, overlays: Path | None) -> None:
    if out_csv.exists() and not resume:
        raise fail(f"{out_csv.name} exists; pass --resume to continue it or choose another --out", 2)
    if not out_csv.parent.is_dir():
        raise fail(f"--out folder does not exist: {out_csv.parent}", 2)
    if overlays is not None and overlays.exists() and not overlays.is_dir():
        raise fail(f"--overlays is a file, not a folder: {overlays.name}", 2)


def _print_counts(counts: dict) -> None:
    t = Table(title="batch summary", show_header=False)
    for k, v in counts.items():
        t.add_row(k.replace("_", " "), str(v))
    err.print(t)


def _batch_bar():
    """batch's progress bar on stderr: films done, films per second, time left; gone when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} films/s" if task.speed else "- films/s")

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), Rate())
    return Progress(*columns, TimeRemainingColumn(), console=err, transient=True)


def _batch_engine(engine, scheduler, model, device, workers, opts, overlays):
    """(screener, None) for the local engine; (None, a started DaskEngine) for dask."""
    if engine == "local":
        if scheduler:
            raise fail("--scheduler needs --engine dask", 2)
        return _screener(model, device, "THROUGHPUT" if workers else None), None
    if engine != "dask":
        raise fail("--engine must be local or dask", 2)
    from .bundle import BundleError, load_bundle
    from .engine import DaskEngine, EngineError

    check_device(device)
    try:
        load_bundle(model)  # a bad bundle is one line here, before any worker starts
        return None, DaskEngine(model, device, opts, overlays, max(workers, 1), scheduler)
    except BundleError as e:
        raise fail(f"model bundle: {e}", EXIT_MODEL)
    except EngineError as e:
        raise fail(str(e), 2)
    except OSError as e:  # no scheduler at that address, or the cluster could not start
        raise fail(f"--engine dask: the cluster could not be reached or started ({type(e).__name__})", 2)


@app.command()
def batch(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder to screen, recursively."),
    out_csv: Path = typer.Option(..., "--out", help="CSV to write, one row per file (errors included)."),
    overlays: Path = typer.Option(None, "--overlays", help="Folder for overlay PNGs."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted batch: skip files already in the CSV."
    ),
    sex: str = SEX,
    height_cm: float = HEIGHT,
    criteria: str = CRIT,
    spacing_mm: float = SPACING,
    model: Path = MODEL,
    device: str = DEVICE,
    workers: int = typer.Option(
        None, "--workers", min=0, help="Threads reading films while the model runs (default: cores, at most 4)."
    ),
    engine: str = typer.Option("local", "--engine", help="local, or dask (optional extra: sarco-edge[cluster])."),
    scheduler: str = typer.Option(None, "--scheduler", help="With --engine dask: a cluster's scheduler address."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Folder for DICOM SEG, SR and SC per DICOM film."),
) -> None:
    """Screen every image under a folder into one CSV, with a progress bar and a summary."""
    from .batch import BatchError, default_workers, run_batch

    opts = _options(sex, height_cm, criteria, None, None, spacing_mm)
    _check_batch_outputs(out_csv, resume, overlays)
    workers = default_workers() if workers is None else workers
    if dicom_out is not None and (problem := _dicom_out().batch_problem(folder, dicom_out)):
        raise fail(problem, 2)
    scr, engine_run = _batch_engine(engine, scheduler, model, device, workers, opts, overlays)
    inner = engine_run.outcomes if engine_run else None
    tee = _dicom_out().batch_outcomes(dicom_out, inner, scr, opts, workers) if dicom_out is not None else None
    try:
        with _batch_bar() as bar:
            tid = bar.add_task("screening", total=None)
            counts = run_batch(
                folder,
                out_csv,
                opts,
                scr,
                overlays,
                resume,
                progress=lambda k, n: bar.update(tid, completed=k, total=n),
                workers=workers,
                outcomes=tee or inner,
            )
    except BatchError as e:
        raise fail(str(e), 2)
    except OSError as e:
        what = Path(e.filename).name if e.filename else out_csv.name
        raise fail(
            f"output cannot be written ({what}: {e.strerror or type(e).__name__}); rows so far are kept, "
            "fix it and run again with --resume",
            EXIT_OUTPUT,
        )
    finally:
        if engine_run:
            engine_run.close()
    _print_counts({**counts, **(tee.counts if tee else {})})

"""`sarco-edge`: the clinic command line. No torch, no network.

Exit codes (documented in README): 0 ok, 2 usage error, 3 the input could not be read as a film,
4 model bundle problem, 5 an output could not be written.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from . import __version__

EXIT_BAD_INPUT = 3
EXIT_MODEL = 4
EXIT_OUTPUT = 5

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="sarco-edge: offline thigh-muscle screening on long-leg radiographs. A screening aid, not a diagnosis.",
)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    """One plain line on stderr (no wrapping, no markup), and the exit code to raise."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


@app.callback()
def main() -> None:
    """sarco-edge clinic runtime."""
    import warnings

    # Library warnings (pydicom, numpy) are for developers; what matters reaches the user as a
    # note, a reason or one error line. Set once here, never swapped per call (not thread-safe).
    warnings.simplefilter("ignore")


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


_DEVICE = re.compile(r"^(CPU|GPU(\.\d+)?|NPU|(AUTO|MULTI|HETERO)(:[A-Z0-9.,]+)?)$")


def _new_screener(model: Path | None, device: str, hint: str | None = None):
    from .screen import Screener

    return Screener(model, device, hint=hint)


def _screener(model: Path | None, device: str, hint: str | None = None, loading=None):
    """The screener (bundle verified, model compiled), or one error line; `loading`: a future of
    `_new_screener` already started (screen compiles while it reads the film)."""
    from .bundle import BundleError

    if not _DEVICE.match(device or ""):
        raise fail("--device must be CPU, GPU, GPU.N, NPU or AUTO (AUTO:..., MULTI:..., HETERO:...)", 2)
    try:
        return loading.result() if loading else _new_screener(model, device, hint)
    except BundleError as e:
        raise fail(f"model bundle: {e}", EXIT_MODEL)
    except Exception as e:  # OpenVINO could not compile: a model or device problem, one line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise fail(f"model could not be loaded on {device}: {first}", EXIT_MODEL)


def _options(sex, height_cm, criteria, grip_kg, gait_speed, spacing_mm):
    from .criteria import CRITERIA
    from .screen import Options

    if sex is not None and sex.upper() not in ("F", "M"):
        raise fail("--sex must be F or M", 2)
    if criteria not in CRITERIA:
        raise fail(f"--criteria must be one of {', '.join(CRITERIA)}", 2)
    return Options(
        sex=sex.upper() if sex else None,
        height_cm=height_cm,
        criteria=criteria,
        grip_kg=grip_kg,
        gait_mps=gait_speed,
        spacing_mm=spacing_mm,
    )


SEX = typer.Option(None, "--sex", help="F or M (default: DICOM PatientSex).")
HEIGHT = typer.Option(None, "--height-cm", min=50, max=250, help="Height in cm (default: DICOM PatientSize).")
CRIT = typer.Option("awgs2019", "--criteria", help="awgs2019 or ewgsop2.")
GRIP = typer.Option(None, "--grip-kg", min=0, help="Grip strength, kg.")
GAIT = typer.Option(None, "--gait-speed", min=0, help="Usual gait speed, m/s.")
SPACING = typer.Option(None, "--spacing-mm", min=0.01, max=10, help="Pixel spacing when the file has none, mm.")
MODEL = typer.Option(None, "--model", help="Model bundle folder (default: the shipped bundle).")
DEVICE = typer.Option("CPU", "--device", help="CPU, GPU, NPU or AUTO.")


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
    from .reader import ReadError, read_film
    from .screen import write_overlay

    with ThreadPoolExecutor(1) as pool:  # start-up: the bundle is verified and compiled while the film is read
        loading = pool.submit(_new_screener, model, device) if _DEVICE.match(device or "") else None
        try:
            film = read_film(image, spacing_mm=spacing_mm)
        except ReadError as e:
            raise fail(f"{image.name}: {e}", EXIT_BAD_INPUT)
        if dicom_out is not None and (problem := _dicom_out().source_problem(film, dicom_out)):
            raise fail(f"{image.name}: {problem}", 2)
        scr = _screener(model, device, loading=loading)
    res = scr.screen(film, opts)
    if overlay:
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

    if not _DEVICE.match(device or ""):
        raise fail("--device must be CPU, GPU, GPU.N, NPU or AUTO (AUTO:..., MULTI:..., HETERO:...)", 2)
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
        None, "--workers", min=0, help="Processes reading films while the model runs (default: CPU cores; 0: none)."
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
            f"{d['sensitivity']:.2f}, specificity {d['specificity']:.2f}, borderline {d['borderline_share']:.2f}",
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
            f"sensitivity {d['sensitivity']:.2f}, specificity {d['specificity']:.2f}, borderline "
            f"{d['borderline_share']:.2f}, 95% interval coverage {a['interval_coverage_95']:.3f}"
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


@app.command()
def listen(
    port: int = typer.Option(..., "--port", min=1, max=65535, help="TCP port to listen on (104 or 11112 are usual)."),
    ae_title: str = typer.Option("SARCO_EDGE", "--ae-title", help="This node's AE title."),
    allow: list[str] = typer.Option(..., "--allow", help="A calling AE title that may send films (repeat it)."),
    spool: Path = typer.Option(..., "--spool", help="Folder that keeps received films and unsent results."),
    send_to: str = typer.Option(..., "--send-to", help="Where results go: AE@host:port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    criteria: str = CRIT,
    model: Path = MODEL,
    device: str = DEVICE,
) -> None:
    """A DICOM node: receives films (C-STORE), screens them, sends DICOM SEG + SR + overlay SC back."""
    from .listen import Destination, ListenError, serve

    try:
        Destination.parse(send_to)  # a bad option is one line before the model loads
        opts, scr = _options(None, None, criteria, None, None, None), _screener(model, device)
        serve(spool, host, port, ae_title, allow, send_to, scr, opts)
    except ListenError as e:
        raise fail(str(e), 2)
    except OSError as e:
        raise fail(f"--spool cannot be used ({e.strerror or type(e).__name__})", EXIT_OUTPUT)


if __name__ == "__main__":
    app()

"""`sarco-edge`: the clinic command line. No torch, no network.

Exit codes (documented in README): 0 ok, 2 usage error, 3 the input could not be read as a film,
4 model bundle problem.
"""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .reader import ReadError, read_film

EXIT_BAD_INPUT = 3
EXIT_MODEL = 4

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="sarco-edge: offline thigh-muscle screening on long-leg radiographs. A screening aid, not a diagnosis.")
out = Console()
err = Console(stderr=True)


@app.callback()
def main() -> None:
    """sarco-edge clinic runtime."""


def film_summary(path: Path, spacing_mm: float | None) -> dict:
    """What the reader found in a file, without the patient's name or id."""
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
    try:
        info = film_summary(image, spacing_mm)
    except ReadError as e:
        err.print(f"error: {image.name}: {e}", markup=False, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if as_json:
        print(json.dumps(info))
        return
    t = Table(title=f"{info['file']}", show_header=False)
    for k, v in info.items():
        if k != "file":
            t.add_row(k, "-" if v is None or v == [] else str(v))
    out.print(t)


@app.command()
def info() -> None:
    """The installed version and the OpenVINO devices found on this machine."""
    import openvino as ov

    core = ov.Core()
    out.print(f"sarco-edge {__version__}, OpenVINO {ov.get_version()}")
    for dev in core.available_devices:
        out.print(f"device {dev}: {core.get_property(dev, 'FULL_DEVICE_NAME')}")
    out.print("model bundle: none shipped yet (see README, 'Status').")


if __name__ == "__main__":
    app()

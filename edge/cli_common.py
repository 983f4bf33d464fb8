"""What the clinic command line's rooms share: exit codes, consoles, the one-line error, the
options every screening command takes, and loading the screener (one error line on failure)."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console

from .console import fail

EXIT_BAD_INPUT = 3

EXIT_MODEL = 4

EXIT_OUTPUT = 5

out = Console()


err = Console(stderr=True)


_DEVICE = re.compile(r"^(CPU|GPU(\.\d+)?|NPU|(AUTO|MULTI|HETERO)(:[A-Z0-9.,]+)?)$")


def _new_screener(model: Path | None, device: str, hint: str | None = None):
    from .screen import Screener

    return Screener(model, device, hint=hint)


def check_device(device: str | None) -> None:
    """An OpenVINO device name, or one usage line (exit 2) before anything is loaded."""
    if not _DEVICE.match(device or ""):
        raise fail("--device must be CPU, GPU, GPU.N, NPU or AUTO (AUTO:..., MULTI:..., HETERO:...)", 2)


def _screener(model: Path | None, device: str, hint: str | None = None, loading=None):
    """The screener (bundle verified, model compiled), or one error line; `loading`: a future of
    `_new_screener` already started (screen compiles while it reads the film)."""
    from .bundle import BundleError

    check_device(device)
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

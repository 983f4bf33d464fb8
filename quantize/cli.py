"""The quantization room's commands that work on files alone (`sarco gate/adopt/clinic-benchmark/
profile-film/startup-profile`): a Typer sub-app that the top-level `sarco` entry (sarco.py) composes with the
training room's. The commands that need a trained torch model (`export`, `quantize`,
`benchmark`) are composed in sarco.py, which loads the run and hands the model over, so this
room never imports the training code. Run alone with `python -m quantize.cli`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from edge.console import composed, fail

from . import clinic_benchmark, profile_film, startup_profile

app = typer.Typer(add_completion=False, no_args_is_help=True, help="sarco-edge quantization side.")
console = Console(stderr=True)

# What each command imports beyond the clinic install (these need nothing more).
NEEDS: dict[str, list[str]] = {}


@app.command()
def gate(
    bundle: Path = typer.Argument(..., help="The model bundle whose manifest gets the thresholds."),
    data: list[Path] = typer.Option(..., "--data", help="Cohort folder (repeatable: each generation's)."),
    split: str = typer.Option("val", "--split", help="The films the thresholds are chosen on."),
) -> None:
    """Choose the quality gate's anatomical thresholds on validation films, into the manifest."""
    from .gate import write_gate

    console.print_json(data=write_gate(bundle, data, split))


@app.command()
def adopt(
    site: Path = typer.Argument(..., help="A bundle written by `sarco-edge calibrate`."),
    into: Path = typer.Option(..., "--into", help="The shipped bundle (same model files) to carry it into."),
    command: str = typer.Option(..., "--command", help="The command that made the site bundle (for the card)."),
) -> None:
    """Carry a site calibration into a shipped bundle; prints the manifest digest to pin."""
    from .adopt import adopt as run_adopt

    try:
        print(run_adopt(site, into, command))
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise fail(f"{e}", 2)


# Their options live with their code (at the top they import only the standard library and typer).
app.command("clinic-benchmark")(clinic_benchmark.main)
app.command("profile-film")(profile_film.main)
app.command("startup-profile")(startup_profile.main)


if __name__ == "__main__":
    composed("sarco-edge quantization side.", NEEDS, app)()

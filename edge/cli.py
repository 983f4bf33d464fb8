"""`sarco-edge`: the clinic command line. No torch, no network.

The commands live in rooms of their own (`cli_film`: inspect, screen, batch; `cli_site`: info,
calibrate, validate, benchmark, trust; `cli_dicom`: listen), composed here; what they share is in
`cli_common`. Exit codes (documented in README): 0 ok, 2 usage error, 3 the input could not be
read as a film, 4 model bundle problem, 5 an output could not be written.
"""

from __future__ import annotations

import typer

from . import cli_dicom, cli_film, cli_site

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="sarco-edge: offline thigh-muscle screening on long-leg radiographs. A screening aid, not a diagnosis.",
)


@app.callback()
def main() -> None:
    """sarco-edge clinic runtime."""
    import warnings

    # Library warnings (pydicom, numpy) are for developers; what matters reaches the user as a
    # note, a reason or one error line. Set once here, never swapped per call (not thread-safe).
    warnings.simplefilter("ignore")


for _room in (cli_film, cli_site, cli_dicom):
    app.add_typer(_room.app)


if __name__ == "__main__":
    app()

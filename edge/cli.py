"""`sarco-edge`: the clinic command line. No torch, no network.

The commands live in rooms of their own (`cli_film`: inspect, screen, batch; `cli_site`: info,
calibrate, validate, benchmark, trust; `cli_dicom`: listen), composed here; what they share is in
`cli_common`. Exit codes (documented in README): 0 ok, 2 usage error, 3 the input could not be
read as a film, 4 model bundle problem, 5 an output could not be written.
"""

from __future__ import annotations

import os
import sys

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

# One-film commands a person waits for: once their output is written and flushed, the process ends
# without the interpreter's teardown (unloading OpenVINO's plugins and threads took about 100 ms of
# a 0.7 s `screen`). Commands that keep pools, clusters or listeners exit the ordinary way.
QUICK_EXIT = frozenset({"screen", "inspect"})


def run() -> None:
    """The console entry point (`sarco-edge`, `python -m edge.cli`): `app` with a quick exit."""
    quick = len(sys.argv) > 1 and sys.argv[1] in QUICK_EXIT
    try:
        app()
    except SystemExit as exc:
        if not quick:
            raise
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    run()

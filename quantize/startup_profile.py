"""Where a warm `sarco-edge screen` spends its time, phase by phase, each run in a fresh process
(the model cache warm): interpreter start, the CLI's own imports, the reader's (pydicom and its
decoders), the screener's (OpenCV, OpenVINO), bundle verification, the compile from the cache,
reading the film, and screening it. Phases run one after the other here (the CLI overlaps the
compile with the read); medians of `--runs`. Timing only: nothing is asserted about it.

    sarco startup-profile FILM [--runs 7] [--out startup.md]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer

from edge.markdown import table

CHILD = r"""
import json, sys, time
t = [time.perf_counter()]
import edge.cli
t.append(time.perf_counter())
from edge.reader import read_film
t.append(time.perf_counter())
import openvino
from edge.bundle import load_bundle
from edge.screen import Options, Screener
t.append(time.perf_counter())
scr = Screener()
t.append(time.perf_counter())
film = read_film(sys.argv[1])
t.append(time.perf_counter())
scr.screen(film, Options()).report.to_dict()
t.append(time.perf_counter())
load_bundle()
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
import os
sys.stdout.flush()
os._exit(0)  # as `screen` ends (edge.cli.run): no interpreter teardown
"""
PHASES = (
    "imports: edge.cli (typer, rich)",
    "imports: the reader (pydicom and its decoders)",
    "imports: the screener (OpenCV, OpenVINO)",
    "Screener: bundle verification + compile from the model cache",
    "read the film",
    "screen it (model, mask, areas, report)",
)
VERIFY = "of the Screener: bundle verification alone (timed again after)"


def main(film: Path, runs: int = typer.Option(7, "--runs", min=1), out: Path = typer.Option(None, "--out")) -> None:
    """Where a warm screen's start-up goes, phase by phase (fresh processes, medians)."""
    rows, walls = [], []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", CHILD, str(film.resolve())], capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "child failed")
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
    med = [statistics.median(r[i] for r in rows) for i in range(len(PHASES))]
    wall = statistics.median(walls)
    lines = [
        "# Where a warm `screen` start goes",
        "",
        f"Command: `sarco startup-profile {film.name} --runs {runs}` "
        f"({os.cpu_count()} CPU cores; each run a fresh process, model cache warm; medians).",
        "",
    ]
    cells = [["interpreter start and exit (the rest of the process's wall time)", f"{1000 * (wall - sum(med)):.0f}"]]
    cells += [[name, f"{1000 * v:.0f}"] for name, v in zip(PHASES, med)]
    cells.append([VERIFY, f"{1000 * statistics.median(r[len(PHASES)] for r in rows):.0f}"])
    cells.append(["the whole process, wall", f"{1000 * wall:.0f}"])
    lines += table(["phase", "ms"], cells)
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)

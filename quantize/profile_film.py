"""Where one film's time goes, end to end, as `sarco-edge screen` spends it (cProfile).

    sarco profile-film FILM [--repeat 5] [--out firmware_notes/profile.md]

Start-up (imports, bundle verification, compile) is timed once; the film is then screened
`--repeat` times in the same process and cProfile's cumulative times are grouped by stage.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path

import typer

from edge.markdown import table

STAGES = {  # stage: functions whose cumulative time it is (the first match wins, in this order)
    "read and decode (edge.reader.read_film)": ("read_film",),
    "model calls (OpenVINO, 2 per film)": ("__call__",),
    "preprocess (normalise, letterbox)": ("to_model_input",),
    "back to the film grid (edge.preprocess.to_film_grid)": ("to_film_grid",),
    "area and side split (edge.measure.thigh_areas)": ("thigh_areas",),
    "quality gate (edge.quality)": ("quality_gate", "femur_support"),
}


def main(film: Path, repeat: int = typer.Option(5, "--repeat", min=1), out: Path = typer.Option(None, "--out")) -> None:
    """Where one film's time goes, end to end (cProfile, grouped by stage)."""
    t0 = time.perf_counter()
    from edge.reader import read_film
    from edge.screen import Options, Screener

    t1 = time.perf_counter()
    scr = Screener()
    t2 = time.perf_counter()
    prof = cProfile.Profile()
    t3 = time.perf_counter()
    prof.enable()
    for _ in range(repeat):
        scr.screen(read_film(film), Options())
    prof.disable()
    per_film = (time.perf_counter() - t3) / repeat
    st = pstats.Stats(prof)
    cum = {}
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in st.stats.items():
        for stage, names in STAGES.items():
            if name in names and ("edge" in file or name == "__call__" and "openvino" in file):
                cum[stage] = cum.get(stage, 0.0) + ct
    rows = [("imports (edge.screen, OpenVINO)", t1 - t0), ("bundle verification and compile (Screener)", t2 - t1)]
    rows += [(stage, cum.get(stage, 0.0) / repeat) for stage in STAGES]
    rows.append(("one film in total (warm, in process)", per_film))
    lines = [
        "# Where one film's time goes",
        "",
        f"Command: `sarco profile-film {film.name} --repeat {repeat}`"
        " (cProfile; stages are cumulative times of the functions named, per film; start-up once).",
        "",
        *table(["stage", "ms"], [[k, f"{1000 * v:.1f}"] for k, v in rows]),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        from edge.files import write_text_atomic

        write_text_atomic(out, text)

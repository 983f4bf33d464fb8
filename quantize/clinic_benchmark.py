"""What a clinic user waits for: `sarco-edge screen` wall time and peak RSS (cold and with a warm
OpenVINO cache), and `sarco-edge batch` films per second end to end, for each batch variant.

    sarco clinic-benchmark COHORT [--films 200] [--rounds 3] [--before-src DIR]
        [--engine dask] [--out clinic_benchmark.md]

Variants run alternately, round after round, so a busy machine slows each about equally; the
table gives medians. `--before-src DIR`: also run the `edge` package found in DIR (for example
`git archive <commit> edge | tar -x -C DIR`) for a before/after in one run. Peak RSS is the
largest sum over the process tree (the batch, its reading workers and decoder children).
Timing only: nothing is asserted about it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edge.markdown import table

if TYPE_CHECKING:
    import psutil

REPO = Path(__file__).resolve().parents[1]


def _tree_rss_mb(proc: psutil.Process) -> float:
    import psutil  # here, not at the top: `sarco` lists this command on a clinic install too

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a child that has just ended
            total += p.memory_info().rss
    return total / 2**20


def _timed(args: list[str], env: dict, cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, peak tree RSS (MB, sampled every 20 ms) and CPU seconds (user + system of the
    command and every process it waited for: reading workers, decoder children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import psutil

    proc, peak = psutil.Process(p.pid), 0.0
    while p.poll() is None:
        peak = max(peak, _tree_rss_mb(proc))
        time.sleep(0.02)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[3:5])} exited {p.returncode}: {p.stderr.read().decode()[-300:]}")
    return wall, peak, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _env(src: Path) -> dict:
    """Run the `edge` package in `src` with the bundle beside it (each version pins its own)."""
    bundle = next(d for d in (src / "models" / "default", REPO / "models" / "default") if d.is_dir())
    return {"PYTHONPATH": str(src.resolve()), "SARCO_EDGE_MODEL": str(bundle.resolve())}


def _variants(
    before_src: Path | None, src: Path, engine: str | None, local: bool = True
) -> list[tuple[str, dict, list[str]]]:
    """(label, extra environment, extra batch arguments); `local` False keeps only the default
    batch and the engine (a long folder, where the other variants would double the run)."""
    now = _env(src)
    out = []
    if before_src:
        out.append((f"before ({before_src.name}), batch", _env(before_src), []))
        if engine:  # the engine before and after, side by side too
            args = ["--engine", engine, "--workers", "2"]
            out.append((f"before ({before_src.name}), batch --engine {engine} (2 workers)", _env(before_src), args))
    if local:
        out.append(("now, batch --workers 0 (films read ahead, the model in turn)", now, ["--workers", "0"]))
        out.append(("now, batch --workers 1", now, ["--workers", "1"]))
    out.append(("now, batch (default: a reading thread per core, async model)", now, []))
    if engine:
        out.append((f"now, batch --engine {engine} (2 workers)", now, ["--engine", engine, "--workers", "2"]))
    return out


def main(
    cohort: Path,
    films: int = typer.Option(200),
    out: Path = typer.Option(Path("clinic_benchmark.md")),
    repeats: int = typer.Option(5, help="warm screen runs per variant"),
    rounds: int = typer.Option(3, help="batch runs per variant, alternating"),
    before_src: Path = typer.Option(None, help="folder holding an older `edge` package to compare"),
    engine: str = typer.Option(None, help="also time `batch --engine ENGINE` (dask)"),
    src: Path = typer.Option(REPO, help="folder holding the `edge` package timed as `now` (default: this checkout)"),
    local_variants: bool = typer.Option(True, "--local-variants/--default-only", help="also --workers 0 and 1"),
) -> None:
    """What a clinic user waits for: screen wall time and RSS, batch films per second per variant."""
    found = sorted((cohort.resolve() / "images").glob("*.dcm"))
    images = found[:films]
    variants = _variants(before_src, src, engine, local_variants)
    screens: dict[str, list] = {}
    batches: dict[str, list] = {label: [] for label, _, _ in variants}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        folder = tmp / "films"
        folder.mkdir()
        for k in range(films):  # a folder larger than the cohort repeats its films under new names
            f = found[k % len(found)]
            os.symlink(f.resolve(), folder / (f.name if k < len(found) else f"r{k // len(found)}_{f.name}"))
        base = dict(os.environ)
        who = ([("before", _env(before_src))] if before_src else []) + [("now", _env(src))]
        cmd = [sys.executable, "-m", "edge.cli", "screen"]
        for f in images[: 1 + repeats]:  # the first film with an empty cache, then warm; alternating
            for label, extra in who:
                env = {**base, **extra, "SARCO_EDGE_CACHE": str(tmp / f"cache-{label}")}
                screens.setdefault(label, []).append(_timed([*cmd, str(f), "--json"], env, tmp))
        for r in range(rounds):
            for label, extra, args in variants:
                env = {**base, **extra, "SARCO_EDGE_CACHE": str(tmp / "cache-batch")}
                csv = tmp / f"r{r}-{len(batches[label])}-{abs(hash(label))}.csv"
                cmd = [sys.executable, "-m", "edge.cli", "batch", str(folder), "--out", str(csv), *args]
                batches[label].append(_timed(cmd, env, tmp))
    text = _table(cohort, films, out, rounds, before_src, engine, screens, batches, films, src, local_variants)
    out.write_text(text)
    print(text)


def _table(cohort, films, out, rounds, before_src, engine, screens, batches, n, src, local=True) -> str:
    cmd = f"sarco clinic-benchmark {cohort} --films {films} --rounds {rounds}"
    cmd += f" --before-src {before_src}" if before_src else ""
    cmd += f" --src {src}" if src != REPO else ""
    cmd += f" --engine {engine}" if engine else ""
    cmd += "" if local else " --default-only"
    lines = [
        f"Clinic timings on {os.cpu_count()} CPU cores, phantom films of {cohort.name} (0.5 mm detector pitch), "
        "default INT8 bundle on CPU, wall time of the whole command in a fresh process (`python -m edge.cli`). "
        "Variants alternate round by round; medians."
        + (
            f" The cohort has {len(list((cohort / 'images').glob('*.dcm')))} films: a longer folder repeats them."
            if n > len(list((cohort / "images").glob("*.dcm")))
            else ""
        ),
        "",
        f"Command: `{cmd} --out {out}`",
        "",
    ]
    cells = []
    for who, runs in screens.items():
        cold, warm = runs[0], runs[1:]
        cells.append([f"{who}: screen, first run (empty model cache)", f"{cold[0]:.2f} s, peak RSS {cold[1]:.0f} MB"])
        cells.append(
            [
                f"{who}: screen, cache warm (median of {len(warm)})",
                f"{statistics.median(r[0] for r in warm):.2f} s (CPU {statistics.median(r[2] for r in warm):.2f} s), "
                f"peak RSS {max(r[1] for r in warm):.0f} MB (max)",
            ]
        )
    for label, runs in batches.items():
        walls = [r[0] for r in runs]
        med = statistics.median(walls)
        cpu = statistics.median(r[2] for r in runs)
        cells.append(
            [
                f"{label}: {n} films (median of {len(runs)})",
                f"{med:.1f} s = {n / med:.1f} films/s (runs {', '.join(f'{n / w:.1f}' for w in walls)}); "
                f"CPU {1000 * cpu / n:.0f} ms per film; peak RSS {max(r[1] for r in runs):.0f} MB",
            ]
        )
    return "\n".join(lines + table(["what", "result"], cells)) + "\n"

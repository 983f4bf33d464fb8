"""What a clinic user waits for: `sarco-edge screen` wall time and peak RSS (cold and with a warm
OpenVINO cache), and `sarco-edge batch` films per second end to end.

    python -m quantize.clinic_benchmark COHORT [--films 200] [--out clinic_benchmark.md]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer


def _child_peak(args: list[str], env: dict) -> tuple[float, float]:
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True); w = time.perf_counter() - t; "
        "print(p.returncode, w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if not p.stdout.strip():
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "benchmark wrapper failed")
    rc, wall, rss = p.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(args[-3:])} exited {rc}")
    return float(wall), float(rss)


def main(
    cohort: Path,
    films: int = typer.Option(200),
    out: Path = typer.Option(Path("clinic_benchmark.md")),
    repeats: int = typer.Option(5),
) -> None:
    exe = shutil.which("sarco-edge") or str(Path(sys.executable).with_name("sarco-edge"))
    images = sorted((cohort / "images").glob("*.dcm"))
    with tempfile.TemporaryDirectory() as td:
        env = {**os.environ, "SARCO_EDGE_CACHE": str(Path(td) / "cache")}
        film = images[0]
        cold = _child_peak([exe, "screen", str(film), "--json"], env)
        warm = [_child_peak([exe, "screen", str(f), "--json"], env) for f in images[1 : 1 + repeats]]
        folder = Path(td) / "films"
        folder.mkdir()
        for f in images[:films]:
            os.symlink(f.resolve(), folder / f.name)
        t = time.perf_counter()
        done = subprocess.run(
            [exe, "batch", str(folder), "--out", str(Path(td) / "r.csv")], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1])
        batch_s = time.perf_counter() - t
        n = len(list(folder.iterdir()))
    lines = [
        f"Clinic timings on {os.cpu_count()} CPU cores, phantom films of {cohort.name} (0.5 mm detector pitch), "
        "default INT8 bundle on CPU, wall time of the whole command in a fresh process.",
        "",
        f"Command: `python -m quantize.clinic_benchmark {cohort} --films {films} --out {out}`",
        "",
        "| what | result |",
        "|---|---|",
        f"| screen, first run (empty model cache) | {cold[0]:.2f} s, peak RSS {cold[1]:.0f} MB |",
        f"| screen, cache warm (median of {len(warm)}) | {statistics.median(w for w, _ in warm):.2f} s, "
        f"peak RSS {max(r for _, r in warm):.0f} MB (max) |",
        f"| batch of {n} films, end to end | {batch_s:.1f} s = {n / batch_s:.1f} films/s |",
    ]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    typer.run(main)

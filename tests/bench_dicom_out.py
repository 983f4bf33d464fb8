"""What `batch --dicom-out` costs: the same films batched with and without it, for the `edge` package
of this checkout and (optionally) an older one, in alternating rounds; medians into a table.

    python tests/bench_dicom_out.py FILMS [--before-src DIR] [--rounds 3] [--out FILE]
    python tests/bench_dicom_out.py FILMS --profile 12      # where one film's DICOM writing goes
    python tests/bench_dicom_out.py FILMS --in-process       # per film, the start-up left out

Each run is `sarco-edge batch FILMS --out CSV [--dicom-out DIR]` in a fresh process with default
options; wall seconds and CPU seconds (user + system of the process tree) are measured. The order of
the variants rotates every round so that a change in the machine's load does not favour one.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(src: Path, films: Path, dicom: bool) -> tuple[float, float]:
    """(wall s, CPU s) of one batch, `edge` imported from `src`."""
    # `python -m edge.cli` in a temporary folder, so PYTHONPATH's `edge` is the one timed (the
    # console script's entry point may not exist in an older tree).
    exe = [sys.executable, "-m", "edge.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*exe, "batch", str(films), "--out", f"{tmp}/r.csv"] + (["--dicom-out", f"{tmp}/d"] if dicom else [])
        env = {**os.environ, "PYTHONPATH": str(src)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr[-2000:]}")
        if dicom:
            assert len(list(Path(tmp, "d").iterdir())) == len(list(films.glob("*.dcm"))), "a folder is missing"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def table(films: Path, rounds: int, variants: dict, runs: dict, loads: list, cmdline: str) -> str:
    n = len(list(films.glob("*.dcm")))
    lines = [
        "# `batch --dicom-out`: cost per film",
        "",
        f"`{cmdline}`: {n} films, {rounds} alternating rounds, medians; `sarco-edge batch FILMS --out CSV`",
        "with default options (reading threads = cores), with and without `--dicom-out DIR`.",
        f"Machine: {os.cpu_count()} cores; load average {min(loads):.1f} to {max(loads):.1f} when a run "
        "began (a one-minute average that counts the previous runs' own threads). CPU seconds (user + "
        "system of the process tree) are steadier than wall seconds.",
        "",
        "| edge package | variant | wall s | s per film | CPU s | CPU s per film | wall vs without |",
        "|---|---|---|---|---|---|---|",
    ]
    for (who, dicom), label in variants.items():
        wall = statistics.median(w for w, _ in runs[(who, dicom)])
        cpu = statistics.median(c for _, c in runs[(who, dicom)])
        base = statistics.median(w for w, _ in runs[(who, False)])
        extra = f"+{100 * (wall / base - 1):.0f} %" if dicom else ""
        lines.append(f"| {who} | {label} | {wall:.1f} | {wall / n:.3f} | {cpu:.1f} | {cpu / n:.3f} | {extra} |")
    lines += ["", "Every run: " + "; ".join(f"{who} {label}: " + ", ".join(f"{w:.1f}" for w, _ in runs[(who, d)])
                                           + " s" for (who, d), label in variants.items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def profile(films: Path, n: int) -> None:
    """CPU seconds per film of `write_outputs` on `n` screened films (this process, no batch), then
    cProfile's cumulative shares of the parts (profiling inflates the times, not the shares)."""
    import cProfile
    import pstats

    from edge.dicom_out import write_outputs
    from edge.reader import read_film
    from edge.screen import Options, Screener

    scr, opts = Screener(), Options()
    done = [(f, scr.screen(read_film(f), opts)) for f in sorted(films.glob("*.dcm"))[:n]]
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(Path(tmp), "warm", *done[0])
        t = time.process_time()
        for i, (f, res) in enumerate(done):
            write_outputs(Path(tmp), f"a{i}", f, res)
        print(f"write_outputs: {(time.process_time() - t) / len(done):.3f} CPU s per film ({len(done)} films)")
        prof = cProfile.Profile(time.process_time)
        prof.runcall(lambda: [write_outputs(Path(tmp), f"b{i}", f, r) for i, (f, r) in enumerate(done)])
    stats = pstats.Stats(prof).stats
    total = max(v[3] for v in stats.values())
    parts = ("build_files", "seg_bytes", "sr_bytes", "sc_bytes", "sc_overlay", "side_labels", "split_sides",
             "source_header", "copied", "_write_folder", "fsync")  # fmt: skip
    for (path, _line, name), v in sorted(stats.items(), key=lambda kv: -kv[1][3]):
        if name in parts:
            print(f"{100 * v[3] / total:5.1f} %  {name}  ({Path(path).parent.name}/{Path(path).name})")


def in_process(films: Path, rounds: int) -> None:
    """The same batch with and without the DICOM writer, in this process after one start-up
    (so the per-film cost without the fixed start), alternating; wall and CPU seconds per run and
    the writer thread's own CPU (time.thread_time around each film's folder)."""
    from edge import dicom_batch
    from edge.batch import run_batch
    from edge.pipeline import screen_stream
    from edge.screen import Options, Screener

    scr, opts, spent = Screener(hint="THROUGHPUT"), Options(), []
    real = dicom_batch.write_one

    def timed(*args):
        t = time.thread_time()
        try:
            return real(*args)
        finally:
            spent.append(time.thread_time() - t)

    dicom_batch.write_one = timed
    n = len(list(films.glob("*.dcm")))
    for r in range(rounds):
        for dicom in (r % 2 == 1, r % 2 == 0):
            with tempfile.TemporaryDirectory() as tmp:
                inner = lambda todo: screen_stream(scr, opts, todo, os.cpu_count() or 1)  # noqa: E731
                outcomes = dicom_batch.DicomTee(Path(tmp) / "d", inner) if dicom else inner
                spent.clear()
                t, c0 = time.perf_counter(), os.times()
                run_batch(films, Path(tmp) / "r.csv", opts, scr, outcomes=outcomes)
                c1 = os.times()
                cpu = c1.user + c1.system - c0.user - c0.system
                print(
                    f"round {r + 1}, {'with' if dicom else 'without'} --dicom-out: {time.perf_counter() - t:.2f} s wall, "
                    f"{1000 * cpu / n:.1f} ms CPU per film, writer thread {1000 * sum(spent) / n:.1f} ms per film",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("films", type=Path)
    ap.add_argument("--before-src", type=Path, help="folder holding an older `edge` package to compare")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--profile", type=int, metavar="N", help="profile the DICOM writing of N films instead")
    ap.add_argument("--in-process", action="store_true", help="time both in this process, start-up excluded")
    a = ap.parse_args()
    if a.profile:
        return profile(a.films, a.profile)
    if a.in_process:
        return in_process(a.films.resolve(), a.rounds)
    srcs = {"now": REPO} | ({f"before ({a.before_src.name})": a.before_src.resolve()} if a.before_src else {})
    variants = {(who, d): ("with --dicom-out" if d else "without") for who in srcs for d in (False, True)}
    runs: dict = {k: [] for k in variants}
    loads = [os.getloadavg()[0]]
    order = list(variants)
    for r in range(a.rounds):
        for who, dicom in order[r % len(order) :] + order[: r % len(order)]:
            runs[(who, dicom)].append(run(srcs[who], a.films.resolve(), dicom))
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}: {who} {variants[(who, dicom)]}: {runs[(who, dicom)][-1][0]:.1f} s", flush=True)
    cmdline = "python tests/bench_dicom_out.py FILMS" + (f" --before-src {a.before_src}" if a.before_src else "")
    text = table(a.films, a.rounds, variants, runs, loads, cmdline + f" --rounds {a.rounds}")
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()

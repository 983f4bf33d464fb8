"""`batch --workers N` (films read in worker processes, the model in asynchronous requests) writes
the same rows as the single-process path, errors and skipped entries included, and keeps the
resumable CSV's guarantees."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO


def _batch(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "batch", str(folder), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _folder(demo_cohort: Path, dest: Path, n: int = 5) -> Path:
    dest.mkdir()
    for f in sorted((demo_cohort / "images").glob("*.dcm"))[:n]:
        shutil.copy(f, dest / f.name)
    (dest / "broken.dcm").write_bytes(b"DICM but not really")
    (dest / ".hidden.dcm").write_bytes(b"x")
    return dest


def test_workers_give_the_same_rows_as_one_process(demo_cohort: Path, tmp_path: Path):
    folder = _folder(demo_cohort, tmp_path / "in")
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    res = _batch(folder, one, "--workers", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    res = _batch(folder, many, "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = _rows(one), _rows(many)
    assert [r["status"] for r in a].count("ok") == 5
    assert {r["file"]: r["status"] for r in a}[".hidden.dcm"] == "skipped"
    assert {r["file"]: r["status"] for r in a}["broken.dcm"] == "error"
    assert a == b  # every cell: areas, sides, SMI, p_low, flag, errors, in the same order
    assert one.read_bytes() == many.read_bytes()


def test_workers_resume_a_torn_csv_without_duplicates(demo_cohort: Path, tmp_path: Path):
    folder = _folder(demo_cohort, tmp_path / "in", n=4)
    out = tmp_path / "r.csv"
    assert _batch(folder, out, "--workers", "2").returncode == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + lines[3][:10])  # header, two rows and a torn third
    res = _batch(folder, out, "--workers", "2", "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _rows(out)
    assert len(rows) == len({r["file"] for r in rows}) == 6
    assert sorted(out.read_bytes().splitlines()) == sorted(whole.splitlines())


def _spawned_children() -> list[int]:
    """Pids of this process's children started by multiprocessing's spawn (the reading workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmd:
            pids.append(int(stat.parent.name))
    return pids


def test_a_reading_worker_killed_mid_run_loses_no_row(demo_cohort: Path, tmp_path: Path):
    """The pool breaks; a new one reads the films still waiting, and every film gets its one row,
    the same as without the kill."""
    from edge.batch import run_batch
    from edge.screen import Options, Screener

    folder = _folder(demo_cohort, tmp_path / "in", n=8)
    scr = Screener(cache_dir=None, hint="THROUGHPUT")
    reference = tmp_path / "one.csv"
    run_batch(folder, reference, Options(), scr, workers=0)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if done == 1 and not killed:
            killed.extend(_spawned_children()[:1])
            os.kill(killed[0], signal.SIGKILL)

    out = tmp_path / "killed.csv"
    counts = run_batch(folder, out, Options(), scr, progress=kill_one, workers=2)
    assert killed, "no reading worker was running"
    rows = _rows(out)
    assert counts["screened"] == 8 and len(rows) == 10 == len({r["file"] for r in rows})
    assert rows == _rows(reference)

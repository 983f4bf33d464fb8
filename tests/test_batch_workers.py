"""`batch --workers N` (films read in threads, the model in asynchronous requests) writes the same
rows as the one-film-at-a-time path, errors and skipped entries included, and keeps the resumable
CSV's guarantees."""

from __future__ import annotations

import csv
import shutil
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


def test_a_film_whose_reading_blows_up_gets_its_row_and_the_batch_goes_on(
    demo_cohort: Path, tmp_path: Path, monkeypatch
):
    """Not a ReadError but an unforeseen exception in a reading thread: that film's row says so,
    every other film's row is as without it, in the same order."""
    from edge import pipeline
    from edge.batch import run_batch
    from edge.screen import Options, Screener

    folder = _folder(demo_cohort, tmp_path / "in", n=6)
    scr = Screener(cache_dir=None, hint="THROUGHPUT")
    reference = tmp_path / "one.csv"
    run_batch(folder, reference, Options(), scr, workers=0)
    victim = sorted(folder.glob("*.dcm"))[2].name
    real = pipeline.read_film

    def flaky(path, **kw):
        if Path(path).name == victim:
            raise RuntimeError("a decoder bug")
        return real(path, **kw)

    monkeypatch.setattr(pipeline, "read_film", flaky)
    out = tmp_path / "flaky.csv"
    counts = run_batch(folder, out, Options(), scr, workers=2)
    rows, ref = _rows(out), _rows(reference)
    assert counts["screened"] == 5 and [r["file"] for r in rows] == [r["file"] for r in ref]
    bad = next(r for r in rows if r["file"] == victim)
    assert (bad["status"], bad["error_kind"], bad["error"]) == (
        "error",
        "screen_failed",
        "reading failed (RuntimeError)",
    )
    assert [r for r in rows if r["file"] != victim] == [r for r in ref if r["file"] != victim]

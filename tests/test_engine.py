"""`batch --engine dask` on a local cluster started here: the same rows as the single-process batch,
one bundle load per worker, and a worker killed mid-run leaves no gap and no duplicate in the CSV.
Needs the optional extra (sarco-edge[cluster]), which the test extra installs."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The engine is an optional extra (cluster); the clinic install collects this module and skips it.
pytest.importorskip("distributed", reason="needs the cluster extra: pip install -e '.[cluster]'")

from edge.batch import run_batch  # noqa: E402
from edge.screen import Options, Screener  # noqa: E402
from tests.helpers import REPO  # noqa: E402


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _folder(demo_cohort: Path, dest: Path, n: int) -> Path:
    dest.mkdir()
    for f in sorted((demo_cohort / "images").glob("*.dcm"))[:n]:
        shutil.copy(f, dest / f.name)
    return dest


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_killed_mid_run_loses_no_row_and_duplicates_none(demo_cohort: Path, tmp_path: Path):
    from distributed import LocalCluster

    from edge.engine import DaskEngine

    folder = _folder(demo_cohort, tmp_path / "in", 8)
    reference = tmp_path / "one.csv"
    run_batch(folder, reference, Options(), Screener(cache_dir=None), workers=0)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    engine = DaskEngine(None, "CPU", Options(), workers=2, scheduler=cluster.scheduler_address, timeout_s=120, chunk=2)
    try:
        pids = engine.client.run(os.getpid)
        loads = engine.client.run(lambda dask_worker: id(dask_worker.sarco_screener))
        assert len(pids) == 2 and len(set(loads.values())) == 2  # one screener in each worker
        killed: list[tuple[int, int]] = []

        def kill_one(done: int, total: int) -> None:
            if done == 1 and not killed:
                busy = engine.client.processing()
                addr = max(busy, key=lambda a: len(busy[a]))
                killed.append((pids[addr], len(busy[addr])))
                os.kill(pids[addr], signal.SIGKILL)

        out = tmp_path / "dask.csv"
        counts = run_batch(folder, out, Options(), None, progress=kill_one, outcomes=engine.outcomes)
    finally:
        engine.close()
        cluster.close()
    assert killed and killed[0][1] >= 1, killed  # the worker had films in hand when it died
    assert not _alive(killed[0][0])
    rows, ref = _rows(out), _rows(reference)
    assert counts["screened"] == 8 and len(rows) == 8 == len({r["file"] for r in rows})
    assert rows == ref  # every cell, in the same order


def test_engine_dask_from_the_command_line_and_a_bad_engine(demo_cohort: Path, tmp_path: Path):
    folder = _folder(demo_cohort, tmp_path / "in", 3)
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "edge.cli", "batch", str(folder), "--out", str(out)]
    res = subprocess.run([*cmd, "--engine", "dask", "--workers", "2"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert [r["status"] for r in _rows(out)] == ["ok"] * 3
    bad = subprocess.run([*cmd, "--resume", "--engine", "spark"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --engine must be local or dask", bad.stderr


def test_own_cluster_workers_keep_glibc_adaptive_malloc_and_screen_in_chunks(
    demo_cohort: Path, tmp_path: Path, monkeypatch
):
    """The cluster the engine starts itself: its workers run without Dask's MALLOC_TRIM_THRESHOLD_
    (which made every film's arrays page-fault afresh), and a folder longer than one chunk, with a
    skipped entry inside a chunk, gives the single-process batch's rows in order."""
    from edge.engine import DaskEngine

    # A Nanny started earlier in this process (another test's cluster) exports it into os.environ.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    folder = _folder(demo_cohort, tmp_path / "in", 8)
    films = len(list(folder.glob("*.dcm")))
    (folder / ".hidden.dcm").write_bytes(b"x")  # skipped, sorted among the films
    reference = tmp_path / "one.csv"
    run_batch(folder, reference, Options(), Screener(cache_dir=None), workers=0)
    engine = DaskEngine(None, "CPU", Options(), workers=2, timeout_s=120, chunk=3)
    try:
        envs = engine.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        forked = engine.client.run(lambda: "pytest" in sys.modules)  # inherited, never imported there
        out = tmp_path / "dask.csv"
        counts = run_batch(folder, out, Options(), None, outcomes=engine.outcomes)
        restarted = _restart_one(engine)
    finally:
        engine.close()
    assert len(envs) == 2 and set(envs.values()) == {None}, envs
    assert films > 3 and counts["screened"] == films and counts["skipped"] == 1
    assert _rows(out) == _rows(reference)
    # Forked at the cluster's start (Linux); a worker restarted mid-batch is spawned, not forked
    # from a process that by then runs batch threads.
    assert list(forked.values()) == [sys.platform.startswith("linux")] * 2, forked
    assert restarted == {"pytest": False, "screener": True}, restarted


def _restart_one(engine) -> dict:
    """Kill one worker of the engine's cluster, wait for its nanny to start another; what it has."""
    import time

    pids = engine.client.run(os.getpid)
    victim = next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            now = engine.client.run(os.getpid)
        except Exception:  # a worker gone between the scheduler's list and the call
            continue
        if len(now) == 2 and victim not in now.values():
            new = next(a for a, p in now.items() if p not in pids.values())
            got = engine.client.run(
                lambda dask_worker: ("pytest" in sys.modules, hasattr(dask_worker, "sarco_screener")), workers=[new]
            )
            return dict(zip(("pytest", "screener"), got[new], strict=True))
    raise AssertionError("the killed worker was not restarted")


def test_the_first_start_forks_on_linux_only():
    from edge.engine import first_start_method

    assert first_start_method("linux") == "fork"
    assert first_start_method("win32") == first_start_method("darwin") == "spawn"


def test_tasks_are_about_four_per_worker_within_bounds():
    from edge.engine import chunk_size

    assert chunk_size(200, 2) == 25  # 8 tasks, 4 per worker
    assert chunk_size(201, 2) == 26
    assert chunk_size(20, 2) == 8  # never under 8 films a task
    assert chunk_size(10_000, 2) == 32  # nor over 32
    assert chunk_size(200, 0) == 32  # a cluster that reports no worker yet counts as one

"""`sarco-edge batch --engine dask`: the films of a folder spread over the workers of a Dask cluster
(a `LocalCluster` on this machine, or `--scheduler ADDRESS`), the rows still written by the one
batch process into the same resumable CSV (edge.batch: lock, whole fsynced lines, resume).

Optional: `pip install "sarco-edge[cluster]"`; nothing else imports this module. Each worker loads
and verifies the bundle and compiles the model once (a worker plugin), then screens films by path,
so every worker must see the folder at the same path. A task is a chunk of films that the worker
runs through the same pipeline as a local batch (edge.pipeline: a reading thread while the model
runs), so a worker overlaps reading with inference and the scheduler handles a task per chunk,
not per film. A worker that dies takes its chunks with it; the scheduler runs them again
elsewhere and the writer keeps one row per file, so the CSV has no gap and no duplicate. A chunk
that kills worker after worker is tried again film by film, so only the film that does it gets an
error row.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

PLUGIN = "sarco-edge-screener"

# Films per task: about four tasks per worker, at least 8 (enough to keep a worker's reading
# thread ahead of its model) and at most 32 (little to redo when a worker dies). Each task starts
# the worker's pipeline afresh: on 200 films and 2 workers, tasks of 8 took 6.92 s, of 12 6.54 s,
# of 16 6.47 s and of 25 6.29 s (firmware_notes, "Dask's start").
MIN_CHUNK, MAX_CHUNK, TASKS_PER_WORKER = 8, 32, 4


def chunk_size(films: int, workers: int) -> int:
    """Films per task for a folder of `films` on `workers` workers."""
    return max(MIN_CHUNK, min(MAX_CHUNK, -(-films // (max(workers, 1) * TASKS_PER_WORKER))))


class EngineError(Exception):
    """The engine cannot start (not installed, no cluster). str(e) is one line."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise EngineError('--engine dask needs the optional extra: pip install "sarco-edge[cluster]"') from None
    return distributed


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _PluginBase
except ImportError:  # the extra is not installed: DaskEngine says so in one line
    _PluginBase = object


def first_start_method(platform: str = sys.platform) -> str:
    """How our own cluster's workers are first started: forked on Linux, where a worker then
    inherits this process's imports (distributed, NumPy) instead of importing them again (about
    0.5 s of a 200-film run's wall time on 2 cores, firmware_notes). At that moment this process
    runs only Dask's event loop and its queue threads, no batch thread. Spawned elsewhere:
    Windows has no fork, and macOS's system frameworks are not safe to fork."""
    return "fork" if platform.startswith("linux") else "spawn"


class ScreenerPlugin(_PluginBase):
    """Loads, verifies and compiles the bundle once per worker process (again in a restarted one)."""

    name = PLUGIN

    def __init__(self, model_dir: str | None, device: str, threads: int = 0) -> None:
        self.model_dir, self.device, self.threads = model_dir, device, threads

    def setup(self, worker) -> None:
        import warnings

        from .screen import Screener

        warnings.simplefilter("ignore")  # as edge.cli.main does for the writer process
        model = Path(self.model_dir) if self.model_dir else None
        worker.sarco_screener = Screener(model, self.device, threads=self.threads)


def screen_path(path: str, rel: str, opts, overlays: str | None):
    """Worker side: one film's outcome (a chunk tried again film by film after killing workers)."""
    return screen_chunk([(path, rel)], opts, overlays)[0]


def screen_chunk(items: list[tuple[str, str]], opts, overlays: str | None) -> list:
    """Worker side: each film's Report, or its ReadError / RuntimeError as a value, in order."""
    from distributed import get_worker

    from .batch import Entry
    from .pipeline import screen_stream

    screener = get_worker().sarco_screener
    entries = [Entry(Path(path), rel) for path, rel in items]
    return [_value(e, got, overlays) for e, got in screen_stream(screener, opts, entries, workers=1)]


def _value(entry, got, overlays: str | None):
    """A pipeline outcome as sent back: the report alone (not the film's pixels), or the error."""
    from .reader import ReadError

    if isinstance(got, ReadError):
        return got
    if isinstance(got, BaseException) or got is None:
        return RuntimeError(str(got or "screening failed"))
    if overlays:
        from .batch import overlay_name
        from .screen import write_overlay

        write_overlay(Path(overlays) / overlay_name(entry.rel), got.film, got.mask, got.report)
    return got.report


class DaskEngine:
    """A client on a cluster with the screener plugin; `outcomes` is run_batch's `outcomes`."""

    def __init__(self, model_dir, device, opts, overlays=None, workers=2, scheduler=None, timeout_s=600.0, chunk=None):
        distributed = _distributed()
        self.chunk = chunk
        self.opts, self.overlays, self.timeout_s = opts, str(overlays) if overlays else None, timeout_s
        self.cluster, threads = None, 0
        if scheduler is None:  # workers share this machine: OpenVINO threads split between them
            threads = max(1, (os.cpu_count() or 1) // max(1, workers))
            import dask

            # Dask starts its workers with MALLOC_TRIM_THRESHOLD_ set, which turns off glibc's
            # adaptive mmap threshold: each film's few-MB arrays were then mapped and unmapped
            # afresh, page faults and all (9x this process's system time). Unset for our workers.
            # The start method is set for the cluster's start only: a worker that a nanny
            # restarts later, while this process runs its batch threads, is spawned as usual.
            with dask.config.set(
                {
                    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                    "distributed.worker.multiprocessing-method": first_start_method(),
                }
            ):
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            scheduler = self.cluster
        self.client = distributed.Client(scheduler, timeout=timeout_s)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)
        self.client.register_plugin(ScreenerPlugin(str(model_dir) if model_dir else None, device, threads))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def outcomes(self, todo: list) -> Iterator[tuple[object, object]]:
        """(entry, outcome) in input order, a bounded window of chunks in the cluster at once."""
        window: deque = deque()
        size = self.chunk or chunk_size(sum(not e.skip for e in todo), self.workers)
        chunks = (todo[i : i + size] for i in range(0, len(todo), size))
        while True:
            for chunk in chunks:
                window.append((chunk, self._submit(chunk)))
                if len(window) >= 2 * self.workers:
                    break
            if not window:
                return
            chunk, fut = window.popleft()
            got = iter(self._results(chunk, fut))
            for e in chunk:
                yield e, None if e.skip else next(got)

    def _submit(self, chunk: list):
        items = [(str(e.path), e.rel) for e in chunk if not e.skip]
        if not items:
            return None
        # pure=False: a chunk screened again (after a worker died) is a new task, never a cached one
        return self.client.submit(screen_chunk, items, self.opts, self.overlays, pure=False)

    def _results(self, chunk: list, fut) -> list:
        """The chunk's outcomes; after it killed workers, each film of it tried alone."""
        if fut is None:
            return []
        from distributed import KilledWorker

        try:
            return fut.result(timeout=self.timeout_s)
        except KilledWorker:
            return [self._alone(e) for e in chunk if not e.skip]
        except TimeoutError:
            fut.cancel()
            return [RuntimeError("screening failed (no result from the cluster in time)") for e in chunk if not e.skip]
        finally:
            fut.release()

    def _alone(self, e):
        from distributed import KilledWorker

        fut = self.client.submit(screen_path, str(e.path), e.rel, self.opts, self.overlays, pure=False)
        try:
            return fut.result(timeout=self.timeout_s)
        except KilledWorker:
            return RuntimeError("screening failed (the film's worker died each time it was tried)")
        except TimeoutError:
            fut.cancel()
            return RuntimeError("screening failed (no result from the cluster in time)")
        finally:
            fut.release()

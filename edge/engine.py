"""`sarco-edge batch --engine dask`: the films of a folder spread over the workers of a Dask cluster
(a `LocalCluster` on this machine, or `--scheduler ADDRESS`), the rows still written by the one
batch process into the same resumable CSV (edge.batch: lock, whole fsynced lines, resume).

Optional: `pip install "sarco-edge[cluster]"`; nothing else imports this module. Each worker loads
and verifies the bundle and compiles the model once (a worker plugin), then screens films by path,
so every worker must see the folder at the same path. A worker that dies takes its films with it;
the scheduler runs them again elsewhere and the writer keeps one row per file, so the CSV has no
gap and no duplicate. A film that kills worker after worker gets an error row instead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

PLUGIN = "sarco-edge-screener"


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
    """Worker side: one film's Report, or its ReadError / RuntimeError as a value."""
    from distributed import get_worker

    from .reader import ReadError, read_film

    screener = get_worker().sarco_screener
    try:
        film = read_film(path, spacing_mm=opts.spacing_mm)
    except ReadError as err:
        return err
    try:
        res = screener.screen(film, opts)
    except Exception as exc:  # one film must not stop the batch; the row says so
        return RuntimeError(f"screening failed ({type(exc).__name__})")
    if overlays:
        from .batch import overlay_name
        from .screen import write_overlay

        write_overlay(Path(overlays) / overlay_name(rel), res.film, res.mask, res.report)
    return res.report


class DaskEngine:
    """A client on a cluster with the screener plugin; `outcomes` is run_batch's `outcomes`."""

    def __init__(self, model_dir, device, opts, overlays=None, workers=2, scheduler=None, timeout_s=600.0):
        distributed = _distributed()
        self.opts, self.overlays, self.timeout_s = opts, str(overlays) if overlays else None, timeout_s
        self.cluster, threads = None, 0
        if scheduler is None:  # workers share this machine: OpenVINO threads split between them
            threads = max(1, (os.cpu_count() or 1) // max(1, workers))
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
        """(entry, outcome) in input order, a bounded window of films in the cluster at once."""
        window: deque = deque()
        ahead = 4 * self.workers
        it = iter(todo)
        while True:
            for e in it:
                window.append((e, None if e.skip else self._submit(e)))
                if len(window) >= ahead:
                    break
            if not window:
                return
            entry, fut = window.popleft()
            yield entry, self._result(fut)

    def _submit(self, e):
        # pure=False: a film screened again (after a worker died) is a new task, never a cached one
        return self.client.submit(screen_path, str(e.path), e.rel, self.opts, self.overlays, pure=False)

    def _result(self, fut):
        if fut is None:
            return None
        from distributed import KilledWorker

        try:
            return fut.result(timeout=self.timeout_s)
        except KilledWorker:
            return RuntimeError("screening failed (the film's worker died each time it was tried)")
        except TimeoutError:
            fut.cancel()
            return RuntimeError("screening failed (no result from the cluster in time)")
        finally:
            fut.release()

"""`batch --dicom-out`: each film's SEG/SR/SC folder is written in a writer thread while the batch
screens the next films.

Packing the three objects costs a few ms of CPU per film (edge.dicom_fast: mostly NumPy and
OpenCV, which release the interpreter lock, and joining bytes), less than handing the screened film
to another process would: pickling its float pixels and mask (about 8 MB) and that process's
start-up (highdicom and pydicom imports, about 0.5 CPU s). So one thread of the batch process
writes, and its fsyncs overlap the screening. (`processes` > 0 still gives a `spawn` process pool,
as before the objects were packed directly.) A film is handed on (and gets its CSV row) only once
its folder is published, in input order, so a batch stopped at any point and resumed redoes exactly
the films whose row is missing. A writer process that dies (out of memory) does not stop the batch:
that film's folder, and every later one, is written in this process.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

AHEAD = 4  # screened films waiting for their folder, at most (each holds a film and its mask)


def writer_processes() -> int:
    """0: the folders are written by one thread of the batch process (see the module docstring)."""
    return 0


def write_one(out_dir: Path, name: str, path: Path, outcome) -> str:
    """Write one film's folder; the summary counter it adds to. OSError is raised (disk full: the
    batch stops, fix and --resume); a film's own DICOM problem is only counted (its row still stands)."""
    from .dicom_out import write_outputs

    if getattr(outcome.film, "source_format", None) != "dicom":
        return "dicom_not_dicom"
    try:
        write_outputs(out_dir, name, path, outcome)
    except OSError:
        raise
    except Exception:  # e.g. a header highdicom refuses
        return "dicom_failed"
    return "dicom_folders"


def _init_writer() -> None:
    import warnings

    import cv2

    warnings.simplefilter("ignore")  # as the batch process does
    cv2.setNumThreads(1)


class DicomTee:
    """Wraps a batch engine's (entry, outcome) stream; see the module docstring."""

    def __init__(self, out_dir: Path, inner, processes: int | None = None) -> None:
        self.out_dir, self.inner = Path(out_dir), inner
        self.processes = writer_processes() if processes is None else processes
        self.counts = {"dicom_folders": 0, "dicom_not_dicom": 0, "dicom_failed": 0}
        self.pool: Executor | None = None

    def __call__(self, todo):
        from .dicom_out import folder_name

        if self.processes > 0:
            ctx = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.processes, mp_context=ctx, initializer=_init_writer)
        else:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="dicom-out")
        held: deque = deque()
        try:
            for entry, outcome in self.inner(todo):
                job = None
                if getattr(outcome, "mask", None) is not None:
                    job = self._submit(self.out_dir, folder_name(entry.rel), entry.path, outcome)
                held.append((entry, outcome, job))
                while held and (len(held) > AHEAD or held[0][2] is None or held[0][2].done()):
                    yield self._release(*held.popleft())
            while held:
                yield self._release(*held.popleft())
        finally:
            self._drop_pool(wait=True)

    def _drop_pool(self, wait: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None

    def _submit(self, *args) -> Future:
        if self.pool is not None:
            try:
                return self.pool.submit(write_one, *args)
            except BrokenProcessPool:
                self._drop_pool(wait=False)
        done: Future = Future()  # no writer process: written here, now
        try:
            done.set_result(write_one(*args))
        except OSError as e:
            done.set_exception(e)
        return done

    def _release(self, entry, outcome, job) -> tuple:
        """The film, once its folder is published (its OSError stops the batch here, before the row)."""
        if job is not None:
            try:
                key = job.result()
            except BrokenProcessPool:  # the writer died: this film, and the rest, are written here
                from .dicom_out import folder_name

                self._drop_pool(wait=False)
                key = self._submit(self.out_dir, folder_name(entry.rel), entry.path, outcome).result()
            self.counts[key] += 1
        return entry, outcome

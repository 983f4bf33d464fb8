"""Batch at the speed of the model: films are read and preprocessed in worker processes while
OpenVINO runs the model on earlier films, and this process (the one CSV writer) post-processes
and hands the outcomes on in input order.

- Reading: a `ProcessPoolExecutor` with the `spawn` context (clinic laptops run Windows, which has
  no fork); workers run only module-level functions of this module. Each film is read by
  `read_film` exactly as in a single-process batch: its limits (decompression bombs, declared
  sizes) and its isolated decoder child with a timeout are unchanged inside the worker.
- Inference: an `AsyncInferQueue` on a throughput-hinted compile; the film and its mirror image
  (flip averaging) are two requests, merged with the same arithmetic as `flip_average`.
- A worker that dies (killed, out of memory) breaks the pool: a new pool reads the films still
  waiting, and the film being read when it died is tried once more, then gets an error row.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from .preprocess import Letterbox, mirror, to_model_input
from .reader import Film, ReadError, read_film

INFER_TIMEOUT_S = 300.0


@dataclass
class Prepared:
    """A film read and preprocessed in a worker, ready for the model."""

    film: Film
    x: np.ndarray
    box: Letterbox


class ScreenFailed(Exception):
    """Screening one film failed after it was read; str(e) is the row's one-line error."""


def _init_worker() -> None:
    import warnings

    import cv2

    warnings.simplefilter("ignore")  # as edge.cli.main does for the writer process
    cv2.setNumThreads(1)  # a worker per core already: OpenCV's own threads would only contend


def prepare(path: str, spacing_mm: float | None, size: tuple[int, int]) -> Prepared | ReadError | ScreenFailed:
    """Worker side: read the film and make the model input; errors come back as values."""
    try:
        film = read_film(path, spacing_mm=spacing_mm)
    except ReadError as err:
        return err
    try:
        x, box = to_model_input(film.pixels, size)
    except Exception as exc:  # one film must not stop the batch; the row says so
        return ScreenFailed(f"screening failed ({type(exc).__name__})")
    return Prepared(film, x, box)


class Inference:
    """Both flip passes of each film as two requests of an AsyncInferQueue; outputs copied out."""

    def __init__(self, compiled, jobs: int | None = None) -> None:
        from .ov import openvino

        self.queue = openvino().AsyncInferQueue(compiled, jobs or 0)
        self.done: dict[tuple[int, int], np.ndarray | BaseException] = {}
        self.cond = threading.Condition()
        self.queue.set_callback(self._collect)

    def __len__(self) -> int:
        return len(self.queue)

    def _collect(self, request, key) -> None:
        try:
            out: np.ndarray | BaseException = request.get_output_tensor(0).data.copy()
        except BaseException as exc:  # noqa: BLE001 - reported on the film's row
            out = exc
        with self.cond:
            self.done[key] = out
            self.cond.notify_all()

    def start(self, i: int, x: np.ndarray) -> None:
        self.queue.start_async({0: x}, (i, 0))
        self.queue.start_async({0: mirror(x)}, (i, 1))

    def take(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        keys = ((i, 0), (i, 1))
        with self.cond:
            if not self.cond.wait_for(lambda: all(k in self.done for k in keys), INFER_TIMEOUT_S):
                raise ScreenFailed("screening failed (the model gave no answer in time)")
            direct, mirrored = (self.done.pop(k) for k in keys)
        for out in (direct, mirrored):
            if isinstance(out, BaseException):
                raise ScreenFailed(f"screening failed ({type(out).__name__})")
        return direct, mirrored


class Readers:
    """Worker processes reading films ahead, in order; a pool broken by a dying worker is replaced."""

    def __init__(self, workers: int, spacing_mm: float | None, size: tuple[int, int]) -> None:
        self.workers, self.args = workers, (spacing_mm, size)
        self.ctx = multiprocessing.get_context("spawn")
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self.ctx, initializer=_init_worker)

    def submit(self, entry) -> Future | None:
        if entry.skip:
            return None
        try:
            return self.pool.submit(prepare, str(entry.path), *self.args)
        except BrokenProcessPool as exc:  # a worker died just now: result() renews the pool
            lost: Future = Future()
            lost.set_exception(exc)
            return lost

    def result(self, entry, fut, waiting: deque) -> Prepared | ReadError | ScreenFailed | None:
        """The entry's outcome; after a broken pool, resubmit `waiting` and retry this one once."""
        if fut is None:
            return None
        for attempt in range(2):
            try:
                return fut.result()
            except BrokenProcessPool:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._new_pool()
                for k, (e, f) in enumerate(waiting):  # what the dead pool had not finished
                    if f is not None and (f.cancelled() or not f.done() or f.exception() is not None):
                        waiting[k] = (e, self.submit(e))
                if attempt == 0:
                    fut = self.submit(entry)
        return ReadError("decode_failed", "the reading process died on this file (twice)")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def screen_stream(screener, opts, entries: Iterable, workers: int) -> Iterator[tuple[object, object]]:
    """(entry, outcome) in input order: outcome is None (skipped entry), a ReadError, a
    ScreenFailed, or the screener's Result."""
    entries = list(entries)
    infer = Inference(screener.compiled)
    depth = max(1, len(infer) // 2)  # films in the model at once
    readers = Readers(workers, opts.spacing_mm, screener.bundle.input_size)
    ahead = 2 * workers + depth
    waiting: deque = deque()
    inflight: deque = deque()
    it = iter(entries)
    try:
        while True:
            for e in it:
                waiting.append((e, readers.submit(e)))
                if len(waiting) >= ahead:
                    break
            if not waiting:
                break
            entry, fut = waiting.popleft()
            got = readers.result(entry, fut, waiting)
            if isinstance(got, Prepared):
                infer.start(id(got), got.x)
            inflight.append((entry, got))
            while len(inflight) > depth:
                yield _finish(screener, opts, infer, *inflight.popleft())
        while inflight:
            yield _finish(screener, opts, infer, *inflight.popleft())
    finally:
        readers.close()


def _finish(screener, opts, infer: Inference, entry, got) -> tuple[object, object]:
    if not isinstance(got, Prepared):
        return entry, got
    try:
        direct, mirrored = infer.take(id(got))
        seg = screener.segment_logits(got.box, direct, mirrored)
        return entry, screener.result(got.film, seg, opts)
    except ScreenFailed as exc:
        return entry, exc
    except Exception as exc:  # one film must not stop the batch; the row says so
        return entry, ScreenFailed(f"screening failed ({type(exc).__name__})")

"""Batch at the speed of the model: films are read and preprocessed in threads while OpenVINO
runs the model on earlier films, and the calling thread (the one CSV writer) post-processes and
hands the outcomes on in input order.

- Reading: a thread pool. Chosen over worker processes by measurement (firmware_notes/README.md):
  a process had to send each film's float32 pixels back through a pipe (7 MB for a 1.7 MP film,
  pickled on both sides) and cost a second interpreter's memory, while the reading itself is
  numpy, OpenCV and pydicom's decoders, which release the GIL for the heavy part. Each film is
  read by `read_film` exactly as in a single-process batch: its limits (decompression bombs,
  declared sizes) and its isolated decoder child (gdcm, which can abort the interpreter) with a
  timeout are unchanged.
- Inference: an `AsyncInferQueue` on a throughput-hinted compile; the film and its mirror image
  (flip averaging) are two requests, merged with the same arithmetic as `flip_average`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


def prepare(path: str, spacing_mm: float | None, size: tuple[int, int]) -> Prepared | ReadError | ScreenFailed:
    """Reading thread: read the film and make the model input; errors come back as values."""
    try:
        film = read_film(path, spacing_mm=spacing_mm)
    except ReadError as err:
        return err
    except Exception as exc:  # a bug, not a bad file: that film's row says so, the batch goes on
        return ScreenFailed(f"reading failed ({type(exc).__name__})")
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


def screen_stream(screener, opts, entries: Iterable, workers: int) -> Iterator[tuple[object, object]]:
    """(entry, outcome) in input order: outcome is None (skipped entry), a ReadError, a
    ScreenFailed, or the screener's Result."""
    entries = list(entries)
    infer = Inference(screener.compiled)
    depth = max(1, len(infer) // 2)  # films in the model at once
    readers = ThreadPoolExecutor(workers, thread_name_prefix="sarco-read")
    args = (opts.spacing_mm, screener.bundle.input_size)
    ahead = 2 * workers + depth
    waiting: deque = deque()
    inflight: deque = deque()
    it = iter(entries)
    try:
        while True:
            for e in it:
                waiting.append((e, None if e.skip else readers.submit(prepare, str(e.path), *args)))
                if len(waiting) >= ahead:
                    break
            if not waiting:
                break
            entry, fut = waiting.popleft()
            got = None if fut is None else fut.result()
            if isinstance(got, Prepared):
                infer.start(id(got), got.x)
            inflight.append((entry, got))
            while len(inflight) > depth:
                yield _finish(screener, opts, infer, *inflight.popleft())
        while inflight:
            yield _finish(screener, opts, infer, *inflight.popleft())
    finally:
        readers.shutdown(wait=True, cancel_futures=True)


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

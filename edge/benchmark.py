"""What this laptop does with the model: `sarco-edge benchmark`.

Per OpenVINO device: one film's latency (two model calls, flip averaging, one infer request,
latency hint) and the model's throughput (throughput hint, an AsyncInferQueue of the device's
optimal size); then, given a folder, `batch` end to end in films per second. A table on the
screen and the same table in Markdown (--out). Timing only: nothing is asserted about it.

Why not OpenVINO's `benchmark_app` (it ships with the openvino wheel, so a clinic has it): this
times the runtime's own compile configuration (edge.ov: f32, its CPU settings) and a film as
`screen` runs it (two calls, the film and its mirror image), in the same table as `batch`.
Side by side on this 2-core machine, busy (load 13): `benchmark_app -m models/default/model.xml
-d CPU -hint throughput -t 10 -infer_precision f32` 33.8 calls/s, `model_rows` 29.4 calls/s.
`benchmark_app` stays the cross-check a site can run (README).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .bundle import load_bundle
from .markdown import table
from .ov import cpu_config, openvino


def model_rows(model_dir: Path | None, devices: list[str], calls: int = 40) -> list[dict]:
    ov = openvino()
    bundle = load_bundle(model_dir)
    core = ov.Core()
    x = np.random.default_rng(0).random((1, 1, *bundle.input_size), dtype=np.float32)
    rows = []
    for dev in devices:
        cfg = cpu_config(dev)
        lat = core.compile_model(str(bundle.xml), dev, {**cfg, "PERFORMANCE_HINT": "LATENCY"})
        req = lat.create_infer_request()
        for _ in range(3):
            req.infer({0: x})
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            req.infer({0: x})
            req.infer({0: x[..., ::-1].copy()})
            times.append(time.perf_counter() - t)
        thr = core.compile_model(str(bundle.xml), dev, {**cfg, "PERFORMANCE_HINT": "THROUGHPUT"})
        nreq = int(thr.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(thr, nreq)
        n = calls * 4
        t = time.perf_counter()
        for _ in range(n):
            queue.start_async({0: x})
        queue.wait_all()
        per_s = n / (time.perf_counter() - t)
        rows.append(
            {
                "device": dev,
                "name": core.get_property(dev, "FULL_DEVICE_NAME"),
                "film_ms": 1000 * statistics.median(times),
                "calls_per_s": per_s,
                "model_films_per_s": per_s / 2,
                "infer_requests": nreq,
            }
        )
    return rows


def batch_films_per_s(folder: Path, model_dir: Path | None, device: str) -> tuple[int, float]:
    """Run `batch` on the folder into a throw-away CSV; (films, films per second)."""
    from .batch import run_batch
    from .screen import Options, Screener

    scr = Screener(model_dir, device)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        counts = run_batch(Path(folder), Path(tmp) / "bench.csv", Options(), scr)
        wall = time.perf_counter() - t
    n = counts["screened"] + counts["errors"]
    return n, n / wall if wall > 0 else 0.0


def markdown(rows: list[dict], batch: tuple[int, float] | None, command: str) -> str:
    header = ["device", "name", "ms per film (2 calls, latency)", "model calls/s (throughput)", "films/s (model)"]
    cells = [
        [r["device"], r["name"], f"{r['film_ms']:.1f}", f"{r['calls_per_s']:.1f}", f"{r['model_films_per_s']:.1f}"]
        + [r["infer_requests"]]
        for r in rows
    ]
    lines = ["# sarco-edge benchmark", "", f"Command: `{command}`", "", *table([*header, "requests"], cells)]
    if batch:
        lines += ["", f"`batch` end to end: {batch[0]} files at {batch[1]:.1f} films/s."]
    return "\n".join(lines) + "\n"

"""Side-by-side benchmark on the same test films: torch eager FP32, ONNX Runtime FP32, OpenVINO
FP32 (f32), OpenVINO FP16-compressed IR, OpenVINO with the bf16 hint, and the OpenVINO INT8 bundle.

Each backend runs in its own fresh process, so peak RSS is that backend's own. Latency is the
model call on a preprocessed input, batch 1, median over the films; throughput uses OpenVINO's
THROUGHPUT hint with an AsyncInferQueue (torch and ORT: back-to-back calls). Dice is measured
on each film's own grid, against the truth mask and against torch FP32.

    sarco benchmark RUN --bundle models/default --data COHORT [--films 20] [--out FILE]

The torch model comes in from the caller (the `sarco` entry loads the run); it is saved once as
a `torch.export` program, which the torch process loads without the training code.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.markdown import table

BACKENDS = [
    "torch_fp32",
    "onnxruntime_fp32",
    "openvino_fp32",
    "openvino_fp16_ir",
    "openvino_bf16_hint",
    "openvino_int8",
]


def _films(cohort: Path, n: int, size):
    from edge.dataset import load_cases, read_mask
    from edge.preprocess import to_model_input
    from edge.reader import read_film

    out = []
    for c in load_cases(cohort, "test")[:n]:
        film = read_film(c.image)
        x, box = to_model_input(film.pixels, size)
        out.append((x, box, read_mask(c) == 1))
    return out


def prepare(model, size: tuple[int, int], work: Path) -> None:
    """Files every backend loads (a torch.export program, ONNX, FP32 and FP16 IR), made once here
    so that the OpenVINO and ONNX Runtime processes never import torch and their peak RSS is their own."""
    import openvino as ov
    import torch

    from .export import convert

    example = torch.zeros(1, 1, *size)
    torch.export.save(torch.export.export(model, (example,)), str(work / "model.pt2"))
    torch.onnx.export(
        model,
        example,
        str(work / "model.onnx"),
        input_names=["x"],
        output_names=["y"],
        opset_version=17,
        dynamo=False,
    )
    ov_model = convert(model, tuple(size))
    ov.save_model(ov_model, work / "model_fp32.xml", compress_to_fp16=False)
    ov.save_model(ov_model, work / "model_fp16.xml", compress_to_fp16=True)


def _runner(backend: str, run: Path, bundle: Path, work: Path):
    """A callable x -> logits (1, 1, H, W), an optional async throughput function, and the file size."""
    if backend == "torch_fp32":
        import torch

        model = torch.export.load(str(work / "model.pt2")).module()

        def f(x):
            with torch.no_grad():
                return model(torch.from_numpy(x)).numpy()

        return f, None, (run / "best.pt").stat().st_size
    if backend == "onnxruntime_fp32":
        import onnxruntime as ort

        path = work / "model.onnx"
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return (lambda x: sess.run(None, {"x": x})[0]), None, path.stat().st_size
    import openvino as ov

    core = ov.Core()
    if backend == "openvino_int8":
        xml = bundle / "model.xml"
    else:
        xml = work / ("model_fp16.xml" if backend == "openvino_fp16_ir" else "model_fp32.xml")
    from edge.ov import F32

    cfg = {"INFERENCE_PRECISION_HINT": "bf16"} if backend == "openvino_bf16_hint" else dict(F32)
    compiled = core.compile_model(str(xml), "CPU", cfg)
    size = xml.with_suffix(".bin").stat().st_size + xml.stat().st_size

    def f(x):
        return compiled(x)[compiled.output(0)]

    def throughput(xs: list[np.ndarray], seconds: float = 8.0) -> float:
        tp = core.compile_model(str(xml), "CPU", {**cfg, "PERFORMANCE_HINT": "THROUGHPUT"})
        q = ov.AsyncInferQueue(tp)
        n, t0, k = 0, time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            q.start_async({0: xs[k % len(xs)]})
            k += 1
            n += 1
        q.wait_all()
        return n / (time.perf_counter() - t0)

    return f, throughput, size


def child(backend: str, run: Path, bundle: Path, cohort: Path, n: int, result: Path, work: Path) -> None:
    """Runs in a fresh process: one backend, all films."""
    from edge.bundle import load_bundle, probability_from_logits
    from edge.measure import dice_iou
    from edge.preprocess import to_film_grid

    size = load_bundle(bundle, require_trust=False).input_size
    films = _films(cohort, n, size)
    f, tp, nbytes = _runner(backend, run, bundle, work)
    f(films[0][0])  # warm-up
    lat, masks = [], []
    for x, box, _ in films:  # a film is what the clinic runs: two calls (film and mirror image)
        t = time.perf_counter()
        p = probability_from_logits(f, x)
        lat.append(time.perf_counter() - t)
        masks.append(to_film_grid(p, box) > 0.5)
    xs = [a for x, _, _ in films for a in (x, np.ascontiguousarray(x[..., ::-1]))]
    if tp:
        fps = tp(xs) / 2
    else:
        t = time.perf_counter()
        for x in xs:
            f(x)
        fps = len(xs) / 2 / (time.perf_counter() - t)
    dice = [dice_iou(m, truth)[0] for m, (_, _, truth) in zip(masks, films)]
    np.savez_compressed(result.with_suffix(".npz"), *masks)
    result.write_text(
        json.dumps(
            {
                "backend": backend,
                "median_ms": 1000 * float(np.median(lat)),
                "throughput_fps": fps,
                "peak_rss_mb": _peak_rss_mb(),
                "file_mb": nbytes / 2**20,
                "dice_truth": float(np.mean(dice)),
                "films": len(films),
            }
        )
    )


def main(
    model,
    size: tuple[int, int],
    run: Path,
    bundle: Path,
    data: Path,
    films: int = 20,
    out: Path = Path("benchmark.md"),
    backends: str = ",".join(BACKENDS),
) -> None:
    """Every backend on the same films, each in its own process; the table printed and written."""
    rows = []
    with tempfile.TemporaryDirectory() as td:
        prepare(model, size, Path(td))
        for b in backends.split(","):
            res = Path(td) / f"{b}.json"
            p = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "quantize.benchmark",
                    "child",
                    b,
                    str(run),
                    str(bundle),
                    str(data),
                    str(films),
                    str(res),
                    td,
                ],
                capture_output=True,
                text=True,
            )
            if p.returncode != 0:
                print(f"{b} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
                continue
            r = json.loads(res.read_text())
            with np.load(res.with_suffix(".npz")) as z:
                r["masks"] = [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]
            rows.append(r)
    from edge.measure import dice_iou

    ref = next((r for r in rows if r["backend"] == "torch_fp32"), None)
    base = ref["median_ms"] if ref else None
    ov32 = next((r["median_ms"] for r in rows if r["backend"] == "openvino_fp32"), None)
    lines = [
        f"Benchmark on {rows[0]['films'] if rows else 0} test films of {data.name}; {os.cpu_count()} CPU cores "
        f"({_cpu()}); model input {json.loads((run / 'run.json').read_text())['preprocessing']['size']}; "
        "a film = two model calls at batch 1 (the film and its mirror image, averaged: "
        "`edge.preprocess.flip_average`, as the clinic runs it); latency = median per film; "
        "throughput = OpenVINO THROUGHPUT hint + AsyncInferQueue (torch/ORT: sequential calls).",
        "",
        f"Command: `sarco benchmark {run} --bundle {bundle} --data {data} --films {films} --out {out}`",
        "",
    ]
    cells = []
    for r in rows:
        dv = np.mean([dice_iou(a, b)[0] for a, b in zip(r["masks"], ref["masks"])]) if ref else float("nan")
        x_torch = (base / r["median_ms"]) if base else float("nan")
        x_ov = (ov32 / r["median_ms"]) if ov32 else float("nan")
        cells.append(
            [r["backend"], f"{r['median_ms']:.1f}", f"{x_torch:.2f}", f"{x_ov:.2f}", f"{r['throughput_fps']:.1f}"]
            + [f"{r['peak_rss_mb']:.0f}", f"{r['file_mb']:.1f}", f"{r['dice_truth']:.4f}", f"{dv:.4f}"]
        )
    header = ["backend", "median ms / film", "x vs torch", "x vs OV FP32", "films/s", "peak RSS MB", "file MB"]
    lines += table([*header, "Dice vs truth", "Dice vs torch FP32"], cells)
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM resets at exec; ru_maxrss would carry the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":  # the per-backend child process started by `main`
    _, _, b, r, bu, co, n, res, wd = sys.argv
    child(b, Path(r), Path(bu), Path(co), int(n), Path(res), Path(wd))

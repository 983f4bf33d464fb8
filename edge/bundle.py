"""The model bundle: OpenVINO IR + manifest.json (+ model card), checked before use.

Every file the manifest lists is verified against its sha256 at load: a changed or corrupted
file is refused, never silently run. Compilation goes through OpenVINO's model cache so the
second start is fast.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .preprocess import flip_average

MANIFEST = "manifest.json"
# The shipped bundle: beside the source tree (a checkout, an editable install), or where
# `pip install .` puts it (pyproject's data-files: <prefix>/share/sarco-edge/models/default).
_CANDIDATES = (Path(__file__).resolve().parents[1] / "models" / "default",
               Path(sys.prefix) / "share" / "sarco-edge" / "models" / "default")


def default_bundle() -> Path:
    env = os.environ.get("SARCO_EDGE_MODEL")
    if env:
        return Path(env)
    return next((p for p in _CANDIDATES if (p / MANIFEST).is_file()), _CANDIDATES[0])


class BundleError(Exception):
    """The model bundle is missing, incomplete or altered. str(e) is one line."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict

    @property
    def xml(self) -> Path:
        return self.root / self.manifest["files"]["model_xml"]

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = self.manifest["input"]["size"]
        return int(h), int(w)


def load_bundle(root: Path | None = None) -> Bundle:
    """Read and verify a bundle (sha256 of every listed file)."""
    root = Path(root) if root else default_bundle()
    mf = root / MANIFEST
    if not mf.is_file():
        raise BundleError(f"no model bundle at {root} (manifest.json missing)")
    try:
        manifest = json.loads(mf.read_text())
        files = manifest["files"]
        digests = manifest["sha256"]
    except (ValueError, KeyError) as e:
        raise BundleError(f"manifest.json in {root} is not a valid bundle manifest ({e})") from None
    for name in set(files.values()):
        p = root / name
        if not p.is_file():
            raise BundleError(f"model bundle file missing: {name}")
        if sha256(p) != digests.get(name):
            raise BundleError(f"model bundle file {name} does not match its sha256 in manifest.json: refusing to run it")
    return Bundle(root=root, manifest=manifest)


def compile_bundle(bundle: Bundle, device: str = "CPU", cache_dir: Path | None = None):
    """Compile for `device`; FP32 IRs run in f32 (this CPU would otherwise pick bf16)."""
    from .ov import cpu_config, openvino

    core = openvino().Core()
    if cache_dir:
        core.set_property({"CACHE_DIR": str(cache_dir)})
    return core.compile_model(str(bundle.xml), device, cpu_config(device))


def probability_from_logits(logits_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Thigh-muscle probability (H, W) for a (1, 1, H, W) input, given any call that returns the
    model's (1, 1, H, W) logits: sigmoid, then flip averaging. The clinic and the benchmark's
    backends all go through here, so they turn logits into a mask the same way."""
    def once(inp: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-logits_of(inp)[0, 0]))).astype(np.float32)

    return flip_average(once, x)


def muscle_probability(compiled, x: np.ndarray) -> np.ndarray:
    """Run the compiled model on a (1, 1, H, W) input; thigh-muscle probability (H, W)."""
    out = compiled.output(0)
    return probability_from_logits(lambda inp: compiled(inp)[out], x)

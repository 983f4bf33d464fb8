"""The model bundle: OpenVINO IR + manifest.json (+ model card), checked before use.

Every file the manifest lists is verified against its sha256 at load: a changed or corrupted
file is refused, never silently run. Compilation goes through OpenVINO's model cache so the
second start is fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .criteria import CRITERIA
from .preprocess import flip_average, flip_merge
from .quality import GateConfig
from .smi import FORMS

MANIFEST = "manifest.json"
# The shipped bundle: beside the source tree (a checkout, an editable install), or where
# `pip install .` puts it (pyproject's data-files: <prefix>/share/sarco-edge/models/default).
_CANDIDATES = (
    Path(__file__).resolve().parents[1] / "models" / "default",
    Path(sys.prefix) / "share" / "sarco-edge" / "models" / "default",
)
# sha256 of the manifest.json of each bundle this package ships. The manifest lists the sha256
# of every other file, so this one digest binds the whole bundle: an edited calibration,
# threshold or model file is refused. tests/test_bundle.py checks it against models/default.
PINNED_MANIFESTS = {
    "c559dbeade2c45f380c6fabf8ce8ebc2b348ca224f88e993b9fb277346186777": "default 0.3.0 (shipped)",
}
TRUST_FILE = "trusted_bundles.json"
GATE_FIELDS = set(GateConfig.__dataclass_fields__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def default_bundle() -> Path:
    env = os.environ.get("SARCO_EDGE_MODEL")
    if env:
        return Path(env)
    return next((p for p in _CANDIDATES if (p / MANIFEST).is_file()), _CANDIDATES[0])


def trust_store() -> Path:
    """Where a site records the manifests of bundles it made or accepted (`sarco-edge trust`)."""
    home = os.environ.get("SARCO_EDGE_HOME")
    return Path(home) if home else Path.home() / ".config" / "sarco-edge"


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
    digest: str = ""  # sha256 of manifest.json
    trust: str = ""  # "pinned", "trusted" (site trust store) or "unchecked" (training side)

    @property
    def xml(self) -> Path:
        return self.root / self.manifest["files"]["model_xml"]

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = self.manifest["input"]["size"]
        return int(h), int(w)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_manifest(m: Any) -> None:
    """Schema check of the fields the runtime uses; BundleError with one line naming the field."""
    _need(isinstance(m, dict), "not a JSON object")
    for k in ("name", "version", "architecture", "precision"):
        _need(isinstance(m.get(k), str) and 0 < len(m[k]) <= 64, f"{k} must be a short string")
    _check_files(m.get("files"), m.get("sha256"))
    inp = m.get("input")
    size = inp.get("size") if isinstance(inp, dict) else None
    _need(
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 4096 and v % 32 == 0 for v in size),
        "input.size must be [height, width], each a multiple of 32",
    )
    out = m.get("output")
    _need(
        isinstance(out, dict) and _finite(out.get("threshold")) and 0 < out["threshold"] < 1,
        "output.threshold must be in (0, 1)",
    )
    if m.get("smi_calibration") is not None:
        _check_calibration(m["smi_calibration"])
    if m.get("quality_gate") is not None:
        _check_gate(m["quality_gate"])
    if m.get("decision") is not None:
        _check_decision(m["decision"])


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise BundleError(f"manifest.json: {what}")


def _check_files(files: Any, digests: Any) -> None:
    """Plain file names inside the bundle, each with a sha256."""
    _need(
        isinstance(files, dict) and {"model_xml", "model_bin", "card"} <= set(files),
        "files must name model_xml, model_bin and card",
    )
    for k, name in files.items():
        _need(
            isinstance(name, str) and bool(_NAME.match(name)), f"files.{k} must be a plain file name inside the bundle"
        )
    _need(isinstance(digests, dict), "sha256 must map file names to digests")
    for name in files.values():
        _need(
            isinstance(digests.get(name), str) and bool(_HEX64.match(digests[name])),
            f"sha256 of {name} missing or malformed",
        )


def _check_calibration(cal: Any) -> None:
    """The SMI model: a known form, 4 finite coefficients, a 4 x 4 matrix, plausible spreads."""
    _need(isinstance(cal, dict), "smi_calibration must be an object")
    _need(cal.get("form") in FORMS, f"smi_calibration.form must be one of {', '.join(FORMS)}")
    coef, A = cal.get("coef"), cal.get("xtx_inv")
    _need(
        isinstance(coef, list) and len(coef) == 4 and all(map(_finite, coef)),
        "smi_calibration.coef must be 4 numbers",
    )
    _need(
        isinstance(A, list)
        and len(A) == 4
        and all(isinstance(r, list) and len(r) == 4 and all(map(_finite, r)) for r in A),
        "smi_calibration.xtx_inv must be 4 x 4 numbers",
    )
    _need(
        _finite(cal.get("residual_sd")) and 0 < cal["residual_sd"] <= 3,
        "smi_calibration.residual_sd must be in (0, 3]",
    )
    _need(_finite(cal.get("t95")) and 1.5 <= cal["t95"] <= 3.5, "smi_calibration.t95 must be in [1.5, 3.5]")
    _need(isinstance(cal.get("n"), int) and cal["n"] >= 5, "smi_calibration.n must be an integer >= 5")
    for k, hi in (("interval_scale", 10.0), ("one_side_sd", 3.0)):
        if k in cal:
            _need(
                _finite(cal[k]) and 0 <= cal[k] <= hi and (k != "interval_scale" or cal[k] > 0),
                f"smi_calibration.{k} out of range",
            )


def _check_gate(gate: Any) -> None:
    """Known fields, each a non-negative number or an ordered [low, high]."""
    _need(isinstance(gate, dict), "quality_gate must be an object")
    for k, v in gate.items():
        vals = v if isinstance(v, list) else [v]
        _need(
            k in GATE_FIELDS
            and all(map(_finite, vals))
            and all(x >= 0 for x in vals)
            and (len(vals) == 1 or (len(vals) == 2 and vals[0] <= vals[1])),
            f"quality_gate.{k} malformed",
        )


def _check_decision(dec: Any) -> None:
    """Per known criteria, 0 <= clear <= refer <= 1."""
    _need(isinstance(dec, dict), "decision must be an object")
    for k, th in dec.items():
        _need(k in CRITERIA, f"decision.{k}: unknown criteria")
        _need(
            isinstance(th, dict)
            and _finite(th.get("clear"))
            and _finite(th.get("refer"))
            and 0 <= th["clear"] <= th["refer"] <= 1,
            f"decision.{k} needs 0 <= clear <= refer <= 1",
        )


def _trusted_digests() -> set[str]:
    f = trust_store() / TRUST_FILE
    try:
        data = json.loads(f.read_text())
        return {d for d in data.get("manifests", {}) if isinstance(d, str) and _HEX64.match(d)}
    except (OSError, ValueError, AttributeError):
        return set()


def trust_bundle(root: Path) -> str:
    """Record a verified bundle's manifest digest in the site trust store; returns the digest."""
    from .files import write_text_atomic

    b = load_bundle(root, require_trust=False)
    store = trust_store()
    store.mkdir(parents=True, exist_ok=True)
    f = store / TRUST_FILE
    try:
        data = json.loads(f.read_text())
        assert isinstance(data.get("manifests"), dict)
    except (OSError, ValueError, AssertionError, AttributeError):
        data = {"manifests": {}}
    data["manifests"][b.digest] = {"name": b.manifest["name"], "version": b.manifest["version"]}
    write_text_atomic(f, json.dumps(data, indent=2))
    return b.digest


def load_bundle(root: Path | None = None, require_trust: bool = True) -> Bundle:
    """Read, validate and verify a bundle: the manifest's own digest must be pinned in this
    package or recorded in the site trust store (unless `require_trust` is False, as on the
    training side), its fields must pass the schema, and every file its sha256."""
    root = Path(root) if root else default_bundle()
    mf = root / MANIFEST
    if not mf.is_file():
        raise BundleError(f"no model bundle at {root} (manifest.json missing)")
    raw = mf.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest in PINNED_MANIFESTS:
        trust = "pinned"
    elif digest in _trusted_digests():
        trust = "trusted"
    elif require_trust:
        raise BundleError(
            f"manifest.json of {root.name} (sha256 {digest[:12]}) is neither the shipped bundle nor in "
            "this site's trust store: refusing it (if this bundle is yours: sarco-edge trust DIR)"
        )
    else:
        trust = "unchecked"
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise BundleError("manifest.json is not valid JSON") from None
    validate_manifest(manifest)
    real_root = root.resolve()
    for name in set(manifest["files"].values()):
        p = root / name
        if p.is_symlink() or not p.is_file() or p.resolve().parent != real_root:
            raise BundleError(f"model bundle file missing or not a plain file in the bundle: {name}")
        if sha256(p) != manifest["sha256"][name]:
            raise BundleError(
                f"model bundle file {name} does not match its sha256 in manifest.json: refusing to run it"
            )
    return Bundle(root=root, manifest=manifest, digest=digest, trust=trust)


def _cache_is_intact(folder: Path) -> bool:
    """Every file in the compiled-model cache is one we recorded after compiling, unchanged."""
    index = folder / "sarco-cache.json"
    try:
        recorded = json.loads(index.read_text())
        present = {p.name for p in folder.iterdir() if p.name != index.name}
        return present == set(recorded) and all(sha256(folder / n) == d for n, d in recorded.items())
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def compile_bundle(
    bundle: Bundle, device: str = "CPU", cache_dir: Path | None = None, hint: str | None = None, threads: int = 0
):
    """Compile for `device`; FP32 IRs run in f32 (this CPU would otherwise pick bf16). `hint`:
    OpenVINO's PERFORMANCE_HINT ("THROUGHPUT" for a batch), None for the device's default;
    `threads` > 0: at most that many CPU threads (several screeners sharing one machine).

    The compiled-model cache lives in a folder named by the manifest digest and is used only
    when every blob matches the digests recorded after the compile that wrote it: a corrupted
    or planted blob is wiped and the model compiled afresh, so a cache cannot change a result.
    """
    from .ov import cpu_config, openvino

    core = openvino().Core()
    config = {**cpu_config(device), **({"PERFORMANCE_HINT": hint} if hint else {})}
    if threads > 0 and device == "CPU":
        config["INFERENCE_NUM_THREADS"] = threads
    if cache_dir and bundle.digest:
        # One folder per device and hint: each holds exactly the blobs its own compile recorded.
        tag = f"{device.replace(':', '_').replace(',', '_')}" + (f"-{hint.lower()}" if hint else "")
        tag += f"-t{threads}" if threads > 0 and device == "CPU" else ""
        compiled = _compile_cached(core, bundle, device, config, Path(cache_dir) / f"{bundle.digest[:16]}-{tag}")
    else:
        compiled = core.compile_model(str(bundle.xml), device, config)
    shape = (
        list(compiled.input(0).get_partial_shape().get_min_shape())
        if compiled.input(0).get_partial_shape().is_dynamic
        else list(compiled.input(0).get_shape())
    )
    if shape != [1, 1, *bundle.input_size]:
        raise BundleError(f"model input {shape} does not match manifest input.size {list(bundle.input_size)}")
    return compiled


def _compile_cached(core, bundle: Bundle, device: str, config: dict, folder: Path):
    """Compile with the cache in `folder`. An intact cache is used as it is; otherwise, under a
    file lock beside the folder, the cache is wiped, written by this compile and recorded. Two
    processes that start on a fresh cache (a Dask cluster's workers, two clinic commands) then
    take turns: the second finds the first's cache, and neither reads the other's half-written
    files (unlocked, one hashed the other's temporary index file as it was renamed away)."""
    if not _cache_is_intact(folder):
        from filelock import FileLock

        from .files import write_text_atomic

        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            if not _cache_is_intact(folder):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                core.set_property({"CACHE_DIR": str(folder)})
                compiled = core.compile_model(str(bundle.xml), device, config)
                blobs = {p.name: sha256(p) for p in folder.iterdir() if p.name != "sarco-cache.json"}
                write_text_atomic(folder / "sarco-cache.json", json.dumps(blobs))
                return compiled
    core.set_property({"CACHE_DIR": str(folder)})
    return core.compile_model(str(bundle.xml), device, config)


# Label values of PHANTOM.md, also the channels of a multi-class output.
THIGH_MUSCLE = 1
BONE = 3


def class_probabilities(logits_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Per-class probabilities (C, H, W) for a (1, 1, H, W) input, flip-averaged. A one-channel
    model (thigh muscle only) gives its sigmoid as (1, H, W); a multi-class model (all labels of
    PHANTOM.md) its softmax over channels."""

    return flip_average(lambda inp: probabilities(logits_of(inp)), x)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """One pass's model output (1, C, H, W) -> per-class probabilities (C, H, W): sigmoid for a
    one-channel model, softmax over channels for a multi-class one."""
    z = np.asarray(logits[0], np.float32)
    if z.shape[0] == 1:
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32, copy=False)
    e = np.exp(z - z.max(axis=0, keepdims=True))
    e /= e.sum(axis=0, keepdims=True)  # in place: the same float32 quotients, one array fewer
    return e


def class_probabilities_of_pair(logits: np.ndarray, logits_mirrored: np.ndarray) -> np.ndarray:
    """`class_probabilities` from the two passes' outputs (input, mirrored input) run elsewhere
    (the batch's asynchronous requests): the same arithmetic, so the same numbers."""
    return flip_merge(probabilities(logits), probabilities(logits_mirrored))


def probability_from_logits(logits_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Thigh-muscle probability (H, W) for a (1, 1, H, W) input, given any call that returns the
    model's logits: sigmoid or softmax, then flip averaging. The clinic and the benchmark's
    backends all go through here, so they turn logits into a mask the same way."""
    return muscle_of(class_probabilities(logits_of, x))


def muscle_of(probs: np.ndarray) -> np.ndarray:
    """The thigh-muscle map of `class_probabilities`' output, one-channel or multi-class."""
    return probs[0] if probs.shape[0] == 1 else probs[THIGH_MUSCLE]


def muscle_probability(compiled, x: np.ndarray) -> np.ndarray:
    """Run the compiled model on a (1, 1, H, W) input; thigh-muscle probability (H, W)."""
    out = compiled.output(0)
    return probability_from_logits(lambda inp: compiled(inp)[out], x)

"""A bundle cannot be changed without being refused: manifest pinned or trusted, schema-checked,
files confined to the bundle, compiled cache verified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from edge.bundle import PINNED_MANIFESTS, BundleError, load_bundle
from tests.helpers import REPO

DEFAULT = REPO / "models" / "default"
SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"


def _cli(tmp_path: Path, *args: str):
    import subprocess
    import sys

    env = dict(os.environ, SARCO_EDGE_HOME=str(tmp_path / "site"), SARCO_EDGE_CACHE=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=300
    )


def _copy(tmp_path: Path, edit=None, name: str = "b") -> Path:
    dst = tmp_path / name
    shutil.copytree(DEFAULT, dst)
    if edit:
        m = json.loads((dst / "manifest.json").read_text())
        edit(m, dst)
        (dst / "manifest.json").write_text(json.dumps(m, indent=2))
    return dst


def _one_line_exit_4(res) -> None:
    assert res.returncode == 4, (res.returncode, res.stderr[-500:])
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr


def test_the_shipped_manifest_is_pinned():
    digest = hashlib.sha256((DEFAULT / "manifest.json").read_bytes()).hexdigest()
    assert digest in PINNED_MANIFESTS
    assert load_bundle(DEFAULT).trust == "pinned"


def _raise_coef(m, d):
    m["smi_calibration"]["coef"][0] += 0.3


def _rehash_bin(m, d):
    data = bytearray((d / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "model.bin").write_bytes(bytes(data))
    m["sha256"]["model.bin"] = hashlib.sha256(bytes(data)).hexdigest()


@pytest.mark.parametrize(
    "edit",
    [
        _raise_coef,
        lambda m, d: m["smi_calibration"].__setitem__("residual_sd", 1.0038588206310187),
        _rehash_bin,
        lambda m, d: m["sha256"].pop("model.bin"),
    ],
    ids=["coef", "residual_sd", "bin_rehashed", "sha_removed"],
)
def test_edited_bundles_are_refused_by_screen(tmp_path: Path, edit):
    res = _cli(tmp_path, "screen", str(SAMPLE), "--model", str(_copy(tmp_path, edit)))
    _one_line_exit_4(res)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda m, d: m["files"].__setitem__("model_xml", "../default/model.xml"), "plain file name"),
        (lambda m, d: m["files"].__setitem__("model_xml", str(DEFAULT / "model.xml")), "plain file name"),
        (lambda m, d: m["smi_calibration"].__setitem__("form", "cubic"), "form"),
        (lambda m, d: m["smi_calibration"].__setitem__("coef", [1.0, 2.0]), "coef"),
        (lambda m, d: m["input"].__setitem__("size", [500, 190]), "input.size"),
        (lambda m, d: m["smi_calibration"].__setitem__("residual_sd", float("nan")), "residual_sd"),
    ],
    ids=["dotdot", "absolute", "form", "short_coef", "size", "nan_sd"],
)
def test_schema_errors_are_one_line_even_on_the_training_side(tmp_path: Path, edit, match):
    with pytest.raises(BundleError, match=match) as info:
        load_bundle(_copy(tmp_path, edit), require_trust=False)
    assert "\n" not in str(info.value)


def test_null_manifest_gives_one_line(tmp_path: Path):
    b = _copy(tmp_path)
    (b / "manifest.json").write_text("null")
    _one_line_exit_4(_cli(tmp_path, "info", "--model", str(b)))
    _one_line_exit_4(_cli(tmp_path, "trust", str(b)))


def test_a_site_bundle_runs_once_trusted_and_not_after_another_edit(tmp_path: Path):
    b = _copy(tmp_path, _raise_coef)
    _one_line_exit_4(_cli(tmp_path, "screen", str(SAMPLE), "--model", str(b)))
    res = _cli(tmp_path, "trust", str(b))
    assert res.returncode == 0, res.stderr
    res = _cli(tmp_path, "screen", str(SAMPLE), "--model", str(b), "--json")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["model"]["trust"] == "trusted"
    shipped = json.loads(_cli(tmp_path, "screen", str(SAMPLE), "--json").stdout)
    assert shipped["model"]["trust"] == "pinned"
    assert rep["smi_estimate"] > shipped["smi_estimate"] * 1.2  # exp(0.3) = 1.35: the edit is what runs
    m = json.loads((b / "manifest.json").read_text())
    m["smi_calibration"]["coef"][0] += 0.01
    (b / "manifest.json").write_text(json.dumps(m, indent=2))
    _one_line_exit_4(_cli(tmp_path, "screen", str(SAMPLE), "--model", str(b)))


def test_a_corrupted_compiled_cache_cannot_change_the_result(tmp_path: Path):
    first = _cli(tmp_path, "screen", str(SAMPLE), "--json")
    assert first.returncode == 0, first.stderr
    blobs = [p for p in (tmp_path / "cache").glob("*/*") if p.is_file() and p.name != "sarco-cache.json"]
    assert blobs, "the compiled-model cache was not used"  # (the lock files sit beside the folders)
    for p in blobs:
        data = bytearray(p.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 4096):
            data[i] ^= 0x5A
        p.write_bytes(bytes(data))
    second = _cli(tmp_path, "screen", str(SAMPLE), "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["thigh_muscle_area_cm2"] == json.loads(first.stdout)["thigh_muscle_area_cm2"]
    index = next((tmp_path / "cache").rglob("sarco-cache.json"))
    recorded = json.loads(index.read_text())
    assert all(hashlib.sha256((index.parent / n).read_bytes()).hexdigest() == d for n, d in recorded.items())


_COMPILE = (
    "import sys; from pathlib import Path; from edge.bundle import compile_bundle, load_bundle; "
    "compile_bundle(load_bundle(None), cache_dir=Path(sys.argv[1])); print('compiled')"
)


def test_processes_starting_on_a_fresh_cache_take_turns(tmp_path: Path):
    """A compile that finds no intact cache waits for the lock beside the cache folder (a Dask
    cluster's workers start together on a fresh cache): while another holds it, it does not touch
    the folder; after, it finishes and the cache is intact. Three at once all succeed."""
    import subprocess
    import sys
    import time

    from filelock import FileLock

    from edge.bundle import _cache_is_intact

    cache = tmp_path / "cache"
    folder = cache / f"{load_bundle(None).digest[:16]}-CPU"
    cache.mkdir()
    cmd = [sys.executable, "-c", _COMPILE, str(cache)]
    with FileLock(str(folder) + ".lock"):
        child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        assert child.poll() is None, child.communicate()  # still waiting for the lock
        assert not folder.exists()
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and out.strip() == "compiled", err[-2000:]
    assert _cache_is_intact(folder)

    shutil.rmtree(cache)
    cache.mkdir()
    procs = [
        subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    results = [p.communicate(timeout=180) + (p.returncode,) for p in procs]
    assert all(rc == 0 and out.strip() == "compiled" for out, _, rc in results), [r[1][-1000:] for r in results]
    assert _cache_is_intact(folder)

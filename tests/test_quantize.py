"""Export and INT8 quantization of a tiny run: the bundle, its checksums, tampering, refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import BundleError, compile_bundle, load_bundle, muscle_probability
from tests.helpers import run_cli

# Training a tiny run, export and NNCF need the training stack; a clinic install skips this module.
pytest.importorskip("torch", reason="needs the training stack: pip install -e '.[train]'")
pytest.importorskip("nncf", reason="needs the training stack: pip install -e '.[train]'")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("q")
    cohort = base / "cohort"
    assert (
        run_cli(
            "train.cli", "phantom", str(cohort), "--n", "12", "--seed", "8", "--spacing-mm", "2.0", "--no-preview"
        ).returncode
        == 0
    )
    run = base / "run"
    res = run_cli(
        "train.cli",
        "train",
        str(cohort),
        "--run",
        str(run),
        "--arch",
        "unet",
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--batch",
        "2",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return cohort, run


def test_export_writes_static_fp32_and_fp16_ir(tiny_run, tmp_path):
    import openvino as ov

    cohort, run = tiny_run
    res = run_cli("sarco", "export", str(run), "--out", str(tmp_path / "ir"), "--data", str(cohort))
    assert res.returncode == 0, res.stderr[-2000:]
    for f in ("model_fp32.xml", "model_fp16.xml"):
        m = ov.Core().read_model(tmp_path / "ir" / f)
        assert not m.input(0).get_partial_shape().is_dynamic
        assert list(m.input(0).get_shape())[:2] == [1, 1]
    assert (tmp_path / "ir" / "model_fp16.bin").stat().st_size < 0.6 * (
        tmp_path / "ir" / "model_fp32.bin"
    ).stat().st_size


def test_quantize_writes_a_verified_bundle_and_refuses_tampering(tiny_run, tmp_path):
    cohort, run = tiny_run
    out = tmp_path / "bundle"
    res = run_cli("sarco", "quantize", str(run), "--data", str(cohort), "--out", str(out), "--max-drop", "1.0")
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "INT8" and manifest["architecture"] == "unet"
    card = (out / "MODEL_CARD.md").read_text()
    assert "synthetic" in manifest["trained_on"] and "synthetic" in card.lower()
    assert (
        f"- cohort: cohort (12 films, {manifest['cohort']['n_people']} people, seed 8, phantom generator 1.0.0)" in card
    )
    assert manifest["also_cohorts"] == [] and manifest["initialised_from"] is None and "fine-tuned" not in card
    bundle = load_bundle(out, require_trust=False)
    compiled = compile_bundle(bundle)
    prob = muscle_probability(compiled, np.zeros((1, 1, *bundle.input_size), np.float32))
    assert prob.shape == bundle.input_size and prob.min() >= 0 and prob.max() <= 1
    data = bytearray((out / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "model.bin").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(out, require_trust=False)


def test_quantize_that_cannot_meet_the_bound_writes_nothing(tiny_run, tmp_path):
    cohort, run = tiny_run
    out = tmp_path / "never"
    res = run_cli("sarco", "quantize", str(run), "--data", str(cohort), "--out", str(out), "--max-drop", "-0.5")
    assert res.returncode == 1, res.stderr[-3000:]
    assert "misses the accuracy bound" in res.stderr
    assert not out.exists() and not any(p.name.startswith(".never") for p in tmp_path.iterdir())


def test_the_model_card_names_every_training_cohort_and_the_starting_weights():
    """A fine-tuned bundle's card lists its first cohort, each `--also` cohort with its phantom
    generator, and the run whose weights it started from (read from the shipped manifest)."""
    from quantize.int8 import model_card

    m = json.loads((Path(__file__).resolve().parents[1] / "models" / "default" / "manifest.json").read_text())
    card = model_card(m)
    for co in [m["cohort"], *m["also_cohorts"]]:
        gen = co["generator"]["version"]
        assert f"- cohort: {co['name']} ({co['n_films']} films, {co['n_people']} people, seed {co['seed']}, " \
               f"phantom generator {gen})" in card  # fmt: skip
    assert {c["generator"]["version"] for c in [m["cohort"], *m["also_cohorts"]]} == {"1.0.0", "2.0.0"}
    assert f"fine-tuned from the weights of `{m['initialised_from']}`" in card
    shipped = (Path(__file__).resolve().parents[1] / "models" / "default" / "MODEL_CARD.md").read_text()
    assert shipped.startswith(card.rstrip("\n"))  # the shipped card is this text plus the calibration section

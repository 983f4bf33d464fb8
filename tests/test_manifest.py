"""edge.bundle's checks without a model: the manifest schema one wrong field at a time (each
refusal one line naming the field), load/trust on tiny bundles, the compiled-cache check, the
probability arithmetic, and compile_bundle against a stand-in OpenVINO core. No OpenVINO."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import edge.ov
from edge import bundle as B
from edge.bundle import BundleError, validate_manifest

H = "a" * 64


def good() -> dict:
    return {
        "name": "test",
        "version": "1.0",
        "architecture": "unet",
        "precision": "INT8",
        "files": {"model_xml": "model.xml", "model_bin": "model.bin", "card": "CARD.md"},
        "sha256": {"model.xml": H, "model.bin": "b" * 64, "CARD.md": "0123456789" * 6 + "abcd"},
        "input": {"size": [512, 192]},
        "output": {"threshold": 0.5},
        "smi_calibration": {
            "form": "loglinear",
            "coef": [1, 2.0, 3, 4],
            "xtx_inv": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            "residual_sd": 0.1,
            "t95": 2.0,
            "n": 5,
            "interval_scale": 1.0,
            "one_side_sd": 0.05,
        },
        "quality_gate": {"min_confidence": 0.6, "thigh_area_cm2": [60, 600], "max_side_ratio": 2},
        "decision": {"ewgsop2": {"clear": 0.2, "refer": 0.3}, "awgs2019": {"clear": 0, "refer": 1}},
    }


def edited(path: str, value) -> dict:
    """good() with one field set (`a.b.c`; value DROP removes it)."""
    m = good()
    *parents, last = path.split(".")
    d = m
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if value is DROP:
        del d[last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value
    return m


DROP = object()


def refusal(m) -> str:
    with pytest.raises(BundleError) as e:
        validate_manifest(m)
    return str(e.value)


def test_a_good_manifest_passes_and_the_optional_parts_may_be_absent_or_null():
    validate_manifest(good())
    for k in ("smi_calibration", "quality_gate", "decision"):
        validate_manifest(edited(k, DROP))
        validate_manifest(edited(k, None))
    for k in ("interval_scale", "one_side_sd"):
        validate_manifest(edited(f"smi_calibration.{k}", DROP))


def test_finite():
    assert B._finite(1) and B._finite(-2.5) and B._finite(0)
    for v in (True, False, math.nan, math.inf, -math.inf, "1", None, [1]):
        assert not B._finite(v)


@pytest.mark.parametrize("m", [None, [], "x", 3])
def test_not_an_object(m):
    assert refusal(m) == "manifest.json: not a JSON object"


@pytest.mark.parametrize("key", ["name", "version", "architecture", "precision"])
@pytest.mark.parametrize("value, ok", [("", False), ("x", True), ("x" * 64, True), ("x" * 65, False), (3, False)])
def test_short_strings(key, value, ok):
    m = edited(key, value)
    if ok:
        validate_manifest(m)
    else:
        assert refusal(m) == f"manifest.json: {key} must be a short string"
    assert refusal(edited(key, DROP)) == f"manifest.json: {key} must be a short string"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("files", None, "files must name model_xml, model_bin and card"),
        ("files", ["model.xml"], "files must name model_xml, model_bin and card"),
        ("files.card", DROP, "files must name model_xml, model_bin and card"),
        ("files.model_xml", DROP, "files must name model_xml, model_bin and card"),
        ("files.model_bin", DROP, "files must name model_xml, model_bin and card"),
        ("files.model_bin", "../model.bin", "files.model_bin must be a plain file name inside the bundle"),
        ("files.model_bin", "sub/model.bin", "files.model_bin must be a plain file name inside the bundle"),
        ("files.model_bin", ".hidden", "files.model_bin must be a plain file name inside the bundle"),
        ("files.model_bin", "x" * 129, "files.model_bin must be a plain file name inside the bundle"),
        ("files.model_bin", 7, "files.model_bin must be a plain file name inside the bundle"),
        ("files.card", "", "files.card must be a plain file name inside the bundle"),
        ("sha256", None, "sha256 must map file names to digests"),
        ("sha256", [H], "sha256 must map file names to digests"),
        ("sha256.model.bin", "B" * 64, "sha256 of model.bin missing or malformed"),
        ("sha256.model.bin", "b" * 63, "sha256 of model.bin missing or malformed"),
        ("sha256.model.bin", "b" * 65, "sha256 of model.bin missing or malformed"),
        ("sha256.model.bin", "g" * 64, "sha256 of model.bin missing or malformed"),
        ("sha256.model.bin", 5, "sha256 of model.bin missing or malformed"),
        ("sha256.CARD.md", DROP, "sha256 of CARD.md missing or malformed"),
    ],
)
def test_files_and_digests(path, value, message):
    if path.startswith("sha256."):  # file names hold dots
        m = good()
        name = path.split(".", 1)[1]
        if value is DROP:
            del m["sha256"][name]
        else:
            m["sha256"][name] = value
    else:
        m = edited(path, value)
    assert refusal(m) == f"manifest.json: {message}"


def test_file_names_may_hold_dots_dashes_and_underscores_and_be_128_long():
    m = good()
    m["files"]["extra"] = "A" + "b._-9" * 25 + "xy"  # 128 characters
    m["sha256"][m["files"]["extra"]] = H
    validate_manifest(m)


SIZE = "manifest.json: input.size must be [height, width], each a multiple of 32"


@pytest.mark.parametrize(
    "size, ok",
    [
        ([32, 4096], True),
        ([512, 192], True),
        ([0, 192], False),
        ([4128, 192], False),
        ([512, 200], False),
        ([512], False),
        ([512, 192, 32], False),
        ([512.0, 192], False),
        ([True, 192], False),
        ((512, 192), True),  # a tuple is no JSON list: refused below
        ("512x192", False),
    ],
)
def test_input_size(size, ok):
    m = edited("input.size", size)
    if ok and isinstance(size, list):
        validate_manifest(m)
    else:
        assert refusal(m) == SIZE


def test_input_missing():
    assert refusal(edited("input", DROP)) == SIZE
    assert refusal(edited("input", [512, 192])) == SIZE
    assert refusal(edited("input.size", DROP)) == SIZE


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, math.nan, True, "0.5", None])
def test_output_threshold_refused(value):
    assert refusal(edited("output.threshold", value)) == "manifest.json: output.threshold must be in (0, 1)"


def test_output_threshold_accepted_and_output_needed():
    for v in (1e-9, 0.999, 0.5):
        validate_manifest(edited("output.threshold", v))
    assert refusal(edited("output", DROP)) == "manifest.json: output.threshold must be in (0, 1)"
    assert refusal(edited("output", 0.5)) == "manifest.json: output.threshold must be in (0, 1)"


CAL = "smi_calibration"


@pytest.mark.parametrize(
    "path, value, message",
    [
        (CAL, [1], "smi_calibration must be an object"),
        (f"{CAL}.form", "cubic", "smi_calibration.form must be one of linear, loglinear"),
        (f"{CAL}.form", DROP, "smi_calibration.form must be one of linear, loglinear"),
        (f"{CAL}.coef", [1, 2, 3], "smi_calibration.coef must be 4 numbers"),
        (f"{CAL}.coef", [1, 2, 3, 4, 5], "smi_calibration.coef must be 4 numbers"),
        (f"{CAL}.coef.2", math.nan, "smi_calibration.coef must be 4 numbers"),
        (f"{CAL}.coef", (1, 2, 3, 4), "smi_calibration.coef must be 4 numbers"),
        (f"{CAL}.xtx_inv", [[1, 0, 0, 0]] * 3, "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.xtx_inv", [[1, 0, 0, 0]] * 5, "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.xtx_inv.3", [1, 0, 0], "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.xtx_inv.3", (0, 0, 0, 1), "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.xtx_inv.1", [0, 1, math.inf, 0], "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.xtx_inv", "I", "smi_calibration.xtx_inv must be 4 x 4 numbers"),
        (f"{CAL}.residual_sd", 0, "smi_calibration.residual_sd must be in (0, 3]"),
        (f"{CAL}.residual_sd", 3.0001, "smi_calibration.residual_sd must be in (0, 3]"),
        (f"{CAL}.residual_sd", DROP, "smi_calibration.residual_sd must be in (0, 3]"),
        (f"{CAL}.t95", 1.4999, "smi_calibration.t95 must be in [1.5, 3.5]"),
        (f"{CAL}.t95", 3.5001, "smi_calibration.t95 must be in [1.5, 3.5]"),
        (f"{CAL}.t95", DROP, "smi_calibration.t95 must be in [1.5, 3.5]"),
        (f"{CAL}.n", 4, "smi_calibration.n must be an integer >= 5"),
        (f"{CAL}.n", 5.0, "smi_calibration.n must be an integer >= 5"),
        (f"{CAL}.n", DROP, "smi_calibration.n must be an integer >= 5"),
        (f"{CAL}.interval_scale", 0, "smi_calibration.interval_scale out of range"),
        (f"{CAL}.interval_scale", 10.0001, "smi_calibration.interval_scale out of range"),
        (f"{CAL}.interval_scale", None, "smi_calibration.interval_scale out of range"),
        (f"{CAL}.one_side_sd", -0.0001, "smi_calibration.one_side_sd out of range"),
        (f"{CAL}.one_side_sd", 3.0001, "smi_calibration.one_side_sd out of range"),
        (f"{CAL}.one_side_sd", "0.1", "smi_calibration.one_side_sd out of range"),
    ],
)
def test_calibration_refused(path, value, message):
    assert refusal(edited(path, value)) == f"manifest.json: {message}"


@pytest.mark.parametrize(
    "path, value",
    [
        (f"{CAL}.form", "linear"),
        (f"{CAL}.residual_sd", 3),
        (f"{CAL}.residual_sd", 1e-9),
        (f"{CAL}.t95", 1.5),
        (f"{CAL}.t95", 3.5),
        (f"{CAL}.n", 5),
        (f"{CAL}.interval_scale", 10),
        (f"{CAL}.interval_scale", 1e-9),
        (f"{CAL}.one_side_sd", 0),
        (f"{CAL}.one_side_sd", 3),
    ],
)
def test_calibration_accepted_at_its_bounds(path, value):
    validate_manifest(edited(path, value))


@pytest.mark.parametrize(
    "gate, ok",
    [
        ({"min_confidence": 0}, True),
        ({"thigh_area_cm2": [60, 60]}, True),
        ({"min_confidence": -0.1}, False),
        ({"thigh_area_cm2": [600, 60]}, False),
        ({"thigh_area_cm2": [60, 600, 900]}, False),
        ({"thigh_area_cm2": [60, math.nan]}, False),
        ({"thigh_area_cm2": [-1, 600]}, False),
        ({"min_confidence": True}, False),
        ({"bogus": 1}, False),
    ],
)
def test_quality_gate(gate, ok):
    m = edited("quality_gate", gate)
    if ok:
        validate_manifest(m)
    else:
        assert refusal(m) == f"manifest.json: quality_gate.{next(iter(gate))} malformed"


def test_quality_gate_must_be_an_object():
    assert refusal(edited("quality_gate", [1])) == "manifest.json: quality_gate must be an object"
    assert refusal(edited("quality_gate", {"min_confidence": 0.5, "max_side_ratio": -1})).endswith(
        "quality_gate.max_side_ratio malformed"
    )


@pytest.mark.parametrize(
    "dec, message",
    [
        ([1], "decision must be an object"),
        ({"who": {"clear": 0.1, "refer": 0.2}}, "decision.who: unknown criteria"),
        ({"ewgsop2": {"clear": 0.3, "refer": 0.2}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"clear": -0.1, "refer": 0.2}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"clear": 0.1, "refer": 1.1}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"clear": 0.1}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"refer": 0.1}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"clear": math.nan, "refer": 0.2}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"ewgsop2": {"clear": 0.1, "refer": "0.2"}}, "decision.ewgsop2 needs 0 <= clear <= refer <= 1"),
        ({"awgs2019": [0.1, 0.2]}, "decision.awgs2019 needs 0 <= clear <= refer <= 1"),
    ],
)
def test_decision_refused(dec, message):
    assert refusal(edited("decision", dec)) == f"manifest.json: {message}"


def test_decision_accepted_with_equal_thresholds():
    validate_manifest(edited("decision", {"ewgsop2": {"clear": 0.25, "refer": 0.25}}))


# --- loading and trusting a bundle (tiny files, no model) -----------------------------------


def make_bundle(root: Path, **changes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    m = good()
    m.update(changes)
    for name in m["files"].values():
        (root / name).write_bytes(name.encode() * 3)
        m["sha256"][name] = hashlib.sha256(name.encode() * 3).hexdigest()
    (root / "manifest.json").write_text(json.dumps(m))
    return root


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SARCO_EDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_load_trust_and_refuse(tmp_path, home):
    root = make_bundle(tmp_path / "b")
    digest = hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()
    with pytest.raises(BundleError) as e:
        B.load_bundle(root)
    assert str(e.value) == (
        f"manifest.json of b (sha256 {digest[:12]}) is neither the shipped bundle nor in this site's trust "
        "store: refusing it (if this bundle is yours: sarco-edge trust DIR)"
    )
    b = B.load_bundle(root, require_trust=False)
    assert (b.trust, b.digest, b.root) == ("unchecked", digest, root)
    assert b.xml == root / "model.xml" and b.input_size == (512, 192)
    assert B.trust_bundle(root) == digest
    stored = {"manifests": {digest: {"name": "test", "version": "1.0"}}}
    assert (home / "trusted_bundles.json").read_text() == json.dumps(stored, indent=2)  # for a person to read
    assert B._trusted_digests() == {digest}
    assert B.load_bundle(root).trust == "trusted"
    other = make_bundle(tmp_path / "c", version="2.0")
    d2 = B.trust_bundle(other)
    assert B._trusted_digests() == {digest, d2}  # the store keeps both


def test_a_pinned_manifest_loads_without_the_store(tmp_path, home, monkeypatch):
    root = make_bundle(tmp_path / "b")
    digest = hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()
    monkeypatch.setattr(B, "PINNED_MANIFESTS", {digest: "test"})
    assert B.load_bundle(root).trust == "pinned"


@pytest.mark.parametrize("content", ["not json", '{"manifests": [1]}', "[1]", '{"manifests": {"short": 1}}', "{}"])
def test_a_damaged_trust_store_trusts_nothing_and_is_rewritten(tmp_path, home, content):
    home.mkdir()
    (home / "trusted_bundles.json").write_text(content)
    assert B._trusted_digests() == set()
    root = make_bundle(tmp_path / "b")
    digest = B.trust_bundle(root)
    assert B._trusted_digests() == {digest}


def test_trusting_creates_the_store_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SARCO_EDGE_HOME", str(tmp_path / "a" / "b"))
    d = B.trust_bundle(make_bundle(tmp_path / "bundle"))
    assert B._trusted_digests() == {d}


def test_load_bundle_without_a_root_loads_the_default(monkeypatch, tmp_path, home):
    root = make_bundle(tmp_path / "b")
    monkeypatch.setenv("SARCO_EDGE_MODEL", str(root))
    assert B.load_bundle(require_trust=False).root == root


def test_trust_store_location(monkeypatch, tmp_path):
    monkeypatch.setenv("SARCO_EDGE_HOME", str(tmp_path))
    assert B.trust_store() == tmp_path
    monkeypatch.delenv("SARCO_EDGE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert B.trust_store() == tmp_path / "h" / ".config" / "sarco-edge"


def test_default_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv("SARCO_EDGE_MODEL", str(tmp_path))
    assert B.default_bundle() == tmp_path
    monkeypatch.delenv("SARCO_EDGE_MODEL")
    a, b = make_bundle(tmp_path / "a"), make_bundle(tmp_path / "b")
    monkeypatch.setattr(B, "_CANDIDATES", (tmp_path / "none", b, a))
    assert B.default_bundle() == b
    monkeypatch.setattr(B, "_CANDIDATES", (tmp_path / "none", tmp_path / "nothing"))
    assert B.default_bundle() == tmp_path / "none"


def test_load_bundle_refusals(tmp_path, home):
    with pytest.raises(BundleError, match="^no model bundle at .* \\(manifest.json missing\\)$"):
        B.load_bundle(tmp_path / "none")
    root = make_bundle(tmp_path / "b")
    (root / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="^manifest.json is not valid JSON$"):
        B.load_bundle(root, require_trust=False)
    root = make_bundle(tmp_path / "c")
    (root / "model.bin").write_bytes(b"changed")
    with pytest.raises(BundleError, match="^model bundle file model.bin does not match its sha256"):
        B.load_bundle(root, require_trust=False)
    root = make_bundle(tmp_path / "d")
    (root / "CARD.md").unlink()
    with pytest.raises(BundleError, match="^model bundle file missing or not a plain file in the bundle: CARD.md$"):
        B.load_bundle(root, require_trust=False)
    root = make_bundle(tmp_path / "e")
    (root / "CARD.md").rename(tmp_path / "CARD.md")
    (root / "CARD.md").symlink_to(tmp_path / "CARD.md")
    with pytest.raises(BundleError, match="not a plain file in the bundle: CARD.md$"):
        B.load_bundle(root, require_trust=False)
    root = make_bundle(tmp_path / "f")
    (root / "manifest.json").write_text(json.dumps(edited("output", DROP)))
    with pytest.raises(BundleError, match="output.threshold"):
        B.load_bundle(root, require_trust=False)


def test_sha256_of_a_file_over_one_chunk(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB read
    (tmp_path / "f").write_bytes(data)
    assert B.sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_cache_is_intact(tmp_path):
    f = tmp_path / "cache"
    f.mkdir()
    (f / "blob").write_bytes(b"compiled")
    assert not B._cache_is_intact(f)  # no index
    (f / "sarco-cache.json").write_text(json.dumps({"blob": hashlib.sha256(b"compiled").hexdigest()}))
    assert B._cache_is_intact(f)
    (f / "planted").write_bytes(b"x")
    assert not B._cache_is_intact(f)
    (f / "planted").unlink()
    (f / "blob").write_bytes(b"changed")
    assert not B._cache_is_intact(f)
    (f / "sarco-cache.json").write_text("[1]")
    assert not B._cache_is_intact(f)


# --- probabilities ------------------------------------------------------------------------


def test_probabilities_sigmoid_and_softmax():
    one = np.array([[[[0.0, math.log(3.0)]]]], np.float32)  # (1, 1, 1, 2)
    p = B.probabilities(one)
    assert p.shape == (1, 1, 2) and p.dtype == np.float32
    assert p[0, 0].tolist() == pytest.approx([0.5, 0.75])
    many = np.log(np.array([[[[1.0]], [[3.0]], [[4.0]]]], np.float32)) + 100.0  # (1, 3, 1, 1), large logits
    p = B.probabilities(many)
    assert p.shape == (3, 1, 1) and p.dtype == np.float32
    assert p[:, 0, 0].tolist() == pytest.approx([0.125, 0.375, 0.5], abs=1e-5)
    assert B.muscle_of(p) == pytest.approx(np.array([[0.375]]))
    assert B.muscle_of(B.probabilities(one)) == pytest.approx(np.array([[0.5, 0.75]]))
    # two pixels, one with a huge logit: each pixel is normalised over its own channels
    two = np.array([[[[1000.0, 0.0]], [[0.0, math.log(3.0)]]]], np.float32)  # (1, 2, 1, 2)
    p = B.probabilities(two)
    assert p[:, 0, 0].tolist() == pytest.approx([1.0, 0.0]) and p[:, 0, 1].tolist() == pytest.approx([0.25, 0.75])


def test_class_probabilities_average_the_film_and_its_mirror():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
    seen = []

    def logits_of(inp):
        seen.append(inp[0, 0, 0].tolist())
        return inp  # logit = pixel value

    p = B.class_probabilities(logits_of, x)
    sig = 1 / (1 + np.exp(-np.arange(4.0)))
    assert sorted(seen) == [[0, 1, 2, 3], [3, 2, 1, 0]]  # the film and its mirror
    assert p[0, 0].tolist() == pytest.approx(sig.tolist())  # the mirror's output mirrored back
    assert B.probability_from_logits(logits_of, x)[0].tolist() == pytest.approx(sig.tolist())
    pair = B.class_probabilities_of_pair(x, x[..., ::-1])
    assert pair[0, 0].tolist() == pytest.approx(sig.tolist())


def test_muscle_probability_runs_the_compiled_model():
    class Compiled:
        def output(self, i):
            return ("out", i)

        def __call__(self, inp):
            return {("out", 0): inp * 0.0}

    x = np.ones((1, 1, 2, 2), np.float32)
    assert B.muscle_probability(Compiled(), x).tolist() == [[0.5, 0.5], [0.5, 0.5]]


# --- compile_bundle against a stand-in core -----------------------------------------------


class FakeCore:
    def __init__(self, shape, dynamic=False):
        self.shape, self.dynamic, self.props, self.calls = shape, dynamic, {}, []

    def set_property(self, d):
        self.props.update(d)

    def compile_model(self, xml, device, config):
        self.calls.append((xml, device, config))
        if "CACHE_DIR" in self.props:
            (Path(self.props["CACHE_DIR"]) / "blob.cache").write_bytes(b"blob")
        core = self

        class PS:
            is_dynamic = core.dynamic  # a property in OpenVINO

            def get_min_shape(self):
                return core.shape

        class Port:
            def get_partial_shape(self):
                return PS()

            def get_shape(self):
                assert not core.dynamic, "get_shape of a dynamic input raises in OpenVINO"
                return core.shape

        class Compiled:
            def input(self, i):
                assert i == 0
                return Port()

        return Compiled()


def fake_openvino(monkeypatch, core):
    class OV:
        def Core(self):  # noqa: N802 (OpenVINO's name)
            return core

    monkeypatch.setattr(edge.ov, "openvino", lambda: OV())


def test_compile_bundle_checks_the_input_shape_and_records_the_cache(tmp_path, monkeypatch, home):
    root = make_bundle(tmp_path / "b")
    b = B.load_bundle(root, require_trust=False)
    core = FakeCore([1, 1, 512, 192])
    fake_openvino(monkeypatch, core)
    B.compile_bundle(b, "CPU", cache_dir=tmp_path / "cache", hint="THROUGHPUT")
    folder = tmp_path / "cache" / f"{b.digest[:16]}-CPU-throughput"
    assert core.props == {"CACHE_DIR": str(folder)}
    assert core.calls == [
        (str(root / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT"})
    ]
    index = json.loads((folder / "sarco-cache.json").read_text())
    assert index == {"blob.cache": hashlib.sha256(b"blob").hexdigest()}
    # a planted blob: the folder is wiped and compiled afresh (the plant is gone)
    (folder / "planted").write_bytes(b"x")
    core2 = FakeCore([1, 1, 512, 192])
    fake_openvino(monkeypatch, core2)
    B.compile_bundle(b, "CPU", cache_dir=tmp_path / "cache", hint="THROUGHPUT")
    assert sorted(p.name for p in folder.iterdir()) == ["blob.cache", "sarco-cache.json"]
    # an intact cache is used as it is: its index is not rewritten
    (folder / "sarco-cache.json").write_text(json.dumps({"blob.cache": hashlib.sha256(b"blob").hexdigest()}) + " ")
    B.compile_bundle(b, "CPU", cache_dir=tmp_path / "cache", hint="THROUGHPUT")
    assert (folder / "sarco-cache.json").read_text().endswith(" ")


def test_compile_bundle_without_cache_and_with_a_wrong_shape(tmp_path, monkeypatch, home):
    b = B.load_bundle(make_bundle(tmp_path / "b"), require_trust=False)
    core = FakeCore([1, 1, 256, 192])
    fake_openvino(monkeypatch, core)
    with pytest.raises(
        BundleError, match=r"^model input \[1, 1, 256, 192\] does not match manifest input.size \[512, 192\]$"
    ):
        B.compile_bundle(b, "GPU.0:x,y")
    assert core.props == {} and core.calls[0][1:] == ("GPU.0:x,y", {})
    dyn = FakeCore([1, 1, 512, 192], dynamic=True)
    fake_openvino(monkeypatch, dyn)
    B.compile_bundle(b, "GPU:0,1", cache_dir=tmp_path / "cache", threads=2)  # threads: CPU only
    assert dyn.props == {"CACHE_DIR": str(tmp_path / "cache" / f"{b.digest[:16]}-GPU_0_1")}
    assert dyn.calls[0][2] == {}
    dyn = FakeCore([1, 1, 256, 192], dynamic=True)
    fake_openvino(monkeypatch, dyn)
    with pytest.raises(BundleError, match=r"^model input \[1, 1, 256, 192\]"):
        B.compile_bundle(b)


@pytest.mark.parametrize("threads", [1, 2])
def test_compile_bundle_threads_on_the_cpu(tmp_path, monkeypatch, home, threads):
    b = B.load_bundle(make_bundle(tmp_path / "b"), require_trust=False)
    core = FakeCore([1, 1, 512, 192])
    fake_openvino(monkeypatch, core)
    B.compile_bundle(b, cache_dir=tmp_path / "cache", threads=threads)  # the default device: CPU
    assert core.props == {"CACHE_DIR": str(tmp_path / "cache" / f"{b.digest[:16]}-CPU-t{threads}")}
    assert core.calls[0][1:] == ("CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})


def test_a_bundle_without_digest_is_compiled_without_cache(tmp_path, monkeypatch):
    b = B.Bundle(root=make_bundle(tmp_path / "b"), manifest=copy.deepcopy(good()))
    core = FakeCore([1, 1, 512, 192])
    fake_openvino(monkeypatch, core)
    B.compile_bundle(b, "CPU", cache_dir=tmp_path / "cache")
    assert core.props == {} and not (tmp_path / "cache").exists()


def test_a_damaged_cache_that_cannot_be_removed_does_not_stop_the_compile(tmp_path, monkeypatch, home):
    """Removing a damaged cache folder is best effort (a file vanishing meanwhile, a locked file on
    Windows): an rmtree that fails must not turn into an error for the user."""
    root = make_bundle(tmp_path / "b")
    b = B.load_bundle(root, require_trust=False)
    fake_openvino(monkeypatch, FakeCore([1, 1, 512, 192]))
    folder = tmp_path / "cache" / f"{b.digest[:16]}-CPU"
    folder.mkdir(parents=True)
    (folder / "planted").write_bytes(b"x")  # no index: not intact
    real_rmtree = B.shutil.rmtree

    def stubborn(path, ignore_errors=False, **kw):
        if not ignore_errors:
            raise OSError("in use")
        return real_rmtree(path, ignore_errors=True, **kw)

    monkeypatch.setattr(B.shutil, "rmtree", stubborn)
    B.compile_bundle(b, "CPU", cache_dir=tmp_path / "cache")
    assert (folder / "sarco-cache.json").exists()

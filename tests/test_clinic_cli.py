"""The clinic command line as a user runs it: the sample film, bad input, privacy, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.helpers import REPO, run_cli
from tests.hostile import make_hostile_corpus

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"


def test_inspect_the_shipped_sample_film_without_leaking_identity():
    ds = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    res = run_cli("edge.cli", "inspect", str(SAMPLE), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["modality"] == "DX" and info["pixel_spacing_source"] == "PixelSpacing"
    assert info["pixel_spacing_mm"][0] == float(ds.PixelSpacing[0])
    assert info["sex"] == ds.PatientSex and info["transfer_syntax"].startswith("JPEG 2000")
    human = run_cli("edge.cli", "inspect", str(SAMPLE))
    for text in (res.stdout + res.stderr, human.stdout + human.stderr):
        assert str(ds.PatientName) not in text and str(ds.PatientID) not in text
        assert "PHANTOM" not in text


def test_inspect_gives_one_line_and_exit_3_for_every_hostile_file(tmp_path: Path):
    corpus = make_hostile_corpus(tmp_path)
    for name, _kind in corpus.items():
        res = run_cli("edge.cli", "inspect", str(tmp_path / name))
        assert res.returncode == 3, (name, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, res.stderr)
        assert "Traceback" not in res.stderr and res.stdout == ""


def test_the_clinic_runtime_imports_no_training_stack():
    code = (
        "import sys, edge.cli, edge.reader, edge.preprocess, edge.measure, edge.smi; "
        "bad = [m for m in ('torch', 'nncf', 'onnx', 'onnxruntime', 'segmentation_models_pytorch', 'timm', 'train', 'quantize') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_a_damaged_png_gives_the_tool_line_only(tmp_path: Path):
    import cv2
    import numpy as np

    img = (np.random.default_rng(0).random((300, 120)) * 255).astype(np.uint8)
    data = bytearray(cv2.imencode(".png", img)[1].tobytes())
    data[200] ^= 0xFF  # inside IDAT: libpng would print "libpng error: IDAT: CRC error" first
    (tmp_path / "d.png").write_bytes(bytes(data))
    res = run_cli("edge.cli", "screen", str(tmp_path / "d.png"), "--spacing-mm", "1")
    assert res.returncode == 3
    assert res.stderr.splitlines() == ["error: d.png: PNG data is damaged (a chunk checksum does not match)"]


def test_an_unknown_device_is_a_usage_error():
    res = run_cli("edge.cli", "screen", str(SAMPLE), "--device", "XYZ")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "--device" in res.stderr


@pytest.mark.parametrize(
    "entry,argv",
    [
        ("sarco", ["train", "cohort", "--run", "r"]),
        ("sarco", ["export", "run", "--out", "o", "--data", "d"]),
        ("sarco", ["quantize", "run", "--out", "o", "--data", "d"]),
        ("train.cli", ["evaluate", "run", "--data", "d"]),
    ],
)
def test_training_commands_on_a_clinic_install_say_what_to_install(entry: str, argv: list[str]):
    """The composed `sarco` entry and the training room alone both name the extra to install."""
    code = (
        "import runpy, sys; sys.modules['torch'] = None\n"
        f"sys.argv = ['sarco', *{argv!r}]\n"
        f"runpy.run_module({entry!r}, run_name='__main__')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 2, res.stderr[-1000:]
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and ".[train]" in res.stderr
    assert f"'sarco {argv[0]}'" in res.stderr


def test_phantom_with_compression_is_byte_reproducible(tmp_path: Path):
    for run in ("a", "b"):
        res = run_cli(
            "train.cli", "phantom", str(tmp_path / run), "--n", "1", "--seed", "4", "--compress", "rle", "--no-preview"
        )
        assert res.returncode == 0, res.stderr[-1000:]
    a = sorted((tmp_path / "a" / "images").iterdir())
    b = sorted((tmp_path / "b" / "images").iterdir())
    assert [p.name for p in a] == [p.name for p in b] and a
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def test_benchmark_prints_and_writes_a_row_per_device(tmp_path: Path):
    import shutil

    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLE, tmp_path / "in" / "a.dcm")
    res = run_cli(
        "edge.cli",
        "benchmark",
        "--device",
        "CPU",
        "--calls",
        "5",
        "--folder",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "b.md"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    md = (tmp_path / "b.md").read_text()
    row = [ln for ln in md.splitlines() if ln.startswith("| CPU |")]
    assert len(row) == 1 and float(row[0].split("|")[3]) > 0
    assert "1 files at" in md
    bad = run_cli("edge.cli", "benchmark", "--device", "XYZ")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1

"""The clinic command line as a user runs it: the sample film, bad input, privacy, no torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom

from conftest import REPO, run_cli
from hostile import make_hostile_corpus

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
    for name, kind in corpus.items():
        res = run_cli("edge.cli", "inspect", str(tmp_path / name))
        assert res.returncode == 3, (name, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, res.stderr)
        assert "Traceback" not in res.stderr and res.stdout == ""


def test_the_clinic_runtime_imports_no_training_stack():
    code = ("import sys, edge.cli, edge.reader, edge.preprocess, edge.measure, edge.smi; "
            "bad = [m for m in ('torch', 'nncf', 'onnx', 'onnxruntime', 'segmentation_models_pytorch', 'timm', 'train', 'quantize') "
            "if m in sys.modules]; print(','.join(bad))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""

"""Shared fixtures: a small phantom cohort written once per test session through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a console entry point as a user would (a fresh process), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


@pytest.fixture(scope="session")
def demo_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohorts") / "demo-cohort"
    res = run_cli("train.cli", "phantom", str(out), "--n", "8", "--seed", "1")
    assert res.returncode == 0, res.stderr
    return out

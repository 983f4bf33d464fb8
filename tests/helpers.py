"""What many test modules share: the repository root and running a console entry point as a user would."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a console entry point as a user would (a fresh process), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def cohort_rows(cohort: Path) -> list[dict]:
    """A cohort's cases.csv as it is on disk: every column a string, as written."""
    with open(cohort / "cases.csv", newline="") as f:
        return list(csv.DictReader(f))

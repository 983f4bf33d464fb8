"""Decode budgets: every bomb kind is refused with one line, exit 3, and the reader's peak memory
stays under the stated limit (README: 1.5 GB for any input), measured per child with wait4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bombs import all_bombs
from tests.helpers import REPO
from tests.hostile import png_bomb_bytes, tiff_bomb_bytes

PEAK_LIMIT_MB = 1536
EXPECTED = {
    "deflate": "inflates past",
    "j2k_siz": "but the header says",
    "jpegls_sof": "but the header says",
    "tiff_dup": "repeats",
    "png": "too large",
    "tiff": "too large",
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    found = all_bombs(folder)
    (folder / "bomb.png").write_bytes(png_bomb_bytes())
    (folder / "bomb.tiff").write_bytes(tiff_bomb_bytes())
    found.update(png=folder / "bomb.png", tiff=folder / "bomb.tiff")
    return found


def _inspect_peak(path: Path) -> tuple[int, str, float]:
    """Exit code, stderr and peak RSS (MB) of `sarco-edge inspect PATH` and its children."""
    err = path.with_suffix(".stderr")
    with open(err, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "inspect", str(path)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=fe
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err.read_text(), usage.ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_bomb_refused_within_memory_budget(bombs: dict[str, Path], kind: str):
    before = bombs[kind].read_bytes()
    code, stderr, peak_mb = _inspect_peak(bombs[kind])
    assert code == 3, (kind, code, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and EXPECTED[kind] in lines[0], stderr
    assert peak_mb < PEAK_LIMIT_MB, f"{kind}: peak RSS {peak_mb:.0f} MB"
    assert bombs[kind].read_bytes() == before

"""Start-up does only what a command needs: the CLI module imports neither OpenVINO nor the DICOM
stack, `inspect` never loads OpenVINO, and `screen` still gives one error line (and the input's
exit code) when both the film and the model are bad."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in ('openvino', 'pydicom', 'cv2') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return set(res.stdout.split())


def test_importing_the_cli_loads_no_model_runtime_and_no_dicom_stack():
    assert _loaded_after("import edge.cli") == set()


def test_inspect_does_not_load_openvino():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from edge.cli import app\n"
        f"res = CliRunner().invoke(app, ['inspect', {str(SAMPLE)!r}, '--json'])\n"
        "assert res.exit_code == 0, res.output"
    )
    loaded = _loaded_after(code)
    assert "pydicom" in loaded and "openvino" not in loaded


def test_screen_with_a_bad_film_and_a_bad_model_says_one_line(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not an image")
    res = subprocess.run(
        [sys.executable, "-m", "edge.cli", "screen", str(bad), "--model", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode == 3, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "x.dcm" in res.stderr

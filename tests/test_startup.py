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


def _run_entry(*args: str) -> subprocess.CompletedProcess:
    """The console entry point with an atexit hook that says whether the interpreter tore down."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TEARDOWN', file=sys.stderr))\n"
        f"sys.argv = ['sarco-edge', *{list(args)!r}]\n"
        "from edge.cli import run\n"
        "run()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_one_film_commands_end_without_teardown_and_keep_output_and_exit_code(tmp_path):
    import json

    ok = _run_entry("screen", str(SAMPLE), "--json")
    assert ok.returncode == 0 and "TEARDOWN" not in ok.stderr, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["thigh_muscle_area_px"] > 0  # all of stdout got out before the exit
    missing = _run_entry("screen", str(tmp_path / "gone.dcm"))
    assert missing.returncode == 3 and missing.stderr.strip() == "error: gone.dcm: file not found"
    usage = _run_entry("inspect")
    assert usage.returncode == 2 and "TEARDOWN" not in usage.stderr
    other = _run_entry("info")  # pools, clusters, listeners: the ordinary exit
    assert other.returncode == 0 and "TEARDOWN" in other.stderr, other.stderr[-2000:]


def test_the_screener_loads_without_the_dicom_stack():
    """`screen` compiles the model in a thread while the main thread imports the reader: the
    screener's own imports (bundle, quality gate, OpenVINO) must not pull in pydicom themselves."""
    assert "pydicom" not in _loaded_after("import edge.screen, edge.bundle, edge.quality")

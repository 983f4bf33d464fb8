"""sarco-edge clinic runtime: reads films, runs the OpenVINO model, reports. No torch here.

Network silence is set up here, before anything can import OpenVINO: `import openvino` loads
its model converter, which sends a telemetry event (a DNS lookup from a forked child, and files
under ~/intel) unless `CI=true` or an opt-out file exists. OpenVINO falls back to a silent stub
when `openvino_telemetry` cannot be imported, so the runtime marks that module as absent. This
holds in every process that imports `edge` (the CLIs, the training side, the tests), whatever
the environment. See tests/test_network.py.
"""

import sys as _sys

if "openvino_telemetry" not in _sys.modules:
    _sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import -> ImportError

# OpenCV refuses PNG/JPEG/TIFF images above this many pixels before allocating (its own check,
# read once at first use); the reader's header checks refuse them earlier still.
import os as _os

_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(120_000_000))


# The one place the version is written: pyproject.toml reads it from here (setuptools `attr`),
# so a stale installed metadata can never disagree with the code, and nothing is looked up at import.
__version__ = "0.2.0"

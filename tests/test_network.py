"""The clinic runtime never touches the network, whatever the environment.

Observed with strace (-f: children too) on the real CLI in a child process, with `CI` unset
(OpenVINO's telemetry is silent under CI=true, so a CI run would otherwise prove nothing) and a
fresh HOME (first run: no opt-out file). A positive control proves the tracer sees a connect.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
# connect/sendto/sendmsg to an IP address (AF_INET/AF_INET6): a DNS lookup is a UDP sendto/connect.
NET = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(.*AF_INET6?\b")


def _traced(tmp_path: Path, args: list[str]) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    strace = shutil.which("strace")
    assert strace, "strace is needed to observe network calls (.ci/run installs it)"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "OPENVINO_TELEMETRY")}
    env["HOME"] = str(home)
    env["SARCO_EDGE_CACHE"] = str(tmp_path / "cache")
    log = tmp_path / "strace.log"
    res = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", str(log), sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    calls = [ln for ln in log.read_text().splitlines() if NET.search(ln)]
    return res, calls, home


def test_the_tracer_sees_a_connection_attempt(tmp_path: Path):
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\n"
    res, calls, _ = _traced(tmp_path, ["-c", code])
    assert res.returncode == 0, res.stderr
    assert calls, "the positive control was not observed: the test below could pass vacuously"


@pytest.mark.parametrize(
    "command",
    [
        ["screen", str(SAMPLE), "--json"],
        ["info"],
        ["inspect", str(SAMPLE)],
    ],
    ids=lambda c: c[0],
)
def test_cli_makes_no_network_call_and_writes_nothing_under_home(tmp_path: Path, command: list[str]):
    res, calls, home = _traced(tmp_path, ["-m", "edge.cli", *command])
    assert res.returncode == 0, res.stderr[-2000:]
    assert calls == [], calls[:5]
    assert list(home.iterdir()) == [], "files written under HOME (OpenVINO telemetry writes ~/intel)"


def test_batch_makes_no_network_call(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.dcm")
    res, calls, home = _traced(tmp_path, ["-m", "edge.cli", "batch", str(folder), "--out", str(tmp_path / "r.csv")])
    assert res.returncode == 0, res.stderr[-2000:]
    assert calls == [], calls[:5]
    assert not (home / "intel").exists()

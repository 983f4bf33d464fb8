"""Shared fixtures: a small phantom cohort written once per test session through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture(scope="session")
def demo_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohorts") / "demo-cohort"
    res = run_cli("train.cli", "phantom", str(out), "--n", "8", "--seed", "1")
    assert res.returncode == 0, res.stderr
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With SARCO_NO_SKIP=1 (the development run in CI) a skipped test fails the run: skips are
    for a clinic install without the training stack, never for the full one."""
    if os.environ.get("SARCO_NO_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        print(f"\nSARCO_NO_SKIP=1: {len(skipped)} skipped test(s) fail this run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

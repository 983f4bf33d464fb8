"""The house's rules, read from the source: imports flow one way (edge below train and quantize,
which never import each other; only the top-level `sarco.py` composes them), and edge stays
readable (no module over 400 lines, no function over 60; ruff's C901 keeps complexity <= 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

ROOMS = ("edge", "train", "quantize", "sarco")
FORBIDDEN = {"edge": {"train", "quantize", "sarco"}, "train": {"quantize", "sarco"}, "quantize": {"train", "sarco"}}


def _modules(room: str) -> list[Path]:
    return sorted((REPO / room).rglob("*.py"))


def imported_rooms(path: Path) -> set[str]:
    """Top-level project packages a module imports (absolute imports; relative ones stay home)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in ROOMS}
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_import_runs_back_up_or_across(room: str):
    bad = {
        str(p.relative_to(REPO)): sorted(imported_rooms(p) & FORBIDDEN[room])
        for p in _modules(room)
        if imported_rooms(p) & FORBIDDEN[room]
    }
    assert not bad, bad


def test_the_checker_sees_an_arrow(tmp_path: Path):
    """A planted `from train.trainer import load_run` (and a plain `import quantize.cli`) is found."""
    planted = tmp_path / "planted.py"
    planted.write_text("import os\nfrom train.trainer import load_run\nimport quantize.cli as q\nfrom . import x\n")
    assert imported_rooms(planted) == {"train", "quantize"}


def test_sarco_composes_both_rooms():
    assert imported_rooms(REPO / "sarco.py") >= {"train", "quantize"}


def test_edge_modules_and_functions_stay_small():
    long_modules = {}
    long_functions = {}
    for p in _modules("edge"):
        text = p.read_text()
        if len(text.splitlines()) > 400:
            long_modules[str(p.relative_to(REPO))] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long_functions[f"{p.relative_to(REPO)}:{node.name}"] = n
    assert not long_modules, long_modules
    assert not long_functions, long_functions

"""Outputs go only where the user said: unique overlay names, no write through a planted link,
never over an input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from edge.batch import overlay_name
from edge.files import write_text_atomic
from edge.reader import read_film
from edge.report import Report
from edge.screen import write_overlay
from tests.helpers import REPO, run_cli

SAMPLE = REPO / "tests" / "data" / "sample_long_leg.dcm"
REPORT = Report(
    thigh_muscle_area_cm2=1.0,
    thigh_muscle_area_px=1,
    left_cm2=None,
    right_cm2=None,
    sides_seen=1,
    criteria="awgs2019",
    cutoff=None,
    flag="not_assessable",
    flag_meaning="",
    reasons=["test"],
    sex=None,
    sex_source=None,
    height_m=None,
    height_source=None,
    pixel_spacing_mm=None,
    pixel_spacing_source="none",
    quality={},
    model={},
    note="",
)


def test_overlay_names_are_unique_for_names_that_flatten_alike():
    pairs = [
        ("x y.dcm", "x_y.dcm"),
        ("\u00e9.dcm", "\u00e8.dcm"),
        ("sub/a.dcm", "sub__a.dcm"),
        ("a" * 250 + "1.dcm", "a" * 250 + "2.dcm"),
        (os.fsdecode(b"bad\xff.dcm"), "bad_.dcm"),
    ]
    for a, b in pairs:
        na, nb = overlay_name(a), overlay_name(b)
        assert na != nb, (a, b)
        for n in (na, nb):
            assert "/" not in n and "\\\\" not in n and not n.startswith(".") and len(n) < 160 and n.endswith(".png")
    assert overlay_name("sub/a.dcm") == overlay_name("sub/a.dcm")


def test_atomic_write_does_not_follow_a_planted_link(tmp_path: Path):
    victim = tmp_path / "victim.dcm"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").symlink_to(victim)
    write_text_atomic(out / "report.json", "{}")
    assert victim.read_bytes() == b"precious"
    assert not (out / "report.json").is_symlink() and (out / "report.json").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]  # no temporary left behind


def test_overlay_written_over_a_planted_link_replaces_the_link(tmp_path: Path):
    film = read_film(SAMPLE)
    victim = tmp_path / "other.dcm"
    shutil.copy(SAMPLE, victim)
    before = victim.read_bytes()
    ov = tmp_path / "ov"
    ov.mkdir()
    for name in (".other.dcm.tmp.png", "o.png"):  # the old predictable temp name, and the target
        (ov / name).symlink_to(victim)
    write_overlay(ov / "o.png", film, np.zeros(film.pixels.shape, bool), REPORT)
    assert victim.read_bytes() == before
    assert (ov / "o.png").is_file() and not (ov / "o.png").is_symlink()


def test_screen_refuses_an_overlay_that_is_its_input_or_not_png(tmp_path: Path):
    img = tmp_path / "x.dcm"
    shutil.copy(SAMPLE, img)
    before = img.read_bytes()
    for target in (img, tmp_path / "x.jpg", tmp_path / "missing" / "o.png"):
        res = run_cli("edge.cli", "screen", str(img), "--overlay", str(target))
        assert res.returncode == 2, (target, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    png = tmp_path / "x.png"
    res = run_cli("edge.cli", "screen", str(img), "--overlay", str(png))
    assert res.returncode == 0, res.stderr
    res = run_cli("edge.cli", "screen", str(png), "--overlay", str(png), "--spacing-mm", "0.5")
    assert res.returncode == 2 and "input" in res.stderr
    assert img.read_bytes() == before


def test_json_csv_and_table_render_one_report():
    """Each key is spelled once (edge/report.py): the CSV row, the JSON and the table agree."""
    import json

    from edge.batch import COLUMNS, _line

    res = run_cli("edge.cli", "screen", str(SAMPLE), "--json", "--grip-kg", "15")
    rep = json.loads(res.stdout)
    assert rep["category"] == "possible_sarcopenia" and rep["used"] == ["grip_kg"]
    r = Report(
        **{k: rep[k] for k in Report.__dataclass_fields__ if k in rep},
        grading={k: rep[k] for k in ("category", "low_strength", "low_performance", "used")},
    )
    assert r.to_dict() == rep
    cells = r.csv_cells()
    assert list(cells) == COLUMNS[4:]
    assert cells["p_low"] == rep["p_low"] and cells["smi_low"] == rep["smi_interval_95"][0]
    assert cells["category"] == "possible_sarcopenia"
    assert _line({"file": "a.dcm", "status": "ok", **cells}).decode().count(",") >= len(COLUMNS) - 1
    table = dict(r.table_rows())
    assert table["flag"] == rep["flag"] and table["category"] == "possible_sarcopenia"
    assert r.overlay_lines()[2] == f"awgs2019: {rep['flag']}"

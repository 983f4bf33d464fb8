"""Markdown tables, written one way for every report the project writes (benchmarks, the model
card, evaluation summaries, the results page)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def row(cells: Sequence[object]) -> str:
    """One table row; a `|` inside a cell is escaped so it cannot split the cell."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The header, its rule and the rows, as lines (cells already formatted by the caller)."""
    return [row(header), "|" + "---|" * len(header), *(row(r) for r in rows)]

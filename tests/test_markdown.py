"""edge.markdown: the one way reports write a table."""

from edge.markdown import row, table


def test_table_has_header_rule_and_rows():
    assert table(["a", "b"], [[1, "x"], [2.5, None]]) == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | None |"]


def test_a_pipe_in_a_cell_cannot_split_it():
    assert row(["a|b", "c"]) == "| a\\|b | c |"

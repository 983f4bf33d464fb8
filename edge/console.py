"""What the three command lines (`sarco-edge`, and `sarco`'s training and quantization rooms)
share: one plain error line, the progress bar, and the training-stack check."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn


def fail(message: str, code: int, label: str = "error") -> typer.Exit:
    """One plain line on stderr (no wrapping, no markup), and the exit code to raise."""
    print(f"{label}: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def progress_bar(console: Console, *columns) -> Progress:
    """The bar of the long commands: description, bar, n of N, elapsed, remaining (+ columns)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def missing_modules(modules: list[str]) -> list[str]:
    """The modules of `modules` that this interpreter cannot import (found without importing)."""

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):
            return True

    return [m for m in modules if absent(m)]


def require(command: str, modules: list[str], extra: str = "train") -> None:
    """Exit 2 with one line naming the extra to install when `command` needs absent modules."""
    missing = missing_modules(modules)
    if missing:
        raise fail(
            f"'{command}' needs the training stack ({', '.join(missing)} missing): pip install -e '.[{extra}]'",
            2,
        )


def composed(help_text: str, needs: Mapping[str, list[str]], *rooms: typer.Typer) -> typer.Typer:
    """One command line from the rooms' sub-apps (their commands side by side), which checks
    before a command runs that what it needs beyond the clinic install is there (`needs`)."""
    top = typer.Typer(add_completion=False, no_args_is_help=True, help=help_text)

    @top.callback()
    def _check(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand in needs:
            require(f"sarco {ctx.invoked_subcommand}", needs[ctx.invoked_subcommand])

    for room in rooms:
        top.add_typer(room)
    return top

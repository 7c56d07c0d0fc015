"""Helpers shared by the CLI modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.console import Console

from gemkit.config import PRESETS
from gemkit.errors import GemkitError
from gemkit.registry import REGISTRIES

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "AnchorName",
    "PresetName",
    "ProposerName",
    "ReducerName",
    "SupportName",
    "ValueName",
    "choice_name",
    "guarded",
    "make_console",
    "set_threads",
]

PIPE_WIDTH = 400
"""Console width when the output is not a terminal: tables keep their natural width."""


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn gemkit's user errors into one red line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (GemkitError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None

    return wrapper


def make_console(stderr: bool = False) -> Console:
    """A rich console; piped into a file or another program, wide enough that tables keep
    their natural width (no cells cut short, no 80-column squeeze) and lines are not wrapped."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` unless ``threads`` is ``None`` (keep torch's)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _enum(kind: str, names: list[str]) -> type[Enum]:
    """A str Enum of the registered names: typer turns it into a choice that lists them."""
    return Enum(f"{kind.title()}Name", {name: name for name in names}, type=str)  # type: ignore[return-value]


if TYPE_CHECKING:  # mypy sees plain strings; typer sees the choices below
    ProposerName = str
    AnchorName = str
    ValueName = str
    SupportName = str
    ReducerName = str
    PresetName = str
else:
    ProposerName = _enum("proposer", REGISTRIES["proposer"].names())
    AnchorName = _enum("anchor", REGISTRIES["anchor"].names())
    ValueName = _enum("value", REGISTRIES["value"].names())
    SupportName = _enum("support", REGISTRIES["support"].names())
    ReducerName = _enum("reducer", REGISTRIES["reducer"].names())
    PresetName = _enum("preset", sorted(PRESETS))


def choice_name(choice: object) -> str | None:
    """The registry name behind a CLI choice (an Enum member), or ``None``."""
    return None if choice is None else str(getattr(choice, "value", choice))

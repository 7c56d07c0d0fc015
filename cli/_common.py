"""Helpers shared by the CLI modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from gemkit.errors import GemkitError

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["guarded"]


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

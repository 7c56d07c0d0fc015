"""User-facing errors and the input checks that raise them.

Every error meant for a user is a one-line message that says what is wrong and what to do. The CLI
prints these without a traceback. They subclass ``ValueError`` or ``FileNotFoundError`` so that
plain ``except ValueError`` code keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

__all__ = [
    "CheckpointError",
    "DatasetError",
    "DatasetNotFoundError",
    "GemkitError",
    "ShapeError",
    "UnknownComponentError",
    "check_finite",
    "check_shape",
    "unknown_name_message",
]


class GemkitError(ValueError):
    """Base class of gemkit's user-facing errors."""


class ShapeError(GemkitError):
    """A tensor has the wrong number of dims or the wrong size along one."""


class UnknownComponentError(GemkitError):
    """A registry was asked for a name it does not hold."""


class CheckpointError(GemkitError):
    """A checkpoint directory is missing, truncated, corrupt or not gemkit's."""


class DatasetError(GemkitError):
    """A dataset exists but cannot be used (corrupt, empty, mismatched spaces)."""


class DatasetNotFoundError(FileNotFoundError):
    """No local dataset has the requested id."""


def unknown_name_message(kind: str, name: str, valid: Iterable[str]) -> str:
    """One line: the unknown name, a close match if any, and every valid name."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(valid)}."


def check_shape(name: str, x: Tensor, shape: Sequence[int | str | None]) -> None:
    """Check ``x`` against ``shape``; ``None`` or a letter matches any size.

    Raises:
        ShapeError: with the expected and the actual shape, in one line.
    """
    if not isinstance(x, Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    want = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
    if x.dim() != len(shape):
        raise ShapeError(f"{name} must have shape {want}, got {list(x.shape)}.")
    for i, (got, exp) in enumerate(zip(x.shape, shape, strict=True)):
        if isinstance(exp, int) and got != exp:
            raise ShapeError(
                f"{name} must have shape {want}, got {list(x.shape)} (dim {i} is {got}, not {exp})."
            )


def check_finite(name: str, x: Tensor) -> None:
    """Raise a one-line ``GemkitError`` if ``x`` holds NaN or inf."""
    if not torch.isfinite(x).all():
        n_bad = int((~torch.isfinite(x)).sum())
        raise GemkitError(f"{name} contains {n_bad} NaN/inf values; clean or mask them first.")

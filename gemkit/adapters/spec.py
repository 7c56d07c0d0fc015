"""Critics named by a string, for the command line: ``d3rlpy:PATH``, ``module:``, ``torchrl:``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from torch import nn

from gemkit.errors import GemkitError

__all__ = ["CRITIC_FORMS", "critic_from_spec"]

CRITIC_FORMS = ("d3rlpy:PATH", "module:PACKAGE.MODULE:NAME", "torchrl:PACKAGE.MODULE:NAME")
"""The forms ``--critic`` takes. ``NAME`` is an ``nn.Module``, a list of them, or a function
without arguments returning either (the user's own code, imported as usual)."""


def _import(target: str) -> Any:
    mod_name, _, attr = target.partition(":")
    if not mod_name or not attr:
        raise GemkitError(f"expected PACKAGE.MODULE:NAME, got {target!r}.")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GemkitError(f"cannot import {target!r} ({exc}).") from None
    if callable(obj) and not isinstance(obj, nn.Module):
        obj = obj()
    return obj


def critic_from_spec(spec: str) -> Any:
    """The critic a ``--critic`` string names (see :data:`CRITIC_FORMS`).

    Raises:
        GemkitError: an unknown form, a missing file, or a name that cannot be imported.
    """
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise GemkitError(f"--critic {spec!r}: expected one of {', '.join(CRITIC_FORMS)}.")
    if kind == "d3rlpy":
        from gemkit.adapters.d3rlpy import from_d3rlpy

        if not Path(rest).is_file():
            raise GemkitError(f"--critic {spec!r}: no file {rest!r} (save one with algo.save()).")
        return from_d3rlpy(rest)
    if kind == "module":
        from gemkit.adapters.modules import from_modules

        obj = _import(rest)
        return from_modules(*(obj if isinstance(obj, (list, tuple)) else [obj]))
    if kind == "torchrl":
        from gemkit.adapters.torchrl import from_torchrl

        return from_torchrl(_import(rest))
    raise GemkitError(f"--critic {spec!r}: unknown form {kind!r}; use {', '.join(CRITIC_FORMS)}.")

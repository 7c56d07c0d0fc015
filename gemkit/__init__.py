"""gemkit: candidate-based action selection for offline RL (GEM), as composable components.

The public entry point is :func:`compose`, which assembles a :class:`Selector` from registered
components (see ``gemkit components``) or from objects that satisfy :mod:`gemkit.protocols`.

The names below are imported lazily (PEP 562): ``import gemkit`` (or ``gemkit.protocols``)
loads torch and gemkit's errors, not the evaluation stack (gymnasium, Minari).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gemkit.errors import (
    CheckpointError,
    DatasetError,
    DatasetNotFoundError,
    GemkitError,
    ShapeError,
    UnknownComponentError,
)

if TYPE_CHECKING:
    from gemkit import registry
    from gemkit.config import PRESETS, SelectorConfig
    from gemkit.eval import EvalResult, evaluate  # type: ignore[no-redef]
    from gemkit.models import ConditionalGMM, CriticEnsemble, Models, load_models, save_models
    from gemkit.proposers import CandidateProposer
    from gemkit.scorers import EnsembleValue, LambdaSchedule
    from gemkit.selector import Selection, Selector, compose
    from gemkit.support import BehaviorSupport

__version__ = "0.1.0"

#: Each lazily exported name and the module it comes from.
_LAZY: dict[str, str] = {
    "PRESETS": "gemkit.config",
    "SelectorConfig": "gemkit.config",
    "EvalResult": "gemkit.eval",
    "evaluate": "gemkit.eval",
    "ConditionalGMM": "gemkit.models",
    "CriticEnsemble": "gemkit.models",
    "Models": "gemkit.models",
    "load_models": "gemkit.models",
    "save_models": "gemkit.models",
    "CandidateProposer": "gemkit.proposers",
    "EnsembleValue": "gemkit.scorers",
    "LambdaSchedule": "gemkit.scorers",
    "Selection": "gemkit.selector",
    "Selector": "gemkit.selector",
    "compose": "gemkit.selector",
    "BehaviorSupport": "gemkit.support",
}


def __getattr__(name: str) -> Any:
    if name == "registry":
        return importlib.import_module("gemkit.registry")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gemkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "PRESETS",
    "BehaviorSupport",
    "CandidateProposer",
    "CheckpointError",
    "ConditionalGMM",
    "CriticEnsemble",
    "DatasetError",
    "DatasetNotFoundError",
    "EnsembleValue",
    "EvalResult",
    "GemkitError",
    "LambdaSchedule",
    "Models",
    "Selection",
    "Selector",
    "SelectorConfig",
    "ShapeError",
    "UnknownComponentError",
    "__version__",
    "compose",
    "evaluate",
    "load_models",
    "registry",
    "save_models",
]

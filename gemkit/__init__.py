"""gemkit: candidate-based action selection for offline RL (GEM), as composable components.

The public entry point is :func:`compose`, which assembles a :class:`Selector` from registered
components (see ``gemkit components``) or from objects that satisfy :mod:`gemkit.protocols`.
"""

from gemkit import reducers as _reducers  # noqa: F401  (registers top1/topk)
from gemkit import registry
from gemkit.config import PRESETS, SelectorConfig
from gemkit.errors import (
    CheckpointError,
    DatasetError,
    DatasetNotFoundError,
    GemkitError,
    ShapeError,
    UnknownComponentError,
)
from gemkit.eval import EvalResult, evaluate
from gemkit.models import ConditionalGMM, CriticEnsemble, Models, load_models, save_models
from gemkit.proposers import CandidateProposer
from gemkit.scorers import EnsembleValue, LambdaSchedule
from gemkit.selector import Selection, Selector, compose
from gemkit.support import BehaviorSupport

__version__ = "0.1.0"

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

"""Pure torch modules: the conditional GMM, the critic ensemble, the value network."""

from gemkit.models.critic import CriticEnsemble, ValueNetwork, VectorizedLinear
from gemkit.models.gmm import ConditionalGMM, GMMParams
from gemkit.models.io import Models, load_models, save_models

__all__ = [
    "ConditionalGMM",
    "CriticEnsemble",
    "GMMParams",
    "Models",
    "ValueNetwork",
    "VectorizedLinear",
    "load_models",
    "save_models",
]

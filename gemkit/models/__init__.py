"""Pure torch modules: the conditional GMM, the critic ensemble, the value network, and the
generative behavior models (diffusion, flow) of the literature's candidate sources."""

from gemkit.models.critic import CriticEnsemble, ValueNetwork, VectorizedLinear
from gemkit.models.generative import DiffusionBehavior, FlowBehavior
from gemkit.models.gmm import ConditionalGMM, GMMParams
from gemkit.models.io import Models, attach_generative, load_models, save_models, weights_digest

__all__ = [
    "ConditionalGMM",
    "CriticEnsemble",
    "DiffusionBehavior",
    "FlowBehavior",
    "GMMParams",
    "Models",
    "ValueNetwork",
    "VectorizedLinear",
    "attach_generative",
    "load_models",
    "save_models",
    "weights_digest",
]

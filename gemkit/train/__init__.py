"""Phase I of GEM: the critic ensemble, expectile value, behavior GMM and guided-EM actor.

- :func:`train` runs the trainer and checkpoints it (see :mod:`gemkit.train.checkpoint`);
- :class:`Trainer` is the loop's state and one gradient step;
- :class:`TrainConfig` holds every hyperparameter;
- :mod:`gemkit.train.losses` has the losses as pure functions.
"""

from gemkit.train.checkpoint import load_config, load_trainer_state, save_checkpoint
from gemkit.train.config import ConfigError, TrainConfig, apply_overrides
from gemkit.train.trainer import LOSS_NAMES, Trainer, TrainProgress, train

__all__ = [
    "LOSS_NAMES",
    "ConfigError",
    "TrainConfig",
    "TrainProgress",
    "Trainer",
    "apply_overrides",
    "load_config",
    "load_trainer_state",
    "save_checkpoint",
    "train",
]

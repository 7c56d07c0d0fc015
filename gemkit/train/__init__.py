"""Phase I of GEM: the critic ensemble, expectile value, behavior GMM and guided-EM actor.

- :func:`train` runs the trainer and checkpoints it (see :mod:`gemkit.train.checkpoint`);
- :class:`Trainer` is the loop's state and one gradient step;
- :class:`TrainConfig` holds every hyperparameter (:data:`PROFILES`: ``paper`` and ``small``);
- :func:`plan_run` says how many steps pretrain the behavior GMM before the joint updates;
- :mod:`gemkit.train.losses` has the losses as pure functions.
"""

from gemkit.train.checkpoint import load_config, load_trainer_state, save_checkpoint
from gemkit.train.config import PROFILES, ConfigError, TrainConfig, apply_overrides
from gemkit.train.trainer import (
    LOSS_NAMES,
    PRETRAIN_SHARE,
    Trainer,
    TrainingInterrupted,
    TrainPlan,
    TrainProgress,
    plan_run,
    train,
)

__all__ = [
    "LOSS_NAMES",
    "PRETRAIN_SHARE",
    "PROFILES",
    "ConfigError",
    "TrainConfig",
    "TrainPlan",
    "TrainProgress",
    "Trainer",
    "TrainingInterrupted",
    "apply_overrides",
    "load_config",
    "load_trainer_state",
    "plan_run",
    "save_checkpoint",
    "train",
]

"""Phase I of GEM: the critic ensemble, expectile value, behavior GMM and guided-EM actor.

One idea per module:

- :mod:`~gemkit.train.config`: :class:`TrainConfig`, every hyperparameter (:data:`PROFILES`:
  ``paper`` and ``small``);
- :mod:`~gemkit.train.losses`: the losses as pure functions;
- :mod:`~gemkit.train.batches`: the dataset normalised, packed and fingerprinted for training;
- :mod:`~gemkit.train.init`: network construction and initialisation from the run's generator;
- :mod:`~gemkit.train.trainer`: :class:`Trainer`, the networks and one gradient step;
- :mod:`~gemkit.train.plan`: :func:`plan_run`, how many steps pretrain the behavior GMM;
- :mod:`~gemkit.train.metrics`: :data:`LOSS_NAMES`, :class:`TrainProgress`, ``metrics.csv``;
- :mod:`~gemkit.train.checkpoint`: checkpoints with bit-for-bit resume;
- :mod:`~gemkit.train.batch`: :class:`~gemkit.train.batch.RunBatch`, R trainers stepped as one
  batch (runs as a batch dimension);
- :mod:`~gemkit.train.loop`: the loop of a run or a batch (reports, checkpoints, Ctrl-C);
- :mod:`~gemkit.train.run`: :func:`train` (one run) and :func:`train_runs` (a batch of
  :class:`Run`), the runs around the trainer (checkpoints, resume);
- :mod:`~gemkit.train.behavior`: :func:`fit_behavior_gmm`, a behavior GMM fitted alone.
"""

from gemkit.train.behavior import fit_behavior_gmm
from gemkit.train.checkpoint import load_config, load_trainer_state, save_checkpoint
from gemkit.train.config import PROFILES, ConfigError, TrainConfig, apply_overrides
from gemkit.train.metrics import LOSS_NAMES, TrainProgress
from gemkit.train.plan import PRETRAIN_SHARE, TrainPlan, plan_run
from gemkit.train.run import Run, TrainingInterrupted, models_at, snapshot_dir, train, train_runs
from gemkit.train.trainer import Trainer

__all__ = [
    "LOSS_NAMES",
    "PRETRAIN_SHARE",
    "PROFILES",
    "ConfigError",
    "Run",
    "TrainConfig",
    "TrainPlan",
    "TrainProgress",
    "Trainer",
    "TrainingInterrupted",
    "apply_overrides",
    "fit_behavior_gmm",
    "load_config",
    "load_trainer_state",
    "models_at",
    "plan_run",
    "save_checkpoint",
    "snapshot_dir",
    "train",
    "train_runs",
]

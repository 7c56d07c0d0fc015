"""Offline datasets: Minari loading, gemkit's own benchmark datasets, transition tensors.

- :func:`load` reads any local Minari dataset into :class:`Transitions`.
- :func:`make_fork`, :func:`make_pointmaze`, :func:`make_maze2d` (D4RL's ``maze2d-*-v1``
  recipe, the GEM paper's task) and :func:`make_locomotion` record gemkit's datasets
  as real Minari datasets (locomotion: D4RL's SAC recipe, :func:`train_sac`, needs
  ``gemkit[datagen]``).
- :func:`normalized_score` and :func:`reference_scores` implement D4RL's score normalisation.

The makers import ``minari[create]`` lazily, so loading works without it.
"""

from gemkit.data.fork import FORK_DATASET_ID, make_fork
from gemkit.data.locomotion import (
    LOCOMOTION_TASKS,
    locomotion_dataset_id,
    make_locomotion,
)
from gemkit.data.maze2d import make_maze2d, maze2d_dataset_id
from gemkit.data.minari_io import flatten_observation, list_local, load, read_metadata
from gemkit.data.pointmaze import MAZES, MazeExpert, make_pointmaze, pointmaze_dataset_id
from gemkit.data.reference import normalized_score, reference_scores
from gemkit.data.sac import SACConfig, SACRun, load_sac_policy, train_sac
from gemkit.data.transitions import Transitions

__all__ = [
    "FORK_DATASET_ID",
    "LOCOMOTION_TASKS",
    "MAZES",
    "MazeExpert",
    "SACConfig",
    "SACRun",
    "Transitions",
    "flatten_observation",
    "list_local",
    "load",
    "load_sac_policy",
    "locomotion_dataset_id",
    "make_fork",
    "make_locomotion",
    "make_maze2d",
    "make_pointmaze",
    "maze2d_dataset_id",
    "normalized_score",
    "pointmaze_dataset_id",
    "read_metadata",
    "reference_scores",
    "train_sac",
]

"""Offline datasets: Minari loading, gemkit's own benchmark datasets, transition tensors.

- :func:`load` reads any local Minari dataset into :class:`Transitions`.
- :func:`make_fork` and :func:`make_pointmaze` record gemkit's datasets as real Minari datasets.
- :func:`normalized_score` and :func:`reference_scores` implement D4RL's score normalisation.

The makers import ``minari[create]`` lazily, so loading works without it.
"""

from gemkit.data.fork import FORK_DATASET_ID, make_fork
from gemkit.data.minari_io import flatten_observation, list_local, load, read_metadata
from gemkit.data.pointmaze import MAZES, MazeExpert, make_pointmaze, pointmaze_dataset_id
from gemkit.data.reference import normalized_score, reference_scores
from gemkit.data.transitions import Transitions

__all__ = [
    "FORK_DATASET_ID",
    "MAZES",
    "MazeExpert",
    "Transitions",
    "flatten_observation",
    "list_local",
    "load",
    "make_fork",
    "make_pointmaze",
    "normalized_score",
    "pointmaze_dataset_id",
    "read_metadata",
    "reference_scores",
]

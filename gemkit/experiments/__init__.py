"""Experiments over gemkit's tasks: the task registry, the evaluation-cell store, the knob
protocol and the aggregation that results pages are written from.

- :mod:`~gemkit.experiments.tasks`: task names, their datasets, horizons, reference scores
  and the paper's numbers;
- :mod:`~gemkit.experiments.cells`: evaluation cells, their keys and their ``.jsonl`` store;
- :mod:`~gemkit.experiments.protocol`: the knob choice on validation cells, the mean +- std
  over training seeds, the paper's claims checked.

The suites' scripts (``reproductions/mazes.py`` and the scripts around it) plan, evaluate and
report with these; the results pages regenerate from committed cells
(``tests/test_results_pages.py``).
"""

from gemkit.experiments.cells import (
    append_cell,
    cell_key,
    make_cell,
    read_cell_file,
    read_cells,
)
from gemkit.experiments.protocol import aggregate, choose_knobs, claims, mean_std, rank_knobs
from gemkit.experiments.tasks import (
    FORK_NAMES,
    LOCOMOTION_NAMES,
    MAZE2D_NAMES,
    MAZE_NAMES,
    TEST_SEEDS,
    VAL_SEEDS,
    dataset_id,
    horizon,
    reference_scores,
)

__all__ = [
    "FORK_NAMES",
    "LOCOMOTION_NAMES",
    "MAZE2D_NAMES",
    "MAZE_NAMES",
    "TEST_SEEDS",
    "VAL_SEEDS",
    "aggregate",
    "append_cell",
    "cell_key",
    "choose_knobs",
    "claims",
    "dataset_id",
    "horizon",
    "make_cell",
    "mean_std",
    "rank_knobs",
    "read_cell_file",
    "read_cells",
    "reference_scores",
]

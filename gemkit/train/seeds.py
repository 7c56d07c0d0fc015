"""Phase I for several seeds, each a run in ``OUT/seed-<s>``, alone or in batches of runs.

The runs go through a :mod:`gemkit.backends` backend (serial here, or Ray tasks), one task per
``runs_per_task`` seeds: a task of several seeds trains them as one batch
(:func:`gemkit.train.run.train_runs`), each still a normal run in its own folder.
Each run loads its dataset itself, by id, from the Minari store (a path every node must see;
the driver's ``MINARI_DATASETS_PATH`` is forwarded to Ray tasks). A seed whose folder already
holds a checkpoint at ``steps`` or beyond is not run again; one stopped earlier (a task that
died, an interrupted run) is resumed from its last checkpoint, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.backends import Backend, FanOutReport, SerialBackend
from gemkit.errors import CheckpointError, GemkitError
from gemkit.train.checkpoint import STATE_FILE, read_state_header
from gemkit.train.config import TrainConfig

__all__ = ["seed_dir", "train_seeds"]


def seed_dir(out_dir: str | Path, seed: int) -> Path:
    """Where seed ``seed`` of a multi-seed run trains: ``out_dir/seed-<seed>``."""
    return Path(out_dir) / f"seed-{seed}"


def _step(directory: Path) -> int | None:
    """The step of the checkpoint in ``directory``; ``None`` when it holds none."""
    if not (directory / STATE_FILE).is_file():
        return None
    try:
        return int(read_state_header(directory)["step"])
    except CheckpointError:
        return None  # a state file cut short: the run starts afresh


def _train_group(
    shared: tuple[str, TrainConfig, Path, int, dict[str, Any]], seeds: tuple[int, ...]
) -> list[str]:
    """One task's seeds (what every backend runs): train, or resume, each into its folder, as
    one batch when there are several."""
    from gemkit.data import load
    from gemkit.train.run import Run, train_runs

    dataset_id, config, out_dir, steps, kwargs = shared
    data = load(dataset_id)
    dirs = [seed_dir(out_dir, s) for s in seeds]
    runs = [
        Run(data, attrs.evolve(config, seed=s), d, dataset_id, resume=_step(d) is not None)
        for s, d in zip(seeds, dirs, strict=True)
    ]
    train_runs(runs, steps, overwrite=True, **kwargs)
    return [str(r.out_dir) for r in runs]


def train_seeds(
    dataset_id: str,
    config: TrainConfig,
    out_dir: str | Path,
    steps: int,
    seeds: Sequence[int],
    *,
    backend: Backend | None = None,
    progress: Callable[[int, bool], None] | None = None,
    timing: Callable[[FanOutReport], None] | None = None,
    runs_per_task: int = 1,
    **train_kwargs: Any,
) -> list[Path]:
    """Train ``config`` once per seed (``config.seed`` replaced) into ``out_dir/seed-<s>``.

    Args:
        dataset_id: a local Minari dataset id, loaded by each run.
        config: the hyperparameters shared by every seed.
        out_dir: the parent folder of the seeds' checkpoint folders.
        steps: gradient steps of every run.
        seeds: the seeds (``TrainConfig.seed``), distinct.
        backend: where the runs go (default: one after another, here).
        progress: ``progress(seed, skipped)`` when a seed is done (or was done already).
        timing: called with the backend's :class:`~gemkit.backends.FanOutReport`.
        runs_per_task: seeds per backend task, trained as one batch of runs
            (:mod:`gemkit.train.batch`; 1: each seed alone, as :func:`~gemkit.train.run.train`).
        train_kwargs: passed to :func:`~gemkit.train.run.train_runs` (``save_every``,
            ``log_every``, ``tensorboard``, ``compile``, ...).

    Returns:
        The seeds' checkpoint folders, in ``seeds`` order.
    """
    out = Path(out_dir)
    if len(set(seeds)) != len(seeds):
        raise CheckpointError(f"seeds must be distinct, got {list(seeds)}.")
    if runs_per_task < 1:
        raise GemkitError(f"runs_per_task must be >= 1, got {runs_per_task}.")
    todo = []
    for s in seeds:
        at = _step(seed_dir(out, s))
        if at is not None and at >= steps:
            if progress is not None:
                progress(s, True)
        else:
            todo.append(s)

    groups = [tuple(todo[i : i + runs_per_task]) for i in range(0, len(todo), runs_per_task)]

    def done(i: int, _: list[str]) -> None:
        for s in groups[i]:
            if progress is not None:
                progress(s, False)

    shared = (dataset_id, config, out, steps, train_kwargs)
    report = (backend or SerialBackend()).map(_train_group, groups, done, shared)
    if timing is not None:
        timing(report)
    return [seed_dir(out, s) for s in seeds]

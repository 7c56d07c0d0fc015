"""Phase I for several seeds, each a run of :func:`gemkit.train.run.train` in ``OUT/seed-<s>``.

The runs go through a :mod:`gemkit.backends` backend (serial here, or one Ray task per seed).
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
from gemkit.errors import CheckpointError
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


def _train_one(shared: tuple[str, TrainConfig, Path, int, dict[str, Any]], seed: int) -> str:
    """One seed's run (what every backend runs): train, or resume, into its folder."""
    from gemkit.data import load
    from gemkit.train.run import train

    dataset_id, config, out_dir, steps, kwargs = shared
    out = seed_dir(out_dir, seed)
    resume = _step(out) is not None
    train(load(dataset_id), attrs.evolve(config, seed=seed), out, steps, resume=resume,
          overwrite=not resume, dataset_id=dataset_id, **kwargs)  # fmt: skip
    return str(out)


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
        train_kwargs: passed to :func:`~gemkit.train.run.train` (``save_every``,
            ``log_every``, ``tensorboard``, ``compile``, ...).

    Returns:
        The seeds' checkpoint folders, in ``seeds`` order.
    """
    out = Path(out_dir)
    if len(set(seeds)) != len(seeds):
        raise CheckpointError(f"seeds must be distinct, got {list(seeds)}.")
    todo = []
    for s in seeds:
        at = _step(seed_dir(out, s))
        if at is not None and at >= steps:
            if progress is not None:
                progress(s, True)
        else:
            todo.append(s)

    def done(i: int, _: str) -> None:
        if progress is not None:
            progress(todo[i], False)

    shared = (dataset_id, config, out, steps, train_kwargs)
    report = (backend or SerialBackend()).map(_train_one, todo, done, shared)
    if timing is not None:
        timing(report)
    return [seed_dir(out, s) for s in seeds]

"""Training runs: :func:`train` drives one :class:`~gemkit.train.trainer.Trainer` to a step,
:func:`train_runs` several as one batch (:mod:`gemkit.train.batch`); both report, checkpoint,
resume and stop cleanly on Ctrl-C (the loop is :mod:`gemkit.train.loop`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError, GemkitError
from gemkit.models.io import MANIFEST, Models
from gemkit.train.batch import RunBatch, check_batch
from gemkit.train.batches import PackedTransitions, pack_for
from gemkit.train.checkpoint import STATE_FILE, load_trainer_state
from gemkit.train.config import TrainConfig
from gemkit.train.loop import Live, Solo, TrainingInterrupted, drive, snapshot_dir
from gemkit.train.metrics import MetricsLog, TrainProgress
from gemkit.train.plan import TrainPlan, plan_run
from gemkit.train.trainer import Trainer

__all__ = [
    "Run",
    "TrainingInterrupted",
    "check_output_dir",
    "models_at",
    "snapshot_dir",
    "train",
    "train_runs",
]


def models_at(run: str | Path, step: int) -> Path | None:
    """The model directory of the run in ``run`` at ``step``: its snapshot there, else the
    run's own export when the run stopped at ``step``; ``None`` when neither exists.

    Without an LR schedule, a snapshot is exactly what a run stopped at that step exports, so
    a run trained further still answers for its earlier steps.
    """
    snap = snapshot_dir(run, step)
    if (snap / MANIFEST).is_file():
        return snap
    manifest = Path(run) / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()).get("meta", {}).get("step") == step:
        return Path(run)
    return None


def check_output_dir(out_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a fresh run into a directory that holds a checkpoint (unless ``overwrite``).

    Raises:
        CheckpointError: ``out_dir`` holds a trainer state and neither ``resume`` nor
            ``overwrite`` is set.
    """
    if not resume and not overwrite and (Path(out_dir) / STATE_FILE).exists():
        raise CheckpointError(
            f"{str(out_dir)!r} already holds a training checkpoint; resume it (--resume) or "
            "start afresh (--overwrite), or choose another --out."
        )


@attrs.frozen
class Run:
    """One run of :func:`train_runs`: its data, its config (seed included) and its directory.

    Attributes:
        transitions: the dataset (runs on the same dataset object share one packed copy).
        config: the run's hyperparameters (on resume, must equal the checkpoint's but
            ``device``).
        out_dir: the run's checkpoint directory (created if needed).
        dataset_id: recorded in the models' metadata (default: ``transitions.meta``'s).
        resume: continue from the checkpoint in ``out_dir``.
    """

    transitions: Transitions
    config: TrainConfig
    out_dir: Path = attrs.field(converter=Path)
    dataset_id: str | None = None
    resume: bool = False


def train(
    transitions: Transitions,
    config: TrainConfig,
    out_dir: str | Path,
    steps: int,
    *,
    resume: bool = False,
    dataset_id: str | None = None,
    **kwargs: Any,
) -> Models:
    """Run GEM's Phase I for ``steps`` gradient steps and checkpoint it in ``out_dir``.

    The first steps train the behavior GMM alone: ``min(config.gmm_pretrain_steps, steps // 4)``
    of them on a fresh run (:func:`plan_run`; a resumed run keeps its checkpoint's). The rest
    update critic ensemble, value, behavior (unless frozen), actor and baseline together. Every
    ``save_every`` steps and at the end, ``out_dir`` receives an atomic checkpoint (see
    :mod:`gemkit.train.checkpoint`) that ``gemkit.models.load_models(out_dir)`` reads and from
    which ``resume=True`` continues bit-for-bit. ``metrics.csv`` gets one row per ``log_every``
    steps (TensorBoard event files too, if ``tensorboard`` is importable and enabled).

    Ctrl-C (SIGINT, when called from the main thread) stops the run at the next step boundary,
    saves a checkpoint at that step and raises :class:`TrainingInterrupted`; a second Ctrl-C
    stops at once, without saving.

    Args:
        transitions: the dataset.
        config: hyperparameters (on resume, must equal the checkpoint's except ``device``).
        out_dir: checkpoint directory (created if needed).
        steps: total gradient steps of the run, pretraining included (on resume, the step to
            reach, counted from zero).
        resume: continue from the checkpoint in ``out_dir``.
        dataset_id: recorded in the models' metadata (default:
            ``transitions.meta["dataset_id"]``).
        kwargs: the options of :func:`train_runs` (``save_every``, ``log_every``,
            ``overwrite``, ``progress``, ``tensorboard``, ``compile``, ``compile_mode``,
            ``snapshot_every``, ``cuda_graph``).

    Returns:
        The trained :class:`~gemkit.models.Models` (actor, behavior, critic, value, meta).

    Raises:
        CheckpointError: ``resume`` without a usable checkpoint, or one from another run, or
            one whose pretraining lasts past ``steps``; a fresh run into a directory that
            holds a checkpoint (without ``overwrite``).
        TrainingInterrupted: Ctrl-C; the checkpoint in ``out_dir`` is at the step it names.
    """
    run = Run(transitions, config, Path(out_dir), dataset_id, resume)
    return train_runs([run], steps, **kwargs)[0]


def train_runs(
    runs: Sequence[Run],
    steps: int,
    *,
    save_every: int = 10_000,
    log_every: int = 100,
    overwrite: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    tensorboard: bool = True,
    compile: bool = False,
    compile_mode: str = "default",
    snapshot_every: int | None = None,
    cuda_graph: bool = False,
    on_plan: Callable[[TrainPlan], None] | None = None,
) -> list[Models]:
    """Train several runs to ``steps`` in this process, as one batch (:mod:`gemkit.train.batch`).

    Each run behaves as :func:`train` of it alone: its own seed, minibatches, directory,
    checkpoints, snapshots and ``metrics.csv``, resumable alone or in the batch. One run is
    :func:`train` exactly (no batch). Runs resumed from different steps (a kill between two
    runs' checkpoints) first bring the ones behind to the furthest step alone.

    Args:
        runs: the runs (configs equal but for ``seed``; datasets of the same shapes).
        steps: the step every run reaches (pretraining included).
        save_every: checkpoint period in steps.
        log_every: report period in steps (metrics rows and ``progress`` call).
        overwrite: start afresh even where an ``out_dir`` already holds a checkpoint.
        progress: called with a :class:`TrainProgress` at every report (the runs' mean
            statistics).
        tensorboard: also write TensorBoard scalars when tensorboard is installed.
        compile: run one run's loss computation through ``torch.compile`` (same maths; eager
            fallback). A batch of several runs is vectorised eagerly instead (compiling the
            vectorised step was slower on a CPU, ``docs/performance.md``).
        compile_mode: the ``torch.compile`` mode with ``compile`` (see
            :data:`gemkit.train.trainer.COMPILE_MODES`).
        snapshot_every: also export each run's models every this many steps to
            ``out_dir/snapshots/step_<step>`` (for learning curves; weights only).
        cuda_graph: replay each step as one captured CUDA graph (on a GPU; a batch of runs
            replays one graph for all of them).
        on_plan: called with each run's :class:`~gemkit.train.plan.TrainPlan` once it is made
            (its directory checked, its checkpoint read on resume), before any step.

    Returns:
        Each run's trained :class:`~gemkit.models.Models`, in ``runs`` order.

    Raises:
        GemkitError: runs that cannot share a batch (:func:`~gemkit.train.batch.check_batch`),
            or two runs with one directory; before anything is written.
        CheckpointError, TrainingInterrupted: as :func:`train`.
    """
    if steps < 0 or save_every < 1 or log_every < 1:
        raise ValueError("steps must be >= 0 and save_every, log_every >= 1.")
    if snapshot_every is not None and snapshot_every < 1:
        raise ValueError("snapshot_every must be >= 1.")
    if not runs:
        raise GemkitError("train_runs needs at least one run.")
    dirs = [r.out_dir.resolve() for r in runs]
    if len(set(dirs)) != len(dirs):
        raise GemkitError("two runs of the batch share one directory; give each its own.")
    opts = dict(compile=compile and len(runs) == 1, compile_mode=compile_mode,
                cuda_graph=cuda_graph)  # fmt: skip
    packed: dict[int, PackedTransitions] = {}
    trainers = []
    for r in runs:
        check_output_dir(r.out_dir, resume=r.resume, overwrite=overwrite)
        key = id(r.transitions)
        if key not in packed:
            packed[key] = pack_for(r.transitions, r.config)
        if r.resume:
            trainer = Trainer(r.transitions, r.config, dataset_id=r.dataset_id,
                              data=packed[key], **opts)  # type: ignore[arg-type]  # fmt: skip
            load_trainer_state(r.out_dir, trainer)
            plan = plan_run(r.config, steps, start=trainer.step, pretrain=trainer.pretrain_steps)
        else:
            plan = plan_run(r.config, steps)
            trainer = Trainer(r.transitions, r.config, dataset_id=r.dataset_id,
                              pretrain_steps=plan.pretrain, data=packed[key],
                              **opts)  # type: ignore[arg-type]  # fmt: skip
        if on_plan is not None:
            on_plan(plan)
        trainers.append(trainer)
    if len(runs) > 1:
        check_batch(trainers, at_one_step=False)  # the runs behind catch up below
    live = []
    for r, t in zip(runs, trainers, strict=True):
        r.out_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(r.out_dir / "metrics.csv", t.step if r.resume else None, tensorboard)
        live.append(Live(r.out_dir, r.resume, t, log))
    try:
        furthest = max(t.step for t in trainers)
        for lv in live:  # runs resumed behind the others catch up alone
            if lv.trainer.step < furthest:
                drive([lv], Solo(lv.trainer), furthest, save_every, log_every, None,
                       snapshot_every)  # fmt: skip
        stepper: Solo | RunBatch = Solo(trainers[0]) if len(live) == 1 else RunBatch(trainers)
        drive(live, stepper, steps, save_every, log_every, progress, snapshot_every)
    finally:
        for lv in live:
            lv.log.close()
    models = []
    for t in trainers:
        for net in t.networks().values():
            net.eval()
        models.append(t.models())
    return models

"""A training run: :func:`train` drives the :class:`~gemkit.train.trainer.Trainer` to a step,
reports, checkpoints, resumes and stops cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError
from gemkit.models.io import MANIFEST, Models, save_models
from gemkit.train.checkpoint import STATE_FILE, load_trainer_state, save_checkpoint
from gemkit.train.config import TrainConfig
from gemkit.train.metrics import LOSS_NAMES, MetricsLog, TrainProgress
from gemkit.train.plan import plan_run
from gemkit.train.trainer import Trainer

__all__ = ["TrainingInterrupted", "check_output_dir", "models_at", "snapshot_dir", "train"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train` between two steps, after it saved a checkpoint.

    A ``KeyboardInterrupt``, so code that does not know it still stops as on any Ctrl-C.

    Attributes:
        step: the step the checkpoint holds.
        steps: the step the interrupted run was to reach.
        directory: the checkpoint directory (``train(..., resume=True)`` continues from it).
    """

    def __init__(self, step: int, steps: int, directory: Path) -> None:
        super().__init__(f"training interrupted at step {step}; checkpoint saved in {directory}")
        self.step = step
        self.steps = steps
        self.directory = directory


def _windows(start: int, stop: int, every: int) -> Iterator[int]:
    """Ends of the report windows in ``(start, stop]``: multiples of ``every`` and ``stop``."""
    nxt = (start // every + 1) * every
    while nxt < stop:
        yield nxt
        nxt += every
    if stop > start:
        yield stop


def snapshot_dir(run: str | Path, step: int) -> Path:
    """Where :func:`train` (``snapshot_every``) writes the models of the run in ``run`` at
    ``step``: ``<run>/snapshots/step_<step, 8 digits>``."""
    return Path(run) / "snapshots" / f"step_{step:08d}"


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


@contextlib.contextmanager
def _ctrl_c_flag() -> Iterator[list[bool]]:
    """While active, a first Ctrl-C (SIGINT) sets ``flag[0]`` instead of raising.

    The loop then stops at the next step boundary and saves; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread no handler can be installed, and
    Ctrl-C behaves as usual.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def train(
    transitions: Transitions,
    config: TrainConfig,
    out_dir: str | Path,
    steps: int,
    *,
    save_every: int = 10_000,
    log_every: int = 100,
    resume: bool = False,
    overwrite: bool = False,
    dataset_id: str | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    tensorboard: bool = True,
    compile: bool = False,
    compile_mode: str = "default",
    snapshot_every: int | None = None,
    cuda_graph: bool = False,
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
        save_every: checkpoint period in steps.
        log_every: report period in steps (metrics row and ``progress`` call).
        resume: continue from the checkpoint in ``out_dir``.
        overwrite: start afresh even if ``out_dir`` already holds a checkpoint.
        dataset_id: recorded in the models' metadata (default:
            ``transitions.meta["dataset_id"]``).
        progress: called with a :class:`TrainProgress` at every report.
        tensorboard: also write TensorBoard scalars when tensorboard is installed.
        compile: run the loss computation (forward and backward) through ``torch.compile``
            (same maths; falls back to eager with a warning where it cannot compile).
        compile_mode: the ``torch.compile`` mode with ``compile`` (see
            :data:`gemkit.train.trainer.COMPILE_MODES`; ``reduce-overhead`` uses CUDA graphs
            on a GPU).
        snapshot_every: also export the models every this many steps to
            ``out_dir/snapshots/step_<step>`` (for learning curves; weights only).
        cuda_graph: replay each step as one captured CUDA graph (a GPU only; same
            minibatches, see :class:`~gemkit.train.trainer.Trainer`).

    Returns:
        The trained :class:`~gemkit.models.Models` (actor, behavior, critic, value, meta).

    Raises:
        CheckpointError: ``resume`` without a usable checkpoint, or one from another run, or
            one whose pretraining lasts past ``steps``; a fresh run into a directory that
            holds a checkpoint (without ``overwrite``).
        TrainingInterrupted: Ctrl-C; the checkpoint in ``out_dir`` is at the step it names.
    """
    if steps < 0 or save_every < 1 or log_every < 1:
        raise ValueError("steps must be >= 0 and save_every, log_every >= 1.")
    out = Path(out_dir)
    check_output_dir(out, resume=resume, overwrite=overwrite)
    if snapshot_every is not None and snapshot_every < 1:
        raise ValueError("snapshot_every must be >= 1.")
    if resume:
        trainer = Trainer(transitions, config, dataset_id=dataset_id, compile=compile,
                          compile_mode=compile_mode, cuda_graph=cuda_graph)  # fmt: skip
        load_trainer_state(out, trainer)
        plan_run(config, steps, start=trainer.step, pretrain=trainer.pretrain_steps)
    else:
        plan = plan_run(config, steps)
        trainer = Trainer(
            transitions, config, dataset_id=dataset_id, pretrain_steps=plan.pretrain,
            compile=compile, compile_mode=compile_mode, cuda_graph=cuda_graph,
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out / "metrics.csv", trainer.step if resume else None, tensorboard)
    t_start = time.perf_counter()
    saved_at = -1

    def save() -> None:
        nonlocal saved_at
        save_checkpoint(out, trainer)
        saved_at = trainer.step

    try:
        with _ctrl_c_flag() as stop:
            if trainer.step == 0 and not resume:
                save()
            for end in _windows(trainer.step, steps, log_every):
                sums: dict[str, Tensor] = {}
                counts: dict[str, int] = {}
                t0 = time.perf_counter()
                n0 = trainer.step
                while trainer.step < end and not stop[0]:
                    # up to the next checkpoint or snapshot, in one call (one read of the sums)
                    stop_at = min(end, (trainer.step // save_every + 1) * save_every)
                    if snapshot_every is not None:
                        next_snapshot = (trainer.step // snapshot_every + 1) * snapshot_every
                        stop_at = min(stop_at, next_snapshot)
                    step_sums, step_counts = trainer.train_steps(
                        stop_at - trainer.step, stop=lambda: stop[0]
                    )
                    for k, v in step_sums.items():
                        sums[k] = sums[k] + v if k in sums else v
                        counts[k] = counts.get(k, 0) + step_counts[k]
                    if trainer.step % save_every == 0 and trainer.step != steps:
                        save()
                    if snapshot_every is not None and trainer.step % snapshot_every == 0:
                        save_models(snapshot_dir(out, trainer.step), trainer.models())
                if trainer.step == n0:  # stopped before this window's first step
                    break
                metrics = {
                    k: float(sums[k]) / counts[k] if k in sums else float("nan") for k in LOSS_NAMES
                }
                dt = time.perf_counter() - t0
                report = TrainProgress(
                    step=trainer.step,
                    total=steps,
                    metrics=metrics,
                    steps_per_s=(trainer.step - n0) / dt if dt > 0 else float("inf"),
                    phase="pretrain" if trainer.step <= trainer.pretrain_steps else "joint",
                )
                if trainer.step == steps:
                    save()
                log.write(report, time.perf_counter() - t_start)
                if progress is not None:
                    try:
                        progress(report)
                    except KeyboardInterrupt:  # raised between two steps: a clean stop
                        stop[0] = True
                if stop[0]:
                    break
            if stop[0] and trainer.step < steps:
                if saved_at != trainer.step:
                    save()
                raise TrainingInterrupted(trainer.step, steps, out)
        if trainer.step == steps and not (out / STATE_FILE).is_file():
            save()
    finally:
        log.close()
    for net in trainer.networks().values():
        net.eval()
    return trainer.models()

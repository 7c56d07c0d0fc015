"""The loop of a training run: reports, checkpoints, snapshots and Ctrl-C, for one run or a
batch (:func:`gemkit.train.run.train_runs` drives it)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
from torch import Tensor

from gemkit.models.io import save_models
from gemkit.train.batch import RunBatch
from gemkit.train.checkpoint import STATE_FILE, save_checkpoint
from gemkit.train.metrics import LOSS_NAMES, MetricsLog, TrainProgress
from gemkit.train.trainer import Trainer

__all__ = ["Live", "Solo", "TrainingInterrupted", "drive", "snapshot_dir"]


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


@attrs.define
class Live:
    """A run being trained: its trainer, its metrics file and its last saved step."""

    out_dir: Path
    resume: bool
    trainer: Trainer
    log: MetricsLog
    saved_at: int = -1


class Solo:
    """One trainer behind :class:`~gemkit.train.batch.RunBatch`'s interface (statistics ``[1]``)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    @property
    def step(self) -> int:
        return self.trainer.step

    def train_steps(
        self, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], dict[str, int]]:
        sums, counts = self.trainer.train_steps(n, stop)
        return {k: v.reshape(1) for k, v in sums.items()}, counts

    def sync(self) -> None:
        """Nothing to write back: the trainer holds its own state."""


def _save(lv: Live) -> None:
    save_checkpoint(lv.out_dir, lv.trainer)
    lv.saved_at = lv.trainer.step


def drive(
    live: list[Live],
    stepper: Solo | RunBatch,
    steps: int,
    save_every: int,
    log_every: int,
    progress: Callable[[TrainProgress], None] | None,
    snapshot_every: int | None,
) -> None:
    """Train ``live``'s runs (stepped by ``stepper``) to ``steps``: a report (metrics rows,
    ``progress`` with the runs' mean) every ``log_every`` steps, a checkpoint of every run every
    ``save_every`` steps and at the end, snapshots every ``snapshot_every``; Ctrl-C saves and
    raises :class:`TrainingInterrupted`."""
    t_start = time.perf_counter()
    with _ctrl_c_flag() as stop:
        if stepper.step == 0 and not any(lv.resume for lv in live):
            for lv in live:
                _save(lv)
        for end in _windows(stepper.step, steps, log_every):
            sums: dict[str, Tensor] = {}
            counts: dict[str, int] = {}
            t0 = time.perf_counter()
            n0 = stepper.step
            while stepper.step < end and not stop[0]:
                # up to the next checkpoint or snapshot, in one call (one read of the sums)
                stop_at = min(end, (stepper.step // save_every + 1) * save_every)
                if snapshot_every is not None:
                    stop_at = min(stop_at, (stepper.step // snapshot_every + 1) * snapshot_every)
                step_sums, step_counts = stepper.train_steps(
                    stop_at - stepper.step, stop=lambda: stop[0]
                )
                for k, v in step_sums.items():
                    sums[k] = sums[k] + v if k in sums else v
                    counts[k] = counts.get(k, 0) + step_counts[k]
                at = stepper.step
                saving = at % save_every == 0 and at != steps
                snapping = snapshot_every is not None and at % snapshot_every == 0
                if saving or snapping:
                    stepper.sync()
                for lv in live:
                    if saving:
                        _save(lv)
                    if snapping:
                        save_models(snapshot_dir(lv.out_dir, at), lv.trainer.models())
            if stepper.step == n0:  # stopped before this window's first step
                break
            dt = time.perf_counter() - t0
            rate = (stepper.step - n0) / dt if dt > 0 else float("inf")
            phase = "pretrain" if stepper.step <= live[0].trainer.pretrain_steps else "joint"
            if stepper.step == steps:
                stepper.sync()
            reports = []
            for i, lv in enumerate(live):
                metrics = {
                    k: float(sums[k][i]) / counts[k] if k in sums else float("nan")
                    for k in LOSS_NAMES
                }
                reports.append(TrainProgress(stepper.step, steps, metrics, rate, phase))
                if stepper.step == steps:
                    _save(lv)
                lv.log.write(reports[-1], time.perf_counter() - t_start)
            if progress is not None:
                mean = {k: sum(p.metrics[k] for p in reports) / len(reports) for k in LOSS_NAMES}
                try:
                    progress(TrainProgress(stepper.step, steps, mean, rate, phase))
                except KeyboardInterrupt:  # raised between two steps: a clean stop
                    stop[0] = True
            if stop[0]:
                break
        if stop[0] and stepper.step < steps:
            stepper.sync()
            for lv in live:
                if lv.saved_at != lv.trainer.step:
                    _save(lv)
            raise TrainingInterrupted(stepper.step, steps, live[0].out_dir)
    for lv in live:
        if lv.trainer.step == steps and not (lv.out_dir / STATE_FILE).is_file():
            stepper.sync()
            _save(lv)

"""What a training run reports: the per-step statistics, the progress record, ``metrics.csv``."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import attrs

__all__ = ["LOSS_NAMES", "MetricsLog", "TrainProgress"]

LOSS_NAMES = (
    "loss_critic",
    "loss_value",
    "loss_actor",
    "loss_behavior",
    "loss_baseline",
    "q_mean",
    "v_mean",
    "adv_mean",
    "guidance_mean",
    "guidance_ess",
    "gating_entropy",
)
"""The per-step statistics the trainer reports, in ``metrics.csv`` column order."""


@attrs.frozen
class TrainProgress:
    """What a progress callback receives every ``log_every`` steps and at the end.

    Attributes:
        step: gradient steps done so far (pretraining included).
        total: the step the run stops at.
        metrics: means of :data:`LOSS_NAMES` over the steps since the last report
            (``nan`` for a loss not computed in that window, e.g. the actor during pretraining).
        steps_per_s: gradient steps per second over that window.
        phase: ``"pretrain"`` (behavior GMM only) or ``"joint"``.
    """

    step: int
    total: int
    metrics: dict[str, float]
    steps_per_s: float
    phase: str


class MetricsLog:
    """``metrics.csv`` (and TensorBoard if importable), appended at every report.

    Args:
        path: the CSV file (rewritten with its header).
        resume_step: on resume, the checkpoint's step: rows up to it are kept, later ones (from
            after the checkpoint) dropped; ``None`` for a fresh run.
        tensorboard: also write TensorBoard scalars next to ``path`` (``tb/``) when importable.
    """

    COLUMNS = ("step", "phase", *LOSS_NAMES, "steps_per_s", "wall_s")

    def __init__(self, path: Path, resume_step: int | None, tensorboard: bool) -> None:
        self.path = path
        keep: list[list[str]] = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            if rows and rows[0] and rows[0][0] == "step":
                # by column name, so a run logged by an older gemkit keeps its rows ("nan" where
                # it had no such column)
                col = {name: i for i, name in enumerate(rows[0])}
                keep = [
                    [r[col[c]] if c in col and col[c] < len(r) else "nan" for c in self.COLUMNS]
                    for r in rows[1:]
                    if r and r[0].isdigit() and int(r[0]) <= resume_step
                ]
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.COLUMNS)
            w.writerows(keep)
        self.writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self.writer = None
            else:
                self.writer = SummaryWriter(log_dir=str(path.parent / "tb"))

    def write(self, p: TrainProgress, wall_s: float) -> None:
        """Append one report (and its scalars to TensorBoard)."""
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(
                [
                    p.step,
                    p.phase,
                    *(repr(p.metrics[k]) for k in LOSS_NAMES),
                    f"{p.steps_per_s:.3f}",
                    f"{wall_s:.3f}",
                ]
            )
        if self.writer is not None:
            for k, v in p.metrics.items():
                if math.isfinite(v):
                    self.writer.add_scalar(f"train/{k}", v, p.step)
            self.writer.add_scalar("train/steps_per_s", p.steps_per_s, p.step)

    def close(self) -> None:
        """Flush and close the TensorBoard writer, if any."""
        if self.writer is not None:
            self.writer.close()

"""The plan of a training run: how many steps pretrain the behavior GMM, how many are joint."""

from __future__ import annotations

import attrs

from gemkit.errors import CheckpointError
from gemkit.train.config import TrainConfig

__all__ = ["PRETRAIN_SHARE", "TrainPlan", "plan_run"]

PRETRAIN_SHARE = 0.25
"""A fresh run spends at most this share of its steps on behavior-only pretraining."""


@attrs.frozen
class TrainPlan:
    """What a :func:`train` call does, known before it starts (see :func:`plan_run`).

    Attributes:
        config: the run's hyperparameters.
        steps: the step the run stops at.
        start: the step it starts from (0, or the checkpoint's step on resume).
        pretrain: behavior-only steps of the whole run, counted from step 0.
    """

    config: TrainConfig
    steps: int
    start: int
    pretrain: int

    @property
    def pretrain_left(self) -> int:
        """Behavior-only steps this call still runs."""
        return max(0, min(self.pretrain, self.steps) - self.start)

    @property
    def joint_left(self) -> int:
        """Joint steps (critic, value, actor, behavior, baseline) this call runs."""
        return max(0, self.steps - max(self.start, self.pretrain))

    def networks(self) -> list[str]:
        """The networks the joint steps update, as short labels."""
        c = self.config
        nets = [
            f"critic ensemble E={c.n_critics} (+ Polyak target)",
            "value V",
            f"actor {'GMM K=' + str(c.n_components) if c.actor == 'gmm' else 'Gaussian K=1'}",
        ]
        if not c.gmm_freeze_after_pretrain:
            nets.append(f"behavior GMM K={c.n_components}")
        if c.unimodal_baseline:
            nets.append("same-critic baseline actor K=1")
        return nets

    def lines(self) -> list[str]:
        """A few human-readable lines: where the run starts and ends, its phases, its networks."""
        c = self.config
        if self.start:
            head = f"resuming from step {self.start:,} to step {self.steps:,}"
            pre = f"{self.pretrain_left:,} of the {self.pretrain:,} behavior-only steps left"
        else:
            cap = (
                f" (gmm_pretrain_steps {c.gmm_pretrain_steps:,}, capped at "
                f"{PRETRAIN_SHARE:.0%} of the run)"
                if self.pretrain < c.gmm_pretrain_steps
                else ""
            )
            head = f"training steps 0 -> {self.steps:,}"
            pre = f"{self.pretrain:,} behavior-only pretraining step(s){cap}"
        widths = "x".join(str(h) for h in c.hidden)
        return [
            f"{head}: {pre}, then {self.joint_left:,} joint step(s)",
            f"joint steps update: {', '.join(self.networks())}; MLPs {widths}, "
            f"batch {c.batch_size}, "
            f"lr {c.lr:g}, seed {c.seed}",
        ]


def plan_run(
    config: TrainConfig, steps: int, *, start: int = 0, pretrain: int | None = None
) -> TrainPlan:
    """The plan of a run to ``steps``: how many steps pretrain the behavior GMM, how many are joint.

    A fresh run (``pretrain=None``) pretrains ``min(config.gmm_pretrain_steps,
    int(PRETRAIN_SHARE * steps))`` steps, so at least three quarters of any run update the
    critic, value and actor. A resumed run keeps the pretraining its checkpoint was started with
    (``pretrain``).

    Args:
        config: the run's hyperparameters.
        steps: the step to reach.
        start: the step the run starts from (a checkpoint's, on resume).
        pretrain: the checkpoint's pretraining steps on resume; ``None`` for a fresh run.

    Raises:
        CheckpointError: ``start`` is past ``steps``, or a resumed run would end inside its
            pretraining (the critic, value and actor would not train).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if start > steps:
        raise CheckpointError(f"the checkpoint is at step {start}, past --steps {steps}.")
    if pretrain is None:
        pretrain = min(config.gmm_pretrain_steps, int(PRETRAIN_SHARE * steps))
    elif start < steps <= pretrain:
        raise CheckpointError(
            f"--steps {steps} ends inside the checkpoint's behavior pretraining ({pretrain} "
            f"steps), so the critic, value and actor would not train; give --steps above "
            f"{pretrain}."
        )
    return TrainPlan(config=config, steps=steps, start=start, pretrain=pretrain)

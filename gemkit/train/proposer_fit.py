"""A generative behavior model fitted alone, resumably: the candidate source of the
sample-and-rerank rules of the literature (IDQL, SfBC: diffusion; IFQL: flow matching).

``fit_proposer(transitions, out, steps, kind="diffusion")`` writes a gemkit model directory
holding ``generative`` (a :class:`~gemkit.models.generative.DiffusionBehavior` or
:class:`~gemkit.models.generative.FlowBehavior`) and the observation statistics it was trained
with; ``compose(models=..., proposer="diffusion")`` samples its candidates once it is attached
to a checkpoint's models (:func:`gemkit.models.attach_generative`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import UnknownComponentError, unknown_name_message
from gemkit.models.generative import GENERATIVE_KINDS
from gemkit.models.io import Models
from gemkit.train.behavior import ModelFit
from gemkit.train.config import TrainConfig
from gemkit.train.init import init_parameters
from gemkit.train.support_fit import fit_resumable

__all__ = ["GENERATIVE_KINDS", "PROPOSER_STATE", "GenerativeFit", "fit_proposer"]

PROPOSER_STATE = "proposer_state.safetensors"


class GenerativeFit(ModelFit):
    """A :data:`GENERATIVE_KINDS` model of ``p(a | s)`` fitted by its own loss (see
    :class:`~gemkit.train.behavior.ModelFit`); ``steps`` is its sampling chain's length
    (diffusion: ``T``, default 5 as IDQL; flow: Euler steps, default 10)."""

    def __init__(
        self,
        transitions: Transitions,
        kind: str,
        seed: int = 0,
        config: TrainConfig | None = None,
        steps: int | None = None,
    ) -> None:
        if kind not in GENERATIVE_KINDS:
            raise UnknownComponentError(unknown_name_message("kind", kind, GENERATIVE_KINDS))
        super().__init__(transitions, seed, config)
        cls = GENERATIVE_KINDS[kind]
        kw: dict[str, Any] = {} if steps is None else {"steps": steps}
        with torch.random.fork_rng(devices=[]):  # construction must not consume global RNG
            self.model = cls(
                self.data.state_dim,
                self.data.action_dim,
                self.config.hidden,
                action_low=self.low.tolist(),
                action_high=self.high.tolist(),
                **kw,
            )
        self.module = self.model
        init_parameters(self.model, self.generator, self.config.gmm_init_log_std)
        self._ready()

    def batch_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model.loss(batch["observations"], batch["actions"], self.generator)


def fit_proposer(
    transitions: Transitions,
    out: str | Path,
    steps: int,
    *,
    kind: str = "diffusion",
    seed: int = 0,
    chain_steps: int | None = None,
    config: TrainConfig | None = None,
    checkpoint_every: int = 5_000,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fit a ``kind`` generative behavior model on ``transitions`` into ``out``; resumable.

    Args:
        transitions: the dataset (raw observations; normalised with its statistics).
        out: the model directory (``models.json`` + weights + the resumable state).
        steps: gradient steps in all.
        kind: ``diffusion`` or ``flow``.
        seed: initialisation, minibatches and the loss's noise.
        chain_steps: the sampling chain's length (default: the model's).
        config: sizes, learning rate, batch size (default ``TrainConfig(hidden=(256, 256))``).
        checkpoint_every: write the state every this many steps (and at the end).
        progress: ``progress(step, steps)`` after every step.

    Returns:
        ``out``.

    Raises:
        UnknownComponentError: an unknown ``kind`` (the valid ones listed).
        CheckpointError: ``out`` holds another fit's state, or a corrupt one.
    """
    cfg = config or TrainConfig(hidden=(256, 256))
    fit = GenerativeFit(transitions, kind, seed, cfg, chain_steps)
    ident = {"kind": kind, "seed": seed, "chain_steps": chain_steps, "config": cfg.to_dict()}

    def export(meta: dict[str, Any]) -> Models:
        trained = f"{kind} behavior model only (gemkit fit-proposer)"
        return Models(generative=fit.model, meta={**meta, "trained": trained})

    return fit_resumable(fit, transitions, out, steps, ident, export, PROPOSER_STATE,
                         checkpoint_every=checkpoint_every, progress=progress)  # fmt: skip

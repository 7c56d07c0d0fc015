"""Fitting a behavior GMM alone: maximum likelihood on the dataset's actions, no other network.

The trainer's behavior objective (:func:`behavior_loss`, ``L = -E[log pi_beta(a|s)]``) on its
own, for diagnostics that need a fitted mixture and nothing else (the NLL gap).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError
from gemkit.models.gmm import ConditionalGMM
from gemkit.train import losses as L
from gemkit.train.batches import PackedTransitions
from gemkit.train.config import TrainConfig
from gemkit.train.init import init_parameters, make_gmm

__all__ = ["BehaviorFit", "ModelFit", "behavior_loss", "fit_behavior_gmm"]


def behavior_loss(gmm: ConditionalGMM, states: Tensor, actions: Tensor) -> Tensor:
    """``-mean log gmm(actions | states)`` on ``states [B, S]``, ``actions [B, A]`` (scalar)."""
    lj = gmm.log_joint(gmm(states), actions.unsqueeze(1)).squeeze(1)
    return L.behavior_nll(lj)  # lj: [B, K]


class ModelFit:
    """One network fitted alone by its own loss on the dataset's ``(state, action)`` pairs, with
    its Adam optimizer and its generator, step by step.

    Subclasses build :attr:`module` (initialised from :attr:`generator`) and define
    :meth:`batch_loss`. Minibatches of ``config.batch_size`` normalised transitions are drawn
    from the same generator; :meth:`state` and :meth:`load_state` make the fit resumable bit
    for bit.

    Attributes:
        module: the network fitted.
        prefix: the key prefix of its weights in :meth:`state`.
    """

    prefix = "net"
    module: nn.Module

    def __init__(self, transitions: Transitions, seed: int, config: TrainConfig | None) -> None:
        self.config = cfg = config or TrainConfig(hidden=(256, 256))
        self.data = PackedTransitions(transitions, cfg.normalize_obs, torch.device(cfg.device))
        self.generator = torch.Generator().manual_seed(seed)
        self.low = transitions.action_low.detach().cpu().float()
        self.high = transitions.action_high.detach().cpu().float()
        self.step = 0

    def _ready(self) -> None:
        """Move :attr:`module` to the data's device and build its optimizer (after init)."""
        self.module.to(self.data.device)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=self.config.lr)

    def batch_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The loss on one minibatch (normalised ``observations``, ``actions``)."""
        raise NotImplementedError

    def run(self, steps: int, progress: Callable[[int, int], None] | None = None) -> float:
        """Train until ``steps`` gradient steps in all; returns the last minibatch's loss."""
        loss = torch.tensor(float("nan"))
        self.module.train()
        while self.step < steps:
            batch = self.data.sample(self.config.batch_size, self.generator)
            loss = self.batch_loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if progress is not None:
                progress(self.step, steps)
        self.module.eval()
        return float(loss.detach())

    def state(self) -> dict[str, Tensor]:
        """Everything resuming needs, as flat CPU tensors (weights, Adam state, generator)."""
        out = {
            f"{self.prefix}.{k}": v.detach().cpu().contiguous()
            for k, v in self.module.state_dict().items()
        }
        for pid, st in self.optimizer.state_dict()["state"].items():
            for k, v in st.items():
                out[f"optim.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        out["rng"] = self.generator.get_state()
        out["step"] = torch.tensor(self.step)
        return out

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        """Restore a :meth:`state` (a one-line error if it does not fit this network)."""
        cut = len(self.prefix) + 1
        try:
            weights = {k[cut:]: v for k, v in tensors.items() if k.startswith(f"{self.prefix}.")}
            self.module.load_state_dict(weights, strict=True)
            opt: dict[int, dict[str, Tensor]] = {}
            for key, v in tensors.items():
                if key.startswith("optim."):
                    _, pid, name = key.split(".", 2)
                    opt.setdefault(int(pid), {})[name] = v.to(self.data.device)
            groups = self.optimizer.state_dict()["param_groups"]
            self.optimizer.load_state_dict({"state": opt, "param_groups": groups})
            self.generator.set_state(tensors["rng"])
            self.step = int(tensors["step"])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"the saved fit state does not fit this {type(self.module).__name__} ({first})."
            ) from None


class BehaviorFit(ModelFit):
    """One behavior GMM by maximum likelihood (:func:`behavior_loss`), built and initialised as
    the trainer's behavior GMM (see :class:`ModelFit`).

    Args:
        transitions: the dataset.
        k: mixture components.
        seed: seeds the initialisation and the minibatches.
        config: sizes, learning rate, batch size, normalisation and device (default:
            ``TrainConfig(hidden=(256, 256))``; its ``n_components`` and ``seed`` are not used).
    """

    prefix = "gmm"

    def __init__(
        self, transitions: Transitions, k: int, seed: int = 0, config: TrainConfig | None = None
    ) -> None:
        super().__init__(transitions, seed, config)
        cfg = self.config
        self.gmm = make_gmm(cfg, self.data.state_dim, self.data.action_dim, k, self.low, self.high)
        init_parameters(self.gmm, self.generator, cfg.gmm_init_log_std)
        self.module = self.gmm
        self._ready()

    def batch_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return behavior_loss(self.gmm, batch["observations"], batch["actions"])


def fit_behavior_gmm(
    transitions: Transitions,
    k: int,
    steps: int,
    *,
    seed: int = 0,
    config: TrainConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ConditionalGMM, Tensor]:
    """Fit a ``k``-component conditional GMM by maximum likelihood (the behavior objective).

    See :class:`BehaviorFit` (this is ``BehaviorFit(...).run(steps)``).

    Returns:
        ``(gmm, normalised states [T, S])``: the fitted GMM (eval mode) and the dataset states
        as it sees them.
    """
    fit = BehaviorFit(transitions, k, seed, config)
    fit.run(steps, progress)
    return fit.gmm, fit.data.normalize(transitions.observations)

"""Fitting a behavior GMM alone: maximum likelihood on the dataset's actions, no other network.

The trainer's behavior objective (:func:`behavior_loss`, ``L = -E[log pi_beta(a|s)]``) on its
own, for diagnostics that need a fitted mixture and nothing else (the NLL gap).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError
from gemkit.models.gmm import ConditionalGMM
from gemkit.train import losses as L
from gemkit.train.batches import PackedTransitions
from gemkit.train.config import TrainConfig
from gemkit.train.init import init_parameters, make_gmm

__all__ = ["BehaviorFit", "behavior_loss", "fit_behavior_gmm"]


def behavior_loss(gmm: ConditionalGMM, states: Tensor, actions: Tensor) -> Tensor:
    """``-mean log gmm(actions | states)`` on ``states [B, S]``, ``actions [B, A]`` (scalar)."""
    lj = gmm.log_joint(gmm(states), actions.unsqueeze(1)).squeeze(1)
    return L.behavior_nll(lj)  # lj: [B, K]


class BehaviorFit:
    """One behavior GMM, its Adam optimizer and its generator: maximum likelihood, step by step.

    The GMM is built and initialised as the trainer's behavior GMM and trained with Adam on
    minibatches of ``config.batch_size`` normalised transitions; one generator seeded with
    ``seed`` draws the initialisation and the minibatch indices. :meth:`state` and
    :meth:`load_state` make it resumable bit for bit.

    Args:
        transitions: the dataset.
        k: mixture components.
        seed: seeds the initialisation and the minibatches.
        config: sizes, learning rate, batch size, normalisation and device (default:
            ``TrainConfig(hidden=(256, 256))``; its ``n_components`` and ``seed`` are not used).
    """

    def __init__(
        self, transitions: Transitions, k: int, seed: int = 0, config: TrainConfig | None = None
    ) -> None:
        self.config = cfg = config or TrainConfig(hidden=(256, 256))
        self.data = PackedTransitions(transitions, cfg.normalize_obs, torch.device(cfg.device))
        self.generator = torch.Generator().manual_seed(seed)
        low = transitions.action_low.detach().cpu().float()
        high = transitions.action_high.detach().cpu().float()
        self.gmm = make_gmm(cfg, self.data.state_dim, self.data.action_dim, k, low, high)
        init_parameters(self.gmm, self.generator, cfg.gmm_init_log_std)
        self.gmm.to(self.data.device)
        self.optimizer = torch.optim.Adam(self.gmm.parameters(), lr=cfg.lr)
        self.step = 0

    def run(self, steps: int, progress: Callable[[int, int], None] | None = None) -> float:
        """Train until ``steps`` gradient steps in all; returns the last minibatch NLL."""
        loss = torch.tensor(float("nan"))
        self.gmm.train()
        while self.step < steps:
            batch = self.data.sample(self.config.batch_size, self.generator)
            loss = behavior_loss(self.gmm, batch["observations"], batch["actions"])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if progress is not None:
                progress(self.step, steps)
        self.gmm.eval()
        return float(loss.detach())

    def state(self) -> dict[str, Tensor]:
        """Everything resuming needs, as flat CPU tensors (weights, Adam state, generator)."""
        out = {f"gmm.{k}": v.detach().cpu().contiguous() for k, v in self.gmm.state_dict().items()}
        for pid, st in self.optimizer.state_dict()["state"].items():
            for k, v in st.items():
                out[f"optim.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        out["rng"] = self.generator.get_state()
        out["step"] = torch.tensor(self.step)
        return out

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        """Restore a :meth:`state` (a one-line error if it does not fit this GMM)."""
        try:
            gmm = {k[4:]: v for k, v in tensors.items() if k.startswith("gmm.")}
            self.gmm.load_state_dict(gmm, strict=True)
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
                f"the saved behavior-fit state does not fit this GMM ({first})."
            ) from None


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

"""The NLL-gap diagnostic (spec 2.7, the paper's appendix F): does mixture structure help?

On dataset pairs ``(s, a)`` under a fitted K-component conditional GMM:

- ``NLL_gmm = -log p(a|s) = -logsumexp_k l_k(s, a)``;
- ``k* = argmax_k w_k(s)`` and ``NLL_top1 = -log Normal(a; mu_{k*}(s), sigma_{k*})`` (the gating
  weight is *not* included);
- ``gap = mean(NLL_top1) - mean(NLL_gmm)``; positive means the data at a state is explained by
  more than its top component, i.e. the behaviour is multimodal there.

The GMM is fitted by maximum likelihood with the trainer's behavior-GMM objective
(:func:`gemkit.train.fit_behavior_gmm`), once per seed, or read from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError
from gemkit.models.gmm import ConditionalGMM
from gemkit.train import TrainConfig, fit_behavior_gmm

__all__ = ["NLLGap", "NLLGapSummary", "nll_gap", "nll_gap_over_seeds"]


@attrs.frozen
class NLLGap:
    """The diagnostic for one fitted GMM.

    Attributes:
        nll_gmm: ``mean(-log p(a|s))``.
        nll_top1: ``mean(-log Normal(a; mu_{k*}, sigma_{k*}))``.
        gap: ``nll_top1 - nll_gmm``.
        transitions: pairs it was computed on.
    """

    nll_gmm: float
    nll_top1: float
    gap: float
    transitions: int


@attrs.frozen
class NLLGapSummary:
    """Mean and population std over seeds of the three quantities, plus the per-seed values."""

    k: int
    seeds: tuple[int, ...]
    steps: int
    nll_gmm_mean: float
    nll_gmm_std: float
    nll_top1_mean: float
    nll_top1_std: float
    gap_mean: float
    gap_std: float
    per_seed: tuple[NLLGap, ...]

    def row(self) -> dict[str, Any]:
        """A flat dict (CSV/JSON-ready)."""
        d = attrs.asdict(self)
        d["seeds"] = " ".join(str(s) for s in self.seeds)
        d["per_seed_gap"] = " ".join(f"{g.gap:.6g}" for g in self.per_seed)
        del d["per_seed"]
        return d


@torch.no_grad()
def nll_gap(gmm: ConditionalGMM, states: Tensor, actions: Tensor, chunk: int = 65_536) -> NLLGap:
    """The NLL gap of ``gmm`` on ``(states [T, S], actions [T, A])`` (states as the GMM sees them).

    Args:
        gmm: the fitted mixture (scored under its own ``likelihood``, density or censored).
        states: ``[T, S]`` inputs of the GMM (already normalised if it was trained so).
        actions: ``[T, A]`` dataset actions.
        chunk: rows per forward pass.

    Returns:
        The :class:`NLLGap`.
    """
    if states.shape[0] != actions.shape[0] or states.shape[0] == 0:
        raise GemkitError("nll_gap needs the same, non-zero number of states and actions.")
    sum_gmm = sum_top = 0.0
    for i in range(0, states.shape[0], chunk):
        s, a = states[i : i + chunk], actions[i : i + chunk]
        p = gmm(s)
        lj = gmm.log_joint(p, a.unsqueeze(1)).squeeze(1)  # [B, K]
        sum_gmm += float(-torch.logsumexp(lj, dim=-1).sum())
        k = p.log_weights.argmax(dim=-1)  # [B]
        rows = torch.arange(s.shape[0], device=s.device)
        # log Normal(a; mu_k*, sigma_k*) without the gating weight: l_k* - log w_k*
        log_n = lj[rows, k] - p.log_weights[rows, k]
        sum_top += float(-log_n.sum())
    t = states.shape[0]
    return NLLGap(sum_gmm / t, sum_top / t, (sum_top - sum_gmm) / t, t)


def nll_gap_over_seeds(
    transitions: Transitions,
    k: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 2_000,
    *,
    config: TrainConfig | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> NLLGapSummary:
    """Fit one K-GMM per seed and report the NLL gap's mean and std over seeds.

    Args:
        transitions: the dataset (the diagnostic uses all its pairs).
        k: mixture components.
        seeds: fit seeds.
        steps: gradient steps per fit.
        config: other training hyperparameters (see :func:`fit_behavior_gmm`).
        progress: ``progress(seed_index, step, steps)``.

    Returns:
        The :class:`NLLGapSummary`.
    """
    if not seeds:
        raise GemkitError("nll-gap needs at least one seed.")
    out = []
    for i, seed in enumerate(seeds):
        cb = None if progress is None else (lambda d, t, i=i: progress(i, d, t))
        gmm, obs = fit_behavior_gmm(transitions, k, steps, seed=seed, config=config, progress=cb)
        out.append(nll_gap(gmm, obs, transitions.actions.detach().cpu().float()))
    return summarize_gaps(out, k, seeds, steps)


def summarize_gaps(
    gaps: Sequence[NLLGap], k: int, seeds: Sequence[int], steps: int
) -> NLLGapSummary:
    """Mean and population std over seeds of per-seed :class:`NLLGap` results."""

    def ms(xs: list[float]) -> tuple[float, float]:
        return float(np.mean(xs)), float(np.std(xs))

    g, gs = ms([x.nll_gmm for x in gaps])
    t, ts = ms([x.nll_top1 for x in gaps])
    d, ds = ms([x.gap for x in gaps])
    return NLLGapSummary(k, tuple(int(s) for s in seeds), steps, g, gs, t, ts, d, ds, tuple(gaps))

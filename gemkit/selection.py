"""What one selection decided (:class:`Selection`) and its support audits (spec 2.6)."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from gemkit.support.normalize import zscore

__all__ = ["Z_TOL", "Selection", "support_audits"]


@attrs.frozen
class Selection:
    """Everything one :meth:`Selector.select` call decided, for ``B`` states.

    Attributes:
        action: ``[B, A]`` the executed action (top-1, or the top-k mean).
        candidates: ``[B, M, A]`` the candidate set (anchor first when there is one).
        score: ``[B, M]`` ``value + lam * support`` (Eq. 4).
        value: ``[B, M]`` the value term (e.g. LCB).
        support: ``[B, M]`` the normalised support term.
        loglik: ``[B, M]`` the raw support log-likelihood.
        index: ``[B]`` index of the top-1 candidate.
        lam: ``[B]`` the support weight used at each state.
        support_z: ``[B]`` SupportZ audit: z of the top-1 action within its set, computed in
            float64 (see :func:`support_audits`); NaN where undefined (``support="none"``).
        violation: ``[B]`` Violation audit as a float: 1.0 where ``support_z < z_min`` (beyond
            :data:`Z_TOL`), 0.0 where not, NaN where SupportZ is undefined. Its mean over
            decisions is the Violation rate.
        collapse_dist: ``[B]`` CollapseDist audit: distance of the top-1 action to the nearest
            behavior component mean (NaN when the support has no mixture).
        n_used: ``[B]`` sampled candidates each state's decision used (``N`` for a fixed budget;
            per state under the adaptive budget). ``None`` only where a producer does not
            fill it.
        critic_evals: ``[B]`` candidates scored for each state (the anchor included), over all
            rounds under the adaptive budget.
        value_scale: ``[B]`` the per-state scale a standardising value term (``lcb_z``)
            divided the critic's value by (:class:`~gemkit.protocols.HasValueScale`); ``None``
            where the value term is not standardised.
    """

    action: Tensor
    candidates: Tensor
    score: Tensor
    value: Tensor
    support: Tensor
    loglik: Tensor
    index: Tensor
    lam: Tensor
    support_z: Tensor
    violation: Tensor
    collapse_dist: Tensor
    n_used: Tensor | None = None
    critic_evals: Tensor | None = None
    value_scale: Tensor | None = None

    @property
    def top1(self) -> Tensor:
        """``[B, A]`` the top-1 candidate (before any top-k smoothing)."""
        rows = torch.arange(self.index.shape[0], device=self.index.device)
        return self.candidates[rows, self.index]


Z_TOL = 1e-9
"""Violation needs SupportZ below ``z_min - Z_TOL``: a z equal to ``z_min`` up to rounding (at
``N = 1`` the two z-scores are exactly +-1) is not a violation."""


def support_audits(loglik: Tensor, index: Tensor, z_min: float) -> tuple[Tensor, Tensor]:
    """SupportZ and Violation of the selected candidates (spec 2.6), free of rounding flips.

    The z-scores are computed in float64 from the support log-likelihoods, and Violation is
    ``z < z_min - Z_TOL``. In float32, the two z-scores of a two-candidate set (``N = 1`` with
    the anchor), which are exactly -1 and +1, came out as low as -1.0022, so whether the
    selection "violated" ``z_min = -1`` was decided by rounding.

    Args:
        loglik: ``[B, M]`` support log-likelihoods of the candidates.
        index: ``[B]`` the selected (top-1) candidate of each state.
        z_min: the Violation threshold.

    Returns:
        ``support_z [B]`` (float32; exactly -1.0 or 1.0 in that two-candidate case) and
        ``violation [B]`` (float32, 1.0 or 0.0).
    """
    z = zscore(loglik.double())[torch.arange(loglik.shape[0], device=loglik.device), index]
    violation = (z < z_min - Z_TOL).to(torch.float32)
    return z.to(torch.float32), violation

"""The candidate oracle's records and statistics: a probed decision (:class:`OracleProbe`)
and what a set of them says about the critic (:func:`summarize_probes`, :func:`value_bins`,
the rank statistics they use). See :mod:`gemkit.eval.oracle` for how probes are measured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from gemkit.errors import GemkitError

__all__ = [
    "PROBE_ARRAYS",
    "OracleProbe",
    "OracleSummary",
    "fall_separation",
    "rank",
    "spearman",
    "summarize_probes",
    "value_bins",
]


#: the per-candidate arrays of an :class:`OracleProbe`, each ``[M]``
PROBE_ARRAYS: tuple[str, ...] = ("returns", "lengths", "fell", "value", "support", "loglik",
                                 "score")  # fmt: skip


@attrs.frozen
class OracleProbe:
    """One probed decision: the candidate set as the selector scored it and each candidate's
    branch return.

    Attributes:
        episode: the episode (0-based).
        t: the step within the episode.
        returns: ``[M]`` discounted branch return of each candidate.
        lengths: ``[M]`` steps each branch ran (``<= horizon``).
        fell: ``[M]`` whether the branch ended in a termination before ``horizon``.
        value: ``[M]`` the selector's value term.
        support: ``[M]`` its support term (after normalisation).
        loglik: ``[M]`` the behaviour log-likelihood of each candidate.
        score: ``[M]`` ``value + lambda * support``.
        index: the candidate the selector's score ranks first.
        has_anchor: whether candidate 0 is the selector's anchor (gemkit's proposers put it
            first); without one the anchor statistics of :func:`summarize_probes` are NaN.
        control_return: the branch return of candidate 0 moved by :func:`control_action` (a
            step of ``control_eps`` in a seeded random direction): how much return changes for
            an action change far too small to matter (NaN without a control).
    """

    episode: int
    t: int
    returns: np.ndarray
    lengths: np.ndarray
    fell: np.ndarray
    value: np.ndarray
    support: np.ndarray
    loglik: np.ndarray
    score: np.ndarray
    index: int
    has_anchor: bool = True
    control_return: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The probe in plain JSON types (numbers, lists); :meth:`from_dict` reads it back."""
        row: dict[str, Any] = {"episode": self.episode, "t": self.t, "index": self.index,
                               "has_anchor": self.has_anchor,
                               "control_return": self.control_return}  # fmt: skip
        return row | {k: getattr(self, k).tolist() for k in PROBE_ARRAYS}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> OracleProbe:
        """A probe from :meth:`to_dict`'s form (extra keys ignored; ``has_anchor`` and
        ``control_return`` may be missing)."""
        arrays = {k: np.asarray(row[k], dtype=bool if k == "fell" else np.float64)
                  for k in PROBE_ARRAYS}  # fmt: skip
        return cls(int(row["episode"]), int(row["t"]), index=int(row["index"]),
                   has_anchor=bool(row.get("has_anchor", True)),
                   control_return=float(row.get("control_return", float("nan"))),
                   **arrays)  # fmt: skip


@attrs.frozen
class OracleSummary:
    """Means over probes (see the module docstring); ``anchor`` is candidate 0.

    Attributes:
        probes: probed decisions.
        spearman_value: mean Spearman correlation of the value term with the branch returns.
        spearman_score: the same for the score.
        spearman_support: the same for the behaviour log-likelihood.
        chosen_minus_anchor: mean branch return of the chosen candidate minus the anchor's.
        best_minus_chosen: mean best branch return minus the chosen candidate's.
        chosen_fell: fraction of probes whose chosen branch fell.
        anchor_fell: fraction of probes whose anchor branch fell.
        chaos_floor: mean over probes of ``|control_return - returns[0]|``: the change of return
            that a negligible change of action already makes (a chaotic rollout's floor; where
            it is as large as ``return_spread`` the branch returns cannot rank the candidates).
        return_spread: mean over probes of the std of the branch returns within the set (the
            scale of what choosing can gain or lose).
        overrating_vs_support: mean Spearman correlation, over a probe's candidates, of the
            critic's overrating (its rank of the candidate minus the candidate's rank by return,
            as fractions of the set) with the candidate's *lack* of support (minus its
            log-likelihood); positive: the critic overrates the less-supported candidates.
        set_fell: mean fraction of a probe's candidates whose branch fell (``chosen_fell`` of a
            choice made at random).
        mixed: fraction of probes whose set holds both falling and standing candidates (the
            probes the ``fall_auc_*`` statistics are taken over).
        fall_auc_value: mean over mixed probes of :func:`fall_separation` of the value term:
            the probability that a standing candidate is valued above a falling one (0.5:
            the critic cannot tell them apart; below 0.5: it prefers the falls).
        fall_auc_score: the same for the score.
        fall_auc_support: the same for the behaviour log-likelihood.
    """

    probes: int
    spearman_value: float
    spearman_score: float
    spearman_support: float
    chosen_minus_anchor: float
    best_minus_chosen: float
    chosen_fell: float
    anchor_fell: float
    chaos_floor: float
    return_spread: float
    overrating_vs_support: float
    set_fell: float
    mixed: float
    fall_auc_value: float
    fall_auc_score: float
    fall_auc_support: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks ``0 .. n-1`` of a 1-D array, ties given their mean rank (as Spearman's rho needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two 1-D arrays; NaN when either is constant."""
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float("nan") if den == 0.0 else float((ra * rb).sum() / den)


def fall_separation(x: np.ndarray, fell: np.ndarray) -> float:
    """The probability that a standing candidate's ``x`` exceeds a falling one's, ties counted
    half (the Mann-Whitney AUC of ``x`` for "stays up"); NaN unless both kinds are present."""
    x = np.asarray(x, dtype=np.float64)
    fell = np.asarray(fell, dtype=bool)
    up, down = x[~fell], x[fell]
    if len(up) == 0 or len(down) == 0:
        return float("nan")
    diff = up[:, None] - down[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def value_bins(probes: Sequence[OracleProbe], bins: int = 5) -> dict[str, list[float]]:
    """What a candidate's place in the critic's order of its set says about it: the candidates
    of every probe binned by their value's rank within the set (``rank / (M - 1)``, bin 0 the
    lowest-valued fifth for ``bins = 5``), and per bin the fraction whose branch fell and their
    mean branch return standardised within the set (``(return - set mean) / set std``; sets of
    equal returns count 0). A critic that knows nothing gives flat lines; one that ranks well,
    falls that drop and returns that rise with the bin. Sets of one candidate are left out.

    Returns:
        ``{"fell": [bins], "return_z": [bins], "count": [bins]}`` (NaN where a bin is empty).
    """
    fell = np.zeros(bins)
    ret = np.zeros(bins)
    count = np.zeros(bins)
    for p in probes:
        m = len(p.returns)
        if m < 2:
            continue
        where = np.minimum((rank(p.value) / (m - 1) * bins).astype(int), bins - 1)
        sd = p.returns.std()
        z = (p.returns - p.returns.mean()) / sd if sd > 0 else np.zeros(m)
        np.add.at(fell, where, p.fell.astype(np.float64))
        np.add.at(ret, where, z)
        np.add.at(count, where, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"fell": (fell / count).tolist(), "return_z": (ret / count).tolist(),
                "count": count.tolist()}  # fmt: skip


def summarize_probes(probes: Sequence[OracleProbe]) -> OracleSummary:
    """The means over ``probes`` of :class:`OracleSummary`'s statistics (NaN correlations, from
    candidate sets whose returns or scores are all equal, are left out of their mean)."""
    if not probes:
        raise GemkitError("no probes to summarise: run candidate_oracle with episodes >= 1.")

    def mean(xs: list[float]) -> float:
        a = np.asarray(xs, dtype=np.float64)
        a = a[np.isfinite(a)]
        return float(a.mean()) if len(a) else float("nan")

    nan, over = float("nan"), []
    for p in probes:
        m = len(p.returns)
        overrate = (rank(p.value) - rank(p.returns)) / max(m - 1, 1)
        over.append(spearman(overrate, -p.loglik))
    return OracleSummary(
        probes=len(probes),
        spearman_value=mean([spearman(p.value, p.returns) for p in probes]),
        spearman_score=mean([spearman(p.score, p.returns) for p in probes]),
        spearman_support=mean([spearman(p.loglik, p.returns) for p in probes]),
        chosen_minus_anchor=mean(
            [p.returns[p.index] - p.returns[0] if p.has_anchor else nan for p in probes]
        ),
        best_minus_chosen=mean([p.returns.max() - p.returns[p.index] for p in probes]),
        chosen_fell=mean([float(p.fell[p.index]) for p in probes]),
        anchor_fell=mean([float(p.fell[0]) if p.has_anchor else nan for p in probes]),
        chaos_floor=mean([abs(p.control_return - p.returns[0]) for p in probes]),
        return_spread=mean([float(p.returns.std()) for p in probes]),
        overrating_vs_support=mean(over),
        set_fell=mean([float(p.fell.mean()) for p in probes]),
        mixed=mean([float(0 < p.fell.sum() < len(p.fell)) for p in probes]),
        fall_auc_value=mean([fall_separation(p.value, p.fell) for p in probes]),
        fall_auc_score=mean([fall_separation(p.score, p.fell) for p in probes]),
        fall_auc_support=mean([fall_separation(p.loglik, p.fell) for p in probes]),
    )

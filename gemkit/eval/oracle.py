"""Ground truth for a candidate set: what each candidate action is worth, measured by branching
the simulator.

A selector ranks its candidates with a critic; where the critic is wrong, more candidates give it
more chances to pick a bad action. This module measures that directly in a MuJoCo environment.
While a selector drives an episode, every ``probe_every`` steps the simulator's state is copied
into one branch per candidate: branch ``j`` executes candidate ``j``, then a fixed *follow*
policy (by default the run's deterministic anchor actor) for the rest of ``horizon`` steps or
until the environment terminates (a fall). The branch's discounted return is that candidate's
return under the follow policy, ``Q^follow(s, a_j)`` estimated by one deterministic rollout;
it is compared with what the selector saw: its value term, its support term and its score.

What a probe's numbers answer (:class:`OracleSummary`):

- ``spearman_value`` / ``spearman_score`` / ``spearman_support``: does the critic's (the score's,
  the behaviour model's) order of the candidates follow their true returns?
- ``chosen_minus_anchor``: did choosing among the candidates beat executing the anchor?
- ``best_minus_chosen``: how much return the choice left among the candidates.
- ``overrating_vs_support``: does the critic rank the less-supported candidates above their true
  rank (the out-of-distribution overestimation that a support term exists to stop)?
- ``fall_auc_value`` / ``fall_auc_score`` / ``fall_auc_support``: where a set holds candidates
  whose branch falls and candidates whose branch stays up, does the critic (the score, the
  behaviour model) put the standing ones first? ``set_fell`` is the fraction of a set that falls,
  the rate a choice made at random would fall at.

The branches are plain MuJoCo copies (``set_state`` of ``qpos``/``qvel``) of gymnasium's MuJoCo
environments; other environments are refused with a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from gemkit.errors import GemkitError

__all__ = [
    "PROBE_ARRAYS",
    "OracleProbe",
    "OracleSummary",
    "branch_returns",
    "candidate_oracle",
    "control_action",
    "fall_separation",
    "rank",
    "spearman",
    "summarize_probes",
    "value_bins",
]

Policy = Callable[[Tensor], Tensor]

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


def _mujoco(env: gym.Env) -> Any:
    base = env.unwrapped
    if not (hasattr(base, "set_state") and hasattr(base, "data")):
        raise GemkitError(
            f"the candidate oracle branches a MuJoCo simulator (set_state of qpos/qvel); "
            f"{env.spec.id if env.spec else type(base).__name__} is not one: use a gymnasium "
            "MuJoCo task (Hopper, Walker2d, HalfCheetah, ...)."
        )
    return base


def _box(space: gym.Space[Any], what: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box):
        raise GemkitError(f"the candidate oracle needs a Box {what} space, got {space}.")
    return space


def branch_returns(
    branches: Sequence[gym.Env],
    qpos: np.ndarray,
    qvel: np.ndarray,
    candidates: np.ndarray,
    follow: Policy,
    *,
    horizon: int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each candidate's discounted return: branch ``j`` starts from ``(qpos, qvel)``, executes
    ``candidates[j]``, then ``follow`` (called once per step on the batch of all ``M``
    branches, those that ended included, so that a branch's result depends on the candidate set
    and not on when the others ended) until ``horizon`` steps or a termination.

    Args:
        branches: at least ``M`` reset MuJoCo environments of the task (their states are
            overwritten).
        qpos: the state's positions.
        qvel: the state's velocities.
        candidates: ``[M, A]`` actions (clipped to the action box, as evaluation does).
        follow: a policy ``[B, S] -> [B, A]``.
        horizon: steps per branch, >= 1.
        gamma: discount in ``(0, 1]``.

    Returns:
        ``(returns [M], lengths [M], fell [M])``.
    """
    m = len(candidates)
    if horizon < 1 or not 0.0 < gamma <= 1.0:
        raise GemkitError(f"horizon must be >= 1 and gamma in (0, 1], got {horizon}, {gamma}.")
    if len(branches) < m:
        raise GemkitError(f"{m} candidates need {m} branch environments, got {len(branches)}.")
    bases = [_mujoco(env) for env in branches[:m]]
    box = _box(branches[0].action_space, "action")
    low, high = box.low, box.high
    returns, lengths = np.zeros(m), np.zeros(m, dtype=np.int64)
    fell = np.zeros(m, dtype=bool)
    obs = np.zeros((m, *_box(branches[0].observation_space, "observation").shape))
    for base in bases:
        base.set_state(qpos, qvel)
    actions = np.clip(np.asarray(candidates, dtype=np.float64), low, high)
    alive = np.ones(m, dtype=bool)
    for k in range(horizon):
        if k > 0:  # the whole batch every step: a branch's floats never depend on which
            # other branches have ended (a batched network may round with the batch's size)
            act = follow(torch.as_tensor(obs, dtype=torch.float32)).detach().cpu().numpy()
            actions = np.clip(act.astype(np.float64), low, high)
        for j in np.flatnonzero(alive):
            o, r, terminated, _, _ = bases[j].step(actions[j])
            returns[j] += gamma**k * float(r)
            lengths[j] += 1
            obs[j] = o
            if terminated:
                alive[j], fell[j] = False, True
        if not alive.any():
            break
    return returns, lengths, fell


def control_action(action: np.ndarray, eps: float, seed: int, episode: int, t: int) -> np.ndarray:
    """``action`` moved by ``eps`` along a unit direction drawn from a generator seeded with
    ``(seed, episode, t)``: the control branch of a probe."""
    d = np.random.default_rng([seed, episode, t]).normal(size=np.shape(action))
    return np.asarray(action, dtype=np.float64) + eps * d / np.linalg.norm(d)


def candidate_oracle(
    selector: Any,
    spec: gym.envs.registration.EnvSpec | str,
    follow: Policy,
    *,
    episodes: int = 3,
    probe_every: int = 50,
    max_steps: int | None = None,
    horizon: int = 200,
    gamma: float = 0.99,
    seed: int = 0,
    control_eps: float = 1e-3,
    progress: Callable[[int, int], None] | None = None,
) -> list[OracleProbe]:
    """Drive ``episodes`` episodes with ``selector`` and probe every ``probe_every``-th decision
    (see the module docstring).

    Args:
        selector: an object with ``select(states, generator=g, t=t)`` returning a selection
            with ``action``, ``candidates``, ``value``, ``support``, ``loglik``, ``score`` and
            ``index`` (a :class:`gemkit.Selector`).
        spec: the MuJoCo task (an ``EnvSpec`` or a gymnasium id).
        follow: the policy each branch follows after its candidate.
        episodes: episodes to drive, >= 1.
        probe_every: probe at steps ``0, probe_every, ...`` of each episode.
        max_steps: episode cap (default: the env's time limit).
        horizon: steps per branch.
        gamma: discount of the branch returns.
        seed: episode ``e`` resets with seed ``seed + e``; the selector draws from a generator
            seeded with ``seed``.
        control_eps: size of the control branch's change of the anchor (0: no control).
        progress: ``progress(episodes_done, episodes)`` after each episode.

    Returns:
        The probes in episode and step order.
    """
    if episodes < 1 or probe_every < 1:
        raise GemkitError(f"episodes and probe_every must be >= 1, got {episodes}, {probe_every}.")
    env = gym.make(spec)
    base = _mujoco(env)
    branches: list[gym.Env] = []
    gen = torch.Generator().manual_seed(seed)
    box = _box(env.action_space, "action")
    default_limit = env.spec.max_episode_steps if env.spec is not None else None
    limit = max_steps if max_steps is not None else (default_limit or 1000)
    probes: list[OracleProbe] = []
    has_anchor = bool(getattr(getattr(selector, "proposer", None), "has_anchor", True))
    try:
        for e in range(episodes):
            obs, _ = env.reset(seed=seed + e)
            for t in range(limit):
                x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
                sel = selector.select(x, generator=gen, t=t)
                if t % probe_every == 0:
                    cand = sel.candidates[0].detach().cpu().numpy()
                    control = has_anchor and control_eps > 0
                    if control:
                        ctrl = control_action(cand[0], control_eps, seed, e, t)
                        cand = np.concatenate([cand, ctrl[None]])
                    while len(branches) < len(cand):
                        b = gym.make(spec)
                        b.reset(seed=seed)
                        branches.append(b)
                    state = (base.data.qpos.copy(), base.data.qvel.copy())
                    ret, lengths, fell = branch_returns(
                        branches, *state, cand, follow, horizon=horizon, gamma=gamma
                    )
                    ctrl_ret = float("nan")
                    if control:
                        ctrl_ret = float(ret[-1])
                        ret, lengths, fell = ret[:-1], lengths[:-1], fell[:-1]
                    row = {k: getattr(sel, k)[0].detach().cpu().numpy().astype(np.float64)
                           for k in ("value", "support", "loglik", "score")}  # fmt: skip
                    probes.append(OracleProbe(e, t, ret, lengths, fell, index=int(sel.index[0]),
                                              has_anchor=has_anchor, control_return=ctrl_ret,
                                              **row))  # fmt: skip
                action = sel.action[0].detach().cpu().numpy()
                obs, _, terminated, truncated, _ = env.step(np.clip(action, box.low, box.high))
                if terminated or truncated:
                    break
            if progress is not None:
                progress(e + 1, episodes)
    finally:
        env.close()
        for b in branches:
            b.close()
    return probes


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

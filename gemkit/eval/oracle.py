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

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.eval.oracle_stats import (
    PROBE_ARRAYS,
    OracleProbe,
    OracleSummary,
    fall_separation,
    rank,
    spearman,
    summarize_probes,
    value_bins,
)

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

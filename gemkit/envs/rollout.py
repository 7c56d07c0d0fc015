"""The one episode runner: a policy or a selector acting in a gymnasium vector env.

Evaluation (:func:`gemkit.eval.evaluate`), trajectory plots
(:func:`gemkit.eval.trajectories.rollout_paths`) and the dataset makers' reference scores all run
their episodes through :func:`run_episodes`; it sits below ``gemkit.data`` and ``gemkit.eval``.

A *policy* is any callable ``states [B, S] -> actions [B, A]`` on torch tensors. A *selector* is
any object with ``select(states, generator=g, t=steps)`` returning a result with ``.action
[B, A]`` and the audit fields ``.support_z [B]``, ``.violation [B]`` (bool, or float with NaN)
and ``.collapse_dist [B]`` (spec 2.6); :func:`run_episodes` tells the two apart by the
``select`` method, here and nowhere else. An audit value that is NaN is undefined at that decision
(e.g. SupportZ and Violation without a support term) and is left out of the averages; an audit
undefined at every decision is reported as ``None``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from gemkit.envs.spaces import flatten_observation, flatten_space
from gemkit.envs.wrappers import MassScale
from gemkit.errors import DatasetError, GemkitError, ShapeError

__all__ = ["AUDITS", "Rollouts", "run_episodes", "to_numpy"]

AUDITS: tuple[str, ...] = ("support_z", "violation", "collapse_dist", "critic_evals")
"""The per-decision audit fields of a selection that :func:`run_episodes` averages."""


@attrs.frozen
class Rollouts:
    """What :func:`run_episodes` recorded, episodes in env order (env 0's first, ...).

    Attributes:
        env_id: the gymnasium id that was run.
        returns: ``[episodes]`` undiscounted return of each episode.
        lengths: ``[episodes]`` steps of each episode.
        successes: ``[episodes]`` whether the env reported ``info["success"]`` at some step.
        reports_success: whether the env reported ``info["success"]`` at all.
        audits: mean of each audit in :data:`AUDITS` over the steps where it is defined
            (``None`` where undefined at every step, and for policies).
        total_steps: environment steps counted towards episodes.
        elapsed_s: seconds of the whole loop (policy calls included).
        observations: ``[T + 1, S]`` flattened observations of each episode (first row: the
            reset observation) when recorded, else ``None``.
    """

    env_id: str
    returns: np.ndarray
    lengths: np.ndarray
    successes: np.ndarray
    reports_success: bool
    audits: dict[str, float | None]
    total_steps: int
    elapsed_s: float
    observations: list[np.ndarray] | None = None


def to_numpy(x: Any) -> np.ndarray:
    """``x`` (a tensor or array-like) as a float64 numpy array."""
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _make_env_fn(
    spec: gym.envs.registration.EnvSpec, mass_scale: float | None, max_episode_steps: int | None
) -> Callable[[], gym.Env[Any, Any]]:
    def make() -> gym.Env[Any, Any]:
        kwargs: dict[str, Any] = {}
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        env = gym.make(spec, disable_env_checker=True, **kwargs)
        if mass_scale is not None:
            env = MassScale(env, mass_scale)
        return env

    return make


def _decider(
    policy_or_selector: Any, generator: torch.Generator
) -> Callable[[Tensor, Tensor], tuple[Any, Any]]:
    """``decide(states, t) -> (actions, selection or None)``: the one place that tells a selector
    (a ``select`` method) from a plain policy."""
    select = getattr(policy_or_selector, "select", None)
    if callable(select):

        def decide_select(states: Tensor, t: Tensor) -> tuple[Any, Any]:
            sel = select(states, generator=generator, t=t)
            return sel.action, sel

        return decide_select

    def decide_policy(states: Tensor, t: Tensor) -> tuple[Any, Any]:
        return policy_or_selector(states), None

    return decide_policy


def run_episodes(
    policy_or_selector: Any,
    spec: gym.envs.registration.EnvSpec,
    episodes: int,
    seed: int = 0,
    *,
    num_envs: int | None = None,
    mass_scale: float | None = None,
    max_episode_steps: int | None = None,
    state_dim: int | None = None,
    device: torch.device | str = "cpu",
    record_observations: bool = False,
) -> Rollouts:
    """Run ``episodes`` episodes of ``spec`` with all ``num_envs`` environments in step.

    The policy (or ``selector.select``) is called once per step on the batch of the envs'
    flattened observations (:func:`gemkit.envs.spaces.flatten_observation`); actions are clipped
    to the action box. Environment ``i`` is seeded ``seed + i`` and runs a fixed share of the
    episodes, so a run is reproducible for the same ``(seed, num_envs)``; a selector draws from a
    ``torch.Generator`` seeded with ``seed`` and gets ``t``, the ``[B]`` step index within each
    env's current episode.

    Args:
        policy_or_selector: a policy ``states [B, S] -> actions [B, A]`` or a selector.
        spec: the environment to run.
        episodes: number of episodes, >= 1.
        seed: seed of the environments and of the selector's generator.
        num_envs: environments run in parallel (default ``min(episodes, 10)``).
        mass_scale: scale every MuJoCo body mass by this factor (:class:`MassScale`).
        max_episode_steps: override the env's time limit.
        state_dim: the observation size the policy expects (default: the policy's ``state_dim``
            attribute, if any); a mismatch with the env raises.
        device: where the observations are sent.
        record_observations: keep every episode's observations (:attr:`Rollouts.observations`).

    Raises:
        DatasetError: the env's observations do not match what the policy expects.
        ShapeError: the policy returned actions of the wrong shape.
        GemkitError: bad arguments, an env without a time limit or a non-Box action space.
    """
    if episodes < 1:
        raise GemkitError(f"episodes must be >= 1, got {episodes}.")
    n = min(episodes, 10) if num_envs is None else int(num_envs)
    if n < 1:
        raise GemkitError(f"num_envs must be >= 1, got {num_envs}.")
    n = min(n, episodes)
    horizon = max_episode_steps if max_episode_steps is not None else spec.max_episode_steps
    if horizon is None:
        raise GemkitError(f"{spec.id} has no time limit; pass max_episode_steps.")
    if state_dim is None:
        attr = getattr(policy_or_selector, "state_dim", None)
        state_dim = attr if isinstance(attr, int) else None

    fns = [_make_env_fn(spec, mass_scale, max_episode_steps) for _ in range(n)]
    envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    try:
        single_obs = envs.single_observation_space
        s_env = int(flatten_space(single_obs).shape[0])
        act_space = envs.single_action_space
        if not isinstance(act_space, gym.spaces.Box):
            raise GemkitError(f"{spec.id} has action space {act_space}; gemkit needs a Box.")
        a_dim = int(np.prod(act_space.shape))
        low, high = act_space.low.reshape(-1), act_space.high.reshape(-1)
        if state_dim is not None and state_dim != s_env:
            raise DatasetError(
                f"observation mismatch: the policy/dataset expects {state_dim} state dims but "
                f"{spec.id} gives {s_env} (flattened {single_obs}); evaluate in the env the "
                "dataset was recorded in."
            )
        quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
        done_eps = np.zeros(n, dtype=int)
        ep_ret = np.zeros(n)
        ep_len = np.zeros(n, dtype=int)
        ep_succ = np.zeros(n, dtype=bool)
        results: list[list[tuple[float, int, bool]]] = [[] for _ in range(n)]
        paths: list[list[np.ndarray]] = [[] for _ in range(n)]
        reports_success = False
        audit_sums = dict.fromkeys(AUDITS, 0.0)
        audit_counts = dict.fromkeys(AUDITS, 0)
        decide = _decider(policy_or_selector, torch.Generator(device=device).manual_seed(seed))
        total_steps = 0

        obs, _ = envs.reset(seed=[seed + i for i in range(n)])
        flat = flatten_observation(obs).reshape(n, -1)
        current: list[list[np.ndarray]] = [[row] for row in flat]
        t0 = time.perf_counter()
        first = True
        while (done_eps < quota).any():
            active = done_eps < quota
            states = torch.as_tensor(flat, device=device)
            t = torch.as_tensor(ep_len, device=device)
            try:
                with torch.no_grad():
                    action, sel = decide(states, t)
            except (RuntimeError, ShapeError) as exc:
                if not first:
                    raise
                raise DatasetError(
                    f"the policy failed on {spec.id} observations of shape [{n}, {s_env}] "
                    f"({' '.join(str(exc).split())[:200]}); was it trained on a dataset "
                    "for this env?"
                ) from None
            first = False
            act = to_numpy(action)
            if act.shape != (n, a_dim):
                raise ShapeError(
                    f"the policy returned actions of shape {list(act.shape)}, expected "
                    f"[{n}, {a_dim}] for {spec.id}."
                )
            if sel is not None:
                for key in AUDITS:
                    val = getattr(sel, key, None)
                    if val is None:
                        continue
                    v = to_numpy(val).reshape(-1)[active]
                    v = v[np.isfinite(v)]  # NaN: undefined at that decision (e.g. no support)
                    audit_sums[key] += float(v.sum())
                    audit_counts[key] += int(v.size)
            act = np.clip(act, low, high).reshape((n, *act_space.shape)).astype(act_space.dtype)
            obs, reward, terminated, truncated, info = envs.step(act)
            flat = flatten_observation(obs).reshape(n, -1)
            total_steps += int(active.sum())
            ep_ret += np.where(active, reward, 0.0)
            ep_len += 1
            if record_observations:
                for i in np.flatnonzero(active):
                    current[i].append(flat[i])
            if "success" in info:
                reports_success = True
                mask = info.get("_success", np.ones(n, dtype=bool))
                ep_succ |= np.asarray(info["success"], dtype=bool) & np.asarray(mask, dtype=bool)
            ended = np.asarray(terminated) | np.asarray(truncated)
            if ended.any():
                for i in np.flatnonzero(ended & active):
                    results[i].append((float(ep_ret[i]), int(ep_len[i]), bool(ep_succ[i])))
                    if record_observations:
                        paths[i].append(np.stack(current[i]).astype(np.float64))
                    done_eps[i] += 1
                ep_ret[ended] = 0.0
                ep_len[ended] = 0
                ep_succ[ended] = False
                obs, _ = envs.reset(options={"reset_mask": ended})
                flat = flatten_observation(obs).reshape(n, -1)
                for i in np.flatnonzero(ended):
                    current[i] = [flat[i]]
        elapsed = time.perf_counter() - t0
    finally:
        envs.close()

    rows = [r for per_env in results for r in per_env]
    return Rollouts(
        env_id=str(spec.id),
        returns=np.array([r[0] for r in rows]),
        lengths=np.array([r[1] for r in rows]),
        successes=np.array([r[2] for r in rows], dtype=bool),
        reports_success=reports_success,
        audits={
            key: audit_sums[key] / audit_counts[key] if audit_counts[key] else None
            for key in AUDITS
        },
        total_steps=total_steps,
        elapsed_s=elapsed,
        observations=[p for per_env in paths for p in per_env] if record_observations else None,
    )

"""Roll a policy or a selector out in a gymnasium vector env and score it.

A *policy* is any callable ``states [B, S] -> actions [B, A]`` on torch tensors. A *selector* is
any object with ``select(states, generator=g, t=steps)`` returning a result with ``.action
[B, A]`` and the audit fields ``.support_z [B]``, ``.violation [B]`` (bool, or float with NaN)
and ``.collapse_dist [B]`` (spec 2.6); it is detected by its ``select`` attribute. An audit value
that is NaN is undefined at that decision (e.g. SupportZ and Violation without a support term)
and is left out of the averages; an audit undefined at every decision is reported as ``None``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from gemkit.data.minari_io import dataset_exists, flatten_observation, flatten_space, read_metadata
from gemkit.data.reference import normalized_score
from gemkit.data.transitions import Transitions
from gemkit.envs import register_robotics
from gemkit.envs.wrappers import MassScale
from gemkit.errors import DatasetError, GemkitError, ShapeError

__all__ = ["EvalResult", "evaluate", "resolve_env_spec"]

_AUDITS = ("support_z", "violation", "collapse_dist")


@attrs.frozen
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        env_id: the gymnasium id that was run.
        episodes: number of episodes.
        seed: the seed of the run.
        returns: ``[episodes]`` undiscounted return of each episode (in episode order per env).
        lengths: ``[episodes]`` steps of each episode.
        mean_return: mean of ``returns``.
        std_return: population std of ``returns``.
        normalized_mean: mean normalised score (``None`` without reference scores).
        normalized_std: std of the normalised scores (``None`` without reference scores).
        success_rate: fraction of episodes where the env reported ``info["success"]`` at least
            once (``None`` when the env never reports it).
        support_z: mean SupportZ of the selected actions over all steps (selectors only;
            ``None`` where undefined at every step, e.g. ``support="none"``).
        violation_rate: fraction of steps whose selected action violated support (selectors;
            ``None`` where undefined).
        collapse_dist: mean CollapseDist over all steps (selectors only; ``None`` where
            undefined).
        steps_per_s: environment steps per second of the whole loop (policy calls included).
        total_steps: environment steps counted towards episodes.
        mass_scale: the MassScale factor used, if any.
    """

    env_id: str
    episodes: int
    seed: int
    returns: np.ndarray
    lengths: np.ndarray
    mean_return: float
    std_return: float
    normalized_mean: float | None
    normalized_std: float | None
    success_rate: float | None
    support_z: float | None
    violation_rate: float | None
    collapse_dist: float | None
    steps_per_s: float
    total_steps: int
    mass_scale: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        d = attrs.asdict(self)
        d["returns"] = [float(x) for x in self.returns]
        d["lengths"] = [int(x) for x in self.lengths]
        return d


def _spec_from_json(spec: Any) -> gym.envs.registration.EnvSpec:
    if isinstance(spec, gym.envs.registration.EnvSpec):
        return spec
    if isinstance(spec, str):
        return gym.envs.registration.EnvSpec.from_json(spec)
    if isinstance(spec, Mapping):
        return gym.envs.registration.EnvSpec.from_json(json.dumps(dict(spec)))
    raise GemkitError(f"cannot read an environment spec from {type(spec).__name__}.")


def resolve_env_spec(
    target: str | Transitions | gym.envs.registration.EnvSpec,
) -> tuple[gym.envs.registration.EnvSpec, dict[str, Any]]:
    """The environment spec to evaluate in and the metadata it came with.

    Args:
        target: a gymnasium env id, a local Minari dataset id (its ``eval_env_spec``, else its
            ``env_spec``), a :class:`Transitions` loaded from one, or an ``EnvSpec``.

    Returns:
        ``(spec, meta)``; ``meta`` has ``ref_min_score``/``ref_max_score`` when known and
        ``state_dim`` when it came from a dataset.

    Raises:
        GemkitError: ``target`` is neither a known env id nor a local dataset id, or a dataset
            stores no environment spec.
    """
    import gemkit.envs  # noqa: F401  (registers gemkit/Fork-v0)

    if isinstance(target, gym.envs.registration.EnvSpec):
        return target, {}
    if isinstance(target, Transitions):
        meta: Mapping[str, Any] = target.meta
        extra: dict[str, Any] = {"state_dim": target.state_dim}
        name = str(meta.get("dataset_id", "the dataset"))
    elif isinstance(target, str):
        if dataset_exists(target):
            meta = read_metadata(target)
            extra = {}
            name = target
        else:
            if target not in gym.registry:
                register_robotics()
            if target in gym.registry:
                return gym.spec(target), {}
            from gemkit.data.minari_io import _not_found

            raise GemkitError(
                f"{target!r} is neither a gymnasium environment id nor a local dataset id; "
                f"{_not_found(target)}"
            )
    else:
        raise GemkitError(
            f"evaluate needs an env id, a dataset id or Transitions, got {type(target).__name__}."
        )
    spec_json = meta.get("eval_env_spec") or meta.get("env_spec")
    if spec_json is None:
        raise DatasetError(f"{name} stores no environment spec; pass a gymnasium env id instead.")
    register_robotics()
    spec = _spec_from_json(spec_json)
    for key in ("ref_min_score", "ref_max_score"):
        if meta.get(key) is not None:
            extra[key] = float(meta[key])
    return spec, extra


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


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def evaluate(
    policy_or_selector: Any,
    env_id_or_dataset: str | Transitions | gym.envs.registration.EnvSpec,
    episodes: int = 10,
    seed: int = 0,
    *,
    num_envs: int | None = None,
    mass_scale: float | None = None,
    max_episode_steps: int | None = None,
    ref_scores: tuple[float, float] | None = None,
    state_dim: int | None = None,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Run ``episodes`` episodes and report return, normalised score, success and audits.

    All ``num_envs`` environments advance together and the policy (or ``selector.select``) is
    called once per step on the batch of their flattened observations (dict observations are
    flattened as :func:`gemkit.data.flatten_observation`). Actions are clipped to the action box.
    Environment ``i`` is seeded ``seed + i`` and runs a fixed share of the episodes, so a run is
    reproducible for the same ``(seed, num_envs)``; a selector draws from a ``torch.Generator``
    seeded with ``seed``.

    Args:
        policy_or_selector: a policy ``states [B, S] -> actions [B, A]`` or a selector (an object
            with ``select(states, generator=, t=)``; ``t`` is the ``[B]`` step index within each
            env's current episode).
        env_id_or_dataset: a gymnasium id, a local Minari dataset id (its evaluation env and
            reference scores), loaded :class:`Transitions`, or an ``EnvSpec``.
        episodes: number of episodes, >= 1.
        seed: seed of the environments and of the selector's generator.
        num_envs: environments run in parallel (default ``min(episodes, 10)``).
        mass_scale: scale every MuJoCo body mass by this factor (:class:`MassScale`).
        max_episode_steps: override the env's time limit.
        ref_scores: ``(ref_min, ref_max)``; default: those stored with the dataset, if any.
        state_dim: the observation size the policy expects (default: the dataset's, or the
            policy's ``state_dim`` attribute); a mismatch with the env raises.
        device: where the observations are sent.

    Returns:
        An :class:`EvalResult`.

    Raises:
        DatasetError: the env's observations do not match what the dataset or policy expects.
        ShapeError: the policy returned actions of the wrong shape.
        GemkitError: bad arguments or an unknown env/dataset id.
    """
    if episodes < 1:
        raise GemkitError(f"episodes must be >= 1, got {episodes}.")
    n = min(episodes, 10) if num_envs is None else int(num_envs)
    if n < 1:
        raise GemkitError(f"num_envs must be >= 1, got {num_envs}.")
    n = min(n, episodes)
    spec, extra = resolve_env_spec(env_id_or_dataset)
    if ref_scores is None and "ref_min_score" in extra and "ref_max_score" in extra:
        ref_scores = (extra["ref_min_score"], extra["ref_max_score"])
    horizon = max_episode_steps if max_episode_steps is not None else spec.max_episode_steps
    if horizon is None:
        raise GemkitError(f"{spec.id} has no time limit; pass max_episode_steps.")

    is_selector = hasattr(policy_or_selector, "select")
    expected = state_dim
    if expected is None:
        expected = extra.get("state_dim")
    if expected is None:
        attr = getattr(policy_or_selector, "state_dim", None)
        expected = attr if isinstance(attr, int) else None

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
        if expected is not None and expected != s_env:
            raise DatasetError(
                f"observation mismatch: the policy/dataset expects {expected} state dims but "
                f"{spec.id} gives {s_env} (flattened {single_obs}); evaluate in the env the "
                "dataset was recorded in."
            )
        quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
        done_eps = np.zeros(n, dtype=int)
        ep_ret = np.zeros(n)
        ep_len = np.zeros(n, dtype=int)
        ep_succ = np.zeros(n, dtype=bool)
        results: list[list[tuple[float, int, bool]]] = [[] for _ in range(n)]
        reports_success = False
        audit_sums = dict.fromkeys(_AUDITS, 0.0)
        audit_counts = dict.fromkeys(_AUDITS, 0)
        gen = torch.Generator(device=device).manual_seed(seed)
        total_steps = 0

        obs, _ = envs.reset(seed=[seed + i for i in range(n)])
        t0 = time.perf_counter()
        first = True
        while (done_eps < quota).any():
            active = done_eps < quota
            states = torch.as_tensor(flatten_observation(obs).reshape(n, -1), device=device)
            t = torch.as_tensor(ep_len, device=device)
            try:
                with torch.no_grad():
                    if is_selector:
                        sel = policy_or_selector.select(states, generator=gen, t=t)
                        action = sel.action
                    else:
                        sel = None
                        action = policy_or_selector(states)
            except (RuntimeError, ShapeError) as exc:
                if not first:
                    raise
                raise DatasetError(
                    f"the policy failed on {spec.id} observations of shape [{n}, {s_env}] "
                    f"({' '.join(str(exc).split())[:200]}); was it trained on a dataset "
                    "for this env?"
                ) from None
            first = False
            act = _to_numpy(action)
            if act.shape != (n, a_dim):
                raise ShapeError(
                    f"the policy returned actions of shape {list(act.shape)}, expected "
                    f"[{n}, {a_dim}] for {spec.id}."
                )
            if sel is not None:
                for key in _AUDITS:
                    val = getattr(sel, key, None)
                    if val is None:
                        continue
                    v = _to_numpy(val).reshape(-1)[active]
                    v = v[np.isfinite(v)]  # NaN: undefined at that decision (e.g. no support)
                    audit_sums[key] += float(v.sum())
                    audit_counts[key] += int(v.size)
            act = np.clip(act, low, high).reshape((n, *act_space.shape)).astype(act_space.dtype)
            obs, reward, terminated, truncated, info = envs.step(act)
            total_steps += int(active.sum())
            ep_ret += np.where(active, reward, 0.0)
            ep_len += 1
            if "success" in info:
                reports_success = True
                mask = info.get("_success", np.ones(n, dtype=bool))
                ep_succ |= np.asarray(info["success"], dtype=bool) & np.asarray(mask, dtype=bool)
            ended = np.asarray(terminated) | np.asarray(truncated)
            if ended.any():
                for i in np.flatnonzero(ended & active):
                    results[i].append((float(ep_ret[i]), int(ep_len[i]), bool(ep_succ[i])))
                    done_eps[i] += 1
                ep_ret[ended] = 0.0
                ep_len[ended] = 0
                ep_succ[ended] = False
                obs, _ = envs.reset(options={"reset_mask": ended})
        elapsed = time.perf_counter() - t0
    finally:
        envs.close()

    flat = [r for per_env in results for r in per_env]
    returns = np.array([r[0] for r in flat])
    lengths = np.array([r[1] for r in flat])
    if ref_scores is not None:
        norm = normalized_score(returns, ref_scores[0], ref_scores[1])
        norm_mean: float | None = float(norm.mean())
        norm_std: float | None = float(norm.std())
    else:
        norm_mean = norm_std = None

    def audit(key: str) -> float | None:
        return audit_sums[key] / audit_counts[key] if audit_counts[key] else None

    return EvalResult(
        env_id=str(spec.id),
        episodes=episodes,
        seed=seed,
        returns=returns,
        lengths=lengths,
        mean_return=float(returns.mean()),
        std_return=float(returns.std()),
        normalized_mean=norm_mean,
        normalized_std=norm_std,
        success_rate=float(np.mean([r[2] for r in flat])) if reports_success else None,
        support_z=audit("support_z"),
        violation_rate=audit("violation"),
        collapse_dist=audit("collapse_dist"),
        steps_per_s=total_steps / max(elapsed, 1e-9),
        total_steps=total_steps,
        mass_scale=mass_scale,
    )

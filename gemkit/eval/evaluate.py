"""Evaluate a policy or a selector in a gymnasium environment: returns, normalised score,
success and the selection audits.

The episodes run through :func:`gemkit.envs.rollout.run_episodes` (what counts as a policy or a
selector, seeding and the audit averages are described there); this module resolves where to
run (an env id, a dataset's evaluation env) and turns the episodes into an :class:`EvalResult`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
import torch

from gemkit.data.minari_io import dataset_exists, read_metadata
from gemkit.data.reference import normalized_score
from gemkit.data.transitions import Transitions
from gemkit.envs import register_robotics
from gemkit.envs.rollout import run_episodes
from gemkit.errors import DatasetError, GemkitError

__all__ = ["EvalResult", "evaluate", "resolve_env_spec"]


@attrs.frozen
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        env_id: the gymnasium id that was run.
        episodes: number of episodes.
        seed: the seed of the run.
        returns: ``[episodes]`` undiscounted return of each episode (in episode order per env).
        lengths: ``[episodes]`` steps of each episode.
        return_mean: mean of ``returns``.
        return_ep_std: population std of ``returns`` over the episodes.
        score_mean: mean normalised score (``None`` without reference scores).
        score_ep_std: population std of the normalised score over the episodes (``None``
            without reference scores).
        success_rate: fraction of episodes where the env reported ``info["success"]`` at least
            once (``None`` when the env never reports it).
        support_z: mean SupportZ of the selected actions over all steps (selectors only;
            ``None`` where undefined at every step, e.g. ``support="none"``).
        violation: fraction of steps whose selected action violated support (selectors;
            ``None`` where undefined).
        collapse_dist: mean CollapseDist over all steps (selectors only; ``None`` where
            undefined).
        steps_per_s: environment steps per second of the whole loop (policy calls included).
        total_steps: environment steps counted towards episodes.
        mass_scale: the MassScale factor used, if any.
        critic_evals: mean candidates scored per decision (selectors only; ``None`` for a plain
            policy): ``N + 1`` for a fixed budget with an anchor, less on average for an adaptive
            one.
    """

    env_id: str
    episodes: int
    seed: int
    returns: np.ndarray
    lengths: np.ndarray
    return_mean: float
    return_ep_std: float
    score_mean: float | None
    score_ep_std: float | None
    success_rate: float | None
    support_z: float | None
    violation: float | None
    collapse_dist: float | None
    steps_per_s: float
    total_steps: int
    mass_scale: float | None = None
    critic_evals: float | None = None

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

    The episodes run through :func:`gemkit.envs.rollout.run_episodes`: all ``num_envs``
    environments advance together, the policy (or ``selector.select``) is called once per step
    on the batch of their flattened observations, env ``i`` is seeded ``seed + i`` and a
    selector draws from a ``torch.Generator`` seeded with ``seed``.

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
    spec, extra = resolve_env_spec(env_id_or_dataset)
    if ref_scores is None and "ref_min_score" in extra and "ref_max_score" in extra:
        ref_scores = (extra["ref_min_score"], extra["ref_max_score"])
    run = run_episodes(
        policy_or_selector,
        spec,
        episodes,
        seed,
        num_envs=num_envs,
        mass_scale=mass_scale,
        max_episode_steps=max_episode_steps,
        state_dim=state_dim if state_dim is not None else extra.get("state_dim"),
        device=device,
    )
    returns = run.returns
    if ref_scores is not None:
        norm = normalized_score(returns, ref_scores[0], ref_scores[1])
        norm_mean: float | None = float(norm.mean())
        norm_std: float | None = float(norm.std())
    else:
        norm_mean = norm_std = None

    return EvalResult(
        env_id=run.env_id,
        episodes=episodes,
        seed=seed,
        returns=returns,
        lengths=run.lengths,
        return_mean=float(returns.mean()),
        return_ep_std=float(returns.std()),
        score_mean=norm_mean,
        score_ep_std=norm_std,
        success_rate=float(run.successes.mean()) if run.reports_success else None,
        support_z=run.audits["support_z"],
        violation=run.audits["violation"],
        collapse_dist=run.audits["collapse_dist"],
        steps_per_s=run.total_steps / max(run.elapsed_s, 1e-9),
        total_steps=run.total_steps,
        mass_scale=mass_scale,
        critic_evals=run.audits["critic_evals"],
    )

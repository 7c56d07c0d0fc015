"""Evaluate one selector configuration over several seeds and aggregate (mean +- std).

:func:`evaluate_config` is the unit of every experiment (``gemkit eval``, sweeps, the quickstart
and the reproduction report): it composes a selector from fixed networks, runs
:func:`gemkit.evaluate` once per seed and reduces the per-seed results to one :class:`RunSummary`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from gemkit.config import SelectorConfig
from gemkit.data.reference import normalized_score
from gemkit.eval.evaluate import EvalResult, evaluate, resolve_env_spec
from gemkit.eval.results import METRICS, reduce_seeds
from gemkit.models.io import Models
from gemkit.selector import compose

if TYPE_CHECKING:
    from gemkit.budget import AdaptiveBudget

__all__ = [
    "SEED_STRIDE",
    "SUMMARY_FIELDS",
    "RunSummary",
    "describe_config",
    "env_horizon",
    "eval_seed",
    "evaluate_budgets",
    "evaluate_config",
    "summarize",
]

#: Evaluation seed ``s`` runs its environments with seeds ``s * SEED_STRIDE + i`` (``i`` the
#: environment index), so the episodes of different seeds never share initial conditions.
SEED_STRIDE = 1000

#: Columns of :meth:`RunSummary.row`, in table order.
SUMMARY_FIELDS = (
    "label",
    "score_mean",
    "score_std",
    "score_ep_std",
    *METRICS[1:],  # return_mean, success_rate, the audits, steps_per_s
    "seeds",
    "episodes",
    "mass_scale",
)


def eval_seed(seed: int) -> int:
    """The environment/generator seed :func:`evaluate_config` uses for evaluation seed ``seed``."""
    return int(seed) * SEED_STRIDE


@attrs.frozen
class RunSummary:
    """One configuration evaluated over ``len(seeds)`` seeds of ``episodes`` episodes each.

    Attributes:
        label: a name for tables (e.g. ``"gem N=64"``).
        config: the selector's knobs (``SelectorConfig.to_dict()["params"]``), or ``{}`` for a
            plain policy.
        seeds: the evaluation seeds.
        episodes: episodes per seed.
        score_mean: mean normalised score over all episodes of all seeds (NaN without
            reference scores).
        score_std: population std over seeds of the per-seed mean score (0 for one seed).
        score_ep_std: population std of the normalised score over all episodes.
        return_mean: mean undiscounted return over all episodes.
        success_rate: fraction of successful episodes (NaN when the env does not report it).
        support_z: mean SupportZ over seeds (NaN where undefined: a plain policy, or a
            selector without a support term).
        violation: mean Violation rate over seeds (NaN where undefined, as ``support_z``).
        collapse_dist: mean CollapseDist over seeds (NaN where undefined).
        steps_per_s: mean environment steps per second of the evaluation loops.
        mass_scale: the MassScale factor, if any.
        critic_evals: mean candidates scored per decision (NaN for a plain policy).
        results: the per-seed :class:`EvalResult` objects.
    """

    label: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    episodes: int
    score_mean: float
    score_std: float
    score_ep_std: float
    return_mean: float
    success_rate: float
    support_z: float
    violation: float
    collapse_dist: float
    steps_per_s: float
    mass_scale: float | None
    critic_evals: float
    results: tuple[EvalResult, ...] = attrs.field(repr=False, eq=False)

    def row(self) -> dict[str, Any]:
        """A flat dict with :data:`SUMMARY_FIELDS` then the config knobs (``None`` kept)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in SUMMARY_FIELDS}
        out["seeds"] = " ".join(str(s) for s in self.seeds)
        out.update(self.config)
        return out


def summarize(
    label: str,
    results: Sequence[EvalResult],
    seeds: Sequence[int],
    config: dict[str, Any] | None = None,
    ref_scores: tuple[float, float] | None = None,
) -> RunSummary:
    """Reduce per-seed :class:`EvalResult` objects to one :class:`RunSummary`.

    Args:
        label: table label.
        results: one result per seed, same order as ``seeds``.
        seeds: the evaluation seeds.
        config: the selector knobs, recorded verbatim.
        ref_scores: ``(ref_min, ref_max)`` for the per-episode score spread (``score_ep_std``).

    Returns:
        The summary (scores NaN when no result had reference scores).
    """
    if not results:
        raise ValueError("summarize needs at least one result.")
    stats = reduce_seeds([{m: getattr(r, m) for m in METRICS} for r in results])
    score_ep_std = float("nan")
    if ref_scores is not None and math.isfinite(stats["score_mean"]):
        pooled = np.concatenate([r.returns for r in results])
        score_ep_std = float(np.std(normalized_score(pooled, *ref_scores)))
    return RunSummary(
        label=label,
        config=dict(config or {}),
        seeds=tuple(int(s) for s in seeds),
        episodes=int(results[0].episodes),
        score_mean=stats["score_mean"],
        score_std=stats["score_std"],
        score_ep_std=score_ep_std,
        return_mean=float(np.concatenate([r.returns for r in results]).mean()),
        success_rate=stats["success_rate"],
        support_z=stats["support_z"],
        violation=stats["violation"],
        collapse_dist=stats["collapse_dist"],
        steps_per_s=stats["steps_per_s"],
        mass_scale=results[0].mass_scale,
        critic_evals=stats["critic_evals"],
        results=tuple(results),
    )


def env_horizon(target: Any) -> int | None:
    """The time limit of the evaluation environment of ``target`` (env id or dataset id)."""
    spec, _ = resolve_env_spec(target)
    return None if spec.max_episode_steps is None else int(spec.max_episode_steps)


def evaluate_config(
    models: Models | Any,
    config: SelectorConfig | None,
    target: Any,
    *,
    episodes: int,
    seeds: Sequence[int],
    label: str = "",
    mass_scale: float | None = None,
    max_episode_steps: int | None = None,
    num_envs: int | None = None,
    device: str = "cpu",
    policy: Any = None,
    budget: Any = None,
) -> RunSummary:
    """Evaluate the selector ``compose(config, models=models)`` (or ``policy``) over ``seeds``.

    Args:
        models: the fixed networks (:class:`~gemkit.models.Models` or a checkpoint directory).
        config: the selector's knobs; ``None`` evaluates ``policy`` instead.
        target: env id or dataset id (its evaluation env and reference scores).
        episodes: episodes per seed.
        seeds: evaluation seeds; seed ``s`` runs environments ``s * SEED_STRIDE + i``.
        label: table label (default: a short description of ``config``).
        mass_scale: MassScale factor of the evaluation environments.
        max_episode_steps: override the environment's time limit.
        num_envs: environments stepped together.
        device: where the selector's inputs go.
        policy: a plain policy or selector object used when ``config`` is ``None``.
        budget: an :class:`gemkit.budget.AdaptiveBudget` (``N`` grows per state) or ``None``.

    Returns:
        The :class:`RunSummary` over seeds.
    """
    if not seeds:
        raise ValueError("evaluate_config needs at least one seed.")
    if config is None and policy is None:
        raise ValueError("evaluate_config needs a config or a policy.")
    results = []
    for s in seeds:
        actor = (
            policy
            if config is None
            else compose(config=config, models=models, seed=eval_seed(s), budget=budget)
        )
        results.append(
            evaluate(
                actor,
                target,
                episodes=episodes,
                seed=eval_seed(s),
                num_envs=num_envs,
                mass_scale=mass_scale,
                max_episode_steps=max_episode_steps,
                device=device,
            )
        )
    params = {} if config is None else config.to_dict()["params"]
    if not label:
        label = "policy" if config is None else describe_config(config)
    _, extra = resolve_env_spec(target)
    refs = (
        (float(extra["ref_min_score"]), float(extra["ref_max_score"]))
        if "ref_min_score" in extra and "ref_max_score" in extra
        else None
    )
    return summarize(label, results, seeds, params, refs)


def evaluate_budgets(
    models: Models,
    config: SelectorConfig,
    target: Any,
    ns: Sequence[int],
    mass_scales: Sequence[float | None] = (None,),
    *,
    episodes: int,
    seeds: Sequence[int],
    name: str = "gem",
    progress: Callable[[], None] | None = None,
    adaptive: AdaptiveBudget | None = None,
) -> list[RunSummary]:
    """:func:`evaluate_config` for ``config`` at every candidate budget in ``ns`` and every
    MassScale factor in ``mass_scales`` (``None``: unchanged dynamics), in that order; then,
    with ``adaptive`` (a :class:`gemkit.budget.AdaptiveBudget`), the adaptive budget at every
    MassScale factor.

    Rows are labelled ``"<name> N=<n>"`` (``"<name> adaptive N=<n0>..<n_max> <cue>=<kappa>"``),
    plus the actor kind when it is not the GMM; ``progress()`` is called after each evaluation.
    """
    actor_kind = models.meta.get("actor_kind")
    kind = f" ({actor_kind} actor)" if actor_kind and actor_kind != "gmm" else ""
    runs: list[tuple[SelectorConfig, str, AdaptiveBudget | None]] = [
        (config.evolve(n=n), f"{name} N={n}{kind}", None) for n in ns
    ]
    if adaptive is not None:
        a = adaptive
        label = f"{name} adaptive N={a.n0}..{a.n_max} {a.cue}={a.kappa:g}{kind}"
        runs.append((config, label, adaptive))
    out: list[RunSummary] = []
    for cfg, label, budget in runs:
        for mass in mass_scales:
            out.append(
                evaluate_config(
                    models,
                    cfg,
                    target,
                    episodes=episodes,
                    seeds=seeds,
                    mass_scale=mass,
                    label=label,
                    budget=budget,
                )
            )
            if progress is not None:
                progress()
    return out


def describe_config(config: SelectorConfig) -> str:
    """A short label: the knobs that differ from the GEM default, e.g. ``"n=1024 lam=0"``."""
    base = SelectorConfig().to_dict()["params"]
    params = config.to_dict()["params"]
    diff = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
            if base.get(k) != v]  # fmt: skip
    return " ".join(diff) or "gem"

"""``compose()`` and the :class:`Selector`: propose -> value -> support -> score -> reduce -> audit.

Example:
    >>> import torch
    >>> from gemkit import compose
    >>> from gemkit.models import ConditionalGMM, CriticEnsemble, Models
    >>> models = Models(
    ...     actor=ConditionalGMM(3, 2, n_components=4, hidden=(32,)),
    ...     behavior=ConditionalGMM(3, 2, n_components=4, hidden=(32,)),
    ...     critic=CriticEnsemble(3, 2, n_members=5, hidden=(32, 32)),
    ... )
    >>> selector = compose(preset="gem", models=models, n=16)
    >>> out = selector.select(torch.zeros(8, 3), generator=torch.Generator().manual_seed(0))
    >>> out.action.shape, out.candidates.shape, out.score.shape
    (torch.Size([8, 2]), torch.Size([8, 17, 2]), torch.Size([8, 17]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gemkit.config import CUSTOM_PREFIX, SelectorConfig
from gemkit.errors import GemkitError, ShapeError, check_finite, check_shape
from gemkit.models.gmm import Forwards, bind
from gemkit.models.io import Models, as_models
from gemkit.proposers.candidates import CandidateProposer
from gemkit.protocols import (
    HasComponentMeans,
    HasValueScale,
    Proposer,
    Reducer,
    Support,
    Value,
    declared_device,
    observation_kind,
)
from gemkit.reducers import apply_reducer
from gemkit.registry import ANCHORS, REDUCERS, SOURCES, SUPPORTS, VALUES
from gemkit.scorers.schedule import LambdaSchedule
from gemkit.scorers.score import combine_score
from gemkit.selection import Z_TOL, Selection, support_audits

__all__ = ["Z_TOL", "Selection", "Selector", "compose", "support_audits"]

# Selection and its audits live in gemkit.selection; re-exported here, where users import them.


def _ask_device(*components: Any) -> torch.device:
    """Where the components compute: the first one that declares a device, else the CPU."""
    for c in components:
        d = declared_device(c)
        if d is not None:
            return d
    return torch.device("cpu")


class Selector:
    """GEM's Phase II selection rule over swappable components.

    Use :func:`compose` to build one. ``selector(states)`` returns actions only (a policy);
    :meth:`select` returns the full :class:`Selection`.

    ``select`` takes raw observations and hands each component the states it declares
    (``observation = "raw"`` or ``"normalized"``; see :mod:`gemkit.protocols`): normalised ones
    are ``(raw - obs_mean) / obs_std``, computed once per call.

    Args:
        proposer: candidate sets ``[B, M, A]``.
        value: value term ``[B, M]``.
        support: support term (log-likelihood, normaliser).
        reducer: ``[B, M, A], [B, M] -> [B, A]``.
        config: the knobs (``n``, lambda schedule, ``z_min``) and the component names.
        state_dim: expected ``S`` (checked) or ``None``.
        action_dim: expected ``A`` (checked) or ``None``.
        obs_mean: ``[S]`` mean of the normalised states (for components that declare
            ``observation = "normalized"``) or ``None``.
        obs_std: ``[S]`` std of the normalised states or ``None``.
        seed: seed of the selector's own generator, used when ``select`` gets none.
        precision: ``fp32``, or ``bf16``: the value term's critic runs under bf16 autocast (its
            Q values are reduced in fp32); see ``docs/performance.md`` for its accuracy.
    """

    def __init__(
        self,
        proposer: Proposer,
        value: Value,
        support: Support,
        reducer: Reducer,
        config: SelectorConfig,
        *,
        state_dim: int | None = None,
        action_dim: int | None = None,
        obs_mean: Tensor | None = None,
        obs_std: Tensor | None = None,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        self.proposer = proposer
        self.value = value
        self.support = support
        self.reducer = reducer
        self.config = config
        self.state_dim = state_dim
        self.action_dim = action_dim
        lam_t = config.lam if config.lam_T is None else config.lam_T  # None: constant
        self.schedule = LambdaSchedule(config.lam, lam_t, config.horizon)
        self.device = _ask_device(proposer, value, support)
        self.obs_mean = None if obs_mean is None else obs_mean.to(self.device, torch.float32)
        self.obs_std = None if obs_std is None else obs_std.to(self.device, torch.float32)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        if precision not in ("fp32", "bf16"):
            raise GemkitError(f"precision must be fp32 or bf16, got {precision!r}.")
        self.precision = precision
        self.observation = {
            "proposer": observation_kind(proposer),
            "value": observation_kind(value),
            "support": observation_kind(support),
        }

    # ------------------------------------------------------------------ inputs
    def prepare(self, states: Tensor | np.ndarray) -> Tensor:
        """``states`` checked (shape ``[B, S]`` or ``[S]``, finite, not empty) as a float32
        ``[B, S]`` tensor on the selector's device: what :meth:`select` starts from."""
        if isinstance(states, np.ndarray):
            states = torch.from_numpy(np.asarray(states, dtype=np.float32))
        if not isinstance(states, Tensor):
            raise ShapeError(f"states must be a torch.Tensor or numpy array, got {type(states)}.")
        if states.dim() == 1:
            states = states.unsqueeze(0)
        check_shape("states", states, ["B", self.state_dim])
        if states.shape[0] == 0:
            raise ShapeError("states is empty: select() needs at least one state.")
        states = states.to(self.device, torch.float32)
        check_finite("states", states)
        return states

    def views(self, raw: Tensor) -> dict[str, Tensor]:
        """The states of each kind the components declared (normalised only when needed)."""
        views = {"raw": raw}
        if "normalized" in self.observation.values():
            norm = raw
            if self.obs_mean is not None and self.obs_std is not None:
                norm = (raw - self.obs_mean) / self.obs_std
            views["normalized"] = norm
        return views

    # ------------------------------------------------------------------ selection
    @torch.no_grad()
    def select(
        self,
        states: Tensor | np.ndarray,
        generator: torch.Generator | None = None,
        t: Tensor | int = 0,
    ) -> Selection:
        """Select one action per state.

        Args:
            states: ``[B, S]`` (or ``[S]``) raw observations.
            generator: source of all randomness; the selector's own seeded one when ``None``.
            t: environment step(s) ``int`` or ``[B]`` for the lambda schedule.

        Returns:
            The :class:`Selection`, with ``score == value + lam * support``.
        """
        return self._select(states, generator, t, Forwards())

    def _select(
        self, states: Tensor | np.ndarray, generator: torch.Generator | None, t: Tensor | int,
        forwards: Forwards | None,
    ) -> Selection:  # fmt: skip
        """:meth:`select`; ``forwards=None``: each GMM component runs its own forward."""
        proposer = self.proposer if forwards is None else bind(self.proposer, forwards)
        support = self.support if forwards is None else bind(self.support, forwards)
        s = self.prepare(states)
        views = self.views(s)
        b = s.shape[0]
        gen = self.generator if generator is None else generator
        n = self.config.n
        cand = proposer.propose(views[self.observation["proposer"]], n, generator=gen)
        m_expected = n + int(proposer.has_anchor)
        check_shape("proposer output", cand, [b, m_expected, self.action_dim])
        s_value = views[self.observation["value"]]
        value_scale: Tensor | None = None
        with torch.autocast(s.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
            if isinstance(self.value, HasValueScale):
                value, value_scale = self.value.value_and_scale(s_value, cand)
            else:
                value = self.value(s_value, cand)
        check_shape("value output", value, [b, m_expected])
        s_support = views[self.observation["support"]]
        loglik = support.log_likelihood(s_support, cand)
        check_shape("support log-likelihood", loglik, [b, m_expected])
        support_term = support.normalize(loglik)
        lam = self.schedule(torch.as_tensor(t)).to(s.device).expand(b)
        score = combine_score(value, support_term, lam)
        index = score.argmax(dim=1)
        action = apply_reducer(self.reducer, cand, score, gen)
        check_shape("reducer output", action, [b, cand.shape[-1]])
        rows = torch.arange(b, device=s.device)
        top1 = cand[rows, index]
        nan = torch.full((b,), float("nan"), device=s.device)
        if support.normalization == "none":
            support_z, violation, collapse = nan, nan, nan
        else:
            support_z, violation = support_audits(loglik, index, self.config.z_min)
            if isinstance(support, HasComponentMeans):
                means = support.component_means(s_support)  # [B, K, A]
                collapse = (means - top1.unsqueeze(1)).norm(dim=-1).min(dim=1).values
            else:
                collapse = nan
        return Selection(
            action=action,
            candidates=cand,
            score=score,
            value=value,
            support=support_term,
            loglik=loglik,
            index=index,
            lam=lam,
            support_z=support_z,
            violation=violation,
            collapse_dist=collapse,
            n_used=torch.full((b,), n, dtype=torch.long, device=s.device),
            critic_evals=torch.full((b,), float(m_expected), device=s.device),
            value_scale=value_scale,
        )

    def __call__(self, states: Tensor | np.ndarray, t: Tensor | int = 0) -> Tensor:
        """Actions only: ``[B, S] -> [B, A]`` (a policy)."""
        return self.select(states, t=t).action

    # ------------------------------------------------------------------ display
    def describe(self) -> list[tuple[str, str, str]]:
        """Rows ``(part, name, detail)`` describing the assembled rule."""
        c = self.config
        lam = f"{c.lam:g}" if c.lam_T is None else f"{c.lam:g} -> {c.lam_T:g} over H={c.horizon}"
        return [
            ("proposer", c.proposer, f"{self.proposer!r}"),
            ("anchor", c.anchor, "candidates[:, 0]" if self.proposer.has_anchor else "no anchor"),
            ("n", str(c.n), f"M = {c.n + int(self.proposer.has_anchor)} candidates per state"),
            ("value", c.value, f"{self.value!r}"),
            ("critic", _critic_name(self.value), "Q ensemble the value term reads"),
            ("observations", ", ".join(f"{k}: {v}" for k, v in self.observation.items()),
             "the states each component takes"),
            ("beta", f"{c.beta:g}", "LCB = mean - beta * std"),
            ("support", c.support, f"{self.support!r}"),
            ("lambda", lam, "score = value + lambda_t * support"),
            ("reducer", c.reducer, f"{self.reducer!r}"),
            ("z_min", f"{c.z_min:g}", "Violation: SupportZ < z_min"),
        ]

    def __repr__(self) -> str:
        return "Selector(" + ", ".join(f"{p}={n}" for p, n, _ in self.describe()) + ")"


def _critic_name(value: Any) -> str:
    critic = getattr(value, "critic", None)
    if critic is None:
        return "-"
    if isinstance(critic, nn.Module) or type(critic).__repr__ is object.__repr__:
        members = getattr(critic, "n_members", None)
        return type(critic).__name__ + (f"(E={members})" if isinstance(members, int) else "")
    return repr(critic)


def compose(
    config: SelectorConfig | None = None,
    *,
    preset: str | None = None,
    proposer: str | Any = None,
    anchor: str | Any = None,
    value: str | Any = None,
    support: str | Any = None,
    reducer: str | Any = None,
    n: int | None = None,
    k: int | None = None,
    beta: float | None = None,
    lam: float | None = None,
    lam_T: float | None = None,
    horizon: int | None = None,
    z_min: float | None = None,
    chain_steps: int | None = None,
    models: Models | str | Path | None = None,
    seed: int = 0,
    budget: Any = None,
    precision: str = "fp32",
) -> Selector:
    """Assemble a :class:`Selector` from registry names or component objects.

    Start from ``config`` (or the named ``preset``, default ``gem``) and apply every argument that
    is not ``None``. Components may be registry names (see ``gemkit components``) or objects:
    a :class:`~gemkit.protocols.Proposer` (or a candidate source with ``sample``, combined with
    ``anchor``), a :class:`~gemkit.protocols.Value`, a :class:`~gemkit.protocols.Support`, a
    :class:`~gemkit.protocols.Reducer`.

    Args:
        config: a full :class:`SelectorConfig` to start from.
        preset: a named ablation preset (``gem``, ``no_pw``, ...); not with ``config``.
        proposer: candidate source ``actor`` | ``behavior`` | ``unimodal`` or an object.
        anchor: ``mode`` | ``bary`` | ``none`` or an anchor callable.
        value: ``lcb`` | ``mean`` | ``min`` or a Value.
        support: ``zscore`` | ``raw`` | ``none`` or a Support.
        reducer: ``top1`` | ``topk`` or a Reducer.
        n: sampled candidates (``>= 0``).
        k: top-k size.
        beta: LCB pessimism (``>= 0``).
        lam: support weight ``lambda_0``.
        lam_T: support weight after the horizon (``None``: constant).
        horizon: schedule horizon ``H``.
        z_min: Violation threshold.
        chain_steps: a flow proposer's Euler steps (``None``: the model's own).
        models: a :class:`~gemkit.models.Models` or a checkpoint directory.
        seed: seed of the selector's default generator.
        precision: ``fp32`` or ``bf16`` (the critic under bf16 autocast).
        budget: a :class:`gemkit.budget.AdaptiveBudget` to grow ``N`` per state (an
            :class:`~gemkit.budget.AdaptiveSelector`); ``None`` keeps the fixed ``n``.

    Returns:
        The assembled selector.
    """
    if config is not None and preset is not None:
        raise GemkitError("pass either config or preset to compose(), not both.")
    base = config if config is not None else SelectorConfig.preset(preset or "gem")
    changes: dict[str, Any] = {
        "n": n, "k": k, "beta": beta, "lam": lam, "lam_T": lam_T, "horizon": horizon,
        "z_min": z_min, "chain_steps": chain_steps,
    }  # fmt: skip
    objects: dict[str, Any] = {}
    for part, given in (
        ("proposer", proposer),
        ("anchor", anchor),
        ("value", value),
        ("support", support),
        ("reducer", reducer),
    ):
        if given is None:
            continue
        if isinstance(given, str):
            changes[part] = given
        else:
            objects[part] = given
            changes[part] = CUSTOM_PREFIX + type(given).__name__
    prop_obj = objects.get("proposer")
    full_proposer = prop_obj is not None and hasattr(prop_obj, "propose")
    if full_proposer:
        if anchor is not None:
            raise GemkitError("a full Proposer object brings its own anchor; do not pass anchor.")
        changes["anchor"] = CUSTOM_PREFIX + "in-proposer"
    cfg = base.override(**changes)
    m = as_models(models)

    def build(part: str, registry: Any) -> Any:
        if part in objects:
            return objects[part]
        name = getattr(cfg, part)
        if name.startswith(CUSTOM_PREFIX):
            raise GemkitError(
                f"{part} {name!r} was a custom object; pass the object to compose({part}=...)."
            )
        return registry.get(name)(m, cfg)

    if full_proposer:
        prop: Proposer = objects["proposer"]
    else:
        prop = CandidateProposer(build("anchor", ANCHORS), build("proposer", SOURCES))
    val: Value = build("value", VALUES)
    sup: Support = build("support", SUPPORTS)
    red: Reducer = build("reducer", REDUCERS)
    if cfg.reducer == "topk" and cfg.k > cfg.n + int(prop.has_anchor):
        raise GemkitError(
            f"topk with k = {cfg.k} needs at least k candidates, but n = {cfg.n} gives "
            f"{cfg.n + int(prop.has_anchor)}; lower k or raise n."
        )
    state_dim = m.agreed_dim("state_dim")
    action_dim = m.agreed_dim("action_dim")
    stats = m.obs_stats()
    selector = Selector(
        prop,
        val,
        sup,
        red,
        cfg,
        state_dim=state_dim,
        action_dim=action_dim,
        obs_mean=None if stats is None else stats[0],
        obs_std=None if stats is None else stats[1],
        seed=seed,
        precision=precision,
    )
    if budget is None:
        return selector
    if not callable(getattr(budget, "wrap", None)):
        raise GemkitError(f"budget must be a gemkit.budget.AdaptiveBudget, got {type(budget)}.")
    wrapped: Selector = budget.wrap(selector)
    return wrapped

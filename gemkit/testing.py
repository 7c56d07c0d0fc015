"""A public conformance suite for selection components (as sklearn's ``check_estimator``).

Run it on any custom component before handing it to :func:`gemkit.compose`::

    from gemkit.testing import check_value
    check_value(MyScorer(), states, candidates)

Each check raises :class:`ConformanceError` (an ``AssertionError``) naming the broken contract:
shapes, dtype and device, no mutation of inputs, seeded determinism, finiteness, and
per-candidate equivariance (permuting a state's candidates permutes its scores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gemkit.protocols import Critic, Proposer, Reducer, Support, Value, observation_kind
from gemkit.reducers import apply_reducer

__all__ = [
    "ConformanceError",
    "bellman_residuals",
    "check_component",
    "check_critic",
    "check_proposer",
    "check_reducer",
    "check_support",
    "check_value",
    "example_inputs",
]


class ConformanceError(AssertionError):
    """A component broke one of the protocol's contracts."""


def _fail(name: str, msg: str) -> None:
    raise ConformanceError(f"{name}: {msg}")


def _expect(cond: bool, name: str, msg: str) -> None:
    if not cond:
        _fail(name, msg)


def _check_tensor(name: str, out: Any, shape: tuple[int, ...], like: Tensor) -> None:
    _expect(isinstance(out, Tensor), name, f"must return a torch.Tensor, got {type(out)}")
    _expect(tuple(out.shape) == shape, name, f"must return shape {list(shape)}, got "
            f"{list(out.shape)}")  # fmt: skip
    _expect(out.device == like.device, name, f"returned device {out.device}, inputs on "
            f"{like.device}")  # fmt: skip
    _expect(out.is_floating_point() or out.dtype == torch.bool, name,
            f"returned dtype {out.dtype}")  # fmt: skip
    if out.is_floating_point():
        _expect(out.dtype == like.dtype, name, f"returned dtype {out.dtype}, inputs {like.dtype}")
        _expect(bool(torch.isfinite(out).all()), name, "returned NaN/inf")


def _unchanged(name: str, before: list[Tensor], after: list[Tensor]) -> None:
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        _expect(torch.equal(b, a), name, f"modified its input #{i} in place")


def example_inputs(
    batch: int = 4,
    state_dim: int = 3,
    action_dim: int = 2,
    n_candidates: int = 9,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """Seeded ``states [B, S]`` and ``candidates [B, M, A]`` (in ``[-1, 1]``) for the checks."""
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(batch, state_dim, generator=g)
    cands = torch.rand(batch, n_candidates, action_dim, generator=g) * 2 - 1
    return states.to(device), cands.to(device)


def check_proposer(proposer: Proposer, states: Tensor, n: int = 8, seed: int = 0) -> Tensor:
    """Check a :class:`~gemkit.protocols.Proposer`; returns its candidates for ``seed``.

    Contracts: ``[B, n + has_anchor, A]`` on the states' device and dtype, finite; the states
    are not modified; the same seed gives identical candidates; the anchor (when present) does
    not depend on the seed; ``n = 0`` gives the anchor alone.
    """
    name = type(proposer).__name__
    _expect(isinstance(proposer, Proposer), name, "lacks has_anchor/propose (Proposer protocol)")
    keep = states.clone()

    def run(s: int, nn: int = n) -> Tensor:
        g = torch.Generator(device=states.device).manual_seed(s)
        return proposer.propose(states, nn, generator=g)

    out = run(seed)
    m = n + int(proposer.has_anchor)
    _expect(isinstance(out, Tensor) and out.dim() == 3, name, "must return [B, M, A]")
    _check_tensor(name, out, (states.shape[0], m, out.shape[-1]), states)
    _unchanged(name, [keep], [states])
    _expect(torch.equal(out, run(seed)), name, "the same seed must give identical candidates")
    if proposer.has_anchor:
        other = run(seed + 1)
        _expect(torch.equal(out[:, 0], other[:, 0]), name, "the anchor must not depend on the seed")
        only = run(seed, 0)
        _expect(tuple(only.shape) == (states.shape[0], 1, out.shape[-1]), name,
                "n = 0 must return the anchor alone, [B, 1, A]")  # fmt: skip
    return out


def _check_equivariant(
    name: str, fn: Callable[[Tensor, Tensor], Tensor], states: Tensor, cands: Tensor, ref: Tensor
) -> None:
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(cands.shape[1], generator=g).to(cands.device)
    permuted = fn(states, cands[:, perm])
    _expect(torch.allclose(permuted, ref[:, perm], rtol=1e-4, atol=1e-5), name,
            "permuting a state's candidates must permute its scores the same way")  # fmt: skip


def check_value(value: Value, states: Tensor, candidates: Tensor) -> Tensor:
    """Check a :class:`~gemkit.protocols.Value`; returns ``value(states, candidates)``.

    Contracts: ``[B, M]`` on the inputs' device and dtype, finite; inputs not modified;
    deterministic; permutation-equivariant over each state's candidates.
    """
    name = type(value).__name__
    _expect(callable(value), name, "must be callable (Value protocol)")
    keep = [states.clone(), candidates.clone()]
    out = value(states, candidates)
    _check_tensor(name, out, tuple(candidates.shape[:2]), candidates)
    _unchanged(name, keep, [states, candidates])
    _expect(torch.equal(out, value(states, candidates)), name, "must be deterministic")
    _check_equivariant(name, value, states, candidates, out)
    return out


def check_support(support: Support, states: Tensor, candidates: Tensor) -> Tensor:
    """Check a :class:`~gemkit.protocols.Support`; returns the normalised support.

    Contracts: ``log_likelihood`` and ``normalize`` give ``[B, M]`` on the inputs' device and
    dtype, finite; inputs not modified; deterministic; permutation-equivariant; ``normalize``
    works row by row (a state's normalised support does not depend on other states).
    """
    name = type(support).__name__
    _expect(isinstance(support, Support), name, "lacks normalization/log_likelihood/normalize")
    _expect(isinstance(support.normalization, str), name, "normalization must be a str")
    keep = [states.clone(), candidates.clone()]
    ll = support.log_likelihood(states, candidates)
    shape = tuple(candidates.shape[:2])
    _check_tensor(name + ".log_likelihood", ll, shape, candidates)
    _unchanged(name, keep, [states, candidates])
    _expect(torch.equal(ll, support.log_likelihood(states, candidates)), name,
            "log_likelihood must be deterministic")  # fmt: skip
    _check_equivariant(name + ".log_likelihood", support.log_likelihood, states, candidates, ll)
    ll_keep = ll.clone()
    z = support.normalize(ll)
    _check_tensor(name + ".normalize", z, shape, candidates)
    _unchanged(name + ".normalize", [ll_keep], [ll])
    if ll.shape[0] > 1:
        _expect(torch.allclose(support.normalize(ll[:1]), z[:1], rtol=1e-5, atol=1e-6), name,
                "normalize must standardise each state's set on its own")  # fmt: skip
    return z


def check_reducer(reducer: Reducer, candidates: Tensor, score: Tensor) -> Tensor:
    """Check a :class:`~gemkit.protocols.Reducer`; returns its actions.

    Contracts: ``[B, A]`` on the inputs' device and dtype; inputs not modified; deterministic
    (a ``stochastic`` reducer: given the same generator state); each action lies in the
    per-dim range of its state's candidates.
    """
    name = type(reducer).__name__
    _expect(callable(reducer), name, "must be callable (Reducer protocol)")
    keep = [candidates.clone(), score.clone()]

    def call() -> Tensor:
        gen = torch.Generator(device=candidates.device).manual_seed(0)
        return apply_reducer(reducer, candidates, score, gen)

    out = call()
    _check_tensor(name, out, (candidates.shape[0], candidates.shape[-1]), candidates)
    _unchanged(name, keep, [candidates, score])
    _expect(torch.equal(out, call()), name, "must be deterministic")
    lo = candidates.min(1).values - 1e-6
    hi = candidates.max(1).values + 1e-6
    _expect(bool(((out >= lo) & (out <= hi)).all()), name,
            "actions must lie within the range of their candidates")  # fmt: skip
    return out


def _q(critic: Critic, states: Tensor, actions: Tensor) -> Tensor:
    """Ensemble-mean ``Q(s, a)`` of ``[T, S], [T, A] -> [T]`` (the critic sees ``[T, 1, .]``)."""
    q = critic(states.unsqueeze(1), actions.unsqueeze(1))
    return (q.mean(0) if q.dim() == 3 else q).reshape(-1)


def bellman_residuals(
    critic: Critic,
    transitions: Any,
    discount: float = 0.99,
    max_transitions: int = 4096,
    seed: int = 0,
) -> dict[str, float]:
    """RMS one-step Bellman residual of ``critic`` on data, fed raw and fed normalised states.

    For consecutive dataset transitions ``(s, a, r, s', a')`` (``a'`` the action taken next, so
    the target is the SARSA one), the residual is ``Q(s, a) - r - discount * Q(s', a')``. A
    trained critic (IQL, CQL, TD3+BC, gemkit's) roughly satisfies this on the data in the
    coordinates it was trained in, and misses it by the size of its Q range in the others.

    Args:
        critic: any :class:`~gemkit.protocols.Critic`.
        transitions: :class:`gemkit.data.Transitions` (raw observations and their statistics).
        discount: the discount the critic was trained with.
        max_transitions: at most this many transitions, drawn with ``seed``.
        seed: which transitions.

    Returns:
        ``{"raw": rms, "normalized": rms}``.
    """
    obs, nxt = transitions.observations, transitions.next_observations
    idx = torch.nonzero(transitions.continues()).reshape(-1)  # a' exists at these rows
    g = torch.Generator().manual_seed(seed)
    idx = idx[torch.randperm(idx.numel(), generator=g)[:max_transitions]]
    s, a, r = obs[idx], transitions.actions[idx], transitions.rewards[idx]
    s2, a2 = nxt[idx], transitions.actions[idx + 1]
    mean, std = transitions.obs_mean, transitions.obs_std
    out = {}
    with torch.no_grad():
        for kind, f in (("raw", lambda x: x), ("normalized", lambda x: (x - mean) / std)):
            res = _q(critic, f(s), a) - r - discount * _q(critic, f(s2), a2)
            out[kind] = float(res.pow(2).mean().sqrt())
    return out


def check_critic(
    critic: Critic,
    transitions: Any = None,
    *,
    state_dim: int | None = None,
    action_dim: int | None = None,
    discount: float = 0.99,
    ratio: float = 1.5,
) -> Tensor:
    """Check a :class:`~gemkit.protocols.Critic`; returns its Q values on example inputs.

    Contracts: ``[E, B, M]`` or ``[B, M]`` for ``[B, M, S], [B, M, A]`` inputs, finite, inputs
    not modified, deterministic, a valid ``observation`` declaration. Given the dataset the
    critic was trained on (``transitions``), also the observation kind: the critic must not fit
    the data's Bellman equation ``ratio`` times better in the kind of states it did *not*
    declare (:func:`bellman_residuals`); that is a critic that will be fed the wrong states.
    Use it on a trained critic.

    The probe's sizes come from ``state_dim`` / ``action_dim``, else ``transitions``, else the
    critic's own ``state_dim`` / ``action_dim`` attributes (gemkit's ensemble, the d3rlpy
    adapter); a one-line error says so when none of them gives them.
    """
    name = type(critic).__name__
    _expect(callable(critic), name, "must be callable (Critic protocol)")
    try:
        kind = observation_kind(critic)
    except ValueError as exc:
        _fail(name, str(exc))
    if transitions is None:
        s_dim = state_dim if state_dim is not None else getattr(critic, "state_dim", None)
        a_dim = action_dim if action_dim is not None else getattr(critic, "action_dim", None)
        if s_dim is None or a_dim is None:
            raise ConformanceError(
                f"{name}: has no state_dim/action_dim to probe it with: pass "
                "check_critic(critic, transitions) or state_dim=..., action_dim=..."
            )
        states, cands = example_inputs(state_dim=int(s_dim), action_dim=int(a_dim))
    else:
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, len(transitions), (4,), generator=g)
        states = transitions.observations[idx]
        cands = transitions.actions[torch.randint(0, len(transitions), (4 * 9,), generator=g)]
        cands = cands.reshape(4, 9, -1)
        if kind == "normalized":
            states = (states - transitions.obs_mean) / transitions.obs_std
    s3 = states.unsqueeze(1).expand(-1, cands.shape[1], -1)
    keep = [s3.clone(), cands.clone()]
    out = critic(s3, cands)
    _expect(isinstance(out, Tensor) and out.dim() in (2, 3), name,
            "must return [E, B, M] or [B, M]")  # fmt: skip
    _check_tensor(name, out, (*out.shape[:-2], *cands.shape[:2]), cands)
    _unchanged(name, keep, [s3, cands])
    _expect(torch.equal(out, critic(s3, cands)), name, "must be deterministic")
    if transitions is not None:
        res = bellman_residuals(critic, transitions, discount)
        other = "normalized" if kind == "raw" else "raw"
        _expect(
            not res[other] * ratio < res[kind],
            name,
            f"declares {kind} observations but fits the data's Bellman equation far better on "
            f"{other} ones (RMS residual {res[kind]:.4g} vs {res[other]:.4g}); set "
            f"observation = {other!r} on it",
        )
    return out


def check_component(kind: str, component: Any, states: Tensor, candidates: Tensor) -> Tensor:
    """Dispatch to the check for ``kind`` (``proposer``, ``value``, ``support``, ``reducer``)."""
    if kind == "proposer":
        return check_proposer(component, states)
    if kind == "value":
        return check_value(component, states, candidates)
    if kind == "support":
        return check_support(component, states, candidates)
    if kind == "reducer":
        g = torch.Generator().manual_seed(2)
        score = torch.randn(candidates.shape[:2], generator=g).to(candidates)
        return check_reducer(component, candidates, score)
    raise ValueError(f"unknown kind {kind!r}; valid: proposer, value, support, reducer.")

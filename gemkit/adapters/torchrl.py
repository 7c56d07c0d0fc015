"""TorchRL / tensordict modules as gemkit components: critic, candidate source, anchor.

- :func:`from_torchrl`: state-action value modules (e.g. ``torchrl.modules.ValueOperator`` over
  an MLP of ``cat(observation, action)``), one or an ensemble, as a critic ``[E, B, M]``.
- :func:`policy_from_torchrl`: a stochastic actor (``ProbabilisticActor`` with a ``TanhNormal``
  or ``Normal`` distribution) as an anchor (the distribution's deterministic action) and a
  candidate source (its samples).

torchrl and tensordict are imported only when one of these runs (``pip install
'gemkit[torchrl]'``). Every component takes **raw** observations unless told otherwise (the
observation contract of :mod:`gemkit.protocols`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, distributions, nn

from gemkit.adapters.modules import (
    EnsembleCritic,
    as_module_list,
    check_observation,
    first_line,
    flatten_modules,
    module_placement,
)
from gemkit.errors import GemkitError, ShapeError
from gemkit.protocols import ObservationKind

__all__ = [
    "TorchRLAnchor",
    "TorchRLCritic",
    "TorchRLPolicySource",
    "from_torchrl",
    "policy_from_torchrl",
]

Key = str | tuple[str, ...]


def _tensordict() -> Any:
    try:
        import tensordict
        import tensordict.nn
    except ImportError:
        raise GemkitError(
            "TorchRL/tensordict are not installed; install them with "
            "\"pip install 'gemkit[torchrl]'\"."
        ) from None
    return tensordict


def _key(key: Key) -> Key:
    """A nested key in tensordict's canonical form (``("a",)`` is ``"a"``)."""
    return _tensordict().unravel_key(key)


def _check_keys(what: str, module: Any, reads: Sequence[Key], writes: Key | None) -> None:
    given = {_key(k) for k in reads}
    needs = {_key(k) for k in module.in_keys}
    if not needs <= given:
        raise GemkitError(
            f"{what} reads {sorted(map(str, needs))} but gemkit passes "
            f"{sorted(map(str, given))}; set observation_key/action_key to the keys it reads."
        )
    if writes is not None and _key(writes) not in {_key(k) for k in module.out_keys}:
        raise GemkitError(
            f"{what} writes {sorted(map(str, module.out_keys))}, not value_key={writes!r}; "
            "set value_key to its value's key."
        )


class TorchRLCritic(EnsembleCritic):
    """TorchRL state-action value modules as a :class:`~gemkit.protocols.Critic` (see
    :func:`from_torchrl`)."""

    def __init__(
        self,
        modules: Sequence[nn.Module],
        *,
        observation_key: Key = "observation",
        action_key: Key = "action",
        value_key: Key = "state_action_value",
        observation: str = "raw",
    ) -> None:
        base = _tensordict().nn.TensorDictModuleBase
        checked = as_module_list(modules, "from_torchrl", base)
        for i, m in enumerate(checked):
            _check_keys(f"from_torchrl: module #{i}", m, (observation_key, action_key), value_key)
        super().__init__(checked, observation)
        self.observation_key = observation_key
        self.action_key = action_key
        self.value_key = value_key

    def _q(self, module: nn.Module, states: Tensor, actions: Tensor) -> Tensor:
        td = _tensordict().TensorDict(
            {self.observation_key: states, self.action_key: actions},
            batch_size=[states.shape[0]],
            device=states.device,
        )
        return module(td).get(self.value_key)

    def _describe(self) -> str:
        return f", value_key={self.value_key!r}"


def from_torchrl(
    module_or_modules: nn.Module | Sequence[nn.Module],
    *,
    observation_key: Key = "observation",
    action_key: Key = "action",
    value_key: Key = "state_action_value",
    observation: str = "raw",
) -> TorchRLCritic:
    """Wrap TorchRL / tensordict state-action value modules as a critic returning ``[E, B, M]``.

    Each module reads a tensordict with ``observation_key`` and ``action_key`` (``[N, S]``,
    ``[N, A]``) and writes ``value_key`` (``[N, 1]`` or ``[N]``), as
    ``ValueOperator(MLP(out_features=1), in_keys=["observation", "action"])`` does. Every
    module runs under ``no_grad`` on its own device and dtype.

    Args:
        module_or_modules: one ``TensorDictModule`` or a list of them (an ensemble, ``E`` = its
            length).
        observation_key, action_key: the keys the modules read.
        value_key: the key they write the Q-value to.
        observation: ``"raw"`` (the default: the environment's observations) or
            ``"normalized"`` (gemkit's standardised states).

    Raises:
        GemkitError: torchrl is not installed, something is not a tensordict module, or the
            keys do not match the module's ``in_keys``/``out_keys``.
    """
    return TorchRLCritic(
        flatten_modules([module_or_modules]),
        observation_key=observation_key,
        action_key=action_key,
        value_key=value_key,
        observation=observation,
    )


def _normal_parts(dist: distributions.Distribution) -> tuple[Tensor, Tensor, list[Any]]:
    """``loc``, ``scale`` of the Normal at the root of ``dist`` and the transforms after it."""
    transforms: list[Any] = []
    d = dist
    while not isinstance(d, distributions.Normal):
        if isinstance(d, distributions.TransformedDistribution):
            transforms[:0] = list(d.transforms)  # inner transforms apply first
            d = d.base_dist
        elif isinstance(d, distributions.Independent):
            d = d.base_dist
        else:
            raise GemkitError(
                f"the actor's distribution is a {type(dist).__name__}; gemkit samples a Normal "
                "or a transformed Normal (TanhNormal, ...) only."
            )
    return d.loc, d.scale, transforms


class _TorchRLPolicy:
    """Shared plumbing: the actor's distribution parameters for a batch of states."""

    def __init__(
        self,
        actor: nn.Module,
        *,
        observation_key: Key = "observation",
        action_key: Key = "action",
        observation: str = "raw",
    ) -> None:
        td = _tensordict()
        if not isinstance(actor, td.nn.ProbabilisticTensorDictSequential):
            raise GemkitError(
                f"expected a TorchRL ProbabilisticActor (a ProbabilisticTensorDictSequential), "
                f"got {type(actor).__name__}."
            )
        _check_keys(f"the actor {type(actor).__name__}", actor, (observation_key,), None)
        self.actor = actor
        self.observation_key = observation_key
        self.action_key = action_key
        self.observation: ObservationKind = check_observation(observation)
        self._device, self._dtype = module_placement(actor)
        self._low, self._high = self._bounds()

    def _bounds(self) -> tuple[Tensor | None, Tensor | None]:
        """The action spec's box, if the actor has a bounded one."""
        spec = getattr(self.actor, "spec", None)
        try:
            box = spec[self.action_key] if spec is not None else None
            low, high = box.space.low, box.space.high  # type: ignore[union-attr]
        except (AttributeError, KeyError, TypeError):
            return None, None
        return low.to(self._device, self._dtype), high.to(self._device, self._dtype)

    def _params(self, states: Tensor) -> tuple[Tensor, Tensor, list[Any]]:
        if not isinstance(states, Tensor) or states.dim() != 2:
            got = list(states.shape) if isinstance(states, Tensor) else type(states).__name__
            raise ShapeError(f"{type(self).__name__} takes states [B, S], got {got}.")
        td = _tensordict().TensorDict(
            {self.observation_key: states.to(self._device, self._dtype)},
            batch_size=[states.shape[0]],
            device=self._device,
        )
        try:
            dist = self.actor.get_dist(td)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ShapeError(
                f"the actor failed on states {list(states.shape)}: {first_line(exc)}"
            ) from None
        return _normal_parts(dist)

    def _finish(self, x: Tensor, transforms: list[Any], like: Tensor) -> Tensor:
        """Apply the distribution's transforms, clip to the spec's box, back to ``like``'s."""
        for t in transforms:
            x = t(x)
        if self._low is not None and self._high is not None:
            x = torch.clamp(x, self._low, self._high)
        return x.to(like.device, like.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.actor).__name__}, observation={self.observation})"


class TorchRLAnchor(_TorchRLPolicy):
    """The actor's deterministic action, ``[B, S] -> [B, A]``: the transformed ``loc`` (for a
    ``TanhNormal`` this is its ``deterministic_sample``; for a ``Normal`` its mean)."""

    @torch.no_grad()
    def __call__(self, states: Tensor) -> Tensor:
        loc, _, transforms = self._params(states)
        return self._finish(loc, transforms, states)


class TorchRLPolicySource(_TorchRLPolicy):
    """Samples of a TorchRL stochastic actor, with noise drawn only from gemkit's generator.

    ``sample(states [B, S], n, generator) -> [B, n, A]``: ``loc + scale * eps`` of the actor's
    Normal with ``eps`` from ``generator``, passed through the distribution's transforms (tanh
    and the affine map to ``[low, high]`` for a ``TanhNormal``), then clipped to the actor's
    action spec when it has a bounded one.
    """

    @torch.no_grad()
    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]`` policy samples."""
        loc, scale, transforms = self._params(states)
        loc, scale = torch.broadcast_tensors(loc, scale)
        draw_on = generator.device if generator is not None else loc.device
        eps = torch.randn(
            (loc.shape[0], n, *loc.shape[1:]), generator=generator, device=draw_on,
            dtype=loc.dtype,
        ).to(loc.device)  # fmt: skip
        return self._finish(loc.unsqueeze(1) + scale.unsqueeze(1) * eps, transforms, states)


def policy_from_torchrl(
    actor: nn.Module,
    *,
    observation_key: Key = "observation",
    action_key: Key = "action",
    observation: str = "raw",
) -> tuple[TorchRLAnchor, TorchRLPolicySource]:
    """A TorchRL stochastic actor's deterministic action and its samples, as anchor and source.

    Combine them with ``CandidateProposer(anchor, source)`` (or
    ``compose(anchor=anchor, proposer=source)``) to propose candidates with the policy a user
    already has.

    Args:
        actor: a ``ProbabilisticActor`` whose distribution is a (transformed) Normal.
        observation_key: the key the actor reads.
        action_key: the key of the action in the actor's ``spec`` (its bounds clip the samples).
        observation: ``"raw"`` (default) or ``"normalized"``.
    """
    kw: dict[str, Any] = dict(
        observation_key=observation_key, action_key=action_key, observation=observation
    )
    return TorchRLAnchor(actor, **kw), TorchRLPolicySource(actor, **kw)

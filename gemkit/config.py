"""The selector's configuration: a frozen, validated attrs class, its JSON form, and the presets.

Every ablation of the paper (spec section 3) is a named preset that changes exactly one factor of
the GEM default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from gemkit.errors import GemkitError, UnknownComponentError, unknown_name_message
from gemkit.registry import REGISTRIES

__all__ = ["ALL_PRESETS", "CUSTOM_PREFIX", "METHOD_PRESETS", "PRESETS", "SelectorConfig"]

#: Names of components passed as objects to ``compose()`` start with this; they cannot be rebuilt
#: from JSON.
CUSTOM_PREFIX = "custom:"

SPEC_TYPE = "gemkit.selector"


def _registered(kind: str) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: str) -> None:
        if not isinstance(value, str):
            raise GemkitError(f"{attr.name} must be a component name (str), got {value!r}.")
        if value.startswith(CUSTOM_PREFIX):
            return
        if value not in REGISTRIES[kind]:
            raise UnknownComponentError(unknown_name_message(kind, value, REGISTRIES[kind]))

    return check


def _finite(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value):
        raise GemkitError(f"{attr.name} must be finite, got {value}.")


def _gt(bound: float) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
        if not value > bound:
            raise GemkitError(f"{attr.name} must be > {bound}, got {value}.")

    return check


def _ge(bound: float) -> Any:
    def check(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
        if value < bound:
            raise GemkitError(f"{attr.name} must be >= {bound}, got {value}.")

    return check


@attrs.frozen(kw_only=True)
class SelectorConfig:
    """Every inference-time knob of GEM's Phase II (spec section 2); no retraining needed.

    Attributes:
        proposer: candidate source of the ``N`` samples: ``actor`` | ``behavior`` | ``unimodal``.
        anchor: deterministic anchor ``a_0``: ``mode`` | ``bary`` | ``none``.
        value: ensemble reduction (Eq. 3): ``lcb`` (mean - beta*std) | ``mean`` | ``min``.
        support: normalisation of ``log pi_beta`` (Eq. 2): ``zscore`` | ``raw`` | ``none``.
        reducer: ``top1`` | ``topk`` (mean of the ``k`` best) | ``softmax`` (one candidate drawn
            with probability ``softmax(score / temperature)``).
        n: sampled candidates ``N`` (``0`` = anchor only, the single-shot actor).
        k: candidates averaged by ``topk``.
        beta: LCB pessimism (``0`` = ensemble mean).
        lam: support weight ``lambda_0`` at ``t = 0``.
        lam_T: support weight ``lambda_T`` after the horizon; ``None`` means constant ``lam``.
        horizon: ``H`` of the cosine schedule of Eq. 4, in environment steps.
        z_min: the Violation audit's threshold on the selected action's support z.
        temperature: the ``softmax`` reducer's temperature (SfBC: 0.01, i.e. ``softmax(100 Q)``).
        chain_steps: sampling steps of a generative proposer: a ``flow`` model's Euler steps
            (any number: the velocity field is defined at every time); ``None`` = the steps the
            model was fitted with. A ``diffusion`` model's ``T`` is part of its training (its
            noise schedule), so there it must be ``None`` or the fitted ``T``.
    """

    proposer: str = attrs.field(default="actor", validator=_registered("proposer"))
    anchor: str = attrs.field(default="mode", validator=_registered("anchor"))
    value: str = attrs.field(default="lcb", validator=_registered("value"))
    support: str = attrs.field(default="zscore", validator=_registered("support"))
    reducer: str = attrs.field(default="top1", validator=_registered("reducer"))
    n: int = attrs.field(default=64, converter=int, validator=_ge(0))
    k: int = attrs.field(default=1, converter=int, validator=_ge(1))
    beta: float = attrs.field(default=1.0, converter=float, validator=[_finite, _ge(0.0)])
    lam: float = attrs.field(default=0.5, converter=float, validator=[_finite, _ge(0.0)])
    lam_T: float | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(float),
        validator=v.optional([_finite, _ge(0.0)]),
    )
    horizon: int = attrs.field(default=1000, converter=int, validator=_ge(1))
    z_min: float = attrs.field(default=-1.0, converter=float, validator=_finite)
    temperature: float = attrs.field(default=1.0, converter=float, validator=[_finite, _gt(0.0)])
    chain_steps: int | None = attrs.field(
        default=None, converter=attrs.converters.optional(int), validator=v.optional(_ge(1))
    )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """``{"type": "gemkit.selector", "params": {...}}``."""
        return {"type": SPEC_TYPE, "params": attrs.asdict(self)}

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON spec; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(data, dict) or data.get("type") != SPEC_TYPE:
            raise GemkitError(f"not a gemkit selector spec: expected {{'type': '{SPEC_TYPE}'}}.")
        params = dict(data.get("params", {}))
        known = {f.name for f in attrs.fields(cls)}
        extra = sorted(set(params) - known)
        if extra:
            raise GemkitError(
                f"unknown selector spec keys {extra}; valid keys: {', '.join(sorted(known))}."
            )
        return cls(**params)

    @classmethod
    def from_json(cls, source: str | Path) -> SelectorConfig:
        """Read a spec from a JSON file path or a JSON string."""
        p = Path(source) if not str(source).lstrip().startswith("{") else None
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"selector spec {str(p)!r} does not exist.")
        text = p.read_text() if p is not None else str(source)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GemkitError(
                f"selector spec is not valid JSON ({exc.msg}, line {exc.lineno})."
            ) from None
        return cls.from_dict(data)

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SelectorConfig:
        """The named preset (:data:`PRESETS` or :data:`METHOD_PRESETS`) with ``overrides``
        applied on top."""
        if name not in ALL_PRESETS:
            raise UnknownComponentError(unknown_name_message("preset", name, ALL_PRESETS))
        return cls(**{**ALL_PRESETS[name], **overrides})

    def evolve(self, **changes: Any) -> SelectorConfig:
        """A copy with ``changes`` (validated)."""
        return attrs.evolve(self, **changes)

    def override(self, **knobs: Any) -> SelectorConfig:
        """A copy with every knob that is not ``None`` applied: the one way gemkit's entry points
        (``compose()``, ``gemkit compose|eval``) turn optional arguments into a config."""
        return self.evolve(**{key: v for key, v in knobs.items() if v is not None})


#: The paper's stress-test ablations (spec section 3), each one change from ``gem``.
PRESETS: dict[str, dict[str, Any]] = {
    "gem": {},
    "anchor_bary": {"anchor": "bary"},
    "behavior_only_cands": {"proposer": "behavior"},
    "no_anchor": {"anchor": "none"},
    "no_lcb": {"beta": 0.0},
    "no_pw": {"lam": 0.0, "lam_T": 0.0},
    "unimodal_actor_cands": {"proposer": "unimodal"},
    "raw": {"support": "raw"},
    "single_shot": {"n": 0},
}

#: The literature's sample-and-rerank rules as selector configs over gemkit's critic (or any
#: wrapped critic) and data: each is its paper's proposer, rule and default N
#: (``docs/components.md`` cites them). They need the networks they name: ``diffusion`` /
#: ``flow`` a generative behavior model (``gemkit fit-proposer``).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    # IDQL (Hansen-Estruch et al. 2023): behaviour diffusion, argmax of the min over critics, 64
    "idql": {"proposer": "diffusion", "anchor": "none", "value": "min", "support": "none",
             "n": 64},
    # IDQL's other rule: resample the 64 by the expectile weights |tau - 1(Q < V)|
    "idql_resample": {"proposer": "diffusion", "anchor": "none", "value": "expectile_weight",
                      "support": "none", "reducer": "softmax", "n": 64},
    # SfBC (Chen et al. 2023): behaviour diffusion, sample from softmax(100 Q), 32 candidates
    "sfbc": {"proposer": "diffusion", "anchor": "none", "value": "mean", "support": "none",
             "reducer": "softmax", "temperature": 0.01, "n": 32},
    # EMaQ (Ghasemipour et al. 2021): behaviour model samples, argmax of the ensemble, N its knob
    "emaq": {"proposer": "behavior", "anchor": "none", "value": "mean", "support": "none",
             "n": 64},
    # IFQL / SHARSA (Park et al. 2025): flow-matching behaviour model, argmax Q, 32 candidates
    "ifql": {"proposer": "flow", "anchor": "none", "value": "mean", "support": "none", "n": 32},
    # best-of-N over the policy's own samples, the critic's mean alone
    "best_of_n": {"anchor": "none", "value": "mean", "support": "none", "n": 64},
}  # fmt: skip

#: every name :meth:`SelectorConfig.preset` takes: the ablations and the literature's rules
ALL_PRESETS: dict[str, dict[str, Any]] = {**PRESETS, **METHOD_PRESETS}

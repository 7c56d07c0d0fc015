"""The frozen configuration of Phase I training, with JSON and TOML round trips."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

from gemkit.errors import GemkitError, unknown_name_message

__all__ = ["PROFILES", "ConfigError", "TrainConfig", "apply_overrides", "toml_value"]

ActorKind = Literal["gmm", "unimodal"]

PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {"hidden": (128, 128), "n_critics": 5, "gmm_pretrain_steps": 1_000},
}
"""The two training profiles: ``TrainConfig`` field values that differ from the defaults.

- ``paper``: the defaults, i.e. the spec's values (``E = 10`` critics, 256x256 MLPs, ``K = 5``,
  batch 256, Adam 3e-4, 10,000 behavior pretraining steps); for long runs (the paper trains 1M
  steps).
- ``small``: what ``gemkit quickstart`` trains (128x128 MLPs, ``E = 5``, 1,000 pretraining
  steps, everything else as ``paper``); minutes on a CPU for a few thousand steps.

Either way a fresh run spends at most a quarter of its steps on behavior pretraining
(:func:`gemkit.train.plan_run`).
"""


class ConfigError(GemkitError):
    """A training configuration is invalid (unknown key, bad value, unreadable file)."""


def _positive_ints(_: Any, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not value or any(not isinstance(h, int) or h < 1 for h in value):
        raise ConfigError(f"{attribute.name} must be a non-empty list of ints >= 1, got {value}.")


def _hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    return tuple(value)


def _unit_open(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{attribute.name} must lie in (0, 1), got {value}.")


def _unit_closed(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{attribute.name} must lie in [0, 1], got {value}.")


def _ge(bound: float) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= bound):
            raise ConfigError(f"{attribute.name} must be a finite number >= {bound}, got {value}.")

    return check


def _gt(bound: float) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value) and value > bound):
            raise ConfigError(f"{attribute.name} must be a finite number > {bound}, got {value}.")

    return check


def _one_of(*options: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in options:
            raise ConfigError(f"{attribute.name} must be one of {list(options)}, got {value!r}.")

    return check


def _device(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not (value == "cpu" or value == "cuda" or value.startswith("cuda:")):
        raise ConfigError(f"{attribute.name} must be 'cpu', 'cuda' or 'cuda:N', got {value!r}.")


@attrs.frozen(kw_only=True)
class TrainConfig:
    """Hyperparameters of GEM's Phase I (spec section 1).

    The trainer fits four networks on dataset transitions ``(s, a, r, s', d)``:

    - a critic ensemble ``Q_e``, ``e = 1..E``, on ``y = r + discount (1 - d) V(s')`` with
      ``L_Q = mean_e (Q_e(s, a) - y)^2`` and a Polyak target ``phi' <- (1 - tau) phi' + tau phi``;
    - a value ``V`` by expectile regression ``L_V = E[|t - 1(u < 0)| u^2]``,
      ``u = min_e Q'_e(s, a) - V(s)``;
    - a behavior GMM ``pi_beta`` by maximum likelihood, alone for ``gmm_pretrain_steps`` steps,
      then optionally frozen;
    - the actor ``pi_theta`` by guided EM:
      ``L = E[g * (-sum_k gamma_k l_k)] - c_ent E[H(w(s))]``,
      ``g = min(exp(alpha A), exp_adv_max)``, ``A = min_e Q'_e(s, a) - V(s)``.

    Reference: GEM (Guided Expectation-Maximization), section 3 and appendix C; the value and
    critic updates are IQL's (Kostrikov et al., 2022).

    The field defaults are the ``paper`` profile; ``TrainConfig.profile("small")`` is the
    quickstart's (see :data:`PROFILES`).

    Attributes:
        discount: ``gamma`` of the TD target.
        tau: Polyak step of the target critic.
        expectile: ``t`` of the value regression (0.7 locomotion/maze, 0.9 antmaze).
        alpha: guidance strength (IQL's beta); 3.0 is ours.
        exp_adv_max: clip of the guidance weight (IQL: 100).
        c_ent: gating-entropy coefficient; 0.01 is ours.
        n_components: ``K`` of the actor and the behavior GMM (``actor="unimodal"`` uses 1 for
            the actor).
        n_critics: ``E``.
        hidden: widths of every network's MLP.
        lr: Adam learning rate of every network.
        batch_size: transitions per gradient step.
        gmm_pretrain_steps: behavior-only steps before the joint updates (ours: 10 000); a
            fresh run takes ``min(gmm_pretrain_steps, steps // 4)`` of them
            (:func:`gemkit.train.plan_run`), so every network trains whatever ``steps`` is.
        gmm_freeze_after_pretrain: freeze the behavior GMM after pretraining.
        detach_gamma: detach the responsibilities in the EM surrogate (the M-step).
        actor: ``"gmm"`` (the GEM actor) or ``"unimodal"`` (``K = 1``, IQL's Gaussian actor).
        unimodal_baseline: also train the fair same-critic baseline: a ``K = 1`` actor updated
            at every joint step from the same minibatch and the same guidance weights ``g`` as
            the actor (same critic, value and step count), stored as ``baseline`` in the
            checkpoint. Its initialisation has its own generator (seeded from ``seed``), so the
            other networks train exactly as without it.
        log_std_min: lower clamp of the GMMs' ``log sigma``.
        log_std_max: upper clamp of the GMMs' ``log sigma``.
        gmm_init_log_std: initial ``log sigma`` of every GMM component (ours: -1; narrow
            initial components keep the mixture from collapsing onto one component).
        gmm_likelihood: how the actor, behavior and baseline GMMs score actions, in every
            training loss and in the behavior support at selection (stored with the models):
            ``"density"`` (the Gaussian density, the spec's) or ``"censored"`` (an action
            dimension at the edge of the action box scores the probability mass beyond that
            edge; for datasets whose actions were clipped to the box). See
            :meth:`gemkit.models.ConditionalGMM.component_log_joint`.
        normalize_obs: the networks see ``(obs - mean) / std`` with the dataset's statistics.
        reward_scale: how the critic sees rewards: ``"none"`` (as recorded) or
            ``"return_range"`` (``r * 1000 / (max episode return - min episode return)``, the
            IQL recipe for D4RL locomotion, which keeps ``alpha`` and the expectile meaningful
            whatever the task's reward units; the factor is stored with the models). Selection
            only ranks candidates, so it is unaffected.
        critic_mode: forward path of the critic ensemble (``"loop"`` or ``"bmm"``; same maths).
            ``"bmm"`` trains faster (see ``docs/performance.md``); it is stored with the critic.
        seed: seeds the one ``torch.Generator`` of the run (initialisation and minibatches).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
    """

    discount: float = attrs.field(default=0.99, validator=_unit_closed)
    tau: float = attrs.field(default=0.005, validator=_unit_closed)
    expectile: float = attrs.field(default=0.7, validator=_unit_open)
    alpha: float = attrs.field(default=3.0, validator=_ge(0.0))
    exp_adv_max: float = attrs.field(default=100.0, validator=_gt(0.0))
    c_ent: float = attrs.field(default=0.01, validator=_ge(0.0))
    n_components: int = attrs.field(default=5, validator=_ge(1))
    n_critics: int = attrs.field(default=10, validator=_ge(1))
    hidden: tuple[int, ...] = attrs.field(
        default=(256, 256), converter=_hidden, validator=_positive_ints
    )
    lr: float = attrs.field(default=3e-4, validator=_gt(0.0))
    batch_size: int = attrs.field(default=256, validator=_ge(1))
    gmm_pretrain_steps: int = attrs.field(default=10_000, validator=_ge(0))
    gmm_freeze_after_pretrain: bool = False
    detach_gamma: bool = True
    actor: str = attrs.field(default="gmm", validator=_one_of("gmm", "unimodal"))
    unimodal_baseline: bool = True
    log_std_min: float = -5.0
    gmm_init_log_std: float = -1.0
    log_std_max: float = 2.0
    gmm_likelihood: str = attrs.field(default="density", validator=_one_of("density", "censored"))
    normalize_obs: bool = True
    reward_scale: str = attrs.field(default="none", validator=_one_of("none", "return_range"))
    critic_mode: str = attrs.field(default="bmm", validator=_one_of("loop", "bmm"))
    seed: int = attrs.field(default=0, validator=_ge(0))
    device: str = attrs.field(default="cpu", validator=_device)

    def __attrs_post_init__(self) -> None:
        for f in attrs.fields(TrainConfig):
            v = getattr(self, f.name)
            if f.type in ("int", int) and (isinstance(v, bool) or not isinstance(v, int)):
                raise ConfigError(f"{f.name} must be an int, got {v!r}.")
            if f.type in ("bool", bool) and not isinstance(v, bool):
                raise ConfigError(f"{f.name} must be true or false, got {v!r}.")
        if not self.log_std_min <= self.gmm_init_log_std <= self.log_std_max:
            raise ConfigError(
                f"gmm_init_log_std ({self.gmm_init_log_std}) must lie in "
                f"[log_std_min, log_std_max] = [{self.log_std_min}, {self.log_std_max}]."
            )
        if self.log_std_min >= self.log_std_max:
            raise ConfigError(
                f"log_std_min ({self.log_std_min}) must be < log_std_max ({self.log_std_max})."
            )

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> TrainConfig:
        """The named training profile (see :data:`PROFILES`) with ``overrides`` applied.

        Raises:
            ConfigError: an unknown profile name or an invalid override.
        """
        if name not in PROFILES:
            raise ConfigError(unknown_name_message("profile", name, PROFILES))
        return cls.from_dict({**cls().to_dict(), **PROFILES[name], **overrides})

    @property
    def actor_components(self) -> int:
        """``K`` of the actor: ``n_components``, or 1 for the unimodal actor."""
        return 1 if self.actor == "unimodal" else self.n_components

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-serialisable values (``hidden`` as a list)."""
        d = attrs.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict`'s output; unknown keys are an error.

        Raises:
            ConfigError: an unknown key or an invalid value.
        """
        names = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(unknown_name_message("config key", unknown[0], names))
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid training config: {exc}") from None

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_toml(self) -> str:
        """TOML text of :meth:`to_dict` (flat table of scalars and one int list)."""
        lines = []
        for k, v in sorted(self.to_dict().items()):
            lines.append(f"{k} = {toml_value(v)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_file(cls, path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
        """Read a ``.json`` or ``.toml`` file (a flat table, or a ``[train]`` table).

        Args:
            path: the file.
            base: where the keys the file does not set come from (default: ``TrainConfig()``,
                the ``paper`` profile).

        Raises:
            ConfigError: missing file, unknown suffix, parse error or invalid values.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist.")
        try:
            if p.suffix == ".json":
                data = json.loads(p.read_text())
            elif p.suffix == ".toml":
                data = tomllib.loads(p.read_text())
            else:
                raise ConfigError(f"config file {str(p)!r} must end in .json or .toml.")
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot parse {str(p)!r}: {first}") from None
        if isinstance(data, dict) and set(data) == {"train"} and isinstance(data["train"], dict):
            data = data["train"]
        if not isinstance(data, dict):
            raise ConfigError(f"{str(p)!r} must hold one table of config keys.")
        return cls.from_dict({**(base or cls()).to_dict(), **data})

    def save(self, path: str | Path) -> None:
        """Write ``.json`` or ``.toml`` (by suffix)."""
        p = Path(path)
        text = self.to_toml() if p.suffix == ".toml" else self.to_json()
        p.write_text(text)


def toml_value(v: Any) -> str:
    """``v`` as a TOML value: booleans, numbers, strings, lists of them, and tables (inline,
    string keys quoted)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        pairs = (f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML.")


def _parse_value(raw: str, current: Any) -> Any:
    """Parse an override string by the type of the current value."""
    text = raw.strip()
    if isinstance(current, bool):
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {raw!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, tuple):
        parts = [x for x in text.strip("[]()").replace(",", " ").split() if x]
        return tuple(int(x) for x in parts)
    return text


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Return ``config`` with ``key=value`` overrides applied (values parsed by field type).

    Example:
        >>> apply_overrides(TrainConfig(), ["alpha=1.5", "hidden=64,64"]).hidden
        (64, 64)

    Raises:
        ConfigError: a malformed item, an unknown key or a value that does not parse.
    """
    data = config.to_dict()
    current = attrs.asdict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value.")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in data:
            raise ConfigError(unknown_name_message("config key", key, data.keys()))
        try:
            data[key] = _parse_value(raw, current[key])
        except ValueError as exc:
            raise ConfigError(f"cannot parse override {item!r}: {exc}.") from None
    return TrainConfig.from_dict(data)

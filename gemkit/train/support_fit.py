"""GEM's support term from data alone: fit only the behavior GMM, resumably.

For a user with a critic (and perhaps a policy) from another library: the output directory is a
gemkit model directory holding ``behavior`` and the observation statistics it was trained with,
so ``compose(models=DIR, ...)`` (or ``gemkit compose --support-from DIR --critic ...``) gets the
z-scored support and the audits without the rest of Phase I.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError, GemkitError
from gemkit.models.io import Models, atomic_write_bytes, save_models
from gemkit.train.batches import dataset_fingerprint
from gemkit.train.behavior import BehaviorFit, ModelFit
from gemkit.train.config import TrainConfig

__all__ = ["SUPPORT_STATE", "fit_resumable", "fit_support"]

SUPPORT_STATE = "support_state.safetensors"
_HEADER = "gemkit.support_fit"


def _header(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return dict(json.loads(meta[_HEADER]))
    except (SafetensorError, OSError, KeyError, ValueError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} is not a readable fit state; delete the folder to start over."
        ) from None


def fit_support(
    transitions: Transitions,
    out: str | Path,
    steps: int,
    *,
    k: int = 5,
    seed: int = 0,
    config: TrainConfig | None = None,
    checkpoint_every: int = 5_000,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fit the behavior GMM on ``transitions`` into the model directory ``out``; resumable.

    A run that finds its own state in ``out`` continues from it (bit for bit the run it would
    have been); a state of other data, ``k``, ``seed`` or config is an error.

    Args:
        transitions: the dataset (raw observations; normalised with its statistics).
        out: the model directory (``models.json`` + weights + the resumable state).
        steps: gradient steps in all.
        k: mixture components.
        seed: initialisation and minibatches.
        config: sizes, learning rate, batch size (default ``TrainConfig(hidden=(256, 256))``).
        checkpoint_every: write the state every this many steps (and at the end).
        progress: ``progress(step, steps)`` after every step.

    Returns:
        ``out``.

    Raises:
        CheckpointError: ``out`` holds another run's state, or a corrupt one.
    """
    cfg = config or TrainConfig(hidden=(256, 256))
    fit = BehaviorFit(transitions, k, seed, cfg)
    ident = {"k": k, "seed": seed, "config": cfg.to_dict()}

    def export(meta: dict[str, Any]) -> Models:
        trained = "behavior only (gemkit fit-support)"
        return Models(behavior=fit.gmm, meta={**meta, "trained": trained})

    return fit_resumable(fit, transitions, out, steps, ident, export, SUPPORT_STATE,
                         checkpoint_every=checkpoint_every, progress=progress)  # fmt: skip


def fit_resumable(
    fit: ModelFit,
    transitions: Transitions,
    out: str | Path,
    steps: int,
    ident: dict[str, Any],
    export: Callable[[dict[str, Any]], Models],
    state_file: str,
    *,
    checkpoint_every: int = 5_000,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Run ``fit`` to ``steps`` with its state checkpointed in ``out/state_file`` (atomically,
    every ``checkpoint_every`` steps and at the end) and the model directory ``export(meta)``
    written beside it; a state found there with the same ``ident`` (and dataset) is resumed bit
    for bit, another is a one-line :class:`CheckpointError`."""
    if steps < 1 or checkpoint_every < 1:
        raise GemkitError("steps and checkpoint_every must be >= 1.")
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    ident = {**ident, "dataset_sha256": dataset_fingerprint(transitions)}
    state_path = d / state_file
    if state_path.is_file():
        header = _header(state_path)
        if {key: header.get(key) for key in ident} != ident:
            raise CheckpointError(
                f"{d} holds a fit of other data, settings, seed or config; pass another --out."
            )
        fit.load_state(load_file(str(state_path)))

    def save() -> None:
        header = {**ident, "step": fit.step, "steps": steps}
        data = save_safetensors(fit.state(), metadata={_HEADER: json.dumps(header)})
        atomic_write_bytes(state_path, data)
        meta = {
            "dataset_id": transitions.meta.get("dataset_id"),
            "obs_mean": fit.data.obs_mean.tolist(),
            "obs_std": fit.data.obs_std.tolist(),
            "step": fit.step,
        }
        save_models(d, export(meta))

    def report(step: int, _until: int) -> None:
        if progress is not None:
            progress(step, steps)

    while fit.step < steps:
        fit.run(min(steps, fit.step + checkpoint_every), report)
        save()
    if not (d / "models.json").is_file():
        save()
    return d

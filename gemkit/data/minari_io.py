"""Reading Minari datasets from the local store into :class:`~gemkit.data.Transitions`.

Loading needs only ``minari[hdf5]``; writing (``gemkit.data.make_*``) needs ``minari[create]``.
The local store is ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from gemkit.data.transitions import Transitions
from gemkit.envs.spaces import dict_obs_keys, flatten_observation, flatten_space
from gemkit.errors import DatasetError, DatasetNotFoundError

__all__ = [
    "dataset_exists",
    "dataset_path",
    "flatten_observation",
    "flatten_space",
    "list_local",
    "load",
    "load_minari",
    "read_metadata",
]

_MAKE_HINT = (
    "make one with `gemkit data make fork|pointmaze-umaze|pointmaze-medium|pointmaze-large`, "
    "or download one with `minari download D4RL/pointmaze/umaze-v2` (needs network)"
)


def _store_root() -> pathlib.Path:
    from minari.storage.datasets_root_dir import get_dataset_path

    return pathlib.Path(get_dataset_path())


def dataset_path(dataset_id: str) -> pathlib.Path:
    """Directory of ``dataset_id`` in the local Minari store (it may not exist)."""
    return _store_root() / dataset_id


def dataset_exists(dataset_id: str) -> bool:
    """Whether the local store has a directory for ``dataset_id`` (it may still be corrupt)."""
    return (dataset_path(dataset_id) / "data").is_dir()


def list_local() -> list[str]:
    """Ids of the readable datasets in the local Minari store, sorted."""
    import minari
    from minari.dataset.minari_dataset import parse_dataset_id

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return sorted(minari.list_local_datasets())
        except ValueError:
            pass  # a folder with a malformed id (written by hand): list the valid ones ourselves
    root = _store_root()
    found = []
    for meta in root.glob("**/data/metadata.json"):
        dataset_id = meta.parent.parent.relative_to(root).as_posix()
        try:
            parse_dataset_id(dataset_id)
        except ValueError:
            continue
        found.append(dataset_id)
    return sorted(found)


def _not_found(dataset_id: str) -> DatasetNotFoundError:
    local = list_local()
    have = ", ".join(local) if local else "none"
    return DatasetNotFoundError(
        f"no local Minari dataset {dataset_id!r} in {_store_root()} (local datasets: {have}); "
        f"{_MAKE_HINT}."
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_minari(dataset_id: str) -> Any:
    """Open ``dataset_id`` with ``minari.load_dataset``, with gemkit's one-line errors.

    Raises:
        DatasetNotFoundError: no such local dataset.
        DatasetError: the dataset exists but cannot be opened.
    """
    import minari

    if not dataset_exists(dataset_id):
        raise _not_found(dataset_id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return minari.load_dataset(dataset_id)
    except Exception as exc:
        raise DatasetError(
            f"dataset {dataset_id!r} at {dataset_path(dataset_id)} is corrupt or unreadable "
            f"({_one_line(exc)}); delete it and make or download it again."
        ) from None


def read_metadata(dataset_id: str) -> dict[str, Any]:
    """The dataset's Minari metadata (``metadata.json``) as a dict.

    Raises:
        DatasetNotFoundError: no such local dataset.
        DatasetError: the metadata cannot be read.
    """
    return dict(load_minari(dataset_id).storage.metadata)


def _episode_arrays(ep: Mapping[str, Any]) -> dict[str, NDArray[Any]]:
    obs = flatten_observation(ep["observations"])
    if obs.ndim == 1:
        obs = obs[:, None]
    obs = obs.reshape(obs.shape[0], -1)
    actions = np.asarray(ep["actions"], dtype=np.float32)
    actions = actions.reshape(actions.shape[0], -1)
    t = actions.shape[0]
    if obs.shape[0] != t + 1:
        raise DatasetError(
            f"episode {ep.get('id')} has {obs.shape[0]} observations for {t} actions "
            "(Minari stores one more observation than actions)."
        )
    terminals = np.asarray(ep["terminations"], dtype=np.float32).reshape(-1)
    timeouts = np.asarray(ep["truncations"], dtype=np.float32).reshape(-1)
    if t > 0 and terminals[-1] == 0 and timeouts[-1] == 0:
        # A stored episode always ends; mark an unflagged end as a time-out so nothing
        # bootstraps across the boundary into the next episode's first state.
        timeouts = timeouts.copy()
        timeouts[-1] = 1.0
    return {
        "observations": obs[:-1],
        "next_observations": obs[1:],
        "actions": actions,
        "rewards": np.asarray(ep["rewards"], dtype=np.float32).reshape(-1),
        "terminals": terminals,
        "timeouts": timeouts,
    }


def _reference_meta(metadata: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("ref_min_score", "ref_max_score"):
        if metadata.get(key) is not None:
            out[key] = float(metadata[key])
    return out


_CACHE_VERSION = 1
_CACHE_DIR = ".gemkit-cache"
_CACHE_OFF = "GEMKIT_DATASET_CACHE"
_CACHED = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
           "action_low", "action_high")  # fmt: skip


def _cache_file(dataset_id: str) -> pathlib.Path | None:
    """Where :func:`load` keeps the flat arrays of ``dataset_id``'s current files (or None:
    caching is off, ``GEMKIT_DATASET_CACHE=0``).

    The name holds a fingerprint of every file in the dataset's ``data/`` folder (name, size,
    modification time) and of the cache format, so a dataset that is rewritten or edited is
    never read from a stale cache.
    """
    if os.environ.get(_CACHE_OFF, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    data = dataset_path(dataset_id) / "data"
    try:
        stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                       for p in data.iterdir() if p.is_file())  # fmt: skip
    except OSError:  # unreadable: load() reads (and reports) it the slow way
        return None
    key = json.dumps([_CACHE_VERSION, dataset_id, stats]).encode()
    name = hashlib.sha256(key).hexdigest()[:20]
    return dataset_path(dataset_id) / _CACHE_DIR / f"{name}.safetensors"


def _read_cache(path: pathlib.Path | None) -> Transitions | None:
    """The cached transitions at ``path``; None where there is none or it cannot be read (then
    :func:`load` reads the dataset again and rewrites it)."""
    if path is None or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["meta"])
            arrays = {k: f.get_tensor(k) for k in _CACHED}
    except Exception:
        return None
    return _transitions(arrays, meta)


def _write_cache(path: pathlib.Path | None, data: Transitions) -> None:
    """Write ``data`` to ``path`` atomically, replacing older caches of the dataset; a store
    that cannot be written (read-only, full) only loses the speed-up."""
    if path is None:
        return
    from safetensors.torch import save_file

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        meta = json.dumps(data.meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: getattr(data, k).contiguous() for k in _CACHED}, str(tmp),
                  metadata={"meta": meta})  # fmt: skip
        os.replace(tmp, path)
        for old in path.parent.glob("*.safetensors"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _transitions(arrays: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> Transitions:
    obs = arrays["observations"]
    return Transitions(
        **{k: arrays[k] for k in _CACHED},
        obs_mean=obs.mean(0),
        obs_std=obs.std(0, unbiased=False).clamp_min(1e-3),
        meta=meta,
    )


def load(dataset_id: str) -> Transitions:
    """Load a local Minari dataset as flat transition tensors.

    Works for gemkit's own datasets (``gemkit/fork-v0``, ``gemkit/pointmaze-umaze-v1``, ...) and
    for downloaded ones (``D4RL/pointmaze/umaze-v2``, ``mujoco/hopper/medium-v0``, ...).

    - Dict observations are flattened as :func:`flatten_observation` (``observation`` +
      ``desired_goal``).
    - ``next_observations[i]`` is the observation after action ``i`` *within its episode*, so no
      transition crosses an episode boundary; ``terminals``/``timeouts`` are Minari's
      ``terminations``/``truncations`` (an episode end with neither flag counts as a time-out).
    - ``obs_mean``/``obs_std`` are over ``observations`` (as CORL/D4RL; std clamped at ``1e-3``).
    - ``meta`` holds ``dataset_id``, ``env_id``, ``eval_env_spec`` (JSON), ``ref_min_score``/
      ``ref_max_score`` when stored, ``total_episodes``, ``obs_keys``.
    - The first load of a dataset keeps its flat arrays in ``<dataset>/.gemkit-cache/`` (one
      safetensors file, about the size of the data); later loads read that file instead of
      decoding every episode (a 1M-step PointMaze: ~40 s -> well under a second). The cache
      is keyed by the dataset files' names, sizes and modification times, so an edited or
      rewritten dataset is read afresh; ``GEMKIT_DATASET_CACHE=0`` turns it off.

    Args:
        dataset_id: a Minari dataset id in the local store.

    Returns:
        The dataset as :class:`~gemkit.data.Transitions` (CPU, ``float32``).

    Raises:
        DatasetNotFoundError: no such local dataset (the message lists the local ones).
        DatasetError: the dataset is corrupt, empty or has spaces gemkit cannot flatten.

    Example:
        >>> data = gemkit.data.load("gemkit/fork-v0")  # doctest: +SKIP
        >>> data.observations.shape  # doctest: +SKIP
        torch.Size([50000, 2])
    """
    if not dataset_exists(dataset_id):
        raise _not_found(dataset_id)
    cache = _cache_file(dataset_id)
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    data = _read_episodes(dataset_id)
    _write_cache(cache, data)
    return data


def _read_episodes(dataset_id: str) -> Transitions:
    """:func:`load` without the cache: every episode decoded through Minari."""
    ds = load_minari(dataset_id)
    try:
        storage = ds.storage
        metadata = dict(storage.metadata)
        n_eps = int(storage.total_episodes)
        if n_eps == 0:
            raise DatasetError(f"dataset {dataset_id!r} holds no episodes.")
        obs_space = storage.observation_space
        act_space = storage.action_space
        flatten_space(obs_space)  # fail early on unsupported spaces
        if not isinstance(act_space, gym.spaces.Box):
            raise DatasetError(
                f"dataset {dataset_id!r} has action space {act_space}; gemkit needs a Box."
            )
        parts = [_episode_arrays(ep) for ep in storage.get_episodes(range(n_eps))]
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(
            f"dataset {dataset_id!r} could not be read ({_one_line(exc)}); delete it and make or "
            "download it again."
        ) from None
    cat = {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
    if cat["observations"].shape[0] == 0:
        raise DatasetError(f"dataset {dataset_id!r} holds no transitions.")
    env_spec = metadata.get("env_spec")
    meta: dict[str, Any] = {
        "dataset_id": dataset_id,
        "env_id": _env_id(env_spec),
        "env_spec": env_spec,
        "eval_env_spec": metadata.get("eval_env_spec"),
        "total_episodes": n_eps,
        "obs_keys": dict_obs_keys(obs_space.spaces)
        if isinstance(obs_space, gym.spaces.Dict)
        else None,
        **_reference_meta(metadata),
    }
    arrays = {k: torch.from_numpy(v) for k, v in cat.items()}
    for bound in ("low", "high"):
        box = np.asarray(getattr(act_space, bound), dtype=np.float32).reshape(-1)
        arrays[f"action_{bound}"] = torch.from_numpy(box)
    return _transitions(arrays, meta)


def _env_id(env_spec: Any) -> str | None:
    if env_spec is None:
        return None
    if isinstance(env_spec, str):
        try:
            return str(gym.envs.registration.EnvSpec.from_json(env_spec).id)
        except Exception:
            return None
    return str(getattr(env_spec, "id", None))

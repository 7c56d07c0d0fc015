"""Shared fixtures: Minari stores with tiny datasets, the synthetic fork data, a per-test timeout.

Expensive data is built once per session (``*_root``/``fork_transitions``); the fixtures that
point ``MINARI_DATASETS_PATH`` at a store are module- or function-scoped, so that a module sees
the store only while it asks for it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from synthetic_fork import make_fork_transitions

from gemkit.data.transitions import Transitions

LONG_TIMEOUT_S = 3_600
"""The per-test timeout of the ``slow`` and ``gpu`` runs (the default one is in pyproject)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long runs (``-m slow``, ``-m gpu``) get an hour instead of the default per-test timeout."""
    for item in items:
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("slow") or item.get_closest_marker("gpu")
        ):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S))


@pytest.fixture
def minari_store(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """An empty local Minari store (``MINARI_DATASETS_PATH``) for one test."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture(scope="session")
def fork_store_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A store holding a tiny ``gemkit/fork-v0`` (3,000 steps, seed 0), written once a session.

    Tests read it and never write into it (tests that write use :func:`minari_store`).
    """
    from gemkit.data import make_fork

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        make_fork(3_000, seed=0, ref_episodes=20)
    return root


@pytest.fixture(scope="module")
def fork_store(fork_store_root: pathlib.Path) -> Iterator[pathlib.Path]:
    """:func:`fork_store_root` as the local Minari store while a module uses it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(fork_store_root))
        yield fork_store_root


@pytest.fixture(scope="session")
def fork_transitions() -> Transitions:
    """The synthetic fork data of the trainer tests (40 episodes, seed 0); read-only."""
    return make_fork_transitions(n_episodes=40)[0]


@pytest.fixture(scope="module")
def tiny_checkpoint(
    fork_store: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    """A 60-step Phase I checkpoint on :func:`fork_store` (16-wide nets, E = 2, K = 3)."""
    import torch

    from gemkit.data import load
    from gemkit.train import TrainConfig, train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig(hidden=(16, 16), n_critics=2, n_components=3, batch_size=32,
                      gmm_pretrain_steps=20)  # fmt: skip
    train(load("gemkit/fork-v0"), cfg, out, 60, save_every=60, log_every=60, tensorboard=False)
    return out

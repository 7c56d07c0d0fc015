"""Fixtures for the data/env/evaluate tests: a throw-away Minari store with tiny datasets."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

FORK_ID = "gemkit/fork-v0"


@pytest.fixture
def minari_store(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """An empty local Minari store (``MINARI_DATASETS_PATH``) for one test."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture(scope="module")
def fork_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """A module-wide store holding a tiny ``gemkit/fork-v0`` (3,000 steps, seed 0)."""
    from gemkit.data import make_fork

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        make_fork(3_000, seed=0, ref_episodes=20)
        yield root

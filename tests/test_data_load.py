"""gemkit.data.load: round trip through a real Minari store, boundaries, bad input."""

from __future__ import annotations

import pathlib

import minari
import numpy as np
import pytest
import torch

from gemkit.data import FORK_DATASET_ID as FORK_ID
from gemkit.data import load, make_fork, normalized_score, reference_scores
from gemkit.errors import DatasetError, DatasetNotFoundError


def test_round_trip_shapes_and_meta(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    assert len(data) == 3_000
    assert data.observations.shape == (3_000, 2)
    assert data.actions.shape == (3_000, 2)
    assert data.observations.dtype == torch.float32
    assert torch.equal(data.action_low, torch.tensor([-1.0, -1.0]))
    assert torch.equal(data.action_high, torch.tensor([1.0, 1.0]))
    assert data.meta["env_id"] == "gemkit/Fork-v0"
    lo, hi = reference_scores(data.meta) or (None, None)
    assert lo is not None
    assert hi is not None
    assert hi > lo
    assert reference_scores(FORK_ID) == (lo, hi)
    # A real Minari dataset: minari lists it and rebuilds its environment.
    assert FORK_ID in minari.list_local_datasets()
    env = minari.load_dataset(FORK_ID).recover_environment()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,)


def test_next_observations_respect_episode_boundaries(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    ends = (data.terminals + data.timeouts) > 0
    inner = ~ends[:-1]
    assert torch.equal(data.next_observations[:-1][inner], data.observations[1:][inner])
    # Every episode ends flagged, and the minari episode count matches the flags.
    assert bool(ends[-1])
    assert int(ends.sum()) == data.meta["total_episodes"]
    # Across a boundary the next observation is the goal region, not the next start.
    cross = ends[:-1]
    gap = (data.next_observations[:-1][cross] - data.observations[1:][cross]).norm(dim=1)
    assert bool((gap > 1.0).all())
    # Terminal transitions carry the goal reward.
    assert bool((data.rewards[data.terminals > 0] == 1).all())


def test_observation_statistics(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    ep = minari.load_dataset(FORK_ID)
    all_obs = np.concatenate([e.observations[:-1] for e in ep.iterate_episodes()])
    np.testing.assert_allclose(data.obs_mean.numpy(), all_obs.mean(0), atol=1e-5)
    np.testing.assert_allclose(data.obs_std.numpy(), all_obs.std(0), rtol=1e-4)


def test_unknown_id_lists_local_and_says_how(fork_store: pathlib.Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load("gemkit/nope-v0")
    msg = str(info.value)
    assert "\n" not in msg
    assert FORK_ID in msg
    assert "gemkit data make" in msg
    assert "minari download D4RL/" in msg


def test_unknown_id_in_empty_store(minari_store: pathlib.Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="local datasets: none"):
        load("D4RL/pointmaze/umaze-v2")


@pytest.mark.parametrize("damage", ["garbage_hdf5", "empty_hdf5", "empty_metadata"])
def test_corrupt_or_empty_file_is_one_line_error(
    minari_store: pathlib.Path,
    damage: str,
) -> None:
    make_fork(200, seed=1, ref_episodes=2)
    data_dir = minari_store / FORK_ID / "data"
    if damage == "garbage_hdf5":
        (data_dir / "main_data.hdf5").write_bytes(b"this is not an hdf5 file" * 10)
    elif damage == "empty_hdf5":
        (data_dir / "main_data.hdf5").write_bytes(b"")
    else:
        (data_dir / "metadata.json").write_text("")
    with pytest.raises(DatasetError) as info:
        load(FORK_ID)
    assert "\n" not in str(info.value)
    assert FORK_ID in str(info.value)


def test_existing_id_needs_overwrite(minari_store: pathlib.Path) -> None:
    make_fork(100, seed=0, ref_episodes=2)
    with pytest.raises(DatasetError, match="already exists"):
        make_fork(100, seed=0, ref_episodes=2)
    make_fork(150, seed=0, ref_episodes=2, overwrite=True)
    assert len(load(FORK_ID)) == 150


def test_make_is_seeded(minari_store: pathlib.Path) -> None:
    make_fork(400, seed=3, ref_episodes=2, dataset_id="gemkit/a-v0")
    make_fork(400, seed=3, ref_episodes=2, dataset_id="gemkit/b-v0")
    make_fork(400, seed=4, ref_episodes=2, dataset_id="gemkit/c-v0")
    a, b, c = load("gemkit/a-v0"), load("gemkit/b-v0"), load("gemkit/c-v0")
    assert torch.equal(a.observations, b.observations)
    assert torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)


def test_normalized_score_formula() -> None:
    assert normalized_score(5.0, 0.0, 10.0) == pytest.approx(50.0)
    np.testing.assert_allclose(normalized_score(np.array([1.0, 3.0]), 1.0, 3.0), [0.0, 100.0])
    with pytest.raises(ValueError, match="cannot normalise"):
        normalized_score(1.0, 2.0, 2.0)


def test_continues_matches_a_plain_loop(fork_transitions) -> None:
    t = fork_transitions
    got = t.continues().tolist()
    for i in range(len(t) - 1):
        ended = bool(t.terminals[i] > 0 or t.timeouts[i] > 0)
        same = bool((t.next_observations[i] == t.observations[i + 1]).all())
        assert got[i] == (not ended and same), i
    assert len(got) == len(t) - 1 and 0 < sum(got) < len(got)


def _same(a, b) -> None:
    import attrs

    for f in attrs.fields(type(a)):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype, f.name
            assert torch.equal(x, y), f.name
        else:
            assert x == y, f.name


def _cache_files(store: pathlib.Path) -> list[pathlib.Path]:
    return sorted((store / FORK_ID / ".gemkit-cache").glob("*"))


def test_second_load_reads_the_cache(
    minari_store: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemkit.data.minari_io as io

    make_fork(200, seed=1, ref_episodes=2)
    first = load(FORK_ID)
    assert len(_cache_files(minari_store)) == 1

    def no_decoding(dataset_id: str) -> None:
        raise AssertionError("the dataset was decoded again")

    monkeypatch.setattr(io, "_read_episodes", no_decoding)
    _same(load(FORK_ID), first)  # tensors, dtypes, statistics and meta all identical


def test_rewritten_dataset_is_never_read_from_a_stale_cache(minari_store: pathlib.Path) -> None:
    make_fork(200, seed=1, ref_episodes=2)
    assert len(load(FORK_ID)) == 200
    make_fork(300, seed=2, ref_episodes=2, overwrite=True)
    fresh = load(FORK_ID)
    assert len(fresh) == 300
    assert len(_cache_files(minari_store)) == 1  # the stale cache was replaced
    _same(load(FORK_ID), fresh)


def test_corrupt_cache_is_read_afresh_and_rewritten(minari_store: pathlib.Path) -> None:
    make_fork(200, seed=1, ref_episodes=2)
    first = load(FORK_ID)
    (cache,) = _cache_files(minari_store)
    cache.write_bytes(b"not a safetensors file")
    _same(load(FORK_ID), first)
    assert cache.stat().st_size > 100


def test_cache_off_or_unwritable_still_loads(
    minari_store: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fork(200, seed=1, ref_episodes=2)
    monkeypatch.setenv("GEMKIT_DATASET_CACHE", "0")
    first = load(FORK_ID)
    assert not (minari_store / FORK_ID / ".gemkit-cache").exists()
    monkeypatch.delenv("GEMKIT_DATASET_CACHE")
    (minari_store / FORK_ID / ".gemkit-cache").write_text("a file where the folder would go")
    _same(load(FORK_ID), first)

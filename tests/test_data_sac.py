"""SAC behaviour policies (issue 13): bit-for-bit resume, the policy file, one-line errors."""

from __future__ import annotations

import dataclasses
import pathlib
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("stable_baselines3")

from gemkit.data.sac import (
    STATE_FILE,
    SACConfig,
    load_sac_policy,
    read_replay,
    read_sac_run,
    train_sac,
)
from gemkit.errors import CheckpointError, GemkitError

# 400 steps, gradient steps from step 100; 32-wide nets keep it a few seconds.
TINY = SACConfig(env_id="Hopper-v5", seed=3, max_steps=400, learning_starts=100, eval_every=200,
                 eval_episodes=2, checkpoint_every=10**6, batch_size=64,
                 hidden=(32, 32))  # fmt: skip


@pytest.fixture(scope="module")
def one_go(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """TINY trained in one call (no checkpoint before the end)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sac") / "a"
    run = train_sac(TINY, out)
    assert run.steps == 400 and run.trained_steps == 400 and len(run.evals) == 2
    return out


def test_resume_is_bit_for_bit(one_go: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Stopped mid-episode at step 237 (a smaller budget, then the budget raised), resumed to
    400: every tensor of the state equals the one-go run's (networks, Adam, replay buffer,
    RNGs, MuJoCo state), and so do the evaluations."""
    torch.set_num_threads(1)
    half = train_sac(dataclasses.replace(TINY, max_steps=237), tmp_path)
    assert half.steps == 237
    episode_steps = load_file(str(tmp_path / STATE_FILE))["replay.dones"]
    assert episode_steps[-1] == 0  # the cut is not at an episode boundary
    resumed = train_sac(TINY, tmp_path)
    assert resumed.trained_steps == 400 - 237
    a, b = load_file(str(one_go / STATE_FILE)), load_file(str(tmp_path / STATE_FILE))
    assert set(a) == set(b)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert read_sac_run(one_go) == dataclasses.replace(read_sac_run(tmp_path), run_dir=one_go)  # type: ignore[arg-type]
    # stop_at interrupts with a checkpoint; a later call carries on from it
    c = tmp_path / "c"
    assert train_sac(TINY, c, stop_at=150).steps == 150
    train_sac(TINY, c)
    assert torch.equal(
        load_file(str(c / STATE_FILE))["policy.actor.mu.weight"], a["policy.actor.mu.weight"]
    )


def test_caller_rngs_untouched_and_done_runs_reused(one_go: pathlib.Path) -> None:
    torch.manual_seed(11)
    np.random.seed(11)  # noqa: NPY002 - the global generators are what is checked
    random.seed(11)
    expect = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    torch.manual_seed(11)
    np.random.seed(11)  # noqa: NPY002
    random.seed(11)
    run = train_sac(TINY, one_go)  # already at its budget: nothing trained
    assert run.trained_steps == 0 and run.steps == 400
    got = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(got[0], expect[0]) and np.array_equal(got[1], expect[1])
    assert got[2] == expect[2]


def test_policy_file_matches_sb3_actor(one_go: pathlib.Path) -> None:
    """policy.safetensors loads without SB3's pickles and acts as SB3's deterministic actor."""
    from stable_baselines3 import SAC

    from gemkit.data.sac import _build
    from gemkit.data.sac_files import load_run, read_header

    actor = load_sac_policy(one_go)
    model: SAC = _build(TINY)
    load_run(model, TINY, one_go, read_header(one_go / STATE_FILE))
    obs = read_replay(one_go)["observations"][:64]
    sb3_action, _ = model.predict(obs, deterministic=True)
    ours = actor(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(ours, sb3_action, rtol=0, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    sampled = actor.act(torch.as_tensor(obs), gen)
    assert sampled.shape == (64, 3) and bool((sampled.abs() <= 1).all())
    assert not torch.equal(sampled, torch.as_tensor(ours))


def test_one_line_errors(one_go: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with pytest.raises(GemkitError, match=r"other settings \(seed\)"):
        train_sac(dataclasses.replace(TINY, seed=4), one_go)
    with pytest.raises(GemkitError, match="max_steps must be >= 1"):
        SACConfig(max_steps=0)
    (tmp_path / STATE_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="truncated or not a gemkit SAC file"):
        train_sac(TINY, tmp_path)
    with pytest.raises(CheckpointError, match="no SAC policy"):
        load_sac_policy(tmp_path / "nothing")


def test_missing_stable_baselines3_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    with pytest.raises(GemkitError, match=r"pip install 'gemkit\[datagen\]'"):
        train_sac(TINY, tmp_path)

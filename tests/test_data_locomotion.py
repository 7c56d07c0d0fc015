"""Locomotion datasets (issue 13): D4RL's medium / medium-replay recipe at a tiny SAC budget."""

from __future__ import annotations

import pathlib

import minari
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("stable_baselines3")

from gemkit.cli.main import app

from gemkit.data import LOCOMOTION_TASKS, load, load_sac_policy, locomotion_dataset_id
from gemkit.data.locomotion import locomotion_sac_config
from gemkit.data.sac import read_replay, read_sac_run
from gemkit.errors import GemkitError
from gemkit.eval import evaluate

# a 300-step SAC run (gradient steps from step 75, one evaluation at 300)
MAKE = ["data", "make", "--seed", "1", "--sac-steps", "300", "--threads", "1"]


def test_medium_and_medium_replay_through_the_cli(
    minari_store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    runner = CliRunner()
    sac_dir = str(tmp_path / "sac")
    r = runner.invoke(app, [*MAKE, "hopper-medium", "--steps", "2000", "--sac-dir", sac_dir])
    assert r.exit_code == 0, r.output
    assert "wrote gemkit/hopper-medium-v0: 2,000 steps" in r.output
    assert "NOT reached (budget spent)" in r.output  # a 300-step SAC is far from the target
    data = load("gemkit/hopper-medium-v0")
    assert len(data) == 2000 and data.state_dim == 11 and data.action_dim == 3
    assert (data.meta["ref_min_score"], data.meta["ref_max_score"]) == (-20.272305, 3234.3)
    ds = minari.load_dataset("gemkit/hopper-medium-v0")
    env = ds.recover_environment(eval_env=True)
    assert env.spec is not None and env.spec.id == "Hopper-v5"
    assert env.spec.max_episode_steps == 1000
    res = evaluate(load_sac_policy(sac_dir), "gemkit/hopper-medium-v0", episodes=1, seed=0)
    assert res.total_steps > 0 and res.score_mean is not None
    # the stochastic policy was recorded: actions differ from the deterministic ones
    det = load_sac_policy(sac_dir)(data.observations[:100])
    assert not torch.allclose(det, data.actions[:100])

    # medium-replay reuses the finished SAC run (no training) and holds its replay buffer
    r = runner.invoke(app, [*MAKE, "hopper-medium-replay", "--sac-dir", sac_dir])
    assert r.exit_code == 0, r.output
    replay = read_replay(sac_dir)
    run = read_sac_run(sac_dir)
    assert run is not None and len(replay["rewards"]) == run.steps == 300
    rep = load("gemkit/hopper-medium-replay-v0")
    assert len(rep) == 300
    np.testing.assert_array_equal(rep.observations.double().numpy(),
                                  replay["observations"].astype(np.float32))  # fmt: skip
    ds = minari.load_dataset("gemkit/hopper-medium-replay-v0")
    episodes = list(ds.iterate_episodes())
    obs = np.concatenate([ep.observations[:-1] for ep in episodes])
    nxt = np.concatenate([ep.observations[1:] for ep in episodes])
    act = np.concatenate([ep.actions for ep in episodes])
    rew = np.concatenate([ep.rewards for ep in episodes])
    term = np.concatenate([ep.terminations for ep in episodes])
    trunc = np.concatenate([ep.truncations for ep in episodes])
    # exactly the transitions SAC saw, in its order: float64 observations, the env's actions
    np.testing.assert_array_equal(obs, replay["observations"])
    np.testing.assert_array_equal(nxt, replay["next_observations"])
    np.testing.assert_array_equal(act, replay["actions"])  # [-1, 1] box: SB3's scaling is exact
    np.testing.assert_array_equal(rew, replay["rewards"])
    done = replay["dones"] > 0
    timeout = replay["timeouts"] > 0
    np.testing.assert_array_equal(term, done & ~timeout)
    np.testing.assert_array_equal(trunc[:-1], timeout[:-1])
    assert trunc[-1] or term[-1]  # the last episode, cut by the stop, is a truncation
    assert len(episodes) == int(done[:-1].sum()) + 1


def test_ids_configs_and_errors(minari_store: pathlib.Path) -> None:
    assert locomotion_dataset_id("walker2d", "medium-replay") == "gemkit/walker2d-medium-replay-v0"
    assert set(LOCOMOTION_TASKS) == {"hopper", "walker2d", "halfcheetah"}
    full = locomotion_sac_config("halfcheetah")
    assert full.env_id == "HalfCheetah-v5" and full.max_steps == 1_000_000
    assert full.target_return == pytest.approx(12135.0 / 3)
    assert full.learning_starts == 10_000 and full.eval_every == 10_000
    tiny = locomotion_sac_config("hopper", sac_steps=400, target_return=50.0)
    assert (tiny.learning_starts, tiny.eval_every, tiny.target_return) == (100, 400, 50.0)
    with pytest.raises(GemkitError, match="unknown locomotion task 'ant'"):
        locomotion_dataset_id("ant", "medium")
    runner = CliRunner()
    r = runner.invoke(app, ["data", "make", "fork", "--sac-steps", "10"])
    assert r.exit_code == 2 and "locomotion only" in r.output


def test_missing_stable_baselines3_is_one_line(
    minari_store: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    r = CliRunner().invoke(app, [*MAKE, "hopper-medium", "--sac-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "pip install 'gemkit[datagen]'" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_expert_continues_the_medium_run_and_medium_expert_concatenates(
    minari_store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """expert: the medium SAC run copied to <sac-dir>-expert and trained on (the medium run
    untouched), its policy recorded; medium-expert: the medium and expert datasets (made where
    missing) concatenated, episode for episode."""
    runner = CliRunner()
    sac_dir = tmp_path / "sac"
    r = runner.invoke(app, [*MAKE, "hopper-expert", "--steps", "600", "--sac-dir", str(sac_dir),
                            "--expert-sac-steps", "600"])  # fmt: skip
    assert r.exit_code == 0, r.output
    medium, expert = read_sac_run(sac_dir), read_sac_run(tmp_path / "sac-expert")
    assert medium is not None and expert is not None
    assert (medium.steps, expert.steps) == (300, 600)
    assert expert.evals[: len(medium.evals)] == medium.evals  # the same run, continued
    assert expert.config.target_return == pytest.approx(3234.3)  # D4RL's expert return
    assert "sac-expert: 600 steps" in r.output
    data = load("gemkit/hopper-expert-v0")
    assert len(data) == 600
    # the recording is the expert's policy, not the medium one's
    act = load_sac_policy(tmp_path / "sac-expert")(data.observations[:50])
    assert not torch.allclose(act, load_sac_policy(sac_dir)(data.observations[:50]))

    r = runner.invoke(app, [*MAKE, "hopper-medium-expert", "--steps", "600", "--sac-dir",
                            str(sac_dir), "--expert-sac-steps", "600"])  # fmt: skip
    assert r.exit_code == 0, r.output
    both = load("gemkit/hopper-medium-expert-v0")
    med = load("gemkit/hopper-medium-v0")  # made first, from the same medium run
    assert len(both) == len(med) + len(data) == 1200
    torch.testing.assert_close(both.observations[:600], med.observations)
    torch.testing.assert_close(both.observations[600:], data.observations)
    assert read_sac_run(tmp_path / "sac-expert").steps == 600  # reused, not trained again
    from gemkit.data.locomotion import continue_to_expert

    with pytest.raises(GemkitError, match="below the medium run"):
        continue_to_expert(medium, tmp_path / "other", sac_steps=100)
    assert not (tmp_path / "other").exists()  # refused before anything was copied

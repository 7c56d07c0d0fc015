"""gemkit.experiments: a suite run's settings round-trip through JSON and plan the same cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gemkit.experiments.args import parse_args
from gemkit.experiments.plan import test_cells as plan_test_cells
from gemkit.experiments.plan import validation_cells
from gemkit.experiments.suites import SUITES, SuiteConfig


def test_suite_config_round_trips_through_json_and_plans_the_same_cells(tmp_path: Path) -> None:
    config = parse_args(["report", "--suite", "maze2d", "--tasks", "maze2d-umaze",
                               "--seeds", "0", "1", "--maze-steps", "maze2d-umaze=2000",
                               "--out", str(tmp_path)])  # fmt: skip
    assert isinstance(config, SuiteConfig) and config.suite_spec is SUITES["maze2d"]
    back = SuiteConfig.from_json(config.to_json())
    assert back == config
    assert back.task_steps == {"maze2d-umaze": 2000} and back.out == tmp_path
    knobs = {"beta": 1.0, "lam": 1.0, "lam_T": 1.0, "value": "lcb_z"}
    assert [c["key"] for c in validation_cells(back)] == [
        c["key"] for c in validation_cells(config)
    ]
    keys = [c["key"] for c in plan_test_cells(back, knobs)]
    assert keys == [c["key"] for c in plan_test_cells(config, knobs)] and len(set(keys)) == len(
        keys
    )
    # 2 seeds x (3 x 4 beta/lambda_T + 3 constant + 3 z-scored) validation cells
    assert len(validation_cells(config)) == 2 * (12 + 3 + 3)


def test_gemkit_experiment_runs_a_suite_stage(tmp_path: Path) -> None:
    """``gemkit experiment`` takes the suite scripts' flags: a report without cells says so."""
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    doc = tmp_path / "page.md"
    res = CliRunner().invoke(app, ["experiment", "report", "--suite", "maze2d", "--tasks",
                                   "maze2d-umaze", "--seeds", "0", "--out", str(tmp_path / "c"),
                                   "--runs", str(tmp_path / "r"), "--doc", str(doc),
                                   "--figures", str(tmp_path / "f")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "**No results yet**" in doc.read_text()
    res = CliRunner().invoke(app, ["experiment", "report", "--suite", "mazes2d"])
    assert res.exit_code == 2 and "invalid choice: 'mazes2d'" in res.output


def test_a_suite_trains_its_seeds_as_one_batch_of_runs(tmp_path: Path, minari_store: Path) -> None:
    """``--runs-per-task 2``: the train stage trains both seeds of a task in one process, each
    into its own run directory with its snapshots, and skips them once done."""
    import torch

    from gemkit.data import make_maze2d
    from gemkit.experiments.stages import stage_train
    from gemkit.models import load_models

    torch.set_num_threads(1)
    make_maze2d("umaze", steps=2_000, seed=0, ref_episodes=2)
    config = parse_args(["train", "--suite", "maze2d", "--tasks", "maze2d-umaze", "--seeds", "0",
                         "1", "--steps", "30", "--snapshot-every", "15", "--runs",
                         str(tmp_path / "runs"), "--runs-per-task", "2", "--train-set",
                         "n_critics=2", "hidden=16,16", "gmm_pretrain_steps=5"])  # fmt: skip
    stage_train(config)
    for seed in (0, 1):
        run = tmp_path / "runs" / f"maze2d-umaze-s{seed}"
        assert load_models(run).meta["step"] == 30
        assert load_models(run / "snapshots" / "step_00000015").meta["train_config"]["seed"] == seed
    stage_train(config)  # both done: nothing retrained
    assert load_models(tmp_path / "runs" / "maze2d-umaze-s0").meta["step"] == 30


def test_fork_suite_plans_each_stress_preset_as_one_change_from_gem(tmp_path: Path) -> None:
    """``--stress``: one test cell per preset at the largest N, whose selector config is GEM's
    at the chosen knobs with exactly the preset's change; the fork task is in the registry."""
    import gymnasium as gym

    from gemkit.config import PRESETS
    from gemkit.data import FORK_DATASET_ID
    from gemkit.envs import FORK_ENV_ID
    from gemkit.experiments import dataset_id, horizon
    from gemkit.experiments.suites import STRESS_PRESETS

    assert dataset_id("fork") == FORK_DATASET_ID
    assert horizon("fork") == gym.spec(FORK_ENV_ID).max_episode_steps
    config = parse_args(["test", "--suite", "fork", "--seeds", "0", "1", "--out", str(tmp_path)])
    assert config.tasks == ["fork"] and config.stress == list(STRESS_PRESETS)
    knobs = {"beta": 2.0, "lam": 0.3, "lam_T": 0.1, "value": "lcb"}
    cells = plan_test_cells(config, knobs)
    big = max(config.budgets)
    stress = [c for c in cells if c["series"] == "stress"]
    assert len(stress) == 2 * len(STRESS_PRESETS)
    gem = {c["train_seed"]: c for c in cells if c["series"] == "gem" and c["config"]["n"] == big}
    for c in stress:
        ref = gem[c["train_seed"]]["config"]
        changed = {k: v for k, v in c["config"].items() if ref[k] != v}
        assert changed == PRESETS[c["preset"]], c["preset"]
    assert len({c["key"] for c in cells}) == len(cells)
    # the other suites test no presets unless asked (their committed cells keep their plan)
    assert parse_args(["test", "--suite", "maze2d"]).stress == []


def test_fork_suite_end_to_end_and_cells_arrive_in_any_order(
    tmp_path: Path, minari_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork suite trains, validates, tests and reports (stress table included); evaluated
    on a backend whose results come back in reverse order, the cells are the same."""
    import attrs
    import torch

    import gemkit.backends
    from gemkit.backends import FanOutReport, SerialBackend
    from gemkit.data import make_fork
    from gemkit.experiments import read_cells
    from gemkit.experiments.stages import evaluate_cells, run_stage

    torch.set_num_threads(1)
    make_fork(800, seed=0, ref_episodes=2)
    config = parse_args(["all", "--suite", "fork", "--seeds", "0", "--steps", "20",
                         "--snapshot-every", "10", "--runs", str(tmp_path / "runs"),
                         "--out", str(tmp_path / "cells"), "--doc", str(tmp_path / "page.md"),
                         "--figures", str(tmp_path / "figs"), "--train-set", "n_critics=2",
                         "hidden=16,16", "gmm_pretrain_steps=5", "--betas", "1", "--lam-T", "0",
                         "--lam-const", "0.01", "--lam-z", "0.3", "--budgets", "0", "4",
                         "--val-n", "4", "--baseline-n", "4", "--frontier", "0", "--episodes",
                         "1", "--test-episodes", "2", "--curve-episodes", "1", "--big-episodes",
                         "1", "--stress", "raw", "no_lcb"])  # fmt: skip
    run_stage("all", config)
    page = (tmp_path / "page.md").read_text()
    assert "## Stress-test ablations (N = 4)" in page and "| fork | raw | support=raw |" in page
    assert "paper GEM" not in page  # the paper has no fork task: no empty columns
    serial = read_cells(config.out)
    assert sum(c.get("series") == "stress" for c in serial.values()) == 2

    class Reversed(SerialBackend):
        def map(self, fn: Any, items: Any, on_result: Any, shared: Any) -> FanOutReport:
            for i in reversed(range(len(items))):
                on_result(i, fn(shared, items[i]))
            return FanOutReport("reversed", 0.0, 1, ())

    monkeypatch.setattr(gemkit.backends, "make_backend", lambda *a, **k: Reversed())
    again = attrs.evolve(config, out=tmp_path / "cells2")
    assert evaluate_cells(again, validation_cells(again)) == 0
    rows = read_cells(again.out)
    assert rows and all(rows[k]["returns"] == serial[k]["returns"] for k in rows)
    # a Phase I variant's cells load their networks from their own run directory: the suite's
    # run named as the reference scores what the suite's own single-shot cells scored
    from gemkit.experiments import TEST_SEEDS
    from gemkit.experiments.variants import variant_cells

    knobs = {"beta": 1.0, "lam": 0.01, "lam_T": 0.01, "value": "lcb"}
    runs = {"density": tmp_path / "runs" / "fork-s0"}
    cells = variant_cells(again, "fork", 0, 20, runs, knobs, n=4, episodes=2)
    assert evaluate_cells(again, cells) == 0
    got = {(r["actor"], r["config"]["n"]): r for r in read_cells(again.out).values()
           if r.get("variant") == "density"}  # fmt: skip
    assert len(got) == 3
    suite_n0 = {r["actor"]: r for r in serial.values() if r.get("series") in ("gem", "baseline")
                and r["config"]["n"] == 0 and r["eval_seeds"] == list(TEST_SEEDS)}  # fmt: skip
    for actor in ("gem", "baseline"):
        assert got[(actor, 0)]["returns"] == suite_n0[actor]["returns"]


def test_suite_config_round_trips_through_toml_and_a_config_file_sets_the_flags(
    tmp_path: Path,
) -> None:
    """``SuiteConfig.to_toml`` reads back equal; ``--config FILE`` gives the settings a run's
    flags gave (flags still override); a bad file is a one-line error naming the valid keys."""
    from gemkit.errors import GemkitError

    flags = ["--suite", "maze2d", "--tasks", "maze2d-umaze", "maze2d-large", "--seeds", "0", "3",
             "--maze-steps", "maze2d-large=500000", "--budgets", "0", "64", "--stress", "raw",
             "--out", str(tmp_path / "cells"), "--backend", "serial"]  # fmt: skip
    config = parse_args(["report", *flags])
    assert SuiteConfig.from_toml(config.to_toml()) == config
    path = tmp_path / "suite.toml"
    path.write_text(config.to_toml())
    assert parse_args(["test", "--config", str(path)]) == config
    override = parse_args(["test", "--config", str(path), "--seeds", "7"])
    assert override.seeds == [7] and override.task_steps == {"maze2d-large": 500_000}
    (tmp_path / "bad.toml").write_text('sedes = [0]\n')
    with pytest.raises(GemkitError, match=r"unknown setting.*sedes.*valid: .*seeds"):
        parse_args(["test", "--config", str(tmp_path / "bad.toml")])
    (tmp_path / "broken.toml").write_text("seeds = [0,\n")
    with pytest.raises(GemkitError, match="cannot parse"):
        parse_args(["test", "--config", str(tmp_path / "broken.toml")])


def test_dataset_facts_sum_the_rewards_exactly_whatever_the_thread_count(
    fork_store: Path, tmp_path: Path
) -> None:
    """The facts a page keeps (``datasets.jsonl``) are the same on every machine: the reward
    sum is ``math.fsum`` of the rewards (a float32 torch sum changes with the thread count)."""
    import math

    import torch

    from gemkit.data import FORK_DATASET_ID, load
    from gemkit.experiments.facts import dataset_stats

    config = parse_args(["report", "--suite", "fork", "--seeds", "0", "--out", str(tmp_path)])
    threads = torch.get_num_threads()
    try:
        got = []
        for n in (1, 2):
            torch.set_num_threads(n)
            (row,) = dataset_stats(config)
            got.append(row["reward_sum"])
    finally:
        torch.set_num_threads(threads)
    rewards = load(FORK_DATASET_ID).rewards.double().numpy()
    assert got[0] == got[1] == math.fsum(rewards.tolist())
    assert row["steps"] == 3_000 and row["episodes"] > 0

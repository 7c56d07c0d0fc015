"""gemkit.experiments: a suite run's settings round-trip through JSON and plan the same cells."""

from __future__ import annotations

from pathlib import Path

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

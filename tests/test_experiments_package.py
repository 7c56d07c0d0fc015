"""gemkit.experiments: a suite run's settings round-trip through JSON and plan the same cells."""

from __future__ import annotations

from pathlib import Path

from script_fixtures import load_script

from gemkit.experiments.plan import test_cells as plan_test_cells
from gemkit.experiments.plan import validation_cells
from gemkit.experiments.suites import SUITES, SuiteConfig


def test_suite_config_round_trips_through_json_and_plans_the_same_cells(tmp_path: Path) -> None:
    mazes = load_script("reproductions/mazes.py", "repro_mazes_pkg")
    config = mazes.parse_args(["report", "--suite", "maze2d", "--tasks", "maze2d-umaze",
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

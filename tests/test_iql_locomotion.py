"""d3rlpy's IQL as the outside reference on a locomotion task (``reproductions/iql_reference.py
--task locomotion``): d3rlpy's locomotion reward scaling, the family of a run, a tiny
train -> test -> report on a tiny hopper-medium dataset."""

from __future__ import annotations

import json
import pathlib
from types import ModuleType

import pytest
from script_fixtures import load_script

d3rlpy = pytest.importorskip("d3rlpy")
pytest.importorskip("stable_baselines3")

from gemkit.experiments import outside  # noqa: E402


@pytest.fixture(scope="module")
def iqlref() -> ModuleType:
    return load_script("reproductions/iql_reference.py", "iql_reference_script")


def test_locomotion_scales_rewards_as_d3rlpys_iql_reproduction_and_mazes_do_not() -> None:
    loco = outside.iql_config("locomotion")
    scaler = loco.reward_scaler
    assert isinstance(scaler, d3rlpy.preprocessing.ReturnBasedRewardScaler)
    assert scaler.multiplier == 1000.0
    assert isinstance(loco.observation_scaler, d3rlpy.preprocessing.StandardObservationScaler)
    assert outside.iql_config("maze2d").reward_scaler is None
    assert outside.iql_config("pointmaze", weight_temp=0.0).weight_temp == 0.0


def test_a_run_knows_its_family_and_names() -> None:
    run = outside.IQLRun("hopper-medium-replay", 2, "runs/iql")
    assert (run.family, run.maze) == ("locomotion", "hopper-medium-replay")
    assert run.dir == pathlib.Path("runs/iql/hopper-medium-replay-s2")
    assert outside.IQLRun("maze2d-large", 0, "r").family == "maze2d"
    assert outside.IQLRun("umaze", 0, "r").family == "pointmaze"
    assert outside.iql_task("locomotion", "walker2d-medium") == "walker2d-medium"
    assert outside.iql_task("maze2d", "umaze") == "maze2d-umaze"
    with pytest.raises(SystemExit, match="valid: pointmaze, maze2d, locomotion"):
        outside.iql_task("antmaze", "umaze")


def test_a_task_of_another_family_is_refused_in_one_line(
    iqlref: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        iqlref.parse_args(["train", "--task", "locomotion", "--name", "umaze"])
    assert "--name umaze is not a locomotion task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        iqlref.parse_args(["train", "--task", "maze2d", "--maze", "hopper-medium"])
    args = iqlref.parse_args(["train", "--task", "locomotion", "--name", "hopper-medium"])
    assert args.maze == "hopper-medium"


def test_train_test_and_report_on_a_tiny_hopper_dataset(
    iqlref: ModuleType, minari_store: pathlib.Path, tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """100 IQL steps on a 600-step hopper-medium (a 300-step SAC), one snapshot scored alone
    and with GEM's rule over its critic (the support from a tiny gemkit run; constant lambda,
    and lambda's schedule over the task's horizon), then reported."""
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    runner = CliRunner()
    r = runner.invoke(app, ["data", "make", "hopper-medium", "--seed", "1", "--sac-steps", "300",
                            "--threads", "1", "--steps", "600", "--sac-dir",
                            str(tmp_path / "sac"), "--ref-episodes", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    gem = tmp_path / "gem" / "hopper-medium-s0"
    r = runner.invoke(app, ["train", "--dataset", "gemkit/hopper-medium-v0", "--steps", "20",
                            "--out", str(gem), "--set", "n_critics=2", "--set", "hidden=16,16",
                            "--set", "gmm_pretrain_steps=10", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    common = ["--task", "locomotion", "--name", "hopper-medium", "--runs", str(tmp_path / "iql"),
              "--steps", "100", "--snapshot-every", "50"]  # fmt: skip
    iqlref.main(["train", *common])
    run = outside.IQLRun("hopper-medium", 0, tmp_path / "iql")
    assert json.loads((run.dir / "state.json").read_text())["step"] == 100
    cells = tmp_path / "cells"
    iqlref.main(["test", *common, "--n", "4", "--value", "lcb_z", "--lam", "0.3", "--gem-runs",
                 str(tmp_path / "gem"), "--episodes", "1", "--out", str(cells)])  # fmt: skip
    import gemkit

    made: list[dict] = []
    compose = gemkit.compose

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        made.append(kw)
        return compose(*a, **kw)

    monkeypatch.setattr(gemkit, "compose", spy)
    iqlref.main(["test", *common, "--n", "4", "--value", "lcb_z", "--lam", "1", "--lam-T", "0.3",
                 "--gem-runs", str(tmp_path / "gem"), "--episodes", "1", "--out", str(cells)])
    assert [(k["lam"], k["lam_T"], k["horizon"]) for k in made] == [(1.0, 0.3, 1000)]
    # another beta is another cell (not the cached beta = 1 one) and says so in its series
    iqlref.main(["test", *common, "--n", "4", "--value", "lcb_z", "--lam", "0.3", "--beta", "2",
                 "--gem-runs", str(tmp_path / "gem"), "--episodes", "1", "--out", str(cells)])
    assert [k["beta"] for k in made] == [1.0, 2.0]
    rows = [json.loads(line) for line in (cells / outside.IQL_CELLS).read_text().splitlines()]
    assert {r["series"]: r["lam_T"] for r in rows if r["n"]} == {
        "gem-over-iql n=4 lcb_z lam=0.3": 0.3, "gem-over-iql n=4 lcb_z lam=1->0.3": 0.3,
        "gem-over-iql n=4 lcb_z beta=2 lam=0.3": 0.3}
    rows = [r for r in rows if r["series"] in ("iql", "gem-over-iql n=4 lcb_z lam=0.3")]
    assert {r["series"] for r in rows} == {"iql", "gem-over-iql n=4 lcb_z lam=0.3"}
    assert {(r["task"], r["maze"], r["step"]) for r in rows} == {("locomotion", "hopper-medium",
                                                                 100)}  # fmt: skip
    report = tmp_path / "iql_hopper-medium.json"
    iqlref.main(["report", *common, "--out", str(cells), "--report", str(report)])
    body = json.loads(report.read_text())
    assert "D4RL's locomotion references" in body["what"]
    assert body["curves"]["iql"][0]["score_mean"] == next(
        r["score_mean"] for r in rows if r["series"] == "iql"
    )

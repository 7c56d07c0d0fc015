"""reproductions/phase1_probe.py: run parsing, critic statistics of a gemkit checkpoint, outputs."""

from __future__ import annotations

import json
import pathlib
from types import ModuleType

import numpy as np
import pytest
import torch
from core_fixtures import tiny_models
from script_fixtures import load_script

from gemkit.eval.critic_stats import critic_statistics
from gemkit.models import CriticEnsemble, Models, ValueNetwork


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_script("reproductions/phase1_probe.py", "phase1_probe_script")


def test_run_labels_may_contain_equals_signs() -> None:
    from gemkit.experiments.runs import parse_labelled_run

    assert parse_labelled_run("E=5 128x128=/runs/a") == ("E=5 128x128", pathlib.Path("/runs/a"))
    with pytest.raises(Exception, match="LABEL=DIR"):
        parse_labelled_run("/runs/a")


def test_checkpoint_statistics_feed_the_critic_normalised_states_and_scaled_rewards() -> None:
    torch.manual_seed(0)
    m = tiny_models()
    m = Models(actor=m.actor, behavior=m.behavior, critic=CriticEnsemble(3, 2, 5, hidden=(16,)),
               value=ValueNetwork(3, (16,)),
               meta={"obs_mean": [5.0, -3.0, 1.0], "obs_std": [2.0, 0.5, 4.0],
                     "reward_scale": 10.0,
                     "train_config": {"alpha": 3.0, "discount": 0.9}})  # fmt: skip
    g = torch.Generator().manual_seed(1)
    batch = {
        "obs": torch.randn(64, 3, generator=g) * 3 + 2,
        "act": torch.rand(64, 2, generator=g) * 2 - 1,
        "next_obs": torch.randn(64, 3, generator=g) * 3 + 2,
        "rewards": torch.rand(64, generator=g),
        "terminals": (torch.rand(64, generator=g) < 0.2).float(),
    }
    mean, std = torch.tensor([5.0, -3.0, 1.0]), torch.tensor([2.0, 0.5, 4.0])
    with torch.no_grad():
        o, n = (batch["obs"] - mean) / std, (batch["next_obs"] - mean) / std
        want = critic_statistics(m.critic(o, batch["act"]), m.value(o), m.value(n),
                                 batch["rewards"] * 10.0, batch["terminals"], alpha=3.0,
                                 discount=0.9).row()  # fmt: skip
        raw = critic_statistics(m.critic(batch["obs"], batch["act"]), m.value(batch["obs"]),
                                m.value(batch["next_obs"]), batch["rewards"],
                                batch["terminals"], discount=0.9).row()  # fmt: skip
    from gemkit.eval.critic_stats import checkpoint_statistics

    got = checkpoint_statistics(m, batch)
    assert got == pytest.approx(want)
    assert got != pytest.approx(raw)  # the test can tell raw states from normalised ones


def test_outputs_keep_one_maze_and_draw_every_series(
    probe: ModuleType, tmp_path: pathlib.Path
) -> None:
    rows = []
    for run in ("A", "B"):
        for step in (20_000, 40_000):
            for series in ("fair baseline, N=0", "GEM anchor, N=0", "GEM, N=64"):
                rows.append({"key": f"{run}{step}{series}", "maze": "medium", "run": run,
                             "step": step, "series": series, "score_mean": step / 1e3})  # fmt: skip
    rows.append({"key": "iql", "maze": "medium", "run": "IQL", "step": 20_000,
                 "series": "own action", "score_mean": 30.0})  # fmt: skip
    rows.append({"key": "other", "maze": "large", "run": "A", "step": 20_000,
                 "series": "GEM, N=64", "score_mean": 1.0})  # fmt: skip
    rows.append({"key": "C", "maze": "medium", "run": "C", "step": 20_000,
                 "series": "GEM, N=64", "score_mean": 1.0})  # fmt: skip
    runs = [("A", tmp_path / "a"), ("B", tmp_path / "b")]
    args = type("A", (), {"maze": "medium", "out": tmp_path / "probe.json", "run": runs,
                          "iql": [("IQL", tmp_path / "iql")], "suite_csv": None})()  # fmt: skip
    probe.write_outputs(args, rows)
    data = json.loads((tmp_path / "probe.json").read_text())
    assert len(data["cells"]) == 13 and all(c["maze"] == "medium" for c in data["cells"])
    assert {c["run"] for c in data["cells"]} == {"A", "B", "IQL"}
    assert "suite_curves" not in data
    assert (tmp_path / "probe.png").stat().st_size > 10_000


def _suite_csv(path: pathlib.Path, rows: list[tuple[str, str, str, int, int, float]]) -> None:
    head = "stage,series,maze,train_seed,step,actor,episodes_per_seed,score_mean"
    lines = [head] + [f"test,{series},{maze},{seed},{step},{actor},10,{score}"
                      for series, maze, actor, seed, step, score in rows]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def test_suite_curves_average_the_curve_cells_of_one_maze_over_training_seeds(
    probe: ModuleType, tmp_path: pathlib.Path
) -> None:
    csv_path = tmp_path / "cells.csv"
    scores = {0: 10.0, 1: 20.0, 2: 45.0}
    rows = [("curve", "umaze", "gem", seed, 20_000, x) for seed, x in scores.items()]
    rows += [("curve", "umaze", "baseline", 0, 20_000, 7.0),
             ("curve", "large", "gem", 0, 20_000, 99.0),  # another maze
             ("gem", "umaze", "gem", 0, 20_000, 99.0)]  # a test cell, not a curve cell  # fmt: skip
    _suite_csv(csv_path, rows)
    got = {(r["series"], r["step"]): r for r in probe.suite_curves(csv_path, "umaze")}
    assert set(got) == {("GEM anchor, N=0", 20_000), ("fair baseline, N=0", 20_000)}
    anchor = got["GEM anchor, N=0", 20_000]
    want = np.array(list(scores.values()))
    assert anchor["score_mean"] == pytest.approx(want.mean())
    assert anchor["score_std"] == pytest.approx(want.std())
    assert anchor["train_seeds"] == 3 and anchor["episodes"] == 10
    assert got["fair baseline, N=0", 20_000]["score_mean"] == pytest.approx(7.0)
    with pytest.raises(SystemExit, match="no learning-curve cells for medium"):
        probe.suite_curves(csv_path, "medium")


def test_outputs_carry_and_draw_the_suite_curves(
    probe: ModuleType, tmp_path: pathlib.Path
) -> None:
    csv_path = tmp_path / "cells.csv"
    _suite_csv(csv_path, [("curve", "medium", a, s, st, 1.0 + s)
                          for a in ("gem", "baseline") for s in (0, 1)
                          for st in (20_000, 40_000)])  # fmt: skip
    rows = [{"key": "iql", "maze": "medium", "run": "IQL", "step": 20_000,
             "series": "own action", "score_mean": 30.0}]  # fmt: skip
    args = type("A", (), {"maze": "medium", "out": tmp_path / "probe.json", "run": [],
                          "iql": [("IQL", tmp_path / "iql")], "suite_csv": csv_path})()  # fmt: skip
    probe.write_outputs(args, rows)
    data = json.loads((tmp_path / "probe.json").read_text())
    assert len(data["suite_curves"]) == 4 and data["suite_csv"] == str(csv_path)
    assert (tmp_path / "probe.png").stat().st_size > 10_000

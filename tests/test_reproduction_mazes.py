"""The maze reproduction's analysis: knob choice, aggregation over seeds, claim verdicts."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from script_fixtures import load_script

from gemkit.experiments import aggregate, choose_knobs, claims
from gemkit.experiments.args import parse_args
from gemkit.experiments.plan import steps_for, suite_knobs, validation_cells


@pytest.fixture(scope="module")
def mazes() -> ModuleType:
    return load_script("reproductions/mazes.py", "repro_mazes")


def _row(stage: str, maze: str, seed: int, score: float, **kw: Any) -> dict[str, Any]:
    cfg = {"n": kw.pop("n", 64), "beta": kw.pop("beta", 1.0), "lam": 1.0,
           "lam_T": kw.pop("lam_T", 0.0)}  # fmt: skip
    return {"stage": stage, "task": maze, "train_seed": seed, "score_mean": score,
            "config": cfg, "violation": kw.pop("violation", 0.0), "support_z": 0.0,
            "collapse_dist": 0.0, "success_rate": 1.0, "steps_per_s": 1.0, "returns": [1.0],
            **cfg, **kw}  # fmt: skip


def test_choose_knobs_takes_the_best_mean_over_the_suite() -> None:
    rows = [
        _row("validate", "umaze", 0, 50.0, beta=1.0, lam_T=0.0),
        _row("validate", "medium", 0, 10.0, beta=1.0, lam_T=0.0),  # mean 30
        _row("validate", "umaze", 0, 40.0, beta=2.0, lam_T=0.3),
        _row("validate", "medium", 0, 30.0, beta=2.0, lam_T=0.3),  # mean 35: chosen
        _row("test", "umaze", 0, 99.0, beta=0.5, lam_T=1.0),  # test rows never choose
    ]
    knobs = choose_knobs(rows)
    assert (knobs["beta"], knobs["lam"], knobs["lam_T"]) == (2.0, 1.0, 0.3)
    assert knobs["val_score"] == pytest.approx(35.0)
    with pytest.raises(SystemExit, match="validate"):
        choose_knobs([])


def test_rank_knobs_orders_every_setting_best_first_ties_in_sorted_order() -> None:
    from gemkit.experiments import rank_knobs

    rows = [
        _row("validate", "umaze", 0, 20.0, beta=2.0, lam_T=0.0),
        _row("validate", "umaze", 0, 20.0, beta=0.5, lam_T=0.0),  # ties beta 2: sorts first
        _row("validate", "umaze", 0, 50.0, beta=1.0, lam_T=0.3),
        _row("validate", "umaze", 0, 10.0, beta=1.0, lam_T=0.3),  # mean 30
        _row("validate", "umaze", 0, float("nan"), beta=3.0, lam_T=0.0),  # no finite score
    ]
    ranked = rank_knobs(rows)
    assert [(k["beta"], k["val_score"]) for k in ranked] == [(1.0, 30.0), (0.5, 20.0),
                                                             (2.0, 20.0)]  # fmt: skip
    assert choose_knobs(rows) == ranked[0]


def test_aggregate_is_mean_and_population_std_over_training_seeds() -> None:
    rows = [_row("test", "umaze", s, x, n=n) for s, x, n in
            [(0, 10.0, 0), (1, 20.0, 0), (2, 60.0, 0), (0, 5.0, 64)]]  # fmt: skip
    out = {a["n"]: a for a in aggregate(rows, ["n"])}
    assert out[0]["score"] == pytest.approx(30.0)
    assert out[0]["score_std"] == pytest.approx(float(__import__("numpy").std([10, 20, 60])))
    assert out[0]["train_seeds"] == 3 and out[64]["train_seeds"] == 1


def test_later_half_averages_each_seeds_late_snapshots_like_the_iql_reports() -> None:
    from gemkit.experiments.protocol import later_half

    def cell(seed: int, step: int, score: float, series: str, actor: str = "gem",
             n: int = 0) -> dict[str, Any]:
        return {**_row("test", "umaze", seed, score, n=n), "step": step, "series": series,
                "actor": actor}  # fmt: skip

    rows = [cell(0, 20, 99.0, "curve"), cell(0, 60, 10.0, "curve"), cell(0, 80, 20.0, "curve"),
            cell(0, 100, 30.0, "gem"), cell(0, 100, 77.0, "curve"),  # the test cell wins
            cell(1, 60, 40.0, "curve"), cell(1, 100, 50.0, "gem"),
            cell(1, 100, 1.0, "gem", n=64), cell(1, 100, 2.0, "bary"),  # not single-shot GEM
            cell(1, 80, 5.0, "curve", actor="baseline"), cell(1, 100, 3.0, "mass")]  # fmt: skip
    out = later_half(rows, "umaze", "gem", 100)
    assert out is not None
    per_seed = [np.mean([10.0, 20.0, 30.0]), np.mean([40.0, 50.0])]  # steps > 50 only
    assert out["score"] == pytest.approx(np.mean(per_seed))
    assert out["score_std"] == pytest.approx(np.std(per_seed))
    assert out["seeds"] == [0, 1] and out["snapshots"] == [60, 80, 100]
    assert (later_half(rows, "umaze", "baseline", 100) or {}).get("score") == 5.0
    assert later_half(rows, "medium", "gem", 100) is None


def test_claim_verdicts_follow_the_numbers() -> None:
    rows = []
    for s in (0, 1):
        rows += [
            {**_row("test", "umaze", s, 40.0, n=0), "actor": "gem", "series": "gem"},
            {**_row("test", "umaze", s, 45.0, n=64, violation=0.01), "actor": "gem",
             "series": "gem"},
            {**_row("test", "umaze", s, 50.0, n=0), "actor": "baseline", "series": "baseline"},
            {**_row("test", "umaze", s, 30.0, n=64, violation=0.4), "actor": "gem",
             "series": "no_pw"},
        ]  # fmt: skip
    verdict = {c["claim"]: c["holds"] for c in claims(rows, ["umaze"], 64, 64, [0, 64])}
    assert verdict["GEM N=64 above the fair unimodal baseline (single-shot)"] is False
    assert verdict["GEM score non-decreasing in N (within one seed-std)"] is True
    assert verdict["Violation at N=64: GEM far below no_pw"] is True


def test_suite_knobs_ignore_validation_cells_of_other_budgets(
    mazes: ModuleType, tmp_path: Path
) -> None:
    """The knobs at a longer budget come from that budget's checkpoints only: cached cells of
    the same runs at a shorter one (same maze, seed and knobs) do not vote."""
    import json

    args = parse_args(["auto", "--out", str(tmp_path), "--mazes", "umaze", "--seeds", "0",
                             "--steps", "200", "--betas", "1", "2", "--lam-T", "0",
                             "--lam-const"])  # fmt: skip
    cells = validation_cells(args)
    assert {c["step"] for c in cells} == {200}
    rows = [{**c, "score_mean": 10.0 * c["config"]["beta"]} for c in cells]  # beta 2 wins
    stale = [{**c, "step": 100, "key": c["key"] + "-100", "score_mean": 100.0 / c["config"]["beta"]}
             for c in cells]  # fmt: skip
    (tmp_path / "cells-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + stale))
    assert suite_knobs(args)["beta"] == 2.0
    assert choose_knobs(rows + stale)["beta"] == 1.0  # what mixing them would choose
    per_maze = parse_args(["auto", "--out", str(tmp_path), "--maze-steps", "medium=300"])
    assert steps_for(per_maze, "medium") == 300
    assert steps_for(per_maze, "umaze") == 100_000

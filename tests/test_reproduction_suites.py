"""reproductions/mazes.py's suites: the maze cells keep their cache keys, the locomotion suite's
defaults, cells (MassScale included) and report, on fake cached cells (no training)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from script_fixtures import load_script

from gemkit.experiments import (
    MAZE2D_NAMES,
    VAL_SEEDS,
    cell_key,
    choose_knobs,
    dataset_id,
    facts,
    horizon,
    make_cell,
    page,
    plan,
    read_cells,
    reference_scores,
    tables,
)
from gemkit.experiments import report as suite_report
from gemkit.experiments.args import parse_args
from gemkit.experiments.plan import (
    planned_results,
    run_dir,
    steps_for,
    validation_cells,
)
from gemkit.experiments.plan import (
    test_cells as plan_test_cells,
)
from gemkit.experiments.suites import SUITES

ROOT = Path(__file__).resolve().parents[1]

#: A maze test cell's selector config, as the maze-only script wrote it.
CONFIG = {"proposer": "actor", "anchor": "mode", "value": "lcb_z", "support": "zscore",
          "reducer": "top1", "n": 64, "k": 1, "beta": 1.0, "lam": 0.3, "lam_T": 0.3,
          "horizon": 600, "z_min": -1.0}  # fmt: skip


@pytest.fixture(scope="module")
def suites() -> ModuleType:
    return load_script("reproductions/mazes.py", "repro_mazes")


def test_maze_cell_keys_are_the_ones_cached_before_the_suites(
    suites: ModuleType, tmp_path: Path
) -> None:
    """Keys computed by the maze-only script (commit 79a0b81) for fixed cells: every cell
    cached before the suites is still found."""
    cell = make_cell("test", "medium", 1, 300_000, "gem", CONFIG, [0], 30, series="gem")
    assert cell["key"] == "7604416c03bc0147"
    val = make_cell("validate", "umaze", 0, 100_000, "baseline", {**CONFIG, "n": 0}, [100], 10)
    assert val["key"] == "5f9f25f9f95800f7"
    # a row of the old cache names its task "maze": read back under "task", same key
    old = {k: v for k, v in cell.items() if k != "task"} | {"maze": "medium", "score_mean": 1.0}
    (tmp_path / "cells-0of1.jsonl").write_text(json.dumps(old) + "\n")
    row = read_cells(tmp_path)["7604416c03bc0147"]
    assert row["task"] == "medium" and "maze" not in row
    assert cell_key(row) == "7604416c03bc0147"
    # a MassScale factor is part of the identity
    mass = make_cell("test", "medium", 1, 300_000, "gem", CONFIG, [0], 30, mass_scale=0.5)
    assert mass["key"] != cell["key"]


def test_maze_suite_is_the_default(suites: ModuleType) -> None:
    args = parse_args(["report", "--maze-steps", "medium=300000"])
    assert args.suite == "mazes" and args.tasks == ["umaze", "medium", "large"]
    assert args.doc == ROOT / "docs" / "results.md"
    assert args.figures == ROOT / "docs" / "results"
    assert args.train_set == ["n_critics=5", "hidden=128,128"]
    assert args.budgets == [0, 1, 16, 64, 256, 1024] and args.test_episodes == 30
    assert args.mass_tasks == [] and steps_for(args, "medium") == 300_000
    assert parse_args(["report", "--mazes", "umaze"]).tasks == ["umaze"]
    assert not any(c.get("series") == "mass" for c in plan_test_cells(args, None))
    # the maze doc points to the locomotion one
    intro = "\n".join(page.intro(args))
    assert "](results-locomotion.md)" in intro


def test_locomotion_defaults_and_train_command(suites: ModuleType) -> None:
    args = parse_args(["train", "--suite", "locomotion"])
    assert args.tasks == ["hopper-medium", "hopper-medium-replay"]
    assert args.train_set == ["n_critics=5", "hidden=128,128", "reward_scale=return_range"]
    assert (args.episodes, args.test_episodes) == (5, 10)
    assert args.budgets == [0, 1, 16, 64, 256]
    assert args.mass_tasks == ["hopper-medium"] and 1.0 in args.mass_scales
    assert args.doc == ROOT / "docs" / "results-locomotion.md"
    assert args.figures == ROOT / "docs" / "results" / "locomotion"
    assert args.out == ROOT / "reproductions" / "out" / "locomotion"
    assert dataset_id("hopper-medium-replay") == "gemkit/hopper-medium-replay-v0"
    assert horizon("hopper-medium") == 1000  # the 1000-step episodes
    cmd = plan.train_command(args, "hopper-medium", 2)
    assert cmd[:8] == ["gemkit", "train", "--dataset", "gemkit/hopper-medium-v0", "--seed", "2",
                       "--out", str(args.runs / "hopper-medium-s2")]  # fmt: skip
    assert cmd[8:14] == ["--set", "n_critics=5", "--set", "hidden=128,128", "--set",
                         "reward_scale=return_range"]  # fmt: skip
    assert cmd[14:16] == ["--steps", "100000"]
    more = parse_args(["test", "--suite", "locomotion", "--tasks", "walker2d-medium",
                              "halfcheetah-medium", "--budgets", "0", "64", "1024"])  # fmt: skip
    assert more.tasks == ["walker2d-medium", "halfcheetah-medium"] and max(more.budgets) == 1024
    with pytest.raises(SystemExit):
        parse_args(["test", "--suite", "locomotion", "--tasks", "umaze"])


def _tiny(suites: ModuleType, out: Path, *extra: str) -> Any:
    return parse_args(
        ["report", "--suite", "locomotion", "--out", str(out), "--runs", str(out / "runs"),
         "--doc", str(out / "results-locomotion.md"), "--figures", str(out / "figs"),
         "--seeds", "0", "1", "--steps", "200", "--snapshot-every", "100", "--betas", "1",
         "--lam-T", "0", "--lam-const", "--lam-z", "0.3", "--frontier", "0.01", "--budgets", "0",
         "16", "--val-n", "16", "--baseline-n", "16", "--mass-scales", "0.5", "1.0", "1.5",
         *extra]
    )  # fmt: skip


def test_locomotion_cells_keep_the_protocol_and_add_mass_scale(
    suites: ModuleType, tmp_path: Path
) -> None:
    args = _tiny(suites, tmp_path)
    val = validation_cells(args)
    assert {c["task"] for c in val} == {"hopper-medium", "hopper-medium-replay"}
    assert {tuple(c["eval_seeds"]) for c in val} == {VAL_SEEDS}
    assert all(c["episodes"] == 5 and c["config"]["horizon"] == 1000 for c in val)
    knobs = {"beta": 1.0, "lam": 0.3, "lam_T": 0.3, "value": "lcb_z"}
    test = plan_test_cells(args, knobs)
    assert not set(VAL_SEEDS) & {s for c in test for s in c["eval_seeds"]}
    keys = [c["key"] for c in val + test]
    assert len(keys) == len(set(keys))
    mass = [c for c in test if c["series"] == "mass"]
    # scale 1.0 is the nominal test cells; 3 selectors x 2 factors x 2 seeds, hopper-medium only
    assert {c["task"] for c in mass} == {"hopper-medium"}
    assert {c["mass_scale"] for c in mass} == {0.5, 1.5}
    assert {(c["actor"], c["config"]["n"]) for c in mass} == {("gem", 16), ("baseline", 0),
                                                             ("baseline", 16)}  # fmt: skip
    assert len(mass) == 3 * 2 * 2
    gem = [c for c in mass if c["actor"] == "gem"]
    assert all((c["config"]["beta"], c["config"]["value"]) == (1.0, "lcb_z") for c in gem)
    # before the knobs are chosen, only the single-shot baseline's MassScale cells exist
    early = [c for c in plan_test_cells(args, None) if c["series"] == "mass"]
    assert {(c["actor"], c["config"]["n"]) for c in early} == {("baseline", 0)}


def _fake(cell: dict[str, Any], score: float) -> dict[str, Any]:
    return {
        **cell,
        "score_mean": score,
        "score_std": 0.0,
        "violation": 0.01,
        "support_z": 1.0,
        "collapse_dist": 0.1,
        "success_rate": 0.0,
        "steps_per_s": 100.0,
        "returns": [10.0 * score] * cell["episodes"],
        "mass_scale": cell.get("mass_scale"),
    }


def test_locomotion_report_on_fake_cells(
    suites: ModuleType, tmp_path: Path, minari_store: Path
) -> None:
    """The report from cached cells alone (no dataset on this machine, no checkpoint)."""
    args = _tiny(suites, tmp_path)
    val = validation_cells(args)
    rows = [_fake(c, 50.0 + 10.0 * (c["config"]["value"] == "lcb_z")) for c in val]
    knobs = choose_knobs(rows)
    assert knobs["value"] == "lcb_z"
    for c in plan_test_cells(args, knobs):
        score = 40.0 + c["config"]["n"] + 10.0 * (c["actor"] == "gem")
        score -= 20.0 * abs((c.get("mass_scale") or 1.0) - 1.0)
        rows.append(_fake(c, score))
    (tmp_path / "cells-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite_report.write_report(args)

    doc = args.doc.read_text()
    assert doc.startswith("# Results: GEM on the D4RL-recipe locomotion datasets")
    assert "| hopper-medium | 66.0 ± 0.0 |" in doc  # GEM N=16 = 40 + 16 + 10
    assert "100.08" in doc and "67.53" in doc and "101.23" in doc  # the paper, beside ours
    assert "## Robustness to body mass (MassScale)" in doc
    assert "| hopper-medium | 0.5 | 56.0 ± 0.0 | 30.0 ± 0.0 | 46.0 ± 0.0 |" in doc
    assert "| hopper-medium | 1 | 66.0 ± 0.0 | 40.0 ± 0.0 | 56.0 ± 0.0 |" in doc
    assert "not on this machine" in doc and "](results.md)" in doc
    cmd = "gemkit train --dataset gemkit/<task>-v0 --seed <seed> --out <runs>/<task>-s<seed>"
    assert cmd in doc
    figs = args.figures
    assert {p.name for p in figs.iterdir()} >= {"locomotion_cells.csv", "locomotion_mass.png",
                                                "locomotion_budget.png", "locomotion_curves.png",
                                                "locomotion_frontier.png",
                                                "locomotion_summary.json"}  # fmt: skip
    summary = json.loads((figs / "locomotion_summary.json").read_text())
    assert set(summary["per_task"]) == {"hopper-medium", "hopper-medium-replay"}
    assert summary["claims"][0]["task"] == "hopper-medium"
    mass = summary["mass"]["hopper-medium"]["GEM N=16"]
    assert [p["mass_scale"] for p in mass] == [0.5, 1.0, 1.5]
    with (figs / "locomotion_cells.csv").open() as f:
        table = list(csv.DictReader(f))
    assert {r["mass_scale"] for r in table if r["series"] == "mass"} == {"0.5", "1.5"}
    assert "task" in table[0] and "maze" not in table[0]
    assert {r["value"] for r in table if r["stage"] == "validate"} == {"lcb", "lcb_z"}


def test_a_frontier_cell_is_reported_as_the_gem_cell_when_the_knobs_pick_its_lambda(
    suites: ModuleType, tmp_path: Path
) -> None:
    """The cache keeps the series a cell was first evaluated for; the report goes by the plan.

    The maze report of session 5 lost GEM's N = 64 rows on medium and large: the knobs moved to
    a lambda the frontier had already evaluated, so those cells were cached as frontier points.
    """
    args = _tiny(suites, tmp_path)
    first = {"beta": 1.0, "lam": 0.3, "lam_T": 0.3, "value": "lcb_z"}
    rows = [_fake(c, 40.0 + c["config"]["n"] + 5.0 * (c["series"] == "frontier"))
            for c in plan_test_cells(args, first)]  # fmt: skip
    assert any(c["series"] == "frontier" and c["config"]["lam"] == 0.01 for c in rows)
    (tmp_path / "cells-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    then = {**first, "lam": 0.01, "lam_T": 0.01}  # the frontier's lambda is now the chosen one
    got = planned_results(args, then)
    gem16 = [r for r in got if r["series"] == "gem" and r["config"]["n"] == 16]
    assert len(gem16) == 2 * 2  # two tasks x two training seeds, none lost
    assert all(r["score_mean"] == 61.0 for r in gem16)  # the frontier point's own result
    assert not [r for r in got if r["series"] == "frontier" and r["config"]["lam"] == 0.01]
    cached = {r["key"] for r in rows}
    assert len(got) == sum(c["key"] in cached for c in plan_test_cells(args, then))


def test_locomotion_report_without_cells_says_so(suites: ModuleType, tmp_path: Path) -> None:
    args = _tiny(suites, tmp_path)
    suite_report.write_report(args)
    doc = args.doc.read_text()
    assert "**No results yet**" in doc and "python reproductions/locomotion.py train" in doc
    assert not args.figures.exists()


def test_locomotion_script_is_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    """reproductions/locomotion.py runs a suite stage with --suite locomotion."""
    locomotion = load_script("reproductions/locomotion.py", "repro_locomotion")
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(locomotion, "run_stage", lambda stage, cfg: seen.append((stage, cfg)))
    locomotion.main(["report", "--out", "x"])
    ((stage, cfg),) = seen
    assert stage == "report" and cfg.suite == "locomotion" and cfg.out == Path("x")


def test_adaptive_frontier_finds_the_fixed_budget_cells(suites: ModuleType, tmp_path: Path) -> None:
    """benchmarks/adaptive_frontier.py reads the reproduction's GEM-over-N test cells."""
    bench = load_script("benchmarks/adaptive_frontier.py", "bench_adaptive_frontier")
    args = parse_args(["report", "--runs", str(tmp_path), "--out", str(tmp_path),
                              "--seeds", "0", "1"])  # fmt: skip
    knobs = {"beta": 1.0, "lam": 0.3, "lam_T": 0.3, "value": "lcb_z"}
    rows = [_fake(c, 40.0 + c["config"]["n"]) for c in plan_test_cells(args, knobs)]
    (tmp_path / "cells-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mz = bench.parse_args(["report", "--runs", str(tmp_path), "--out", str(tmp_path),
                                 "--seeds", "0", "1"])  # fmt: skip
    got = bench.fixed_rows(mz, "medium", knobs)
    assert sorted({r["n"] for r in got}) == list(args.budgets)
    assert len(got) == 2 * len(args.budgets)
    assert all(r["critic_evals"] == r["n"] + 1 and r["score"] == 40.0 + r["n"] for r in got)


def test_report_states_the_training_rate_each_run_logged(
    suites: ModuleType, tmp_path: Path
) -> None:
    args = _tiny(suites, tmp_path)
    assert facts.training_rates(args) == ""  # no run on this machine: the suite's note
    budget = steps_for(args, "hopper-medium")
    # seeds 0 and 1 reached the budget; seed 2 is still training (its rate is left out)
    for seed, rates, last in ((0, [10.0, 50.0, 52.0, 54.0], budget),
                              (1, [60.0, 62.0, 64.0], budget), (2, [900.0], budget // 2)):
        run = run_dir(args, "hopper-medium", seed)
        run.mkdir(parents=True)
        lines = ["step,phase,steps_per_s", "1,pretrain,500.0"]
        lines += [f"{last - len(rates) + 1 + i},joint,{r}" for i, r in enumerate(rates)]
        (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    text = facts.training_rates(_tiny(suites, tmp_path, "--seeds", "0", "1", "2"))
    assert text.startswith("Training ran at hopper-medium 51-62 gradient steps/s per job")
    assert "hopper-medium-replay" not in text


def test_maze2d_suite_tasks_scale_and_outside_iql(suites: ModuleType, tmp_path: Path) -> None:
    """The maze2d suite: D4RL's datasets, horizons and references (no dataset needed), the
    scale named in the report, and the IQL validation table from a committed IQL report."""
    assert dataset_id("maze2d-large") == "gemkit/maze2d-large-v1"
    assert dataset_id("large") == "gemkit/pointmaze-large-v1"
    assert [horizon(t) for t in MAZE2D_NAMES] == [300, 600, 800]
    assert reference_scores("maze2d-medium") == (13.13, 277.39)
    suite = SUITES["maze2d"]
    assert "D4RL's published maze2d-v1" in suite.scale
    assert suite.paper["maze2d-large"]["IQL"] == 61.72
    cells = [{"step": s, "score_mean": x} for s, x in ((20_000, 10.0), (40_000, 30.0))]
    report = {"mean_score": {"iql": {"all": 20.0, "later_half": 30.0, "snapshots": 2}},
              "curves": {"iql": cells}}  # fmt: skip
    (tmp_path / "iql_large.json").write_text(json.dumps(report))
    args = parse_args(["report", "--suite", "maze2d", "--tasks", "maze2d-umaze",
                              "maze2d-large", "--figures", str(tmp_path)])  # fmt: skip
    base = [{"n": 0, "score": 55.0, "score_std": 1.0}]
    gem = [{"n": 64, "score": 99.0, "score_std": 2.0}]
    late = {"gem": {"score": 40.0, "score_std": 3.0}, "baseline": None}
    summary = {"per_maze": {"maze2d-large": {"baseline": base, "gem": gem},
                            "maze2d-umaze": {"baseline": base}},
               "later_half": {"maze2d-large": late}}  # fmt: skip
    lines = "\n".join(tables.outside_iql_section(args, summary))
    assert (
        "| maze2d-large | 30.0 (one seed; last snapshot 30.0), to 40,000 steps | 40.0 ± 3.0 / n/a"
        " | 55.0 ± 1.0 | 99.0 ± 2.0 | 61.7 |" in lines
    )
    assert "| maze2d-umaze | not run | n/a / n/a | 55.0 ± 1.0 | n/a | 42.1 |" in lines

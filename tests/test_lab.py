"""The selection lab's plan (gemkit.experiments.lab): the committed cells keep their keys, the
chain-length sweep adds cells only where a sampler has a chain, and the rows say which."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gemkit.errors import GemkitError
from gemkit.experiments.lab import (
    FITTED_STEPS,
    GEM_KNOBS,
    RULE_NAMES,
    RULES,
    chain_steps,
    check_provenance,
    deployment_claim,
    is_swept,
    lab_cells,
    lab_family,
    lab_page,
    lab_rows,
    proposer_dir,
    rules,
)

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "results" / "lab" / "cells" / "cells-lab.jsonl"
PLAN = {"horizon": 300, "episodes": 100, "eval_seed": 0, "family": "maze2d"}


def _committed() -> list[dict]:
    return [json.loads(line) for line in COMMITTED.read_text().splitlines() if line.strip()]


def test_the_plan_reproduces_the_committed_cells_keys() -> None:
    rows = _committed()
    for seed in sorted({r["train_seed"] for r in rows}):
        mine = {r["key"] for r in rows if r["train_seed"] == seed}
        plan = lab_cells("gemkit/maze2d-umaze-v1", list(RULES), [1, 4, 16, 64, 256],
                         train_seed=seed, **PLAN)  # fmt: skip
        chain = lab_cells("gemkit/maze2d-umaze-v1", ["idql", "ifql"], [64], train_seed=seed,
                          flow_steps=[1, 3, 30], diffusion_steps=[10, 20], **PLAN)  # fmt: skip
        assert {c["key"] for c in plan + chain} == mine


def test_the_hopper_plan_reproduces_the_committed_hopper_cells_keys() -> None:
    """The hopper-medium cells are the plan at the locomotion suite's current knobs: cells of
    earlier knobs are not left behind to mix into GEM's rows."""
    for path in sorted(COMMITTED.parent.glob("cells-lab-hopper-medium-s*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        (seed,) = {r["train_seed"] for r in rows}
        kw = {"horizon": 1000, "episodes": 10, "eval_seed": 0, "train_seed": seed}
        plan = lab_cells("gemkit/hopper-medium-v0", RULE_NAMES, [1, 4, 16, 64, 256, 1024], **kw)
        chain = lab_cells("gemkit/hopper-medium-v0", RULE_NAMES, [64], flow_steps=[1, 3, 30],
                          **kw)  # fmt: skip
        assert {r["key"] for r in rows} == {c["key"] for c in plan + chain}, path.name
        assert len(rows) == len({r["key"] for r in rows}), path.name


RETRAINED = ROOT / "docs" / "results" / "lab-retrained" / "cells"


def test_the_retrained_maze_cells_are_planned_cells_kept_apart() -> None:
    """The umaze checkpoints retrained by the suite's recipe are not bit for bit those of the
    committed maze cells, so their cells live in their own folder: each one a planned cell of the
    full frontier at the current knobs, once per key."""
    paths = sorted(RETRAINED.glob("cells-lab-s*.jsonl"))
    assert paths, f"no retrained cells in {RETRAINED}"
    for path in paths:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        (seed,) = {r["train_seed"] for r in rows}
        plan = lab_cells("gemkit/maze2d-umaze-v1", list(RULES), [1, 4, 16, 64, 256, 1024],
                         train_seed=seed, flow_steps=[1, 3, 30], diffusion_steps=[10, 20],
                         **PLAN)  # fmt: skip
        assert {r["key"] for r in rows} <= {c["key"] for c in plan}, path.name
        assert len(rows) == len({r["key"] for r in rows}), path.name
        assert {r["checkpoint"] for r in rows} == {f"maze2d-umaze-s{seed}"}, path.name
        check_provenance(rows)  # where cells record their weights' hash: one training per seed


def test_the_chain_sweep_adds_cells_only_to_samplers_with_a_chain() -> None:
    base = lab_cells("d", list(RULES), [4, 64], train_seed=0, **PLAN)
    flow_steps = [1, 3, FITTED_STEPS["flow"]]
    swept = lab_cells("d", list(RULES), [4, 64], train_seed=0, chain_n=64,
                      flow_steps=flow_steps, diffusion_steps=[10], **PLAN)  # fmt: skip
    extra = [c for c in swept if c["key"] not in {b["key"] for b in base}]
    by_rule = {(c["actor"], c["config"]["chain_steps"]) for c in extra}
    flow = {r for r, k in RULES.items() if k.get("proposer") == "flow"}
    diffusion = {r for r, k in RULES.items() if k.get("proposer") == "diffusion"}
    assert by_rule == {(r, k) for r in flow for k in (1, 3)} | {(r, 10) for r in diffusion}
    assert all(c["config"]["n"] == 64 for c in extra)
    assert len(swept) == len(base) + len(extra)  # every base cell is still planned


def test_proposer_dirs_and_chain_labels(tmp_path: Path) -> None:
    assert proposer_dir(tmp_path, "flow", 3) == tmp_path / "flow"  # chosen at sampling time
    assert proposer_dir(tmp_path, "diffusion", None) == tmp_path / "diffusion"
    assert proposer_dir(tmp_path, "diffusion", FITTED_STEPS["diffusion"]) == tmp_path / "diffusion"
    assert proposer_dir(tmp_path, "diffusion", 20) == tmp_path / "diffusion-T20"
    assert chain_steps({"proposer": "actor", "chain_steps": None}) is None
    assert chain_steps({"proposer": "flow", "chain_steps": None}) == FITTED_STEPS["flow"]
    assert chain_steps({"proposer": "flow", "chain_steps": 3}) == 3


def test_rows_group_by_rule_n_and_chain() -> None:
    plan = lab_cells("d", ["ifql", "gem"], [64], train_seed=0, flow_steps=[3], **PLAN)
    measured = {"success_rate": 1.0, "critic_evals": 64.0, "steps_per_s": 100.0}
    cells = [c | measured | {"score_mean": 10.0 * i} for i, c in enumerate(plan)]
    rows = {(r["rule"], r["chain_steps"]): r for r in lab_rows(cells)}
    assert set(rows) == {("ifql", FITTED_STEPS["flow"]), ("ifql", 3), ("gem", None)}
    assert [is_swept(rows[k]) for k in sorted(rows, key=str)] == [False, False, True]


def test_the_deployment_claim_compares_gem_with_the_best_other_rule() -> None:
    def row(rule: str, n: int, score: float, std: float, speed: float) -> dict:
        return {"rule": rule, "n": n, "chain_steps": None, "score": score, "score_std": std,
                "env_steps_per_s": speed}  # fmt: skip

    flat = [row("gem", 64, 120.0, 1.0, 1000.0), row("emaq", 16, 124.0, 4.5, 2000.0),
            row("idql", 64, 90.0, 0.5, 100.0)]  # fmt: skip
    claim, measured, verdict = deployment_claim(flat)  # type: ignore[misc]
    assert "emaq N=16" in claim and "0.50x" in measured
    assert verdict == "holds on score, does not hold on time"
    flat[1] = row("emaq", 16, 124.0, 2.0, 150.0)  # beyond both stds, slower than a fifth
    assert deployment_claim(flat)[2] == "does not hold on score, holds on time"  # type: ignore[index]
    assert deployment_claim([row("idql", 64, 1.0, 0.0, 1.0)]) is None


def test_a_cell_timed_on_a_shared_core_keeps_its_score_not_its_speed() -> None:
    plan = lab_cells("gemkit/maze2d-umaze-v1", ["gem"], [1], train_seed=0, **PLAN)
    plan += lab_cells("gemkit/maze2d-umaze-v1", ["gem"], [1], train_seed=1, **PLAN)
    measured = {"success_rate": 1.0, "critic_evals": 2.0, "steps_per_s": 100.0}
    cells = [c | measured | {"score_mean": 10.0 + i, "checkpoint": f"s{i}"}
             for i, c in enumerate(plan)]  # fmt: skip
    (row,) = lab_rows(cells)
    assert row["env_steps_per_s"] == 100.0
    cells[0]["timing_valid"] = False  # one seed's speed is dropped, the other's stands
    (row,) = lab_rows(cells)
    assert row["score"] == 10.5 and row["env_steps_per_s"] == 100.0
    cells[1]["timing_valid"] = False
    (row,) = lab_rows(cells)
    assert row["score"] == 10.5 and math.isnan(row["env_steps_per_s"])
    page = lab_page(cells, [row], ["gem"])
    assert "| n/a |" in page and "gem N=1: those cells were timed on a core shared" in page


def test_gem_runs_at_each_suites_committed_knobs() -> None:
    for family, knobs in GEM_KNOBS.items():
        summary = ROOT / "docs" / "results" / family / f"{family}_summary.json"
        chosen = json.loads(summary.read_text())["knobs"]
        assert knobs == {k: chosen[k] for k in knobs}, family


def test_each_dataset_takes_its_suites_gem_knobs_and_the_presets_stay() -> None:
    assert lab_family("gemkit/maze2d-umaze-v1") == "maze2d"
    assert lab_family("gemkit/hopper-medium-v0") == "locomotion"
    with pytest.raises(GemkitError, match="valid: gemkit/maze2d-umaze-v"):
        lab_family("gemkit/fork-v0")
    with pytest.raises(GemkitError, match="valid: maze2d, locomotion"):
        rules("fork")
    plan = {k: v for k, v in PLAN.items() if k != "family"}
    maze = lab_cells("gemkit/maze2d-umaze-v1", list(RULE_NAMES), [64], train_seed=0, **plan)
    loco = lab_cells("gemkit/hopper-medium-v0", list(RULE_NAMES), [64], train_seed=0, **plan)
    for m, h in zip(maze, loco, strict=True):
        gem_row = m["actor"] in ("gem", "gem_rule_on_diffusion")
        differs = {k for k in m["config"] if m["config"][k] != h["config"][k]}
        assert differs == ({"value", "beta", "lam_T"} if gem_row else set()), m["actor"]
        if gem_row:
            assert {k: h["config"][k] for k in GEM_KNOBS["locomotion"]} == GEM_KNOBS["locomotion"]
    with pytest.raises(GemkitError, match="unknown lab rule 'nope'; valid: gem, "):
        lab_cells("d", ["nope"], [64], train_seed=0, **PLAN)


def test_two_datasets_make_two_sections_and_keep_their_rows_apart() -> None:
    plan = {k: v for k, v in PLAN.items() if k != "family"}
    cells = []
    for i, d in enumerate(["gemkit/maze2d-umaze-v1", "gemkit/hopper-medium-v0"]):
        for c in lab_cells(d, ["gem", "emaq"], [64], train_seed=0, **plan):
            goal = 1.0 if "maze" in d else float("nan")
            cells.append(c | {"success_rate": goal, "critic_evals": 64.0, "steps_per_s": 10.0,
                              "score_mean": 10.0 * i + (c["actor"] == "gem"),
                              "checkpoint": f"{d}-s0", "cpu": "x"})  # fmt: skip
    cells[-1]["checkpoint_sha"] = "0123456789abcdef" * 4  # one fingerprinted cell: its checkpoint
    flat = lab_rows(cells)
    assert [(f["dataset"], f["rule"], f["score"]) for f in flat] == [
        ("gemkit/hopper-medium-v0", "emaq", 10.0), ("gemkit/hopper-medium-v0", "gem", 11.0),
        ("gemkit/maze2d-umaze-v1", "emaq", 0.0), ("gemkit/maze2d-umaze-v1", "gem", 1.0)]
    page = lab_page(cells, flat, ["gem", "emaq"])
    maze, hopper = page.index("## maze2d-umaze"), page.index("## hopper-medium")
    assert maze < hopper and "results/lab/lab_frontier_hopper-medium.png" in page  # paper's first
    assert "reached the goal" in page[maze:hopper] and "reached the goal" not in page[hopper:]
    knobs = {f: ", ".join(f"{k}={v}" for k, v in GEM_KNOBS[f].items()) for f in GEM_KNOBS}
    assert knobs["locomotion"] in page[hopper:] and knobs["locomotion"] not in page[:hopper]
    assert knobs["maze2d"] in page[maze:hopper]
    assert "`gemkit/hopper-medium-v0-s0` (weights sha256 0123456789ab)" in page[hopper:]
    assert "`gemkit/maze2d-umaze-v1-s0` on" in page[maze:hopper]  # unrecorded: no fingerprint


def test_the_script_refuses_a_dataset_it_has_no_knobs_for_in_one_line(tmp_path: Path) -> None:
    from script_fixtures import load_script

    lab = load_script("reproductions/selection_lab.py", "selection_lab")
    with pytest.raises(SystemExit, match=r"^error: the lab runs on the Maze2D and locomotion"):
        lab.main(["eval", "--dataset", "gemkit/fork-v0", "--checkpoint", str(tmp_path),
                  "--out", str(tmp_path / "cells")])  # fmt: skip


def _stamped(seed: int, sha: str | None, **tags: object) -> dict:
    cell = lab_cells("gemkit/maze2d-umaze-v1", ["gem"], [64], horizon=300, train_seed=seed,
                     episodes=100)[0]  # fmt: skip
    return {**cell, **({} if sha is None else {"checkpoint_sha": sha}), **tags}


def test_cells_of_one_seed_must_come_from_one_checkpoint() -> None:
    check_provenance([_stamped(0, "a" * 64), _stamped(0, "a" * 64), _stamped(1, "b" * 64)])
    check_provenance([_stamped(0, None), _stamped(0, "a" * 64)])  # older cells: unchecked
    with pytest.raises(GemkitError, match=r"train_seed=0 come from two trainings "
                                          r"\(checkpoint_sha aaaaaaaaaaaa and bbbbbbbbbbbb\)"):
        check_provenance([_stamped(0, "a" * 64), _stamped(1, "c" * 64), _stamped(0, "b" * 64)])
    # a proposer is one network per fitted directory: T = 10 and T = 20 are two networks
    fits = [_stamped(0, "a" * 64, proposer_fit=f, proposer_sha=f) for f in ("flow", "diffusion")]
    check_provenance(fits)
    with pytest.raises(GemkitError, match=r"proposer_fit=flow come from two trainings"):
        check_provenance([*fits, _stamped(0, "a" * 64, proposer_fit="flow", proposer_sha="x")])


def test_weights_digest_is_the_manifests_hash_of_the_weights(tmp_path: Path) -> None:
    import hashlib

    from core_fixtures import tiny_models

    from gemkit.errors import CheckpointError
    from gemkit.models import save_models, weights_digest

    d = save_models(tmp_path / "ck", tiny_models())
    assert weights_digest(d) == hashlib.sha256((d / "models.safetensors").read_bytes()).hexdigest()
    assert weights_digest(save_models(tmp_path / "other", tiny_models(seed=1))) != weights_digest(d)
    with pytest.raises(CheckpointError, match=r"is not a readable gemkit manifest"):
        weights_digest(tmp_path)


def test_the_eval_stage_refuses_an_out_holding_another_checkpoints_cells(tmp_path: Path) -> None:
    from core_fixtures import tiny_models
    from script_fixtures import load_script

    from gemkit.models import save_models

    lab = load_script("reproductions/selection_lab.py", "selection_lab")
    models = tiny_models()
    models.meta["train_config"] = {"seed": 0}
    ckpt = save_models(tmp_path / "maze2d-umaze-s0", models)
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "cells-lab.jsonl").write_text(json.dumps(_stamped(0, "f" * 64)) + "\n")
    with pytest.raises(SystemExit, match=r"^error: cells of task=gemkit/maze2d-umaze-v1 "
                                         r"train_seed=0 come from two trainings"):  # fmt: skip
        lab.main(["eval", "--checkpoint", str(ckpt), "--out", str(tmp_path / "cells"),
                  "--rules", "gem", "--ns", "1", "64", "--episodes", "100"])  # fmt: skip
    # nothing was evaluated: the store holds the one cell it held
    assert len((tmp_path / "cells" / "cells-lab.jsonl").read_text().splitlines()) == 1

"""``gemkit quickstart | eval | sweep | diagnose nll-gap | profile`` through typer's CliRunner.

Tiny budgets (a 3,000-step fork dataset, 16-wide networks, a few episodes): each test asserts on
the files and numbers the command writes, not only on its exit code.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib

import pytest
import torch
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit.experiments.cells import read_cells

FORK_ID = "gemkit/fork-v0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(fork_store: pathlib.Path) -> pathlib.Path:
    """The shared tiny fork store (``fork_store`` in ``conftest.py``)."""
    return fork_store


@pytest.fixture(scope="module")
def checkpoint(store: pathlib.Path, tiny_checkpoint: pathlib.Path) -> pathlib.Path:
    """The tiny Phase I checkpoint (``tiny_checkpoint`` in ``conftest.py``)."""
    return tiny_checkpoint


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def _csv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _is_png(path: pathlib.Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_quickstart_fast_writes_table_png_and_same_critic_baseline(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    out = tmp_path / "qs"
    code, text = _run("quickstart", "--fast", "--out", str(out), "--episodes", "3")
    assert code == 0, text
    assert "reused" in text  # the store already had gemkit/fork-v0
    for name in ("results.csv", "results.json", "quickstart.png"):
        assert str(out / name) in text.replace("\n", "")
    assert _is_png(out / "quickstart.png")
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"] == {**res["dataset"], "id": FORK_ID, "made": False, "transitions": 3000}
    head = res["headline"]
    assert [int(r["n"]) for r in head] == [16, 0, 0, 16]
    assert [r["actor"].split()[0] for r in head] == ["GEM", "GEM", "unimodal", "unimodal"]
    for r in head:
        assert 0.0 <= r["score_mean"] <= 100.0
        assert r["episodes"] == 3
        # on the fork task the return is the success (0 or 1), so score = 100 * success rate
        assert r["score_mean"] == pytest.approx(100.0 * r["success_rate"])
    budget = {(r["actor"].split()[0], int(r["n"])) for r in res["budget"]}
    assert budget == {("GEM", 0), ("GEM", 16), ("unimodal", 0), ("unimodal", 16)}
    rows = _csv(out / "results.csv")
    assert [r["table"] for r in rows] == ["headline"] * 4 + ["budget"] * 4
    assert sum(p["steps"] for p in res["paths"]["unimodal single-shot"]) > 0
    # the baseline shares the GEM critic and behavior GMM bit for bit; only the actor differs
    gem, uni = (
        load_file(str(out / "gem/models.safetensors")),
        load_file(str(out / "unimodal/models.safetensors")),
    )
    shared = [k for k in gem if k.startswith(("critic.", "behavior."))]
    assert shared and all(torch.equal(gem[k], uni[k]) for k in shared)
    assert uni["actor.logits_head.weight"].shape[0] == 1
    assert gem["actor.logits_head.weight"].shape[0] == 3

    # a second run in the same folder reuses what the first finished, and says so
    code, text = _run("quickstart", "--fast", "--out", str(out), "--episodes", "3")
    assert code == 0, text
    assert "Phase I reused from a previous run (step 300)" in text
    assert "results reused from a previous run" in text
    assert json.loads((out / "results.json").read_text())["headline"] == head
    # at 80 columns: the whole table and its key fit, the columns say what they hold
    res80 = CliRunner().invoke(app, ["quickstart", "--fast", "--out", str(out), "--episodes", "3"],
                               env={"COLUMNS": "80"}, terminal_width=80)  # fmt: skip
    assert res80.exit_code == 0, res80.output
    lines = res80.output.splitlines()
    table = [ln for ln in lines if ln.startswith(("┃", "│", "┏", "┡", "└"))]
    assert table and all(len(ln) <= 80 for ln in table), "\n".join(table)
    assert "selector" in res80.output and "SupZ: chosen action" in res80.output
    key = lines[lines.index(table[-1]) + 1 : lines.index(table[-1]) + 8]
    assert key[0].startswith("selector:") and all(len(ln) <= 80 for ln in key), key
    assert "…" not in "".join(table)  # no heading or cell cut short
    assert "unimodal 0.0s" not in res80.output
    # another evaluation budget: the checkpoint is reused, the evaluation runs again
    code, text = _run("quickstart", "--fast", "--out", str(out), "--episodes", "2")
    assert code == 0, text
    assert "Phase I reused" in text and "results computed" in text
    assert json.loads((out / "results.json").read_text())["headline"][0]["episodes"] == 2
    # other training settings: one line naming them; --overwrite trains afresh
    code, text = _run("quickstart", "--fast", "--out", str(out), "--seed", "1")
    assert code == 2 and "seed differ" in text and "--overwrite" in text
    assert len(text.strip().splitlines()) == 1
    code, text = _run("quickstart", "--fast", "--out", str(out), "--seed", "1", "--overwrite")
    assert code == 0, text
    assert "reused" not in text.replace("(reused,", "")  # the dataset line may say reused
    assert (
        load_file(str(out / "gem/models.safetensors"))["critic.layers.0.weight"]
        .ne(gem["critic.layers.0.weight"])
        .any()
    )


def test_quickstart_resumes_an_interrupted_training(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from gemkit.eval.quickstart import QuickstartConfig, run_quickstart
    from gemkit.train import TrainingInterrupted

    torch.set_num_threads(1)
    cfg = QuickstartConfig.fast(steps=40, n=0, budgets=(0,), episodes=1, paths=1)

    def ctrl_c_at_20(stage: str, done: int, total: int) -> None:
        if stage == "train" and done == 20:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        run_quickstart(tmp_path, cfg, progress=ctrl_c_at_20)
    assert run_quickstart(tmp_path, cfg).status == {
        "train": "resumed from step 20", "results": "computed"
    }  # fmt: skip
    assert run_quickstart(tmp_path, cfg).status == {
        "train": "reused from a previous run (step 40)", "results": "reused from a previous run"
    }  # fmt: skip


def test_eval_reports_mean_std_over_seeds_and_matches_evaluate(
    store: pathlib.Path, checkpoint: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    import gemkit
    from gemkit.eval.runs import eval_seed

    torch.set_num_threads(1)
    out = tmp_path / "ev"
    code, text = _run("eval", "--checkpoint", str(checkpoint), "--n", "0,4", "--episodes", "3",
                      "--seeds", "0,1", "--lam", "0.7", "--out", str(out))  # fmt: skip
    assert code == 0, text
    rows = _csv(out / "eval.csv")
    assert [int(r["n"]) for r in rows] == [0, 4]
    for r in rows:
        assert r["seeds"] == "0 1" and r["episodes"] == "3" and float(r["lam"]) == 0.7
        assert 0.0 <= float(r["violation"]) <= 1.0 and float(r["steps_per_s"]) > 0
        assert int(r["horizon"]) == 100  # the fork env's time limit
    assert float(rows[0]["support_z"]) == 0.0  # one candidate: its z is 0
    assert float(rows[0]["collapse_dist"]) >= 0.0
    # mean and std over seeds agree with direct evaluate() calls
    per_seed = []
    for s in (0, 1):
        sel = gemkit.compose(models=checkpoint, n=4, lam=0.7, horizon=100, seed=eval_seed(s))
        r = gemkit.evaluate(sel, FORK_ID, episodes=3, seed=eval_seed(s))
        assert r.score_mean is not None
        per_seed.append(r.score_mean)
    assert float(rows[1]["score_mean"]) == pytest.approx(sum(per_seed) / 2)
    assert float(rows[1]["score_std"]) == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2)
    data = json.loads((out / "eval.json").read_text())
    assert data["target"] == FORK_ID and len(data["rows"]) == 2


def test_eval_bad_inputs_are_one_line_errors(store: pathlib.Path, checkpoint: pathlib.Path) -> None:
    code, text = _run("eval", "--checkpoint", str(checkpoint), "--n", "4,x")
    assert code == 2 and "--n" in text and "Traceback" not in text
    code, text = _run("eval", "--checkpoint", str(checkpoint), "--mass-scale", "1,nan")
    assert code == 2 and "finite" in text
    code, text = _run("sweep", "--checkpoint", str(checkpoint), "--out", "x", "--preset", "gme")
    assert code == 2 and "gem" in text


def test_sweep_is_resumable_and_writes_tables_and_pngs(
    store: pathlib.Path, checkpoint: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from gemkit.eval.sweep import SweepGrid

    torch.set_num_threads(1)
    out = tmp_path / "sw"
    args = ["sweep", "--checkpoint", str(checkpoint), "--out", str(out), "--episodes", "2",
            "--preset", "gem,no_pw,single_shot", "--support", "zscore,raw",
            "--lam", "0.5,1", "--lam-T", "const,0.1"]  # fmt: skip
    code, text = _run(*args, "--n", "0,4")
    assert code == 0, text
    grid = SweepGrid(presets=("gem", "no_pw", "single_shot"), n=(0, 4), lam=(0.5, 1.0),
                     lam_T=(None, 0.1), support=("zscore", "raw"))  # fmt: skip
    n_cells = len(grid.cells(100))
    store = out / "cells-0of1.jsonl"
    runs = store.read_text()
    summary = _csv(out / "sweep.csv")
    assert len(read_cells(out)) == len(runs.splitlines()) == n_cells == len(summary)
    assert {c["stage"] for c in read_cells(out).values()} == {"sweep"}
    assert f"{n_cells} evaluation(s) run, 0 resumed" in text
    # no_pw keeps lambda = 0 whatever the lam axis says
    assert {float(r["lam"]) for r in summary if r["preset"] == "no_pw"} == {0.0}
    for name in ("budget.png", "ablations.png", "normalization.png", "lambda_frontier.png"):
        assert _is_png(out / name), name
    abl = {r["preset"]: r for r in _csv(out / "ablations.csv")}
    assert set(abl) == {"gem", "no_pw", "single_shot", "raw"}  # raw = the support axis
    assert float(abl["gem"]["delta_score"]) == 0.0
    assert float(abl["no_pw"]["delta_score"]) == pytest.approx(
        float(abl["no_pw"]["score_mean"]) - float(abl["gem"]["score_mean"])
    )
    front = _csv(out / "lambda_frontier.csv")
    assert len(front) >= 4  # lam in {0.5, 1} x lam_T in {const, 0.1}, plus no_pw's lam = 0
    # rerun: nothing is evaluated again
    code, text = _run(*args, "--n", "0,4")
    assert code == 0, text
    assert f"0 evaluation(s) run, {n_cells} resumed" in text
    assert store.read_text() == runs
    # a wider grid runs only the new cells
    code, text = _run(*args, "--n", "0,4,8")
    assert code == 0, text
    wider = SweepGrid(presets=grid.presets, n=(0, 4, 8), lam=grid.lam, lam_T=grid.lam_T,
                      support=grid.support)  # fmt: skip
    n_new = len(wider.cells(100)) - n_cells
    assert n_new > 0
    assert f"{n_new} evaluation(s) run, {n_cells} resumed" in text
    assert len(read_cells(out)) == n_cells + n_new


def test_diagnose_nll_gap_mean_std_over_seeds(store: pathlib.Path, tmp_path: pathlib.Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "nll"
    code, text = _run("diagnose", "nll-gap", "--dataset", FORK_ID, "--k", "3", "--seeds", "2",
                      "--steps", "40", "--hidden", "16,16", "--batch-size", "64",
                      "--threads", "1", "--out", str(out))  # fmt: skip
    assert code == 0, text
    res = json.loads((out / "nll_gap.json").read_text())
    assert res["k"] == 3 and res["seeds"] == "0 1" and len(res["per_seed"]) == 2
    gaps = [g["gap"] for g in res["per_seed"]]
    assert res["gap_mean"] == pytest.approx(sum(gaps) / 2)
    assert res["gap_std"] == pytest.approx(abs(gaps[0] - gaps[1]) / 2)
    assert res["gap_mean"] == pytest.approx(res["nll_top1_mean"] - res["nll_gmm_mean"])
    assert gaps[0] != gaps[1]  # two seeds, two different fits
    assert all(g["transitions"] == 3000 for g in res["per_seed"])
    assert f"{res['gap_mean']:.4f}" in text


def test_diagnose_nll_gap_from_checkpoint(store: pathlib.Path, checkpoint: pathlib.Path) -> None:
    code, text = _run("diagnose", "nll-gap", "--dataset", FORK_ID, "--checkpoint", str(checkpoint))
    assert code == 0, text
    assert "K=3" in text and "behavior GMM of" in text


def test_profile_cpu_table_and_csv(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "prof"
    code, text = _run("profile", "--n", "1,32", "--T", "2,8", "--device", "cpu", "--hidden",
                      "16,16", "--critics", "2", "--repeats", "2", "--threads", "1",
                      "--out", str(out))  # fmt: skip
    assert code == 0, text
    rows = _csv(out / "profile.csv")
    assert [(r["method"], int(r["value"])) for r in rows] == [
        ("gem", 1), ("gem", 32), ("ddpm", 2), ("ddpm", 8)
    ]  # fmt: skip
    for r in rows:
        assert r["device"] == "cpu"
        assert float(r["latency_ms"]) > 0
        assert float(r["latency_p90_ms"]) >= float(r["latency_ms"])
        assert float(r["peak_mb"]) > float(r["weights_mb"]) > 0
    gem1, gem32 = float(rows[0]["peak_mb"]), float(rows[1]["peak_mb"])
    assert gem32 > gem1  # 33 candidates hold more activations than 2


def test_profile_rejects_cuda_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, text = _run("profile", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in text


def test_eval_mass_scale_on_pointmaze(
    minari_store: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    """--mass-scale runs one row per factor in a MuJoCo env and plots them."""
    from gemkit.data import load, make_pointmaze
    from gemkit.train import TrainConfig, train

    torch.set_num_threads(1)
    ds = make_pointmaze("umaze", steps=600, seed=0, ref_episodes=1)
    ck = tmp_path / "ck"
    cfg = TrainConfig(hidden=(16, 16), n_critics=2, n_components=2, batch_size=32,
                      gmm_pretrain_steps=5)  # fmt: skip
    train(load(ds), cfg, ck, 10, save_every=10, log_every=10, tensorboard=False)
    out = tmp_path / "ms"
    code, text = _run("eval", "--checkpoint", str(ck), "--n", "0,4", "--episodes", "1",
                      "--mass-scale", "0.5,1.5", "--out", str(out))  # fmt: skip
    assert code == 0, text
    rows = _csv(out / "eval.csv")
    assert [(int(r["n"]), float(r["mass_scale"])) for r in rows] == [
        (0, 0.5), (0, 1.5), (4, 0.5), (4, 1.5)
    ]  # fmt: skip
    assert all(math.isfinite(float(r["score_mean"])) for r in rows)
    assert _is_png(out / "mass_scale.png")

"""``gemkit train`` through typer's CliRunner on a tiny local fork dataset."""

from __future__ import annotations

import csv
import json
import math
import pathlib

import pytest
import torch
from gemkit.cli.main import app
from safetensors.torch import load_file
from typer.testing import CliRunner

from gemkit.models import load_models
from gemkit.train.checkpoint import STATE_FILE

FORK_ID = "gemkit/fork-v0"
TINY = ["--set", "hidden=16,16", "--set", "n_critics=2", "--set", "n_components=2",
        "--set", "batch_size=32", "--set", "gmm_pretrain_steps=3"]  # fmt: skip


@pytest.fixture(scope="module")
def store(fork_store: pathlib.Path) -> pathlib.Path:
    """The shared tiny fork store (``fork_store`` in ``conftest.py``)."""
    return fork_store


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_train_cli_writes_a_checkpoint_compose_can_load(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    code, text = _run(
        "train", "--dataset", FORK_ID, "--steps", "12", "--out", str(out), "--save-every", "5",
        "--log-every", "4", "--seed", "3", "--quiet", *TINY,
    )  # fmt: skip
    assert code == 0, text
    assert "step 12" in text
    models = load_models(out)
    assert models.meta["dataset_id"] == FORK_ID
    assert models.meta["train_config"]["seed"] == 3
    assert models.meta["train_config"]["hidden"] == [16, 16]
    with (out / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [4, 8, 12]
    code, text = _run("compose", "--checkpoint", str(out))
    assert code == 0, text


def test_train_cli_config_file_and_resume(store: pathlib.Path, tmp_path: pathlib.Path) -> None:
    torch.set_num_threads(1)
    cfg = tmp_path / "c.toml"
    # pretraining 1 step: the 4-step run resumed to 10 pretrains like the 10-step run
    cfg.write_text("hidden = [16, 16]\nn_critics = 2\nn_components = 2\nbatch_size = 32\n"
                   "gmm_pretrain_steps = 1\n")  # fmt: skip
    full, part = tmp_path / "full", tmp_path / "part"
    common = ["--dataset", FORK_ID, "--config", str(cfg), "--save-every", "4", "--quiet"]
    assert _run("train", "--steps", "10", "--out", str(full), *common)[0] == 0
    assert _run("train", "--steps", "4", "--out", str(part), *common)[0] == 0
    code, text = _run("train", "--steps", "10", "--resume", str(part))  # without --quiet
    assert code == 0, text
    assert "resuming from step 4 to step 10" in text
    a, b = load_file(str(full / STATE_FILE)), load_file(str(part / STATE_FILE))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((part / "config.json").read_text())["batch_size"] == 32
    code, text = _run("train", "--steps", "2", "--out", str(full), *common)
    assert code == 2 and "already holds" in text
    assert len(text.strip().splitlines()) == 1  # the error alone: no plan, no empty bar
    assert _run("train", "--steps", "2", "--out", str(full), "--overwrite", *common)[0] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--dataset", "nope/none-v0", "--steps", "1", "--out", "X"], "nope/none-v0"),
        (["--dataset", FORK_ID, "--steps", "1", "--out", "X", "--set", "alpah=1"], "alpha"),
        (["--dataset", FORK_ID, "--steps", "1"], "--out"),
        (["--steps", "1", "--resume", "NOWHERE"], "does not exist"),
        (["--steps", "1", "--out", "X"], "give --dataset ID"),
    ],
)
def test_train_cli_errors_are_one_line(
    store: pathlib.Path, tmp_path: pathlib.Path, args: list[str], match: str
) -> None:
    args = [str(tmp_path / a) if a in ("X", "NOWHERE") else a for a in args]
    code, text = _run("train", *args)
    assert code == 2, text
    assert match in text
    assert "Traceback" not in text
    assert "does not record" not in text
    assert len(text.strip().splitlines()) == 1


def _metrics(out: pathlib.Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


SMALL_NETS = ["--set", "hidden=16,16", "--set", "n_critics=2", "--set", "n_components=2",
              "--set", "batch_size=32"]  # fmt: skip


def test_short_run_with_default_profile_trains_every_network(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """--steps below gmm_pretrain_steps (10,000) still updates critic, value and actor."""
    out = tmp_path / "short"
    code, text = _run("train", "--dataset", FORK_ID, "--steps", "40", "--out", str(out),
                      "--log-every", "10", "--threads", "1", "--quiet", *SMALL_NETS)  # fmt: skip
    assert code == 0, text
    # the plan, printed before training
    assert "10 behavior-only pretraining step(s) (gmm_pretrain_steps 10,000, capped at 25%" in text
    assert "then 30 joint step(s)" in text
    assert "critic ensemble E=2" in text and "same-critic baseline actor K=1" in text
    assert "1 torch thread(s), compile off" in text and "profile paper" in text
    rows = _metrics(out)
    assert [r["phase"] for r in rows] == ["pretrain", "joint", "joint", "joint"]
    for r in rows[1:]:
        for loss in ("loss_critic", "loss_value", "loss_actor", "loss_baseline"):
            assert math.isfinite(float(r[loss])), (r["step"], loss)
    models = load_models(out)
    assert models.meta["pretrain_steps"] == 10
    assert models.meta["train_config"]["gmm_pretrain_steps"] == 10_000  # the config as given


def test_profiles_small_and_paper(store: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from gemkit.eval.quickstart import QuickstartConfig
    from gemkit.train import ConfigError, TrainConfig

    assert TrainConfig.profile("paper") == TrainConfig()
    small = TrainConfig.profile("small")
    assert (small.hidden, small.n_critics, small.gmm_pretrain_steps) == ((128, 128), 5, 1000)
    assert QuickstartConfig().train == small  # the quickstart trains the small profile
    with pytest.raises(ConfigError, match="Did you mean 'small'"):
        TrainConfig.profile("smal")
    out = tmp_path / "small"
    code, text = _run("train", "--dataset", FORK_ID, "--steps", "2", "--out", str(out),
                      "--profile", "small", "--set", "hidden=8,8", "--quiet")  # fmt: skip
    assert code == 0, text
    cfg = load_models(out).meta["train_config"]
    assert (cfg["hidden"], cfg["n_critics"], cfg["gmm_pretrain_steps"]) == ([8, 8], 5, 1000)
    code, text = _run("train", "--steps", "4", "--resume", str(out), "--profile", "paper")
    assert code == 2 and "drop --profile" in text


def test_ctrl_c_saves_the_step_and_prints_the_resume_command(
    store: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT mid-run: checkpoint at that step, exit 130, and the printed command resumes it
    to exactly the state of an uninterrupted run."""
    import shlex
    import signal

    from gemkit.train import Trainer
    from gemkit.train.checkpoint import read_state_header

    torch.set_num_threads(1)
    common = ["--steps", "20", "--save-every", "1000", "--quiet", "--threads", "1", *TINY]
    full = tmp_path / "full"
    assert _run("train", "--dataset", FORK_ID, "--out", str(full), *common)[0] == 0

    step = Trainer.train_step

    def step_then_ctrl_c(self: Trainer) -> dict[str, torch.Tensor]:
        if self.step == 7:
            signal.raise_signal(signal.SIGINT)  # as a Ctrl-C in the terminal
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    out = tmp_path / "stopped"
    code, text = _run("train", "--dataset", FORK_ID, "--out", str(out), *common)
    assert code == 130, text
    assert "interrupted: checkpoint saved at step 8 of 20" in text
    assert read_state_header(out)["step"] == 8
    monkeypatch.undo()
    command = text.split("Resume with: ")[1].split("\n")[0].strip()
    assert command == shlex.join(["gemkit", "train", "--resume", str(out), "--steps", "20",
                                  "--save-every", "1000", "--threads", "1"])  # fmt: skip
    code, text = _run(*shlex.split(command)[1:])
    assert code == 0, text
    assert "resuming from step 8 to step 20" in text
    a, b = load_file(str(full / STATE_FILE)), load_file(str(out / STATE_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_default_profile_5000_steps_trains_all_and_gem_scores_at_least_its_anchor(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's acceptance run: ``gemkit train --dataset gemkit/fork-v0 --steps 5000`` with
    the default (paper) profile on the standard fork dataset; then GEM at N = 64 scores at
    least the single-shot anchor (N = 0) of the same checkpoint. Minutes of CPU."""
    from gemkit.config import SelectorConfig
    from gemkit.data import make_fork
    from gemkit.eval.runs import evaluate_config

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    make_fork(50_000, seed=0)
    out = tmp_path / "fork"
    code, text = _run("train", "--dataset", FORK_ID, "--steps", "5000", "--out", str(out),
                      "--threads", "2", "--quiet")  # fmt: skip
    assert code == 0, text
    rows = _metrics(out)
    assert sum(r["phase"] == "joint" for r in rows) >= 37  # 3,750 joint steps, a row per 100
    models = load_models(out)
    seeds = [0, 1, 2]
    gem = evaluate_config(models, SelectorConfig(n=64, horizon=100), FORK_ID, episodes=20,
                          seeds=seeds)  # fmt: skip
    anchor = evaluate_config(models, SelectorConfig(n=0, horizon=100), FORK_ID, episodes=20,
                             seeds=seeds)  # fmt: skip
    assert gem.score_mean >= anchor.score_mean, (gem.score_mean, anchor.score_mean)


def test_compile_mode_is_checked_and_kept_in_the_resume_command(tmp_path: pathlib.Path) -> None:
    from cli.train import resume_command

    code, text = _run("train", "--dataset", FORK_ID, "--out", str(tmp_path / "x"), "--steps",
                      "4", "--compile", "--compile-mode", "fast", *TINY)  # fmt: skip
    assert code != 0
    assert "unknown compile mode 'fast'" in text and "reduce-overhead" in text
    assert not (tmp_path / "x").exists()
    cmd = resume_command(tmp_path, 9, compile=True, compile_mode="reduce-overhead")
    assert cmd.endswith("--compile --compile-mode reduce-overhead")
    assert "--compile-mode" not in resume_command(tmp_path, 9, compile=True)


def test_cuda_graph_on_a_cpu_config_is_one_line_and_kept_in_the_resume_command(
    store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from cli.train import resume_command

    code, text = _run("train", "--dataset", FORK_ID, "--out", str(tmp_path / "x"), "--steps",
                      "4", "--cuda-graph", "--device", "cpu", *TINY)  # fmt: skip
    assert code != 0
    assert "cuda_graph needs a CUDA device" in text and "Traceback" not in text
    cmd = resume_command(tmp_path, 9, compile=True, cuda_graph=True, tf32=True)
    assert cmd.endswith("--compile --cuda-graph --tf32")

"""``gemkit train`` through typer's CliRunner on a tiny local fork dataset."""

from __future__ import annotations

import csv
import json
import pathlib

import pytest
import torch
from data_fixtures import fork_store  # noqa: F401
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli.main import app
from gemkit.models import load_models
from gemkit.train.checkpoint import STATE_FILE

FORK_ID = "gemkit/fork-v0"
TINY = ["--set", "hidden=16,16", "--set", "n_critics=2", "--set", "n_components=2",
        "--set", "batch_size=32", "--set", "gmm_pretrain_steps=3"]  # fmt: skip


@pytest.fixture(scope="module")
def store(fork_store: pathlib.Path) -> pathlib.Path:  # noqa: F811
    """The shared tiny fork store (``data_fixtures.fork_store``)."""
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
    cfg.write_text("hidden = [16, 16]\nn_critics = 2\nn_components = 2\nbatch_size = 32\n")
    full, part = tmp_path / "full", tmp_path / "part"
    common = ["--dataset", FORK_ID, "--config", str(cfg), "--save-every", "4", "--quiet"]
    assert _run("train", "--steps", "10", "--out", str(full), *common)[0] == 0
    assert _run("train", "--steps", "4", "--out", str(part), *common)[0] == 0
    code, text = _run("train", "--steps", "10", "--resume", str(part))  # with the progress bar
    assert code == 0, text
    a, b = load_file(str(full / STATE_FILE)), load_file(str(part / STATE_FILE))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((part / "config.json").read_text())["batch_size"] == 32
    code, text = _run("train", "--steps", "2", "--out", str(full), *common)
    assert code == 2 and "already holds" in text
    assert _run("train", "--steps", "2", "--out", str(full), "--overwrite", *common)[0] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--dataset", "nope/none-v0", "--steps", "1", "--out", "X"], "nope/none-v0"),
        (["--dataset", FORK_ID, "--steps", "1", "--out", "X", "--set", "alpah=1"], "alpha"),
        (["--dataset", FORK_ID, "--steps", "1"], "--out"),
        (["--steps", "1", "--resume", "NOWHERE"], "does not exist"),
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
    assert len(text.strip().splitlines()) == 1

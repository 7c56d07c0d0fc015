"""`gemkit fit-support`: the behavior GMM alone, resumable bit for bit, usable as support."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit import CheckpointError, compose
from gemkit.data import FORK_DATASET_ID
from gemkit.models import load_models
from gemkit.train import TrainConfig
from gemkit.train.support_fit import fit_support

runner = CliRunner()
CFG = TrainConfig(hidden=(16,), batch_size=32)


def test_resumed_fit_equals_an_uninterrupted_one(fork_transitions, tmp_path) -> None:
    whole = fit_support(fork_transitions, tmp_path / "a", 40, k=3, config=CFG,
                        checkpoint_every=40)  # fmt: skip
    fit_support(fork_transitions, tmp_path / "b", 15, k=3, config=CFG, checkpoint_every=10)
    seen: list[int] = []
    fit_support(fork_transitions, tmp_path / "b", 40, k=3, config=CFG, checkpoint_every=10,
                progress=lambda i, n: seen.append(i))  # fmt: skip
    assert seen[0] == 16 and seen[-1] == 40  # resumed at 15, reports out of the total
    a, b = load_models(whole), load_models(tmp_path / "b")
    for (ka, va), (kb, vb) in zip(a.behavior.state_dict().items(),
                                  b.behavior.state_dict().items(), strict=True):  # fmt: skip
        assert ka == kb and torch.equal(va, vb), ka
    assert a.critic is None and a.actor is None
    assert b.meta["step"] == 40
    assert b.meta["obs_mean"] == pytest.approx(fork_transitions.obs_mean.tolist())


def test_another_runs_folder_is_refused(fork_transitions, tmp_path) -> None:
    fit_support(fork_transitions, tmp_path, 5, k=3, config=CFG)
    with pytest.raises(CheckpointError, match="other data, settings, seed or config") as e:
        fit_support(fork_transitions, tmp_path, 10, k=2, config=CFG)
    assert "\n" not in str(e.value)


def _module_critic(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's own module with a factory of two CORL-style Q(s, a) networks."""
    (tmp_path / "my_critics.py").write_text(
        "import torch\n"
        "class Q(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.l = torch.nn.Linear(4, 1)\n"
        "    def forward(self, s, a):\n"
        "        return self.l(torch.cat([s, a], -1))\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return [Q(), Q()]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "module:my_critics:make"


def test_cli_fit_support_then_a_foreign_critic(fork_store, tmp_path, monkeypatch) -> None:
    out = tmp_path / "support"
    r = runner.invoke(app, ["fit-support", "--dataset", FORK_DATASET_ID, "--out", str(out),
                            "--steps", "30", "--hidden", "16", "--k", "3"])  # fmt: skip
    assert r.exit_code == 0, r.output
    spec = _module_critic(tmp_path, monkeypatch)
    spec_path = tmp_path / "spec.json"
    r = runner.invoke(app, ["compose", "--support-from", str(out), "--critic", spec,
                            "--proposer", "behavior", "--anchor", "none", "--n", "8",
                            "--out", str(spec_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "ModuleCritic" in r.output and "value: raw" in r.output
    record = json.loads(spec_path.read_text())
    assert record["networks"] == {"checkpoint": None, "support_from": str(out), "critic": spec}
    r = runner.invoke(app, ["eval", "--support-from", str(out), "--critic", spec,
                            "--proposer", "behavior", "--anchor", "none", "--n", "4",
                            "--episodes", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    # the same selector in Python: the critic sees raw states, the behavior normalised ones
    from gemkit.adapters.spec import critic_from_spec

    models = load_models(out)
    models.critic = critic_from_spec(spec)
    sel = compose(models=models, proposer="behavior", anchor="none", n=4)
    assert sel.observation == {"proposer": "normalized", "value": "raw", "support": "normalized"}


def test_cli_critic_errors_are_one_line(tmp_path) -> None:
    for args, msg in (
        (["compose", "--critic", "nope"], "--critic needs --checkpoint or --support-from"),
        (["compose", "--critic", "nope", "--support-from", str(tmp_path)], "expected one of"),
        (["compose", "--critic", "d3rlpy:missing.d3", "--support-from", str(tmp_path)], "no file"),
        (["eval", "--n", "1"], "pass --checkpoint DIR"),
    ):
        r = runner.invoke(app, args)
        assert r.exit_code != 0 and msg in r.output, (args, r.output)
        assert "Traceback" not in r.output

"""d3rlpy adapters: a real IQL trained on gemkit's fork data, wrapped as critic and proposer.

Needs d3rlpy (installed in CI with ``--no-deps``, see ``constraints/d3rlpy.txt``).
"""

from __future__ import annotations

import pathlib
import pickle
import warnings

import numpy as np
import pytest
import torch

d3rlpy = pytest.importorskip("d3rlpy")

from gemkit import CheckpointError, GemkitError, compose, evaluate  # noqa: E402
from gemkit.adapters import (  # noqa: E402
    D3rlpyCritic,
    from_d3rlpy,
    load_d3rlpy,
    policy_from_d3rlpy,
)
from gemkit.data import FORK_DATASET_ID, load  # noqa: E402
from gemkit.data.bridges import to_d3rlpy  # noqa: E402
from gemkit.models import ConditionalGMM, Models, load_models, save_models  # noqa: E402
from gemkit.proposers import CandidateProposer  # noqa: E402
from gemkit.scorers.values import EnsembleValue  # noqa: E402
from gemkit.testing import ConformanceError, check_critic, check_proposer, check_value  # noqa: E402


@pytest.fixture(scope="module")
def fork(fork_store: pathlib.Path):
    return load(FORK_DATASET_ID)


@pytest.fixture(scope="module")
def iql(fork):
    """IQL with a standard observation scaler and a min-max action scaler, 500 steps."""
    warnings.filterwarnings("ignore")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is fastest, and never oversubscribes
    d3rlpy.seed(0)
    algo = d3rlpy.algos.IQLConfig(
        batch_size=64,
        observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
        action_scaler=d3rlpy.preprocessing.MinMaxActionScaler(),
    ).create(device="cpu:0")
    algo.fit(to_d3rlpy(fork), n_steps=500, n_steps_per_epoch=500, show_progress=False,
             logger_adapter=d3rlpy.logging.NoopAdapterFactory())  # fmt: skip
    torch.set_num_threads(threads)
    return algo


def _models(fork) -> Models:
    """A behavior GMM on gemkit's normalised states, with the data's statistics: a selector
    that fed those to the d3rlpy parts would be caught below."""
    torch.manual_seed(0)
    gmm = ConditionalGMM(fork.state_dim, fork.action_dim, 3, hidden=(16,))
    return Models(behavior=gmm, meta={"obs_mean": fork.obs_mean.tolist(),
                                      "obs_std": fork.obs_std.tolist()})  # fmt: skip


def test_to_d3rlpy_keeps_every_transition_exactly(fork) -> None:
    rb = to_d3rlpy(fork)
    assert rb.transition_count == len(fork)
    rows = []
    for ep in rb.episodes:
        for t in range(ep.transition_count):
            rows.append(rb.transition_picker(ep, t))
    obs = np.stack([r.observation for r in rows])
    nxt = np.stack([r.next_observation for r in rows])
    term = np.array([r.terminal for r in rows])
    np.testing.assert_array_equal(obs, fork.observations.numpy())
    np.testing.assert_array_equal(np.stack([r.action for r in rows]), fork.actions.numpy())
    np.testing.assert_array_equal(np.concatenate([r.reward for r in rows]), fork.rewards.numpy())
    np.testing.assert_array_equal(term, fork.terminals.numpy())
    live = term == 0  # d3rlpy zeroes the next observation of terminal transitions
    np.testing.assert_array_equal(nxt[live], fork.next_observations.numpy()[live])
    # the naive conversion loses the last transition of every time-out episode
    naive = d3rlpy.dataset.MDPDataset(fork.observations.numpy(), fork.actions.numpy(),
                                      fork.rewards.numpy(), fork.terminals.numpy(),
                                      fork.timeouts.numpy())  # fmt: skip
    assert naive.transition_count == len(fork) - int(fork.timeouts.sum())


def test_selector_value_equals_predict_value_on_raw_states(fork, iql) -> None:
    anchor, source = policy_from_d3rlpy(iql)
    m = _models(fork)
    m.critic = from_d3rlpy(iql)
    sel = compose(models=m, value="mean", anchor=anchor, proposer=source, n=8)
    assert sel.observation == {"proposer": "raw", "value": "raw", "support": "normalized"}
    s = fork.observations[:16]
    out = sel.select(s, generator=torch.Generator().manual_seed(0))
    b, mm, a = out.candidates.shape
    flat = out.candidates.reshape(-1, a).numpy()
    ref = iql.predict_value(s.repeat_interleave(mm, 0).numpy(), flat)
    np.testing.assert_allclose(out.value.numpy(), ref.reshape(b, mm), atol=1e-5)
    np.testing.assert_allclose(out.candidates[:, 0].numpy(), iql.predict(s.numpy()), atol=1e-6)
    assert bool(((out.candidates >= -1) & (out.candidates <= 1)).all())
    res = evaluate(sel, FORK_DATASET_ID, episodes=2, seed=0)
    assert res.episodes == 2


def test_adapters_pass_the_conformance_suite(fork, iql) -> None:
    critic = from_d3rlpy(iql)
    check_critic(critic, fork)
    s = fork.observations[:4]
    anchor, source = policy_from_d3rlpy(iql)
    cands = check_proposer(CandidateProposer(anchor, source), s)
    check_value(EnsembleValue(critic, "lcb", 1.0), s, cands)
    q = critic(s.unsqueeze(1).expand(-1, 3, -1), cands[:, :3])
    assert q.shape == (2, 4, 3)  # IQL's two critics


def test_check_critic_takes_the_sizes_from_the_critic(fork, iql) -> None:
    """The fork task's states are 2-D: the probe uses the d3rlpy critic's own sizes."""
    critic = from_d3rlpy(iql)
    assert (critic.state_dim, critic.action_dim) == (2, 2)
    assert check_critic(critic).shape == (2, 4, 9)


def test_check_critic_sizes_from_arguments_or_one_line_error() -> None:
    def plain(states, actions):  # a bare callable: no sizes to read
        return -(states[..., :1] - actions).pow(2).sum(-1)

    with pytest.raises(ConformanceError, match="pass check_critic\\(critic, transitions\\)"):
        check_critic(plain)
    assert check_critic(plain, state_dim=5, action_dim=2).shape == (4, 9)


def test_the_wrong_observation_kind_is_caught(fork, iql) -> None:
    critic = from_d3rlpy(iql)
    critic.observation = "normalized"  # a lie: d3rlpy scales raw observations itself
    with pytest.raises(ConformanceError, match="set observation = 'raw'"):
        check_critic(critic, fork)


def test_saved_selector_networks_rebuild_the_d3rlpy_critic(fork, iql, tmp_path) -> None:
    path = tmp_path / "iql.d3"
    iql.save(str(path))
    m = _models(fork)
    m.critic = from_d3rlpy(path)
    save_models(tmp_path / "models", m)
    back = load_models(tmp_path / "models")
    assert isinstance(back.critic, D3rlpyCritic)
    s = fork.observations[:5]
    a = compose(models=m, value="lcb", proposer="behavior", anchor="none", n=6).select(s)
    b = compose(models=back, value="lcb", proposer="behavior", anchor="none", n=6).select(s)
    assert torch.equal(a.action, b.action)
    # a critic from an object (no file) cannot be saved: a one-line refusal
    m.critic = from_d3rlpy(iql)
    with pytest.raises(CheckpointError, match="records no file") as e:
        save_models(tmp_path / "other", m)
    assert "\n" not in str(e.value)


def test_load_d3rlpy_runs_no_pickled_code(tmp_path) -> None:
    evil = tmp_path / "evil.d3"
    marker = tmp_path / "ran"
    payload = {"torch": b"", "config": "{}", "version": "2.8.1",
               "x": pathlib.Path.touch.__get__(marker)}  # fmt: skip
    try:
        evil.write_bytes(pickle.dumps(payload))
    except (pickle.PicklingError, TypeError, AttributeError):
        evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(CheckpointError, match="not a plain d3rlpy") as e:
        load_d3rlpy(evil)
    assert not marker.exists()
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_d3rlpy(tmp_path / "missing.d3")


def test_bad_algorithms_are_one_line_errors() -> None:
    unbuilt = d3rlpy.algos.IQLConfig().create(device="cpu:0")
    with pytest.raises(GemkitError, match="not built"):
        from_d3rlpy(unbuilt)
    with pytest.raises(GemkitError, match="expected a d3rlpy algorithm"):
        from_d3rlpy(object())


def test_cli_composes_and_evaluates_with_a_d3rlpy_file(fork, iql, tmp_path) -> None:
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    runner = CliRunner()
    path = tmp_path / "iql.d3"
    iql.save(str(path))
    support = tmp_path / "support"
    r = runner.invoke(app, ["fit-support", "--dataset", FORK_DATASET_ID, "--out", str(support),
                            "--steps", "20", "--hidden", "16", "--k", "3"])  # fmt: skip
    assert r.exit_code == 0, r.output
    args = ["--support-from", str(support), "--critic", f"d3rlpy:{path}", "--proposer",
            "behavior", "--anchor", "none", "--n", "4"]  # fmt: skip
    r = runner.invoke(app, ["compose", *args, "--out", str(tmp_path / "spec.json")])
    assert r.exit_code == 0, r.output
    assert "D3rlpyCritic(IQL)" in r.output
    r = runner.invoke(app, ["eval", *args, "--episodes", "1"])
    assert r.exit_code == 0, r.output

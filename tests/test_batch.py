"""Runs as a batch dimension (gemkit.train.batch): each run of a batch is the run of its seed."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from synthetic_fork import make_fork_transitions, run_killed_at

from gemkit.errors import GemkitError
from gemkit.models import load_models
from gemkit.train import TrainConfig, Trainer, TrainingInterrupted, TrainProgress, train
from gemkit.train.batch import RunBatch
from gemkit.train.checkpoint import STATE_FILE
from gemkit.train.run import Run, train_runs

TESTS = Path(__file__).parent
CFG = {
    "hidden": [32, 32],
    "n_critics": 3,
    "n_components": 3,
    "batch_size": 32,
    "gmm_pretrain_steps": 5,
}
SEEDS = (3, 4, 5)

#: After 1,000 steps a batched run's networks and losses differ from its single run's by at most
#: this much, relatively (``||W_batch - W_single|| / ||W_single||`` per network; losses of the
#: last report): batched matrix multiplies sum in another order, and Adam turns a rounding-level
#: difference in a near-zero gradient into a step of up to ``lr``. Measured at these sizes: at
#: most 3.6e-4 (seed 5's actor; the others 1e-7 to 3e-7) and 6e-5 (losses); a run that got
#: another run's gradient or minibatch would differ by order 1. ``docs/performance.md`` states
#: the figures at the maze sizes.
REL_TOL = 1e-2


def _relative_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """``||a - b|| / ||b||`` over all parameters."""
    num = sum(
        float((p - q).detach().pow(2).sum())
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )
    den = sum(float(q.detach().pow(2).sum()) for q in b.parameters())
    return (num / den) ** 0.5


@pytest.fixture(scope="module")
def fork() -> object:
    torch.set_num_threads(1)
    return make_fork_transitions(n_episodes=30)[0]


def _cfg(seed: int = 0, **kw: object) -> TrainConfig:
    return TrainConfig.from_dict({**CFG, "seed": seed, **kw})


def _state(d: Path) -> dict[str, torch.Tensor]:
    return load_file(str(d / STATE_FILE))


def test_initial_weights_and_minibatch_indices_are_the_single_runs(
    fork: object, tmp_path: Path
) -> None:
    runs = [Run(fork, _cfg(s), tmp_path / f"b{s}") for s in SEEDS]  # type: ignore[arg-type]
    train_runs(runs, 0)
    for s in SEEDS:
        train(fork, _cfg(s), tmp_path / f"s{s}", 0)  # type: ignore[arg-type]
        a, b = _state(tmp_path / f"b{s}"), _state(tmp_path / f"s{s}")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # distinct seeds, distinct runs
    w3 = _state(tmp_path / "b3")["net.critic.layers.0.weight"]
    assert not torch.equal(w3, _state(tmp_path / "b4")["net.critic.layers.0.weight"])


def test_run_r_of_a_batch_tracks_the_single_run_of_seed_r(fork: object, tmp_path: Path) -> None:
    steps = 1000
    runs = [Run(fork, _cfg(s), tmp_path / f"b{s}") for s in SEEDS]  # type: ignore[arg-type]
    batched = train_runs(runs, steps, save_every=steps, log_every=500, tensorboard=False)
    for s, got in zip(SEEDS, batched, strict=True):
        ref_dir = tmp_path / f"s{s}"
        ref = train(fork, _cfg(s), ref_dir, steps, save_every=steps, log_every=500,  # type: ignore[arg-type]
                    tensorboard=False)  # fmt: skip
        # the same minibatches: the generators went through the same draws
        a, b = _state(tmp_path / f"b{s}"), _state(ref_dir)
        assert torch.equal(a["rng.generator"], b["rng.generator"])
        for name in ("actor", "behavior", "critic", "value"):
            assert _relative_gap(getattr(got, name), getattr(ref, name)) < REL_TOL, (s, name)
        mine = list(csv.DictReader((tmp_path / f"b{s}" / "metrics.csv").open()))
        theirs = list(csv.DictReader((ref_dir / "metrics.csv").open()))
        assert [int(r["step"]) for r in mine] == [500, 1000]
        for key in ("loss_critic", "loss_value", "loss_actor", "loss_behavior"):
            x, y = float(mine[-1][key]), float(theirs[-1][key])
            assert abs(x - y) <= REL_TOL * abs(y), (s, key, x, y)


def test_a_batch_of_one_is_the_single_trainer_bit_for_bit(fork: object, tmp_path: Path) -> None:
    (got,) = train_runs([Run(fork, _cfg(3), tmp_path / "one")], 30, save_every=30)  # type: ignore[arg-type]
    hand = Trainer(fork, _cfg(3), pretrain_steps=5)  # type: ignore[arg-type]
    for _ in range(30):
        hand.train_step()
    for name in ("actor", "behavior", "critic", "value"):
        for p, q in zip(
            getattr(got, name).parameters(), getattr(hand, name).parameters(), strict=True
        ):
            assert torch.equal(p, q), name


def test_the_batch_step_is_the_sum_of_per_run_steps_in_one_call(fork: object) -> None:
    """Two runs of one seed in one batch stay identical (each gets only its own gradient)."""
    a = Trainer(fork, _cfg(3), pretrain_steps=2)  # type: ignore[arg-type]
    b = Trainer(fork, _cfg(3), pretrain_steps=2)  # type: ignore[arg-type]
    c = Trainer(fork, _cfg(9), pretrain_steps=2)  # type: ignore[arg-type]
    batch = RunBatch([a, b, c])
    sums, counts = batch.train_steps(6)
    assert sums["loss_critic"].shape == (3,) and counts["loss_critic"] == 4
    assert counts["loss_behavior"] == 6
    assert torch.equal(sums["loss_critic"][0], sums["loss_critic"][1])
    assert not torch.equal(sums["loss_critic"][0], sums["loss_critic"][2])
    batch.sync()
    for p, q in zip(a.critic.parameters(), b.critic.parameters(), strict=True):
        assert torch.equal(p, q)
    assert a.step == b.step == c.step == 6
    assert a.optimizer.state and torch.equal(
        a.optimizer.state[a.critic.layers[0].weight]["exp_avg"],
        b.optimizer.state[b.critic.layers[0].weight]["exp_avg"],
    )


KILL_STEPS, KILL_SAVE, KILL_AT = 40, 15, 22


def _batch_and_kill(root: Path) -> subprocess.CompletedProcess[str]:
    return run_killed_at(
        KILL_AT,
        f"""
        from gemkit.train import TrainConfig
        from gemkit.train.run import Run, train_runs
        data = make_fork_transitions(n_episodes=30)[0]
        runs = [Run(data, TrainConfig.from_dict({{**{CFG!r}, "seed": s}}),
                    {str(root)!r} + f"/s{{s}}") for s in {SEEDS!r}]
        train_runs(runs, {KILL_STEPS}, save_every={KILL_SAVE}, log_every=1, progress=killer)
        """,
    )


def test_a_killed_batch_resumes_as_the_uninterrupted_batch(fork: object, tmp_path: Path) -> None:
    proc = _batch_and_kill(tmp_path / "killed")
    assert proc.returncode == -9, proc.stderr
    killed = [tmp_path / "killed" / f"s{s}" for s in SEEDS]
    assert all(load_models(d).meta["step"] == KILL_SAVE for d in killed)
    resumed = [Run(fork, _cfg(s), d, resume=True) for s, d in zip(SEEDS, killed, strict=True)]  # type: ignore[arg-type]
    train_runs(resumed, KILL_STEPS, save_every=KILL_SAVE, log_every=1)
    ref = [Run(fork, _cfg(s), tmp_path / "ref" / f"s{s}") for s in SEEDS]  # type: ignore[arg-type]
    train_runs(ref, KILL_STEPS, save_every=KILL_SAVE, log_every=1)
    for k_dir, r in zip(killed, ref, strict=True):
        a, b = _state(k_dir), _state(r.out_dir)
        assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
        for k in a:
            assert torch.equal(a[k], b[k]), (k_dir.name, k)
        steps = [int(row["step"]) for row in csv.DictReader((k_dir / "metrics.csv").open())]
        assert steps == list(range(1, KILL_STEPS + 1))


def _stop_at(step: int) -> Callable[[TrainProgress], None]:
    def progress(report: TrainProgress) -> None:
        if report.step >= step:
            raise KeyboardInterrupt  # train() saves and raises TrainingInterrupted

    return progress


def test_a_run_resumed_behind_the_others_catches_up_alone(fork: object, tmp_path: Path) -> None:
    """A kill between two runs' checkpoints leaves one a save period behind: it catches up."""
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, d, at in ((3, a, 20), (4, b, 10)):
        with pytest.raises(TrainingInterrupted):
            train(fork, _cfg(seed), d, 40, save_every=10, log_every=5, progress=_stop_at(at))  # type: ignore[arg-type]
    assert (load_models(a).meta["step"], load_models(b).meta["step"]) == (20, 10)
    runs = [Run(fork, _cfg(3), a, resume=True), Run(fork, _cfg(4), b, resume=True)]  # type: ignore[arg-type]
    train_runs(runs, 40, save_every=10, log_every=5, tensorboard=False)
    for d in (a, b):
        assert load_models(d).meta["step"] == 40
        steps = [int(row["step"]) for row in csv.DictReader((d / "metrics.csv").open())]
        assert steps == list(range(5, 45, 5))
    alone = train(fork, _cfg(4), tmp_path / "b_alone", 40, save_every=10, log_every=5)  # type: ignore[arg-type]
    assert torch.equal(_state(b)["rng.generator"], _state(tmp_path / "b_alone")["rng.generator"])
    got = load_models(b)
    assert got.critic is not None and alone.critic is not None
    assert _relative_gap(got.critic, alone.critic) < REL_TOL


def test_runs_that_cannot_share_a_batch_fail_before_writing(tmp_path: Path) -> None:
    fork, _ = make_fork_transitions(n_episodes=30)
    runs = [Run(fork, _cfg(0), tmp_path / "a"), Run(fork, _cfg(1, alpha=1.0), tmp_path / "b")]
    with pytest.raises(GemkitError, match=r"another config than run 0 \(alpha differ\)"):
        train_runs(runs, 10)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(GemkitError, match="share one directory"):
        train_runs([Run(fork, _cfg(0), tmp_path / "a"), Run(fork, _cfg(1), tmp_path / "a")], 10)
    assert not (tmp_path / "a").exists()


def _wider(t: object) -> object:
    """``t`` with one more (constant) observation dimension."""
    import attrs

    pad = torch.ones(len(t.observations), 1)  # type: ignore[attr-defined]
    return attrs.evolve(
        t,  # type: ignore[arg-type]
        observations=torch.cat([t.observations, pad], 1),  # type: ignore[attr-defined]
        next_observations=torch.cat([t.next_observations, pad], 1),  # type: ignore[attr-defined]
        obs_mean=torch.cat([t.obs_mean, torch.ones(1)]),  # type: ignore[attr-defined]
        obs_std=torch.cat([t.obs_std, torch.ones(1)]),  # type: ignore[attr-defined]
    )


def test_a_suite_of_datasets_of_one_shape_trains_as_one_batch(tmp_path: Path) -> None:
    a = make_fork_transitions(n_episodes=30)[0]
    b = make_fork_transitions(n_episodes=30, seed=1)[0]
    runs = [Run(a, _cfg(0), tmp_path / "a", "fork/a"), Run(b, _cfg(0), tmp_path / "b", "fork/b")]
    train_runs(runs, 12, save_every=12, tensorboard=False)
    train(b, _cfg(0), tmp_path / "b_alone", 12, save_every=12, dataset_id="fork/b")
    assert load_models(tmp_path / "b").meta["dataset_id"] == "fork/b"
    mine, alone = _state(tmp_path / "b"), _state(tmp_path / "b_alone")
    assert torch.equal(mine["rng.generator"], alone["rng.generator"])
    with pytest.raises(GemkitError, match=r"states/actions of size \(3, 2\), run 0 \(2, 2\)"):
        train_runs([Run(a, _cfg(0), tmp_path / "c"), Run(_wider(b), _cfg(1), tmp_path / "d")], 5)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_a_bad_seed_list_is_one_line_before_anything_is_written(tmp_path: Path) -> None:
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    base = ["train", "--dataset", "gemkit/fork-v0", "--steps", "5", "--out", str(tmp_path / "o")]
    for seeds, says in (("0,0", "seeds must be distinct"), ("3-1", "ranges like 0-4"),
                        ("a", "ranges like 0-4")):  # fmt: skip
        res = CliRunner().invoke(app, [*base, "--seeds", seeds, "--runs-per-task", "2"])
        assert res.exit_code != 0 and says in res.output, (seeds, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_a_batch_replays_graphs_for_all_its_runs_or_none() -> None:
    from gemkit.train.batch import RunBatch

    fork, _ = make_fork_transitions(n_episodes=30)
    trainers = [Trainer(fork, _cfg(s)) for s in (0, 1)]
    trainers[1].cuda_graph = True  # as a run built with cuda_graph=True would say (GPU only)
    with pytest.raises(GemkitError, match="all or none"):
        RunBatch(trainers)

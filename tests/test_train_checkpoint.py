"""Training checkpoints: loadable models, kill-and-resume bit-for-bit, clear errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from synthetic_fork import make_fork_transitions, run_killed_at

from gemkit.errors import CheckpointError
from gemkit.models import load_models
from gemkit.train import TrainConfig, TrainProgress, train
from gemkit.train.checkpoint import STATE_FILE

TESTS = Path(__file__).parent
CFG = {
    "hidden": [32, 32],
    "n_critics": 3,
    "n_components": 3,
    "batch_size": 32,
    "gmm_pretrain_steps": 5,
    "seed": 7,
}
STEPS, SAVE_EVERY, KILL_AT = 40, 15, 22


@pytest.fixture(scope="module")
def fork() -> object:
    torch.set_num_threads(1)
    return make_fork_transitions(n_episodes=30)[0]


def _cfg(**kw: object) -> TrainConfig:
    return TrainConfig.from_dict({**CFG, **kw})


def test_checkpoint_is_loadable_by_load_models(fork: object, tmp_path: Path) -> None:
    out = tmp_path / "run"
    reports: list[TrainProgress] = []
    models = train(fork, _cfg(), out, 20, save_every=10, log_every=5, progress=reports.append)  # type: ignore[arg-type]
    assert [r.step for r in reports] == [5, 10, 15, 20]
    assert reports[0].phase == "pretrain" and reports[-1].phase == "joint"
    assert {p.name for p in out.iterdir()} >= {
        "models.json",
        "models.safetensors",
        STATE_FILE,
        "config.json",
        "metrics.csv",
    }
    assert not list(out.glob("*.pt")) and not list(out.glob("*.pkl"))
    loaded = load_models(out)
    assert loaded.meta["step"] == 20
    assert loaded.meta["dataset_id"] == "synthetic/fork-v0"
    assert loaded.meta["obs_mean"] == pytest.approx(fork.obs_mean.tolist())  # type: ignore[attr-defined]
    assert loaded.meta["action_low"] == [-1.0, -1.0]
    assert TrainConfig.from_dict(loaded.meta["train_config"]) == _cfg()
    assert TrainConfig.from_file(out / "config.json") == _cfg()
    s = torch.randn(4, 2)
    a = torch.rand(4, 2) * 2 - 1
    assert models.actor is not None and loaded.actor is not None
    assert models.critic is not None and loaded.critic is not None
    assert torch.equal(models.actor.mode(s), loaded.actor.mode(s))
    assert torch.equal(models.critic(s, a), loaded.critic(s, a))
    assert loaded.critic(s, a).shape == (3, 4)
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert float(rows[-1]["loss_critic"]) >= 0.0


def _run_and_kill(out: Path) -> subprocess.CompletedProcess[str]:
    return run_killed_at(KILL_AT, f"""
        from gemkit.train import TrainConfig, train
        data = make_fork_transitions(n_episodes=30)[0]
        cfg = TrainConfig.from_dict({CFG!r})
        train(data, cfg, {str(out)!r}, {STEPS}, save_every={SAVE_EVERY}, log_every=1,
              progress=killer)
        """)


def test_killed_run_resumes_bit_for_bit(fork: object, tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = _run_and_kill(killed)
    assert proc.returncode == -9, proc.stderr
    assert load_models(killed).meta["step"] == SAVE_EVERY  # last save before the kill
    resumed = train(fork, _cfg(), killed, STEPS, save_every=SAVE_EVERY, log_every=1, resume=True)  # type: ignore[arg-type]

    ref_dir = tmp_path / "ref"
    ref = train(fork, _cfg(), ref_dir, STEPS, save_every=SAVE_EVERY, log_every=1)  # type: ignore[arg-type]

    a = load_file(str(killed / STATE_FILE))
    b = load_file(str(ref_dir / STATE_FILE))
    assert a.keys() == b.keys()
    assert any(k.startswith("optim.") for k in a) and "rng.generator" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for name in ("actor", "behavior", "critic", "value"):
        for p, q in zip(
            getattr(resumed, name).parameters(), getattr(ref, name).parameters(), strict=True
        ):
            assert torch.equal(p, q), name
    # metrics: the killed run's rows past the checkpoint were dropped, so steps are 1..STEPS
    with (killed / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, STEPS + 1))


def test_resume_checks_config_and_dataset(fork: object, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(fork, _cfg(), out, 6, save_every=3)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"different config.*alpha"):
        train(fork, _cfg(alpha=1.0), out, 10, resume=True)  # type: ignore[arg-type]
    other = make_fork_transitions(n_episodes=30, seed=1)[0]
    with pytest.raises(CheckpointError, match="another dataset"):
        train(other, _cfg(), out, 10, resume=True)
    with pytest.raises(CheckpointError, match="past --steps"):
        train(fork, _cfg(), out, 3, resume=True)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="does not exist"):
        train(fork, _cfg(), tmp_path / "nowhere", 10, resume=True)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="already holds"):
        train(fork, _cfg(), out, 10)  # type: ignore[arg-type]
    train(fork, _cfg(alpha=1.0), out, 2, overwrite=True)  # type: ignore[arg-type]
    assert load_models(out).meta["train_config"]["alpha"] == 1.0


def test_truncated_and_foreign_checkpoints_raise_one_line_errors(
    fork: object, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train(fork, _cfg(), out, 4, save_every=2)  # type: ignore[arg-type]
    state = out / STATE_FILE
    data = state.read_bytes()

    state.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated") as info:
        train(fork, _cfg(), out, 8, resume=True)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)

    save_file({"w": torch.zeros(3)}, str(state), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a gemkit trainer state") as info:
        train(fork, _cfg(), out, 8, resume=True)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)

    state.write_bytes(b"\x80\x04K\x01.")  # a pickle: never unpickled, just rejected
    with pytest.raises(CheckpointError):
        train(fork, _cfg(), out, 8, resume=True)  # type: ignore[arg-type]

    # a bit flip inside a tensor is caught by the checksum
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    state.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt"):
        train(fork, _cfg(), out, 8, resume=True)  # type: ignore[arg-type]

    # the model export is guarded by load_models' own checks
    w = out / "models.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_models(out)
    manifest = json.loads((out / "models.json").read_text())
    assert manifest["meta"]["step"] == 4
    os.remove(out / "models.json")
    with pytest.raises(CheckpointError):
        load_models(out)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_resumes_and_loads_on_cpu(fork: object, tmp_path: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    # 2 behavior-only steps in both plans: a fresh run takes min(gmm_pretrain_steps, steps // 4),
    # so CFG's 5 would give the 8-step run 2 and the 12-step run 3, two different runs
    cfg = _cfg(device="cuda", gmm_pretrain_steps=2)
    train(fork, cfg, full, 12, save_every=4)  # type: ignore[arg-type]
    train(fork, cfg, part, 8, save_every=4)  # type: ignore[arg-type]
    train(fork, cfg, part, 12, save_every=4, resume=True)  # type: ignore[arg-type]
    a, b = load_file(str(full / STATE_FILE)), load_file(str(part / STATE_FILE))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    m = load_models(part, device="cpu")
    assert m.critic is not None and m.critic(torch.zeros(1, 2), torch.zeros(1, 2)).shape == (3, 1)


def test_ctrl_c_in_train_saves_that_step_and_resumes_bit_for_bit(
    fork: object, tmp_path: Path
) -> None:
    """A KeyboardInterrupt between two steps (here from the progress callback) stops the run
    at that step with a checkpoint; resuming it gives the uninterrupted run's state."""
    from gemkit.train import TrainingInterrupted

    def stop_at_10(p: TrainProgress) -> None:
        if p.step == 10:
            raise KeyboardInterrupt

    out = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted) as info:
        train(fork, _cfg(), out, 20, save_every=100, log_every=5, progress=stop_at_10)  # type: ignore[arg-type]
    assert (info.value.step, info.value.steps, info.value.directory) == (10, 20, out)
    assert isinstance(info.value, KeyboardInterrupt)
    assert load_models(out).meta["step"] == 10
    train(fork, _cfg(), out, 20, save_every=100, log_every=5, resume=True)  # type: ignore[arg-type]
    ref = tmp_path / "ref"
    train(fork, _cfg(), ref, 20, save_every=100, log_every=5)  # type: ignore[arg-type]
    a, b = load_file(str(out / STATE_FILE)), load_file(str(ref / STATE_FILE))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with (out / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [5, 10, 15, 20]


def test_checkpoint_without_recorded_pretraining_resumes_with_its_config(
    fork: object, tmp_path: Path
) -> None:
    """Checkpoints written before gemkit recorded ``pretrain_steps`` resume with the config's
    ``gmm_pretrain_steps`` (how they were trained), and a run that would end inside that
    pretraining is refused."""
    from safetensors import safe_open

    cfg = _cfg(gmm_pretrain_steps=8)
    train(fork, cfg, tmp_path / "short", 4, save_every=100)  # type: ignore[arg-type]
    state = tmp_path / "short" / STATE_FILE
    with safe_open(str(state), framework="pt") as f:
        header = json.loads(f.metadata()["gemkit"])
    assert header.pop("pretrain_steps") == 1  # capped at a quarter of the 4 steps
    save_file(load_file(str(state)), str(state), metadata={"gemkit": json.dumps(header)})
    with pytest.raises(CheckpointError, match="inside the checkpoint's behavior pretraining"):
        train(fork, cfg, tmp_path / "short", 6, resume=True)  # type: ignore[arg-type]
    train(fork, cfg, tmp_path / "short", 40, save_every=100, resume=True)  # type: ignore[arg-type]
    assert load_models(tmp_path / "short").meta["pretrain_steps"] == 8


def test_models_at_prefers_the_snapshot_then_the_export_at_that_step(tmp_path) -> None:
    import json as _json

    from gemkit.train import models_at, snapshot_dir

    run = tmp_path / "run"
    assert snapshot_dir(run, 20_000) == run / "snapshots" / "step_00020000"
    assert models_at(run, 20_000) is None
    run.mkdir()
    (run / "models.json").write_text(_json.dumps({"meta": {"step": 60_000}}))
    snap = snapshot_dir(run, 20_000)
    snap.mkdir(parents=True)
    assert models_at(run, 20_000) is None  # a snapshot folder without its manifest
    (snap / "models.json").write_text(_json.dumps({"meta": {"step": 20_000}}))
    assert models_at(run, 20_000) == snap
    assert models_at(run, 60_000) == run  # the run stopped there: its own export
    assert models_at(run, 40_000) is None


def test_resume_keeps_the_rows_of_a_metrics_csv_with_older_columns(tmp_path: Path) -> None:
    """A run logged before a column was added keeps its rows on resume, by column name."""
    from gemkit.train.metrics import MetricsLog

    path = tmp_path / "metrics.csv"
    old = [c for c in MetricsLog.COLUMNS if c != "guidance_ess"]
    rows = [old] + [[str(s), "joint", *(["0.5"] * (len(old) - 2))] for s in (100, 200, 300)]
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    MetricsLog(path, resume_step=200, tensorboard=False)
    with path.open() as f:
        got = list(csv.DictReader(f))
    assert [r["step"] for r in got] == ["100", "200"]
    assert all(r["guidance_ess"] == "nan" and r["q_mean"] == "0.5" for r in got)
    assert tuple(got[0].keys()) == MetricsLog.COLUMNS

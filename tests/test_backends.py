"""gemkit.backends: the serial and Ray backends give the same sweep; a dead worker is retried.

The Ray tests run on a local Ray with 2 CPUs (2 workers) started once for the module; they skip
where Ray is not installed (``pip install "gemkit[ray]"``).
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit.backends import FanOutReport, RayBackend, SerialBackend, make_backend
from gemkit.errors import GemkitError
from gemkit.eval.sweep import SweepGrid, run_sweep
from gemkit.experiments.cells import append_line, read_cell_file, read_cells

FORK_ID = "gemkit/fork-v0"
GRID = SweepGrid(presets=("gem", "no_pw"), n=(0, 4), lam=(0.5, 1.0))
SEEDS = (0, 1)
TIMING = "steps_per_s"  # the one metric that is a wall-clock measurement


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def _square(shared: int, item: int) -> int:
    return shared + item * item


def _fail(shared: int, item: int) -> int:
    raise GemkitError(f"item {item} is bad")


def _table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows without the timing metric, as strings, in a canonical order."""
    out = [{k: str(v) for k, v in r.items() if not k.startswith(TIMING)} for r in rows]
    return sorted(out, key=lambda r: sorted(r.items()))


class DieOnce:
    """A critic that kills its worker process the first time any process calls it."""

    def __init__(self, critic: Any, marker: pathlib.Path) -> None:
        self.critic = critic
        self.marker = marker
        self.observation = critic.observation

    def __call__(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.critic(states, actions)  # type: ignore[no-any-return]
        os._exit(1)


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # workers cannot import this test module: ship DieOnce by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def serial_sweep(
    tiny_checkpoint: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("serial")
    return run_sweep(tiny_checkpoint, FORK_ID, GRID, out, episodes=2, seeds=SEEDS)


def test_serial_backend_maps_in_order_and_reports() -> None:
    got: list[tuple[int, int]] = []
    report = SerialBackend().map(_square, [1, 2, 3], lambda i, r: got.append((i, r)), 10)
    assert got == [(0, 11), (1, 14), (2, 19)]
    assert report.slots == 1 and [t.index for t in report.tasks] == [0, 1, 2]
    assert "3 task(s) on 1 slot(s)" in report.summary()


def test_backend_options_are_checked() -> None:
    with pytest.raises(GemkitError, match="--backend ray"):
        make_backend("serial", address="auto")
    with pytest.raises(GemkitError, match="serial, ray"):
        make_backend("dask")
    with pytest.raises(GemkitError, match="num_cpus"):
        RayBackend(num_cpus=0)


def test_append_line_cuts_a_torn_last_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cells-0of1.jsonl"
    append_line(path, '{"key": "a", "v": 1}')  # created when missing
    with path.open("a") as f:
        f.write('{"key": "b", "v"')  # a driver killed in the middle of a line
    assert read_cell_file(path) == {"a": {"key": "a", "v": 1}}  # the torn line is no cell
    append_line(path, '{"key": "c", "v": 3}')
    assert path.read_text() == '{"key": "a", "v": 1}\n{"key": "c", "v": 3}\n'


def test_ray_task_user_error_is_raised_as_itself(ray_local: Any) -> None:
    with pytest.raises(GemkitError, match=r"^item 0 is bad$"):
        RayBackend().map(_fail, [0], lambda i, r: None, 0)


def test_ray_sweep_equals_serial_and_resumes(
    ray_local: Any,
    tiny_checkpoint: pathlib.Path,
    serial_sweep: list[dict[str, Any]],
    tmp_path: pathlib.Path,
) -> None:
    reports: list[FanOutReport] = []
    seen: list[tuple[int, bool]] = []
    backend = RayBackend()

    def note(done: int, total: int, cell: Any, seed: int, skip: bool) -> None:
        seen.append((done, skip))

    def sweep() -> list[dict[str, Any]]:
        return run_sweep(tiny_checkpoint, FORK_ID, GRID, tmp_path, episodes=2, seeds=SEEDS,
                         backend=backend, timing=reports.append, progress=note)  # fmt: skip

    rows = sweep()
    n_runs = len(GRID.cells(100)) * len(SEEDS)
    assert _table(rows) == _table(serial_sweep)
    assert [d for d, _ in seen] == list(range(1, n_runs + 1))
    (report,) = reports
    assert report.backend == "ray" and report.slots == 2 and len(report.tasks) == n_runs
    assert sorted(t.index for t in report.tasks) == list(range(n_runs))
    assert "slots busy" in report.summary()
    # a rerun finds every cell done and submits nothing
    seen.clear()
    again = sweep()
    assert all(skip for _, skip in seen) and not reports[-1].tasks
    assert _table(again) == _table(rows)


def test_ray_sweep_survives_a_killed_worker(
    ray_local: Any,
    tiny_checkpoint: pathlib.Path,
    serial_sweep: list[dict[str, Any]],
    tmp_path: pathlib.Path,
) -> None:
    from gemkit.models import load_models

    models = load_models(tiny_checkpoint)
    marker = tmp_path / "died"
    models.critic = DieOnce(models.critic, marker)
    out = tmp_path / "sweep"
    rows = run_sweep(models, FORK_ID, GRID, out, episodes=2, seeds=SEEDS,
                     backend=RayBackend(max_retries=2))  # fmt: skip
    assert marker.exists()  # one worker did die
    lines = (out / "cells-0of1.jsonl").read_text().splitlines()
    assert len(lines) == len(read_cells(out)) == len(GRID.cells(100)) * len(SEEDS)
    assert _table(rows) == _table(serial_sweep)


def test_ray_task_past_its_retries_is_one_line_error(
    ray_local: Any, tiny_checkpoint: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from gemkit.models import load_models

    models = load_models(tiny_checkpoint)
    models.critic = DieOnce(models.critic, tmp_path / "died")
    with pytest.raises(GemkitError, match="rerun to go on"):
        run_sweep(models, FORK_ID, SweepGrid(n=(4,)), tmp_path / "sweep", episodes=1,
                  backend=RayBackend(max_retries=0))  # fmt: skip


def test_cli_sweep_on_ray_prints_table_and_time(
    ray_local: Any, tiny_checkpoint: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    args = ["sweep", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path), "--n", "0,4",
            "--episodes", "1", "--backend", "ray", "--cpus-per-task", "1"]  # fmt: skip
    res = _cli(args)
    assert res.exit_code == 0, res.output
    assert "2 evaluation(s) run, 0 resumed" in res.output
    assert "time: ray: 2 task(s) on 2 slot(s)" in res.output
    assert ray_local.is_initialized()  # a Ray started by the caller is left running


def test_cli_ray_options_without_ray_backend_are_one_line_errors(
    tiny_checkpoint: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["sweep", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path), "--n", "0"]
    res = _cli([*base, "--address", "auto"])
    assert res.exit_code == 2 and "need --backend ray" in res.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    res = _cli([*base, "--backend", "ray"])
    assert res.exit_code == 2 and 'pip install "gemkit[ray]"' in res.output
    assert "Traceback" not in res.output


def test_cli_train_seeds_on_ray_equals_serial_and_resumes(
    ray_local: Any, fork_store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from safetensors.torch import load_file

    from gemkit.train.checkpoint import STATE_FILE

    torch.set_num_threads(1)
    args = ["train", "--dataset", FORK_ID, "--steps", "12", "--seeds", "0,1", "--set",
            "hidden=16,16", "--set", "n_critics=2", "--set", "batch_size=32"]  # fmt: skip
    ray_out, serial_out = tmp_path / "ray", tmp_path / "serial"
    for out, more, name in ((ray_out, ["--backend", "ray"], "ray"), (serial_out, [], "serial")):
        res = _cli([*args, "--out", str(out), *more])
        assert res.exit_code == 0, res.output
        assert f"time: {name}: 2 task(s)" in res.output
    for s in (0, 1):
        a = load_file(str(ray_out / f"seed-{s}" / STATE_FILE))
        b = load_file(str(serial_out / f"seed-{s}" / STATE_FILE))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    res = _cli([*args, "--out", str(ray_out), "--backend", "ray"])
    assert res.exit_code == 0 and "already trained to step 12: seed(s) [0, 1]" in res.output
    res = _cli([*args, "--out", str(ray_out), "--seed", "3"])
    assert res.exit_code == 2 and "--seeds trains" in res.output


def test_cli_train_seeds_in_batches_of_runs_on_ray_equals_serial(
    ray_local: Any, fork_store: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """``--runs-per-task 2`` makes a Ray task (and a serial one) a batch of two runs."""
    from safetensors.torch import load_file

    from gemkit.train.checkpoint import STATE_FILE

    torch.set_num_threads(1)
    args = ["train", "--dataset", FORK_ID, "--steps", "12", "--seeds", "0-2", "--runs-per-task",
            "2", "--set", "hidden=16,16", "--set", "n_critics=2",
            "--set", "batch_size=32"]  # fmt: skip
    ray_out, serial_out = tmp_path / "ray", tmp_path / "serial"
    for out, more, name in ((ray_out, ["--backend", "ray"], "ray"), (serial_out, [], "serial")):
        res = _cli([*args, "--out", str(out), *more])
        assert res.exit_code == 0, res.output
        assert f"time: {name}: 2 task(s)" in res.output  # seeds (0, 1) and (2,)
    for s in (0, 1, 2):
        a = load_file(str(ray_out / f"seed-{s}" / STATE_FILE))
        b = load_file(str(serial_out / f"seed-{s}" / STATE_FILE))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    res = _cli(["train", "--dataset", FORK_ID, "--steps", "12", "--runs-per-task", "2",
                "--out", str(tmp_path / "x")])  # fmt: skip
    assert res.exit_code == 2 and "give --seeds too" in res.output
    assert not (tmp_path / "x").exists()

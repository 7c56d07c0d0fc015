"""The stages of a suite run: make the datasets, train every run, evaluate cells (this
worker's share, resumably), evaluate as checkpoints appear, and the dispatch of a stage."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from gemkit.experiments.cells import append_cell, read_cells
from gemkit.experiments.plan import (
    log,
    run_dir,
    steps_for,
    suite_knobs,
    test_cells,
    train_command,
    validation_cells,
)
from gemkit.experiments.report import write_report
from gemkit.experiments.suites import SuiteConfig
from gemkit.experiments.tasks import (
    FORK_NAMES,
    MAZE2D_NAMES,
    MAZE_NAMES,
    dataset_id,
    split_locomotion,
)

__all__ = [
    "STAGES",
    "available",
    "cell_models_dir",
    "evaluate_cell",
    "evaluate_cells",
    "load_run_models",
    "make_dataset",
    "models_dir",
    "run_stage",
    "stage_auto",
    "stage_train",
]

#: the stages a suite run has (``all``: train, validate, test, report in turn)
STAGES = ("train", "validate", "test", "auto", "report", "all")


def make_dataset(args: SuiteConfig, task: str) -> None:
    """Make ``task``'s dataset (a tiny one with ``--smoke``)."""
    log(f"making {dataset_id(task)}")
    if task in FORK_NAMES:
        from gemkit.data import make_fork

        make_fork(2_000 if args.smoke else 50_000, seed=0, ref_episodes=5 if args.smoke else 100)
        return
    if task in MAZE2D_NAMES:
        from gemkit.data import make_maze2d

        make_maze2d(task.removeprefix("maze2d-"), steps=20_000 if args.smoke else None, seed=0,
                    ref_episodes=5 if args.smoke else 100)  # fmt: skip
        return
    if task in MAZE_NAMES:
        from gemkit.data import make_pointmaze

        make_pointmaze(task, steps=20_000 if args.smoke else None, seed=0,
                       ref_episodes=5 if args.smoke else 100)  # fmt: skip
        return
    import torch

    from gemkit.data import make_locomotion
    from gemkit.data.locomotion import default_sac_dir

    torch.set_num_threads(args.threads)
    env, kind = split_locomotion(task)
    sac_dir = default_sac_dir(env, 0) if args.sac_root is None else args.sac_root / f"{env}-seed0"
    make_locomotion(env, kind, steps=2_000 if args.smoke else None, seed=0, sac_dir=sac_dir,
                    sac_steps=300 if args.smoke else None)  # fmt: skip


def stage_train(args: SuiteConfig) -> None:
    from gemkit.data.minari_io import dataset_exists

    for task in args.tasks:
        if not dataset_exists(dataset_id(task)):
            make_dataset(args, task)
    for task in args.tasks:
        todo = [s for s in args.seeds if models_dir(args, task, s, steps_for(args, task)) is None]
        if args.runs_per_task > 1:  # finished runs (or trained past the budget) are skipped
            for i in range(0, len(todo), args.runs_per_task):
                train_batch(args, task, todo[i : i + args.runs_per_task])
            continue
        for seed in todo:
            cmd = train_command(args, task, seed)
            log(" ".join(cmd))
            subprocess.run(cmd, check=True)


def train_batch(args: SuiteConfig, task: str, seeds: list[int]) -> None:
    """Train (or resume) ``task``'s runs of ``seeds`` in this process as one batch of runs,
    each in its own run directory, with the settings :func:`train_command` gives a run alone
    (eager: a batch is vectorised, not compiled; on a GPU replayed as one CUDA graph)."""
    import attrs
    import torch

    from gemkit.data import load
    from gemkit.train import TrainConfig, apply_overrides
    from gemkit.train.checkpoint import STATE_FILE, load_config
    from gemkit.train.run import Run, train_runs

    torch.set_num_threads(args.threads)
    data, runs = load(dataset_id(task)), []
    for seed in seeds:
        out = run_dir(args, task, seed)
        resume = (out / STATE_FILE).is_file()
        cfg = (
            load_config(out)
            if resume
            else apply_overrides(TrainConfig.profile("paper"), [*args.train_set, f"seed={seed}"])
        )
        runs.append(Run(data, attrs.evolve(cfg, device=args.device), out, dataset_id(task), resume))
    log(f"training {task} seeds {seeds} as one batch of runs on {args.device}")
    train_runs(runs, steps_for(args, task), snapshot_every=args.snapshot_every,
               tensorboard=False, cuda_graph=args.device.startswith("cuda"))  # fmt: skip


def load_run_models(args: SuiteConfig, task: str, seed: int, step: int, actor: str) -> Any:
    """The networks of ``task``'s run of ``seed`` at ``step`` (``actor="baseline"``: its fair
    unimodal baseline)."""
    return _load(models_dir(args, task, seed, step), f"{task} seed {seed}", step, actor)


def _load(d: Path | None, what: str, step: int, actor: str) -> Any:
    from gemkit.models import load_models

    if d is None:
        raise SystemExit(f"no networks of {what} at step {step} yet.")
    models = load_models(d)
    if models.meta.get("step") != step:
        raise SystemExit(f"{d} is at step {models.meta.get('step')}, expected {step}.")
    return models.unimodal() if actor == "baseline" else models


def cell_models_dir(args: SuiteConfig, cell: dict[str, Any]) -> Path | None:
    """Where the networks of ``cell`` are: its own ``run`` directory's export or snapshot at
    the cell's step (a Phase I variant's cell), else the suite run's (:func:`models_dir`)."""
    if cell.get("run"):
        from gemkit.train import models_at

        return models_at(Path(cell["run"]), cell["step"])
    return models_dir(args, cell["task"], cell["train_seed"], cell["step"])


def models_dir(args: SuiteConfig, task: str, seed: int, step: int) -> Path | None:
    """Where the networks of a run at ``step`` are: the run's export or its snapshot.

    A run trained past ``step`` (continued for a longer budget) still has its snapshot there;
    without an LR schedule, the snapshot is exactly what a run stopped at ``step`` exports.
    """
    from gemkit.train import models_at

    d = run_dir(args, task, seed)
    found = models_at(d, step)
    # the run's own export answers only for its budget (the curves read snapshots)
    return None if found == d and step != steps_for(args, task) else found


def available(args: SuiteConfig, cell: dict[str, Any]) -> bool:
    """Whether the networks of ``cell`` exist yet."""
    return cell_models_dir(args, cell) is not None


#: the networks of the checkpoint a process evaluated last (one per process: a worker of a
#: Ray backend keeps its own), so consecutive cells of one checkpoint load it once
_LOADED: dict[tuple[Any, ...], Any] = {}


def evaluate_cell(args: SuiteConfig, cell: dict[str, Any]) -> dict[str, Any]:
    """One cell evaluated: the cell with its measured fields (a backend task: module level,
    its inputs and result plain data)."""
    import torch

    from gemkit.config import SelectorConfig
    from gemkit.eval.profile import cpu_name
    from gemkit.eval.runs import evaluate_config

    torch.set_num_threads(args.threads)
    d = cell_models_dir(args, cell)
    mkey = (str(d), cell["step"], cell["actor"])
    if mkey not in _LOADED:
        _LOADED.clear()
        what = f"{cell['task']} seed {cell['train_seed']}"
        _LOADED[mkey] = _load(d, what, cell["step"], cell["actor"])
    t0 = time.perf_counter()
    s = evaluate_config(
        _LOADED[mkey],
        SelectorConfig(**cell["config"]),
        dataset_id(cell["task"]),
        episodes=cell["episodes"],
        seeds=cell["eval_seeds"],
        mass_scale=cell.get("mass_scale"),
        num_envs=min(cell["episodes"], 30),
    )
    row = {
        **cell,
        **{f: v for f, v in s.row().items() if f not in cell["config"]},
        "eval_s": time.perf_counter() - t0,
        "cpu": cpu_name(),
    }
    row["returns"] = [float(x) for r in s.results for x in r.returns]
    return row


def evaluate_cells(args: SuiteConfig, cells: list[dict[str, Any]]) -> int:
    """Evaluate this worker's share of ``cells`` not cached yet whose networks exist, on the
    suite's backend (``--backend serial``: in this process; ``ray``: one task per cell, every
    result written here, in ``<out>/cells-<i>of<k>.jsonl``, as it arrives).

    Returns the number of cells of the stage still missing (all workers, unavailable included).
    """
    from gemkit.backends import RayBackend, make_backend

    i, k = (int(x) for x in args.worker.split("/"))
    done = read_cells(args.out)
    todo = [c for c in cells if c["key"] not in done]
    mine = [c for j, c in enumerate(cells) if j % k == i and c["key"] not in done]
    mine = [c for c in mine if available(args, c)]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    sink = Path(args.out) / f"cells-{i}of{k}.jsonl"
    log(f"worker {i}/{k}: {len(mine)} cells to evaluate ({len(cells)} in the stage) on the "
        f"{args.backend} backend")  # fmt: skip
    t_stage, finished = time.perf_counter(), 0

    def write(_: int, row: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        append_cell(sink, row)
        mass = f" mass {row['mass_scale']:g}" if row.get("mass_scale") is not None else ""
        log(
            f"{finished}/{len(mine)} {row['stage']} {row['task']} s{row['train_seed']} "
            f"step {row['step']} {row['actor']} n={row['config']['n']}{mass} -> "
            f"{row['score_mean']:.1f} ({row['eval_s']:.0f}s; "
            f"{time.perf_counter() - t_stage:.0f}s total)"
        )

    if mine:
        backend = make_backend(
            args.backend,
            address=args.address,
            cpus_per_task=float(args.threads),
            local_cpus=args.local_cpus,
        )
        try:
            backend.map(evaluate_cell, mine, write, args)
        finally:
            if isinstance(backend, RayBackend):
                backend.close()
    return len(todo) - len(mine)


def stage_auto(args: SuiteConfig, poll_s: float = 60.0) -> None:
    """Validate checkpoints as their runs finish, then test; until every cell is done."""
    while True:
        left = evaluate_cells(args, validation_cells(args))
        left += evaluate_cells(args, test_cells(args, None))
        if left == 0:
            knobs = suite_knobs(args)
            if evaluate_cells(args, test_cells(args, knobs)) == 0:
                return
        time.sleep(poll_s)


def run_stage(stage: str, args: SuiteConfig) -> None:
    """Run one of :data:`STAGES` of the suite run ``args``."""
    stages = ["train", "validate", "test", "report"] if stage == "all" else [stage]
    for stage in stages:
        if stage == "train":
            stage_train(args)
        elif stage == "validate":
            evaluate_cells(args, validation_cells(args))
        elif stage == "auto":
            stage_auto(args, 2.0 if args.smoke else 60.0)
        elif stage == "test":
            knobs = suite_knobs(args)
            log(f"chosen knobs: {knobs}")
            evaluate_cells(args, test_cells(args, knobs))
        else:
            write_report(args)

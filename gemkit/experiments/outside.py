"""An outside reference beside the suites: d3rlpy's IQL trained on a suite's data, its snapshots
scored on the suite's test seeds, alone and under GEM's selection rule over its critic.

Three families of tasks: ``pointmaze`` (Minari's recipe: ``umaze``, ...), ``maze2d`` (D4RL's
maze2d recipe: ``maze2d-umaze``, ...) and ``locomotion`` (D4RL's locomotion recipe:
``hopper-medium``, ...). A cell's ``task`` field is the family and its ``maze`` field the task's
name within it (the maze, or the locomotion task).

Its cells live in the suite's cell folder (``cells-iql.jsonl``, the same JSONL store: a key per
cell, a rerun's later line wins); a report (:func:`iql_report`) turns them into per-snapshot
curves and the per-seed and over-seeds means that the Maze2D page shows
(:func:`~gemkit.experiments.tables.outside_iql_section`). ``reproductions/iql_reference.py`` is
the command line. d3rlpy is an optional dependency, imported only by :func:`train_iql` and
:func:`score_iql`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.eval.profile import cpu_name
from gemkit.experiments.cells import append_cell, read_cell_file
from gemkit.experiments.plan import log
from gemkit.experiments.protocol import curve_means, seed_means
from gemkit.experiments.runs import iql_snapshot
from gemkit.experiments.tasks import LOCOMOTION_NAMES, MAZE2D_NAMES, TEST_SEEDS, dataset_id, horizon

__all__ = [
    "CURVE_FIELDS",
    "FAMILIES",
    "IQL_CELLS",
    "IQLRun",
    "curve_means",
    "iql_config",
    "iql_curves",
    "iql_report",
    "iql_statistics",
    "iql_task",
    "restore_iql_cells",
    "score_iql",
    "seed_means",
    "train_iql",
]

#: the cell file of the outside reference, beside a suite's ``cells-*.jsonl``
IQL_CELLS = "cells-iql.jsonl"
#: the fields of a cell that a report keeps (and that :func:`restore_iql_cells` reads back)
CURVE_FIELDS = ("step", "n", "lam", "beta", "value", "support", "episodes", "score_mean",
                "score_ep_std", "violation", "support_z")  # fmt: skip


#: the task families an IQL reference runs on
FAMILIES = ("pointmaze", "maze2d", "locomotion")


def iql_task(family: str, name: str) -> str:
    """The suite's task name of ``name`` within ``family`` (``maze2d`` prefixes its mazes)."""
    if family not in FAMILIES:
        raise SystemExit(f"unknown task family {family!r}; valid: {', '.join(FAMILIES)}")
    return f"maze2d-{name}" if family == "maze2d" else name


@attrs.frozen
class IQLRun:
    """One d3rlpy IQL run: the task (``umaze``: Minari's pointmaze recipe; ``maze2d-umaze``:
    D4RL's maze2d recipe; ``hopper-medium``: D4RL's locomotion recipe), its seed and where its
    snapshots go (``<runs>/<task>-s<seed>``)."""

    task: str
    seed: int
    runs: Path = attrs.field(converter=Path)

    @property
    def dir(self) -> Path:
        return self.runs / f"{self.task}-s{self.seed}"

    @property
    def family(self) -> str:
        """The cells' ``task`` field: ``maze2d``, ``locomotion`` or ``pointmaze``."""
        if self.task in MAZE2D_NAMES:
            return "maze2d"
        return "locomotion" if self.task in LOCOMOTION_NAMES else "pointmaze"

    @property
    def maze(self) -> str:
        """The cells' ``maze`` field: the task's name within its family."""
        return self.task.removeprefix("maze2d-")


def iql_config(family: str, weight_temp: float = 3.0) -> Any:
    """d3rlpy's ``IQLConfig`` for ``family``: its defaults with a standard observation scaler;
    on locomotion also rewards x 1000 / (max - min episode return of the data)
    (``ReturnBasedRewardScaler(multiplier=1000)``), the scaling of d3rlpy's own IQL
    reproduction on D4RL locomotion (IQL's paper's recipe)."""
    import d3rlpy

    extra: dict[str, Any] = {}
    if family == "locomotion":
        extra["reward_scaler"] = d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0)
    return d3rlpy.algos.IQLConfig(
        observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
        weight_temp=weight_temp, **extra,
    )  # fmt: skip


def train_iql(run: IQLRun, steps: int, snapshot_every: int, weight_temp: float = 3.0) -> None:
    """d3rlpy's ``IQLConfig`` with its defaults (expectile 0.7, temperature ``weight_temp``,
    256x256, two critics, batch 256, lr 3e-4) and :func:`iql_config`'s scalers, on the task's
    dataset (:func:`gemkit.data.bridges.to_d3rlpy`, every transition kept). A ``.d3`` snapshot
    every ``snapshot_every`` steps; an interrupted run resumes from the latest (weights and
    optimizer states; the sampling RNG restarts)."""
    import d3rlpy

    from gemkit.adapters import load_d3rlpy
    from gemkit.data import load
    from gemkit.data.bridges import to_d3rlpy

    d = run.dir
    (d / "snapshots").mkdir(parents=True, exist_ok=True)
    state_path = d / "state.json"
    step = json.loads(state_path.read_text())["step"] if state_path.is_file() else 0
    if step >= steps:
        log(f"{d} is at step {step} >= {steps}: nothing to do")
        return
    d3rlpy.seed(run.seed + 1000 * step)
    data = to_d3rlpy(load(dataset_id(run.task)))
    if step:
        algo = load_d3rlpy(d / "latest.d3")
        log(f"resuming {d} at step {step}")
    else:
        algo = iql_config(run.family, weight_temp).create(device="cpu:0")
        algo.build_with_dataset(data)
    t0, start = time.perf_counter(), step
    fitter = algo.fitter(data, n_steps=steps - step, n_steps_per_epoch=snapshot_every,
                         show_progress=False, save_interval=10**9,
                         logger_adapter=d3rlpy.logging.NoopAdapterFactory())  # fmt: skip
    for _epoch, metrics in fitter:
        step += snapshot_every
        tmp = d / ".latest.d3.tmp"
        algo.save(str(tmp))
        os.replace(tmp, d / "latest.d3")
        iql_snapshot(d, step).write_bytes((d / "latest.d3").read_bytes())
        state_path.write_text(json.dumps({"step": step, "metrics": metrics}))
        rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
        log(f"{run.task} s{run.seed} step {step}: {metrics} ({rate:.0f} steps/s so far)")


def score_iql(
    run: IQLRun,
    step: int,
    out: Path,
    *,
    n: Sequence[int] = (64,),
    support: Path | None = None,
    gem_runs: Path | None = None,
    beta: float = 1.0,
    lam: float = 0.01,
    value: str = "lcb",
    episodes: int = 30,
    lam_T: float | None = None,
) -> None:
    """Score the snapshot at ``step`` on the test seeds: IQL's own deterministic action, and
    for each N in ``n`` GEM's rule over IQL's critic (candidates from IQL's policy, its action
    the anchor; the support from the behavior GMM in ``support``, else the gemkit run of the
    same task and seed in ``gem_runs`` at this step; support weight ``lam``, or GEM's cosine
    schedule from ``lam`` to ``lam_T`` over the task's horizon). Cells not cached yet are
    appended to ``out/cells-iql.jsonl``."""
    import torch

    from gemkit import compose
    from gemkit.adapters import from_d3rlpy, load_d3rlpy, policy_from_d3rlpy
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import load_models
    from gemkit.train import models_at

    algo = load_d3rlpy(iql_snapshot(run.dir, step))
    behavior: Any = None
    support_dir: Path | None = None
    if n:  # GEM over IQL needs a behavior GMM; IQL's own action does not
        if support is not None:
            support_dir = Path(support)
        else:
            if gem_runs is None:
                raise SystemExit("GEM over IQL needs a behavior GMM: give --support or --gem-runs")
            gem_run = Path(gem_runs) / f"{run.task}-s{run.seed}"
            support_dir = models_at(gem_run, step) or gem_run
        behavior = load_models(support_dir)
        behavior.critic = from_d3rlpy(algo)
    anchor, source = policy_from_d3rlpy(algo)
    Path(out).mkdir(parents=True, exist_ok=True)
    sink = Path(out) / IQL_CELLS
    done = set(read_cell_file(sink))

    def policy(states: torch.Tensor) -> torch.Tensor:
        """IQL's own deterministic action."""
        return torch.as_tensor(algo.predict(states.cpu().numpy()))

    cells: list[tuple[str, int | None]] = [("iql", None)]
    lam_end = lam if lam_T is None else lam_T
    lams = f"lam={lam:g}" + ("" if lam_end == lam else f"->{lam_end:g}")
    if beta != 1.0:  # the default's cells keep their keys; any other beta is in the key
        lams = f"beta={beta:g} {lams}"
    task_horizon = horizon(run.task)
    cells += [(f"gem-over-iql n={k} {value} {lams}", k) for k in n]
    for label, k in cells:
        key = f"{run.task}-s{run.seed}-{step}-{label}"
        if key in done:
            continue
        t0 = time.perf_counter()
        actor: Any = policy
        if k is not None:
            actor = compose(preset="gem", models=behavior, anchor=anchor, proposer=source, n=k,
                            beta=beta, lam=lam, lam_T=lam_end, horizon=task_horizon,
                            value=value)  # fmt: skip
        s = evaluate_config(None, None, dataset_id(run.task), episodes=episodes,
                            seeds=TEST_SEEDS, num_envs=min(episodes, 30),
                            policy=actor)  # fmt: skip
        row = {"stage": "test", "task": run.family, "maze": run.maze, "train_seed": run.seed,
               "step": step, "actor": "iql (d3rlpy)", "series": label, "n": k, "key": key,
               "beta": beta, "lam": lam, "lam_T": lam_end, "value": value,
               "support": str(support_dir) if k is not None else "",
               "eval_seeds": list(TEST_SEEDS), "episodes": episodes, **s.row(),
               "eval_s": time.perf_counter() - t0, "cpu": cpu_name()}  # fmt: skip
        append_cell(sink, row)
        log(f"{key} -> {s.score_mean:.1f} ({time.perf_counter() - t0:.0f}s)")


def iql_curves(
    rows: Iterable[dict[str, Any]], maze: str, seed: int, up_to: int | None = None,
    task: str = "pointmaze",
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """The test cells of one run as curves: per series (``iql``, ``gem-over-iql n=...``),
    its cells sorted by step (the last cell of a key wins, as a rerun's would); only the
    snapshots at or below ``up_to`` when given; cells of ``task`` only (``pointmaze`` or
    ``maze2d``: older cells, written before maze2d existed, carry no task and are pointmaze's)."""
    latest = {r["key"]: r for r in rows if r["maze"] == maze and r["train_seed"] == seed
              and r.get("task", "pointmaze") == task
              and (up_to is None or r["step"] <= up_to)}  # fmt: skip
    curves: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(latest.values(), key=lambda r: (r["n"] is not None, r["n"] or 0, r["step"])):
        curves.setdefault(r["series"], []).append(r)
    return curves


def iql_report(
    out: Path, maze: str, seeds: Sequence[int], *, task: str = "pointmaze",
    up_to: int | None = None, command: str = "",
) -> tuple[dict[str, Any], dict[int, dict[str, list[dict[str, Any]]]]]:  # fmt: skip
    """The report body of ``maze``'s seeds from the cells in ``out`` (the curves and per-series
    means: per seed, and over the seeds when there are several) and the curves per seed."""
    sink = Path(out) / IQL_CELLS
    if not sink.is_file():
        raise SystemExit(f"no cells at {sink}: run the test stage with the same --out first")
    rows = list(read_cell_file(sink).values())
    per_seed = {seed: iql_curves(rows, maze, seed, up_to, task) for seed in seeds}
    for seed, curves in per_seed.items():
        if not curves:
            raise SystemExit(f"{sink} has no cells of {maze} seed {seed}")

    def curve_table(curves: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        return {k: [{f: r.get(f) for f in CURVE_FIELDS} for r in v] for k, v in curves.items()}

    name = iql_task(task, maze)
    scale = {"maze2d": "D4RL's maze2d-v1 references", "locomotion": "D4RL's locomotion references",
             "pointmaze": "gemkit's references"}[task]  # fmt: skip
    body: dict[str, Any] = {
        "what": f"d3rlpy IQL on {name} (scores on {scale}), seed(s) "
        f"{', '.join(map(str, seeds))}: its own action and GEM's rule over its critic and "
        "policy, per snapshot, on the test seeds",
        "command": command,
    }
    if len(seeds) == 1:
        body |= {"mean_score": curve_means(per_seed[seeds[0]]),
                 "curves": curve_table(per_seed[seeds[0]])}  # fmt: skip
    else:
        means = {seed: curve_means(c) for seed, c in per_seed.items()}
        body |= {"mean_over_seeds": seed_means(means),
                 "seeds": {str(seed): {"mean_score": means[seed], "curves": curve_table(c)}
                           for seed, c in per_seed.items()}}  # fmt: skip
    return body, per_seed


def restore_iql_cells(
    report: Path, out: Path, task: str, maze: str, seed: int
) -> int:  # fmt: skip
    """Append the cells of a committed report JSON to ``out/cells-iql.jsonl`` (marked
    ``restored_from``; a single-seed report's seed is ``seed``), so a new seed is reported
    beside runs whose snapshots are gone. Returns the number of cells added."""
    path = Path(report)
    if not path.is_file():
        raise SystemExit(f"--report {path}: no such file")
    body = json.loads(path.read_text())
    if "seeds" in body:
        per_seed = {int(k): v["curves"] for k, v in body["seeds"].items()}
    elif "curves" in body:
        per_seed = {seed: body["curves"]}
    else:
        raise SystemExit(f"{path} is not an IQL reference report (no curves)")
    sink = Path(out) / IQL_CELLS
    sink.parent.mkdir(parents=True, exist_ok=True)
    done = read_cell_file(sink)
    name = iql_task(task, maze)
    added = 0
    with sink.open("a") as f:
        for s, curves in per_seed.items():
            for series, cells in curves.items():
                for c in cells:
                    key = f"{name}-s{s}-{c['step']}-{series}"
                    if key in done:
                        continue
                    row = {"stage": "test", "task": task, "maze": maze, "train_seed": s,
                           "actor": "iql (d3rlpy)", "series": series, "key": key,
                           **{k: c.get(k) for k in CURVE_FIELDS},
                           "eval_seeds": list(TEST_SEEDS), "restored_from": str(path)}  # fmt: skip
                    f.write(json.dumps(row) + "\n")
                    added += 1
    log(f"restored {added} cell(s) of seed(s) {sorted(per_seed)} from {path} into {sink}")
    return added


def iql_statistics(algo: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """:func:`~gemkit.eval.critic_stats.critic_statistics` of a d3rlpy IQL (its online critics,
    value and observation scaler) on :func:`~gemkit.eval.critic_stats.fixed_transitions`."""
    import torch

    from gemkit.eval.critic_stats import critic_statistics

    mods = algo.impl.modules
    scaler = algo.observation_scaler
    with torch.no_grad():
        obs, nxt = scaler.transform(batch["obs"]), scaler.transform(batch["next_obs"])
        q = torch.stack([f(obs, batch["act"]).q_value.squeeze(-1) for f in mods.q_funcs])
        v = mods.value_func(obs).squeeze(-1)
        nv = mods.value_func(nxt).squeeze(-1)
    return critic_statistics(q, v, nv, batch["rewards"], batch["terminals"],
                             alpha=algo.config.weight_temp,
                             discount=algo.config.gamma).row()  # fmt: skip

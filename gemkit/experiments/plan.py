"""A suite run's plan: its checkpoints, and the validation and test cells of the paper's knob
protocol (validation seeds choose the knobs once per suite; test seeds measure)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.config import PRESETS
from gemkit.experiments.cells import make_cell, read_cells
from gemkit.experiments.protocol import choose_knobs
from gemkit.experiments.suites import SuiteConfig
from gemkit.experiments.tasks import TEST_SEEDS, VAL_SEEDS, dataset_id, horizon
from gemkit.train.checkpoint import STATE_FILE

__all__ = [
    "fresh_runs",
    "log",
    "mass_actors",
    "planned_results",
    "run_dir",
    "selector_params",
    "steps_for",
    "suite_knobs",
    "test_cells",
    "train_command",
    "validation_cells",
]


#: what the plan says about a cell beyond its key: the page's series, a MassScale factor, a
#: stress-test preset
PLAN_TAGS = ("series", "mass_scale", "preset")


def steps_for(config: SuiteConfig, task: str) -> int:
    """The gradient-step budget of ``task``'s runs (``--task-steps``, else ``--steps``)."""
    return int(config.task_steps.get(task, config.steps))


def run_dir(config: SuiteConfig, task: str, seed: int) -> Path:
    return Path(config.runs) / f"{task}-s{seed}"


def selector_params(config: SuiteConfig, task: str, **knobs: Any) -> dict[str, Any]:
    from gemkit.config import SelectorConfig

    cfg = SelectorConfig(**{"lam": config.lam0, "horizon": horizon(task), **knobs})
    return dict(cfg.to_dict()["params"])


def validation_cells(config: SuiteConfig) -> list[dict[str, Any]]:
    cells = []
    for task in config.tasks:
        for seed in config.seeds:
            grid = [(b, config.lam0, lt, "lcb") for b in config.betas for lt in config.lam_T]
            grid += [(1.0, c, c, "lcb") for c in config.lam_const]
            grid += [(1.0, c, c, "lcb_z") for c in config.lam_z]
            for beta, lam, lam_t, value in grid:
                params = selector_params(
                    config, task, n=config.val_n, beta=beta, lam=lam, lam_T=lam_t, value=value
                )
                cells.append(
                    make_cell(
                        "validate",
                        task,
                        seed,
                        steps_for(config, task),
                        "gem",
                        params,
                        VAL_SEEDS,
                        config.episodes,
                    )
                )
    return cells


def suite_knobs(config: SuiteConfig) -> dict[str, Any]:
    """The knobs chosen on *this* suite's validation cells (its tasks, seeds and budgets), never
    on cached cells of other checkpoints (e.g. a shorter budget of the same runs)."""
    keys = {c["key"] for c in validation_cells(config)}
    return choose_knobs(r for r in read_cells(config.out).values() if r["key"] in keys)


def test_cells(config: SuiteConfig, knobs: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The test cells; ``knobs=None`` gives only those the knobs cannot change.

    With ``N = 0`` the anchor is the only candidate, so ``beta`` and ``lambda`` cannot change the
    action: those cells (the single-shot actors and the learning curves, which compare the two
    actors single-shot) carry the default knobs and can run before the knobs are chosen.
    """
    big = max(config.budgets)
    cells = []
    for task in config.tasks:
        for seed in config.seeds:

            def add(
                actor: str,
                tag: str,
                step: int = steps_for(config, task),
                seeds: Sequence[int] = TEST_SEEDS,
                episodes: int = config.test_episodes,
                task: str = task,
                seed: int = seed,
                mass: float | None = None,
                preset: str | None = None,
                **knob: Any,
            ) -> None:
                if knob["n"] == 0:
                    parts = {k: v for k, v in knob.items() if k in ("anchor", "proposer")}
                    cfg = selector_params(config, task, n=0, **parts)
                elif knobs is None:
                    return
                else:
                    cfg = selector_params(
                        config,
                        task,
                        **{
                            "beta": knobs["beta"],
                            "lam": knobs["lam"],
                            "lam_T": knobs["lam_T"],
                            "value": knobs["value"],
                            **knob,
                        },
                    )
                tags: dict[str, Any] = {"series": tag}
                if mass is not None:
                    tags["mass_scale"] = mass
                if preset is not None:
                    tags["preset"] = preset
                cells.append(
                    make_cell("test", task, seed, step, actor, cfg, seeds, episodes, **tags)
                )

            # the largest N costs ~N/64 times more per step: fewer episodes there
            for n in config.budgets:
                eps = config.big_episodes if n == big else config.test_episodes
                add("gem", "gem", n=n, episodes=eps)
            add("baseline", "baseline", n=0)
            add("gem", "bary", n=0, anchor="bary")  # the mixture's mean as the single shot
            add("baseline", "baseline", n=config.baseline_n)
            add("gem", "no_pw", n=big, lam=0.0, lam_T=0.0, episodes=config.big_episodes)
            for name in config.stress:  # each one change from GEM at the chosen knobs
                add("gem", "stress", n=big, episodes=config.big_episodes, preset=name,
                    **PRESETS[name])  # fmt: skip
            for lam in config.frontier:
                if knobs is not None and (lam, lam) != (knobs["lam"], knobs["lam_T"]):
                    add("gem", "frontier", n=config.val_n, lam=lam, lam_T=lam)
            for step in range(
                config.snapshot_every, steps_for(config, task), config.snapshot_every
            ):
                for actor in ("gem", "baseline"):
                    add(
                        actor,
                        "curve",
                        step=step,
                        seeds=(TEST_SEEDS[0],),
                        episodes=config.curve_episodes,
                        n=0,
                    )
            if task in config.mass_tasks:
                # scale 1.0 is the nominal test cells above (MassScale(1.0) changes nothing)
                for mass in (m for m in config.mass_scales if m != 1.0):
                    for actor, n in mass_actors(config):
                        add(actor, "mass", n=n, mass=mass)
    return cells


def mass_actors(config: SuiteConfig) -> list[tuple[str, int]]:
    """The selectors of the MassScale cells: GEM at N = ``--baseline-n`` (the chosen knobs) and
    the fair baseline single-shot and with the same candidates."""
    return [("gem", config.baseline_n), ("baseline", 0), ("baseline", config.baseline_n)]


def planned_results(config: SuiteConfig, knobs: dict[str, Any]) -> list[dict[str, Any]]:
    """The cached result of every validation and test cell the plan has at ``knobs``, one row
    per planned cell, tagged with the plan's ``series`` (and MassScale factor, stress preset).

    A cell's key is what determines its numbers, not the series it was first evaluated for: a
    frontier point (GEM at ``N = --val-n`` with a constant ``lambda``) *is* the GEM cell at that
    ``N`` once the knobs choose that ``lambda``, and is not evaluated again. Its cached row
    still says ``frontier``, so the plan's tags, not the cache's, decide where it is reported.
    """
    cached = read_cells(config.out)
    rows: list[dict[str, Any]] = []
    for c in [*validation_cells(config), *test_cells(config, knobs)]:
        if c["key"] in cached:
            tags: dict[str, Any] = {t: c[t] for t in PLAN_TAGS if t in c}
            rows.append({**cached[c["key"]], **tags})
    return rows


def train_command(
    args: SuiteConfig,
    task: str,
    seed: int,
    out: Path | None = None,
    train_set: Sequence[str] | None = None,
) -> list[str]:
    """The exact ``gemkit train`` command of one run (resumes a run that exists), in ``out``
    (default :func:`run_dir`) with ``train_set`` (default ``--train-set``)."""
    out = run_dir(args, task, seed) if out is None else out
    common = [
        "--steps",
        str(steps_for(args, task)),
        "--compile",
        "--snapshot-every",
        str(args.snapshot_every),
        "--threads",
        str(args.threads),
        "--quiet",
        *(["--device", args.device] if args.device != "cpu" else []),
        *(["--cuda-graph"] if args.device.startswith("cuda") else []),
    ]
    if (out / STATE_FILE).is_file():
        return ["gemkit", "train", "--resume", str(out), *common]
    sets = [x for kv in (args.train_set if train_set is None else train_set)
            for x in ("--set", kv)]  # fmt: skip
    return [
        "gemkit",
        "train",
        "--dataset",
        dataset_id(task),
        "--seed",
        str(seed),
        "--out",
        str(out),
        *sets,
        *common,
    ]


def fresh_runs(args: SuiteConfig) -> SuiteConfig:
    """``args`` with a runs folder that holds nothing (the command of a fresh run)."""
    return attrs.evolve(args, runs=Path("<runs>"))


def log(msg: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

"""A resumable grid over GEM's inference-time knobs on fixed trained networks (no retraining).

The grid is the product of presets x N x beta x lambda_0 x lambda_T x k x normalisation. A cell's
preset is applied *last*, so an ablation keeps changing exactly one factor of the cell's knobs
(``no_pw`` stays ``lambda = 0`` whatever the ``--lam`` axis says); cells that resolve to the same
:class:`SelectorConfig` are run once. Every (cell, seed) evaluation is a cell of gemkit's one
cell store (:mod:`gemkit.experiments.cells`, stage ``"sweep"``), appended as soon as it
finishes, so a rerun with the same output directory skips what is already there.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.backends import Backend, FanOutReport, SerialBackend
from gemkit.config import PRESETS, SelectorConfig
from gemkit.errors import GemkitError
from gemkit.eval.analysis import SweepAnalysis, analyze_sweep
from gemkit.eval.evaluate import evaluate
from gemkit.eval.io import read_csv, write_csv
from gemkit.eval.results import KNOBS, METRICS, config_key, reduce_seeds
from gemkit.eval.runs import env_horizon, eval_seed
from gemkit.experiments.cells import append_cell, make_cell, read_cells
from gemkit.models.io import Models, load_models
from gemkit.selector import compose

__all__ = [
    "RUN_FIELDS",
    "STORE",
    "SweepCell",
    "SweepGrid",
    "aggregate_runs",
    "migrate_runs_csv",
    "read_runs",
    "run_sweep",
    "sweep_cells",
    "write_sweep_report",
]

#: Columns of the legacy ``runs.csv`` (one row per (cell, seed)), read to migrate it.
RUN_FIELDS = ("preset", *KNOBS, "seed", "episodes", "mass_scale", *METRICS)


@attrs.frozen
class SweepCell:
    """One point of the grid: a preset label and the resolved selector config."""

    preset: str
    config: SelectorConfig

    @property
    def key(self) -> tuple[Any, ...]:
        """The config's identity (:func:`gemkit.eval.results.config_key`), the resume key."""
        return config_key(self.config.to_dict()["params"])


@attrs.frozen(kw_only=True)
class SweepGrid:
    """The axes of a sweep; each is a list of values (the GEM defaults when left out).

    Attributes:
        presets: preset names (applied after the knobs, see the module docstring).
        n: candidate budgets ``N``.
        beta: LCB pessimism values.
        lam: ``lambda_0`` values.
        lam_T: ``lambda_T`` values (``None`` = constant ``lambda_0``).
        k: top-k sizes (``k > 1`` uses the ``topk`` reducer).
        support: normalisations (``zscore``, ``raw``).
        value: value terms (``lcb``, ``lcb_z``, ``mean``, ``min``, ...).
        horizon: ``H`` of the lambda schedule (``None``: the env's time limit).
    """

    presets: tuple[str, ...] = ("gem",)
    n: tuple[int, ...] = (64,)
    beta: tuple[float, ...] = (1.0,)
    lam: tuple[float, ...] = (0.5,)
    lam_T: tuple[float | None, ...] = (None,)
    k: tuple[int, ...] = (1,)
    support: tuple[str, ...] = ("zscore",)
    value: tuple[str, ...] = ("lcb",)
    horizon: int | None = None

    def cells(self, horizon: int | None = None) -> list[SweepCell]:
        """The distinct cells, in grid order; invalid combinations are dropped.

        Dropped: an empty candidate set (``no_anchor`` with ``N = 0``) and ``k`` larger than the
        candidate set.

        Args:
            horizon: default ``H`` when :attr:`horizon` is ``None`` (e.g. the env's limit).

        Raises:
            GemkitError: an unknown preset or an invalid knob value.
        """
        for p in self.presets:
            if p not in PRESETS:
                SelectorConfig.preset(p)  # raises the did-you-mean error
        h = self.horizon if self.horizon is not None else horizon
        out: list[SweepCell] = []
        seen: set[tuple[Any, ...]] = set()
        for preset, n, beta, lam, lam_t, k, sup, value in itertools.product(
            self.presets, self.n, self.beta, self.lam, self.lam_T, self.k, self.support,
            self.value,
        ):  # fmt: skip
            knobs: dict[str, Any] = {
                "n": n, "beta": beta, "lam": lam, "lam_T": lam_t, "k": k, "support": sup,
                "value": value, "reducer": "topk" if k > 1 else "top1",
            }  # fmt: skip
            if h is not None:
                knobs["horizon"] = h
            cfg = SelectorConfig(**{**knobs, **PRESETS[preset]})
            size = cfg.n + int(cfg.anchor != "none")  # candidates per state
            if size == 0 or (cfg.reducer == "topk" and cfg.k > size):
                continue
            cell = SweepCell(preset, cfg)
            if cell.key in seen:
                continue
            seen.add(cell.key)
            out.append(cell)
        return out

    def reference(self, horizon: int | None = None) -> SelectorConfig:
        """GEM at the first value of every axis (the baseline the plots compare against)."""
        h = self.horizon if self.horizon is not None else horizon
        k = self.k[0]
        knobs: dict[str, Any] = {
            "n": self.n[0], "beta": self.beta[0], "lam": self.lam[0], "lam_T": self.lam_T[0],
            "k": k, "support": self.support[0], "value": self.value[0],
            "reducer": "topk" if k > 1 else "top1",
        }  # fmt: skip
        if h is not None:
            knobs["horizon"] = h
        return SelectorConfig(**knobs)


#: the file a sweep's driver appends its cells to (the shared store, one writer)
STORE = "cells-0of1.jsonl"
#: the cell-store ``actor`` of a sweep: fixed networks loaded from a checkpoint
SWEEP_ACTOR = "models"


def sweep_cells(
    target: str, cell: SweepCell, seeds: Sequence[int], episodes: int, mass_scale: float | None
) -> list[dict[str, Any]]:
    """The evaluation cells of one grid point, one per evaluation seed, in the shared cell
    store's format (:func:`gemkit.experiments.cells.make_cell`, stage ``"sweep"``).

    A cell's key hashes the target, the resolved selector config, the seed, the episodes and
    the MassScale factor; the preset's name is a tag, so two presets that resolve to the same
    config share their cells.
    """
    params = cell.config.to_dict()["params"]
    tags = {"mass_scale": mass_scale, "preset": cell.preset}
    return [
        make_cell("sweep", target, None, None, SWEEP_ACTOR, params, [s], episodes, **tags)
        for s in seeds
    ]


def read_runs(path: str | Path) -> list[dict[str, str]]:
    """The rows of a legacy ``runs.csv`` (empty when the file does not exist); a sweep folder
    written before sweeps used the cell store is migrated from it (:func:`run_sweep`)."""
    p = Path(path)
    if p.is_file():
        with p.open(newline="") as f:
            header = next(csv.reader(f), None)
        if header is None or not {"preset", "seed", "episodes", "mass_scale"} <= set(header):
            raise GemkitError(
                f"{p} is not a gemkit sweep runs.csv (unexpected columns); use a fresh --out."
            )
    return read_csv(p)


def _legacy_done_key(knobs: Any, seed: Any, episodes: Any, mass: Any) -> tuple[Any, ...]:
    return (config_key(knobs), str(seed), str(episodes), "" if mass is None else repr(float(mass)))


def migrate_runs_csv(runs_csv: Path, store: Path, planned: Sequence[dict[str, Any]]) -> int:
    """Copy the legacy ``runs.csv`` rows of ``planned`` cells missing from the store into it;
    returns how many were copied (``runs.csv`` is left as it is)."""
    legacy = {
        _legacy_done_key(r, r["seed"], r["episodes"], r["mass_scale"] or None): r
        for r in read_runs(runs_csv)
    }
    copied = 0
    for c in planned:
        r = legacy.get(
            _legacy_done_key(c["config"], c["eval_seeds"][0], c["episodes"], c["mass_scale"])
        )
        if r is not None:
            metrics = {m: None if r[m] in ("", "None") else float(r[m]) for m in METRICS}
            append_cell(store, {**c, **metrics, "migrated_from": "runs.csv"})
            copied += 1
    return copied


def _sweep_task(
    shared: tuple[Models, str, int | None], item: tuple[SweepCell, dict[str, Any]]
) -> dict[str, Any]:
    """One (cell, seed) evaluation as a cell-store row (what every backend runs)."""
    models, target, max_episode_steps = shared
    cell, planned = item
    (seed,) = planned["eval_seeds"]
    selector = compose(config=cell.config, models=models, seed=eval_seed(seed))
    r = evaluate(
        selector,
        target,
        episodes=planned["episodes"],
        seed=eval_seed(seed),
        mass_scale=planned["mass_scale"],
        max_episode_steps=max_episode_steps,
    )
    row = {**planned, **{m: getattr(r, m) for m in METRICS}}
    row["returns"] = [float(x) for x in r.returns]
    return row


def run_sweep(
    models: Models | str | Path,
    target: str,
    grid: SweepGrid,
    out_dir: str | Path,
    *,
    episodes: int = 10,
    seeds: Sequence[int] = (0,),
    mass_scale: float | None = None,
    max_episode_steps: int | None = None,
    progress: Callable[[int, int, SweepCell, int, bool], None] | None = None,
    backend: Backend | None = None,
    timing: Callable[[FanOutReport], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every (cell, seed) of ``grid`` not yet in ``out_dir``'s cell store; write the
    summary.

    Args:
        models: the fixed networks or a checkpoint directory.
        target: env id or dataset id to evaluate in.
        grid: the axes.
        out_dir: output directory, a cell store (:mod:`gemkit.experiments.cells`): each
            finished (cell, seed) is appended to :data:`STORE` by this process alone, one whole
            line at a time; ``sweep.csv`` (aggregated, this grid's cells only) is rewritten.
            A legacy ``runs.csv`` there is migrated into the store first.
        episodes: episodes per (cell, seed).
        seeds: evaluation seeds.
        mass_scale: MassScale factor of the evaluation environments.
        max_episode_steps: override the environment's time limit.
        progress: ``progress(done, total, cell, seed, skipped)`` after each (cell, seed), in
            the order they finish.
        backend: where the evaluations run (:mod:`gemkit.backends`; default serial, here). Any
            backend gives the same rows; the store lists them in the order they finished.
        timing: called with the backend's :class:`~gemkit.backends.FanOutReport`.

    Returns:
        The aggregated rows (see :func:`aggregate_runs`), one per cell, in grid order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = load_models(models) if isinstance(models, (str, Path)) else models
    horizon = max_episode_steps if max_episode_steps is not None else env_horizon(target)
    cells = grid.cells(horizon)
    planned = [
        (cell, c) for cell in cells for c in sweep_cells(target, cell, seeds, episodes, mass_scale)
    ]
    store = out / STORE
    done = read_cells(out)
    if (out / "runs.csv").is_file():
        migrate_runs_csv(out / "runs.csv", store, [c for _, c in planned if c["key"] not in done])
        done = read_cells(out)
    total, count = len(planned), 0
    todo: list[tuple[SweepCell, dict[str, Any]]] = []
    for cell, c in planned:
        if c["key"] in done:
            count += 1
            if progress is not None:
                progress(count, total, cell, c["eval_seeds"][0], True)
        else:
            todo.append((cell, c))

    def write(i: int, row: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        append_cell(store, row)
        if progress is not None:
            progress(count, total, todo[i][0], row["eval_seeds"][0], False)

    shared = (m, target, max_episode_steps)
    report = (backend or SerialBackend()).map(_sweep_task, todo, write, shared)
    if timing is not None:
        timing(report)
    rows = aggregate_runs(read_cells(out), target, cells, seeds, episodes, mass_scale)
    write_csv(out / "sweep.csv", rows)
    return rows


def aggregate_runs(
    store: Mapping[str, Mapping[str, Any]],
    target: str,
    cells: Sequence[SweepCell],
    seeds: Sequence[int],
    episodes: int,
    mass_scale: float | None = None,
) -> list[dict[str, Any]]:
    """One row per cell: the knobs, then each metric's mean (and the score's std) over seeds.

    Args:
        store: evaluated cells by key (:func:`gemkit.experiments.cells.read_cells`).
        target, cells, seeds, episodes, mass_scale: what to look up (:func:`sweep_cells`);
            a cell none of whose seeds is in the store is left out.

    Returns:
        Dicts with ``preset``, the knobs, ``seeds`` (how many were found), ``episodes``, the
        means of :data:`~gemkit.eval.results.METRICS` and ``score_std`` (population std over
        seeds), as :func:`~gemkit.eval.results.reduce_seeds` computes them.
    """
    out: list[dict[str, Any]] = []
    for cell in cells:
        planned = sweep_cells(target, cell, seeds, episodes, mass_scale)
        group = [store[c["key"]] for c in planned if c["key"] in store]
        if not group:
            continue
        params = cell.config.to_dict()["params"]
        row: dict[str, Any] = {"preset": cell.preset, **{k: params[k] for k in KNOBS}}
        row["seeds"] = len(group)
        row["episodes"] = episodes
        row.update(reduce_seeds(group))
        out.append(row)
    return out


def write_sweep_report(
    rows: Sequence[dict[str, Any]], grid: SweepGrid, horizon: int | None, out_dir: str | Path
) -> tuple[SweepAnalysis, list[Path]]:
    """Analyse a sweep's rows around ``grid``'s reference config and write what it says.

    Writes the delta tables (``ablations.csv``, ``normalization.csv``,
    ``lambda_frontier.csv``, those that are not empty) and the figures
    (:func:`gemkit.eval.plots.plot_sweep`) into ``out_dir``.

    Returns:
        ``(analysis, written paths)``.
    """
    from gemkit.eval.plots import plot_sweep

    out = Path(out_dir)
    analysis = analyze_sweep(rows, grid.reference(horizon), max(grid.n))
    written = plot_sweep(analysis, out)
    for name, table in analysis.tables.items():
        if table:
            written.append(write_csv(out / f"{name}.csv", table))
    return analysis, written

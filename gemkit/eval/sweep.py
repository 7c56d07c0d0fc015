"""A resumable grid over GEM's inference-time knobs on fixed trained networks (no retraining).

The grid is the product of presets x N x beta x lambda_0 x lambda_T x k x normalisation. A cell's
preset is applied *last*, so an ablation keeps changing exactly one factor of the cell's knobs
(``no_pw`` stays ``lambda = 0`` whatever the ``--lam`` axis says); cells that resolve to the same
:class:`SelectorConfig` are run once. Every (cell, seed) evaluation is appended to ``runs.csv``
as soon as it finishes, so a rerun with the same output directory skips what is already there.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.backends import Backend, FanOutReport, SerialBackend
from gemkit.config import PRESETS, SelectorConfig
from gemkit.errors import GemkitError
from gemkit.eval.analysis import SweepAnalysis, analyze_sweep
from gemkit.eval.evaluate import EvalResult, evaluate
from gemkit.eval.io import read_csv, write_csv
from gemkit.eval.results import KNOBS, METRICS, config_key, reduce_seeds
from gemkit.eval.runs import env_horizon, eval_seed
from gemkit.models.io import Models, load_models
from gemkit.selector import compose

__all__ = [
    "RUN_FIELDS",
    "SweepCell",
    "SweepGrid",
    "aggregate_runs",
    "append_row",
    "read_runs",
    "run_sweep",
    "write_sweep_report",
]

#: Columns of ``runs.csv``: one row per (cell, seed); a cell is identified by its knobs
#: (:func:`gemkit.eval.results.config_key`).
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
        horizon: ``H`` of the lambda schedule (``None``: the env's time limit).
    """

    presets: tuple[str, ...] = ("gem",)
    n: tuple[int, ...] = (64,)
    beta: tuple[float, ...] = (1.0,)
    lam: tuple[float, ...] = (0.5,)
    lam_T: tuple[float | None, ...] = (None,)
    k: tuple[int, ...] = (1,)
    support: tuple[str, ...] = ("zscore",)
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
        for preset, n, beta, lam, lam_t, k, sup in itertools.product(
            self.presets, self.n, self.beta, self.lam, self.lam_T, self.k, self.support
        ):
            knobs: dict[str, Any] = {
                "n": n, "beta": beta, "lam": lam, "lam_T": lam_t, "k": k, "support": sup,
                "reducer": "topk" if k > 1 else "top1",
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
            "k": k, "support": self.support[0], "reducer": "topk" if k > 1 else "top1",
        }  # fmt: skip
        if h is not None:
            knobs["horizon"] = h
        return SelectorConfig(**knobs)


def read_runs(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``runs.csv`` (empty when the file does not exist)."""
    p = Path(path)
    if p.is_file():
        with p.open(newline="") as f:
            header = next(csv.reader(f), None)
        if header is None or tuple(header) != RUN_FIELDS:
            raise GemkitError(
                f"{p} is not a gemkit sweep runs.csv (unexpected columns); use a fresh --out."
            )
    return read_csv(p)


def _fmt(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _run_row(
    cell: SweepCell, seed: int, episodes: int, mass: float | None, r: EvalResult
) -> dict[str, Any]:
    params = cell.config.to_dict()["params"]
    row: dict[str, Any] = {"preset": cell.preset}
    for k in KNOBS:
        row[k] = "" if params[k] is None else params[k]
    row.update(seed=seed, episodes=episodes, mass_scale=_fmt(mass))
    row.update({m: _fmt(getattr(r, m)) for m in METRICS})
    return row


def _done_key(
    key: tuple[Any, ...], seed: Any, episodes: Any, mass: Any
) -> tuple[tuple[Any, ...], str, str, str]:
    return (key, str(seed), str(episodes), str(mass))


def _sweep_task(
    shared: tuple[Models, str, int, float | None, int | None], item: tuple[SweepCell, int]
) -> dict[str, Any]:
    """One (cell, seed) evaluation as a ``runs.csv`` row (what every backend runs)."""
    models, target, episodes, mass_scale, max_episode_steps = shared
    cell, seed = item
    selector = compose(config=cell.config, models=models, seed=eval_seed(seed))
    r = evaluate(
        selector,
        target,
        episodes=episodes,
        seed=eval_seed(seed),
        mass_scale=mass_scale,
        max_episode_steps=max_episode_steps,
    )
    return _run_row(cell, seed, episodes, mass_scale, r)


def append_row(path: Path, fields: Sequence[str], row: dict[str, Any]) -> None:
    """Append one CSV row whole or not at all: one write of the full line, flushed and synced.

    A torn last line (a driver killed mid-write) is cut off before appending, so a file never
    holds a partial row.
    """
    buf = io.StringIO()
    csv.DictWriter(buf, fields).writerow(row)
    with path.open("r+b") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
        f.seek(0, os.SEEK_END)
        f.write(buf.getvalue().encode())
        f.flush()
        os.fsync(f.fileno())


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
    """Run every (cell, seed) of ``grid`` not yet in ``out_dir/runs.csv``; write the summary.

    Args:
        models: the fixed networks or a checkpoint directory.
        target: env id or dataset id to evaluate in.
        grid: the axes.
        out_dir: output directory; ``runs.csv`` (per seed) is appended to by this process alone,
            one whole row per finished (cell, seed); ``sweep.csv`` (aggregated, this grid's
            cells only) is rewritten.
        episodes: episodes per (cell, seed).
        seeds: evaluation seeds.
        mass_scale: MassScale factor of the evaluation environments.
        max_episode_steps: override the environment's time limit.
        progress: ``progress(done, total, cell, seed, skipped)`` after each (cell, seed), in
            the order they finish.
        backend: where the evaluations run (:mod:`gemkit.backends`; default serial, here). Any
            backend gives the same rows; ``runs.csv`` lists them in the order they finished.
        timing: called with the backend's :class:`~gemkit.backends.FanOutReport`.

    Returns:
        The aggregated rows (see :func:`aggregate_runs`), one per cell, in grid order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = load_models(models) if isinstance(models, (str, Path)) else models
    horizon = max_episode_steps if max_episode_steps is not None else env_horizon(target)
    cells = grid.cells(horizon)
    runs_path = out / "runs.csv"
    done = {
        _done_key(config_key(r), r["seed"], r["episodes"], r["mass_scale"])
        for r in read_runs(runs_path)
    }
    if not runs_path.is_file():
        with runs_path.open("w", newline="") as f:
            csv.DictWriter(f, RUN_FIELDS).writeheader()
    total = len(cells) * len(seeds)
    count = 0
    todo: list[tuple[SweepCell, int]] = []
    for cell in cells:
        for seed in seeds:
            if _done_key(cell.key, seed, episodes, _fmt(mass_scale)) in done:
                count += 1
                if progress is not None:
                    progress(count, total, cell, seed, True)
            else:
                todo.append((cell, seed))

    def write(i: int, row: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        append_row(runs_path, RUN_FIELDS, row)
        if progress is not None:
            progress(count, total, *todo[i], False)

    shared = (m, target, episodes, mass_scale, max_episode_steps)
    report = (backend or SerialBackend()).map(_sweep_task, todo, write, shared)
    if timing is not None:
        timing(report)
    rows = aggregate_runs(read_runs(runs_path), cells, seeds, episodes, mass_scale)
    write_csv(out / "sweep.csv", rows)
    return rows


def aggregate_runs(
    runs: Sequence[dict[str, str]],
    cells: Sequence[SweepCell],
    seeds: Sequence[int],
    episodes: int,
    mass_scale: float | None = None,
) -> list[dict[str, Any]]:
    """One row per cell: the knobs, then each metric's mean (and the score's std) over seeds.

    Returns:
        Dicts with ``preset``, the knobs, ``seeds`` (how many were found), ``episodes``, the
        means of :data:`~gemkit.eval.results.METRICS` and ``score_std`` (population std over
        seeds), as :func:`~gemkit.eval.results.reduce_seeds` computes them.
    """
    wanted = {str(s) for s in seeds}
    by_key: dict[tuple[Any, ...], list[dict[str, str]]] = {}
    for r in runs:
        if (
            r["seed"] in wanted
            and r["episodes"] == str(episodes)
            and r["mass_scale"] == _fmt(mass_scale)
        ):
            by_key.setdefault(config_key(r), []).append(r)
    out: list[dict[str, Any]] = []
    for cell in cells:
        group = by_key.get(cell.key, [])
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

"""The quickstart experiment: fork dataset -> Phase I -> GEM vs a same-critic unimodal actor.

:func:`run_quickstart` is what ``gemkit quickstart`` runs, start to finish, offline on a CPU:

1. record ``gemkit/fork-v0`` in the local Minari store (an existing one is reused);
2. train GEM's Phase I (critic ensemble, value, behavior GMM, K-component actor);
3. take the fair same-critic baseline trained in the same run: a ``K = 1`` Gaussian actor (IQL's
   unimodal policy) updated from the same minibatches, critic and value as GEM's actor
   (:meth:`gemkit.models.Models.unimodal`);
4. evaluate both actors over the candidate budgets ``N`` (``N = 0``: the single-shot actor),
   several seeds each;
5. record a few paths of GEM and of the single-shot unimodal actor from the start state;
6. write ``results.csv``, ``results.json`` and ``quickstart.png``.

Nothing is hard-coded about the outcome: every number in the outputs is measured in the run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from gemkit.config import SelectorConfig
from gemkit.data.fork import FORK_DATASET_ID, make_fork
from gemkit.data.minari_io import dataset_exists, dataset_path, load
from gemkit.eval.plots import plot_quickstart
from gemkit.eval.runs import RunSummary, eval_seed, evaluate_config
from gemkit.eval.sweep import write_csv
from gemkit.eval.trajectories import rollout_paths
from gemkit.models.io import save_models
from gemkit.selector import compose
from gemkit.train import TrainConfig, train

__all__ = ["QuickstartConfig", "QuickstartResult", "finite_json", "run_quickstart"]

#: ``progress(stage, done, total)``: stage is ``data``, ``train``, ``unimodal``, ``eval`` or
#: ``paths``.
ProgressFn = Callable[[str, int, int], None]


@attrs.frozen(kw_only=True)
class QuickstartConfig:
    """Budget of the quickstart (defaults: about 1-2 minutes on 2 CPU cores).

    Attributes:
        data_steps: transitions of the fork dataset (when it has to be made).
        steps: Phase I gradient steps (behavior pretraining included).
        pretrain_steps: behavior-GMM-only steps at the start.
        hidden: MLP widths of every network.
        n_critics: critic ensemble size ``E``.
        n_components: ``K`` of the GEM actor and the behavior GMM.
        batch_size: minibatch size.
        n: GEM's candidate budget in the headline comparison.
        budgets: the ``N`` values of the score-vs-N curves (must include ``0`` and ``n``).
        episodes: evaluation episodes per seed.
        seeds: evaluation seeds.
        paths: recorded episodes per actor for the trajectory plot.
        seed: seeds dataset and training.
    """

    data_steps: int = 20_000
    steps: int = 4_000
    pretrain_steps: int = 1_000
    hidden: tuple[int, ...] = (128, 128)
    n_critics: int = 5
    n_components: int = 5
    batch_size: int = 256
    n: int = 64
    budgets: tuple[int, ...] = (0, 1, 4, 16, 64, 256)
    episodes: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    paths: int = 6
    seed: int = 0

    @classmethod
    def fast(cls, **overrides: Any) -> QuickstartConfig:
        """A seconds-long budget (tests, smoke runs): tiny networks and few steps."""
        base: dict[str, Any] = {
            "data_steps": 2_000, "steps": 300, "pretrain_steps": 100,
            "hidden": (32, 32), "n_critics": 2, "n_components": 3, "batch_size": 64, "n": 16,
            "budgets": (0, 16), "episodes": 4, "seeds": (0,), "paths": 2,
        }  # fmt: skip
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = attrs.asdict(self)
        for k in ("hidden", "budgets", "seeds"):
            d[k] = list(d[k])
        return d


@attrs.frozen
class QuickstartResult:
    """What :func:`run_quickstart` measured and wrote.

    Attributes:
        table: the headline rows (GEM at ``n``, GEM anchor only, unimodal single-shot,
            unimodal with ``n`` candidates), as :meth:`RunSummary.row` dicts plus ``actor``.
        budget: every (actor, N) row of the score-vs-N curves.
        files: name -> path of everything written (``results_csv``, ``results_json``, ``png``,
            ``gem_checkpoint``, ``unimodal_checkpoint``).
        dataset: id, size and whether it was made or reused.
        seconds: wall time per stage.
    """

    table: list[dict[str, Any]]
    budget: list[dict[str, Any]]
    files: dict[str, Path]
    dataset: dict[str, Any]
    seconds: dict[str, float]


def _row(actor: str, s: RunSummary) -> dict[str, Any]:
    return {"actor": actor, **s.row()}


def run_quickstart(
    out_dir: str | Path,
    config: QuickstartConfig | None = None,
    *,
    progress: ProgressFn | None = None,
) -> QuickstartResult:
    """Run the quickstart experiment (see the module docstring) and write its outputs.

    Args:
        out_dir: where checkpoints, tables and the figure go (created).
        config: the budget (default :class:`QuickstartConfig`).
        progress: ``progress(stage, done, total)`` callback.

    Returns:
        The :class:`QuickstartResult`.
    """
    cfg = config or QuickstartConfig()
    if 0 not in cfg.budgets or cfg.n not in cfg.budgets:
        raise ValueError(f"budgets {cfg.budgets} must include 0 and n = {cfg.n}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    # 1. data
    t0 = time.perf_counter()
    made = not dataset_exists(FORK_DATASET_ID)
    if made:
        make_fork(
            cfg.data_steps,
            seed=cfg.seed,
            progress=lambda d, t: report("data", d, t),
        )
    data = load(FORK_DATASET_ID)
    dataset = {
        "id": FORK_DATASET_ID,
        "transitions": len(data),
        "made": made,
        "path": str(dataset_path(FORK_DATASET_ID)),
    }
    seconds["data"] = time.perf_counter() - t0

    # 2. Phase I
    t0 = time.perf_counter()
    tcfg = TrainConfig(
        hidden=cfg.hidden,
        n_critics=cfg.n_critics,
        n_components=cfg.n_components,
        batch_size=cfg.batch_size,
        gmm_pretrain_steps=min(cfg.pretrain_steps, cfg.steps),
        seed=cfg.seed,
    )
    gem_dir = out / "gem"
    models = train(
        data,
        tcfg,
        gem_dir,
        cfg.steps,
        save_every=max(cfg.steps, 1),
        log_every=max(cfg.steps // 20, 1),
        progress=lambda p: report("train", p.step, p.total),
        tensorboard=False,
    )
    seconds["train"] = time.perf_counter() - t0

    # 3. the same-critic unimodal actor, trained in the same run
    t0 = time.perf_counter()
    uni = models.unimodal()
    uni_dir = out / "unimodal"
    save_models(uni_dir, uni)
    seconds["unimodal"] = time.perf_counter() - t0

    # 4. evaluation over budgets
    t0 = time.perf_counter()
    actors = {"GEM (K-GMM actor)": models, "unimodal (K=1 actor)": uni}
    total = len(actors) * len(cfg.budgets)
    budget: list[dict[str, Any]] = []
    summaries: dict[tuple[str, int], RunSummary] = {}
    done = 0
    for name, m in actors.items():
        for n in cfg.budgets:
            sc = SelectorConfig(n=n, horizon=100)
            s = evaluate_config(
                m, sc, FORK_DATASET_ID, episodes=cfg.episodes, seeds=cfg.seeds,
                label=f"{name}, N={n}",
            )  # fmt: skip
            summaries[(name, n)] = s
            budget.append(_row(name, s))
            done += 1
            report("eval", done, total)
    seconds["eval"] = time.perf_counter() - t0
    gem_name, uni_name = list(actors)
    table = [
        _row(gem_name, summaries[(gem_name, cfg.n)]),
        _row(gem_name, summaries[(gem_name, 0)]),
        _row(uni_name, summaries[(uni_name, 0)]),
        _row(uni_name, summaries[(uni_name, cfg.n)]),
    ]
    labels = [
        f"GEM, N={cfg.n}",
        "GEM actor anchor only, N=0",
        "unimodal single-shot, N=0",
        f"unimodal + {cfg.n} candidates (same critic)",
    ]
    for r, lab in zip(table, labels, strict=True):
        r["label"] = lab

    # 5. paths
    t0 = time.perf_counter()
    paths = {
        f"GEM N={cfg.n}": rollout_paths(
            compose(config=SelectorConfig(n=cfg.n, horizon=100), models=models),
            FORK_DATASET_ID,
            episodes=cfg.paths,
            seed=eval_seed(cfg.seed),
        ),
        "unimodal single-shot": rollout_paths(
            compose(config=SelectorConfig(n=0, horizon=100), models=uni),
            FORK_DATASET_ID,
            episodes=cfg.paths,
            seed=eval_seed(cfg.seed),
        ),
    }
    report("paths", 1, 1)
    seconds["paths"] = time.perf_counter() - t0

    # 6. outputs
    png = plot_quickstart(
        paths,
        {
            gem_name: [r for r in budget if r["actor"] == gem_name],
            f"{uni_name} + N candidates": [r for r in budget if r["actor"] == uni_name],
        },
        out / "quickstart.png",
    )
    csv_path = out / "results.csv"
    write_csv(csv_path, [{"table": "headline", **r} for r in table]
              + [{"table": "budget", **r} for r in budget])  # fmt: skip
    files = {
        "results_csv": csv_path,
        "results_json": out / "results.json",
        "png": png,
        "gem_checkpoint": gem_dir,
        "unimodal_checkpoint": uni_dir,
    }
    payload = {
        "config": cfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "dataset": dataset,
        "headline": table,
        "budget": budget,
        "paths": {
            k: [{"success": ok, "steps": int(len(xy) - 1)} for xy, ok in v]
            for k, v in paths.items()
        },
        "seconds": seconds,
        "files": {k: str(v) for k, v in files.items()},
    }
    (out / "results.json").write_text(json.dumps(finite_json(payload), indent=2, default=str))
    return QuickstartResult(
        table=table, budget=budget, files=files, dataset=dataset, seconds=seconds
    )


def finite_json(x: Any) -> Any:
    """``x`` with NaN/inf floats as ``None`` and paths as strings (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): finite_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite_json(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x

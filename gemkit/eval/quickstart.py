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
A second run in the same folder reuses what the first finished (its checkpoint, and its results
when the budget is the same) and says so; ``overwrite=True`` starts afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from gemkit.config import SelectorConfig
from gemkit.data.fork import FORK_DATASET_ID, make_fork
from gemkit.data.minari_io import dataset_exists, dataset_path, load
from gemkit.errors import CheckpointError, GemkitError
from gemkit.eval.io import finite_json, write_csv, write_json
from gemkit.eval.plots import plot_quickstart
from gemkit.eval.runs import RunSummary, eval_seed, evaluate_config
from gemkit.eval.trajectories import rollout_paths
from gemkit.models.io import load_models, save_models
from gemkit.selector import compose
from gemkit.train import TrainConfig, plan_run, train
from gemkit.train.batches import dataset_fingerprint
from gemkit.train.checkpoint import (
    STATE_FILE,
    config_differences,
    read_state_header,
    resume_pretrain_steps,
)

__all__ = ["QuickstartConfig", "QuickstartResult", "run_quickstart"]

#: ``progress(stage, done, total)``: stage is ``data``, ``train``, ``unimodal``, ``eval`` or
#: ``paths``.
ProgressFn = Callable[[str, int, int], None]


def _small_profile() -> TrainConfig:
    return TrainConfig.profile("small")


@attrs.frozen(kw_only=True)
class QuickstartConfig:
    """Budget of the quickstart (defaults: about 1-2 minutes on 2 CPU cores).

    Attributes:
        data_steps: transitions of the fork dataset (when it has to be made).
        steps: Phase I gradient steps (behavior pretraining included: at most a quarter, see
            :func:`gemkit.train.plan_run`).
        train: the Phase I hyperparameters: the ``small`` training profile
            (``TrainConfig.profile("small")``, 128x128 MLPs, ``E = 5``, ``K = 5``); its ``seed``
            is replaced by :attr:`seed`.
        n: GEM's candidate budget in the headline comparison.
        budgets: the ``N`` values of the score-vs-N curves (must include ``0`` and ``n``).
        episodes: evaluation episodes per seed.
        seeds: evaluation seeds.
        paths: recorded episodes per actor for the trajectory plot.
        seed: seeds dataset and training.
    """

    data_steps: int = 20_000
    steps: int = 4_000
    train: TrainConfig = attrs.field(factory=_small_profile)
    n: int = 64
    budgets: tuple[int, ...] = (0, 1, 4, 16, 64, 256)
    episodes: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    paths: int = 6
    seed: int = 0

    @classmethod
    def fast(cls, **overrides: Any) -> QuickstartConfig:
        """A seconds-long budget (tests, smoke runs): tiny networks and few steps."""
        tiny = TrainConfig.profile(
            "small", hidden=(32, 32), n_critics=2, n_components=3, batch_size=64,
            gmm_pretrain_steps=75,
        )  # fmt: skip
        base: dict[str, Any] = {
            "data_steps": 2_000, "steps": 300, "train": tiny, "n": 16, "budgets": (0, 16),
            "episodes": 4, "seeds": (0,), "paths": 2,
        }  # fmt: skip
        return cls(**{**base, **overrides})

    def train_config(self) -> TrainConfig:
        """:attr:`train` with :attr:`seed`: the config the quickstart trains with."""
        return attrs.evolve(self.train, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``train`` as :meth:`TrainConfig.to_dict`)."""
        d = attrs.asdict(self, recurse=False)
        d["train"] = self.train_config().to_dict()
        for k in ("budgets", "seeds"):
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
        seconds: wall time per stage (this run's).
        status: what this run did with a previous run's outputs in the same folder:
            ``train`` is ``"trained"``, ``"resumed from step S"`` or ``"reused ..."``;
            ``results`` is ``"computed"`` or ``"reused ..."``.
    """

    table: list[dict[str, Any]]
    budget: list[dict[str, Any]]
    files: dict[str, Path]
    dataset: dict[str, Any]
    seconds: dict[str, float]
    status: dict[str, str] = attrs.field(factory=dict)


def _row(actor: str, s: RunSummary) -> dict[str, Any]:
    return {"actor": actor, **s.row()}


def _prior_run(gem_dir: Path, tcfg: TrainConfig, steps: int, fingerprint: str) -> int | None:
    """The step of a previous quickstart's Phase I checkpoint in ``gem_dir`` that this run can
    reuse (``== steps``) or resume (``< steps``); ``None`` when there is none.

    Raises:
        GemkitError: the checkpoint is unreadable, or from other settings, data or a longer run.
    """
    if not (gem_dir / STATE_FILE).exists():
        return None
    again = "rerun with --overwrite to train afresh, or choose another --out"
    try:
        header = read_state_header(gem_dir)
    except CheckpointError as exc:
        raise GemkitError(f"{exc} ({again}).") from None
    diff = config_differences(header.get("config", {}), tcfg)
    if resume_pretrain_steps(header) != plan_run(tcfg, steps).pretrain:
        diff.append("pretraining steps")
    if diff:
        raise GemkitError(
            f"{gem_dir} holds a Phase I checkpoint trained with other settings "
            f"({', '.join(diff)} differ); {again}."
        )
    if header.get("dataset_sha256") != fingerprint:
        raise GemkitError(
            f"{gem_dir} was trained on another {FORK_DATASET_ID} (the dataset was remade); {again}."
        )
    step = int(header["step"])
    if step > steps:
        raise GemkitError(f"{gem_dir} holds a longer run (step {step} > --steps {steps}); {again}.")
    return step


def _previous_results(path: Path, cfg: QuickstartConfig, weights: str) -> dict[str, Any] | None:
    """``results.json`` of a previous run with this budget on these weights, else ``None``."""
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    same = json.loads(json.dumps(finite_json(cfg.to_dict())))
    if not isinstance(payload, dict) or payload.get("config") != same:
        return None
    if payload.get("weights_sha256") != weights:
        return None
    files = payload.get("files", {})
    if not all(Path(f).exists() for f in files.values()):
        return None
    return payload


def run_quickstart(
    out_dir: str | Path,
    config: QuickstartConfig | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> QuickstartResult:
    """Run the quickstart experiment (see the module docstring) and write its outputs.

    A rerun in the same ``out_dir`` reuses what a previous run finished: its Phase I
    checkpoint when it was trained with the same settings on the same data (resumed when that
    run was interrupted), and its results when the budget and the weights are the same.
    :attr:`QuickstartResult.status` says what was reused.

    Args:
        out_dir: where checkpoints, tables and the figure go (created).
        config: the budget (default :class:`QuickstartConfig`).
        overwrite: train and evaluate afresh, replacing a previous run's outputs in
            ``out_dir`` (the dataset in the Minari store is kept).
        progress: ``progress(stage, done, total)`` callback.

    Returns:
        The :class:`QuickstartResult`.

    Raises:
        GemkitError: ``out_dir`` holds a Phase I checkpoint of other settings or data
            (without ``overwrite``).
        TrainingInterrupted: Ctrl-C during training; rerunning resumes from the saved step.
    """
    cfg = config or QuickstartConfig()
    if 0 not in cfg.budgets or cfg.n not in cfg.budgets:
        raise ValueError(f"budgets {cfg.budgets} must include 0 and n = {cfg.n}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    status: dict[str, str] = {}

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

    # 2. Phase I (a previous run's checkpoint is reused, or resumed where it stopped)
    t0 = time.perf_counter()
    tcfg = cfg.train_config()
    gem_dir = out / "gem"
    prior = None if overwrite else _prior_run(gem_dir, tcfg, cfg.steps, dataset_fingerprint(data))
    if prior == cfg.steps:
        models = load_models(gem_dir)
        status["train"] = f"reused from a previous run (step {prior:,})"
    else:
        models = train(
            data,
            tcfg,
            gem_dir,
            cfg.steps,
            save_every=max(cfg.steps, 1),
            log_every=max(cfg.steps // 20, 1),
            resume=prior is not None,
            overwrite=overwrite,
            progress=lambda p: report("train", p.step, p.total),
            tensorboard=False,
        )
        status["train"] = "trained" if prior is None else f"resumed from step {prior:,}"
    seconds["train"] = time.perf_counter() - t0
    weights = str(read_state_header(gem_dir)["tensors_sha256"])
    previous = None if overwrite else _previous_results(out / "results.json", cfg, weights)
    if previous is not None:
        status["results"] = "reused from a previous run"
        return QuickstartResult(
            table=previous["headline"],
            budget=previous["budget"],
            files={k: Path(v) for k, v in previous["files"].items()},
            dataset=dataset,
            seconds=seconds,
            status=status,
        )
    status["results"] = "computed"

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
    # short, so the CLI's table fits 80 columns (its key says what each row is)
    labels = [f"GEM, N={cfg.n}", "GEM anchor, N=0", "unimodal, N=0", f"unimodal, N={cfg.n}"]
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
        "weights_sha256": weights,
    }
    write_json(out / "results.json", payload)
    return QuickstartResult(
        table=table, budget=budget, files=files, dataset=dataset, seconds=seconds, status=status
    )

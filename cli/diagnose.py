"""``gemkit diagnose nll-gap`` and ``gemkit profile``: diagnostics of datasets, models, speed."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from gemkit.errors import GemkitError

from ._common import (
    guarded,
    make_console,
    parse_ints,
    parse_names,
    progress_bar,
    rich_table,
    set_threads,
)
from .main import app

diagnose_app = typer.Typer(help="Diagnostics of datasets and models.", no_args_is_help=True)
app.add_typer(diagnose_app, name="diagnose")


class Device(str, Enum):
    """Where to profile."""

    cpu = "cpu"
    cuda = "cuda"
    all = "all"


@diagnose_app.command("nll-gap")
@guarded
def nll_gap_cmd(
    dataset: str = typer.Option(..., "--dataset", help="Local Minari dataset id."),
    k: int = typer.Option(5, "--k", min=1, help="Mixture components K."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of fits (seeds 0..S-1)."),
    steps: int = typer.Option(2000, "--steps", min=1, help="Gradient steps per fit."),
    hidden: str = typer.Option("256,256", "--hidden", help="MLP widths of the GMM."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Minibatch size."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Use this checkpoint's behavior GMM instead of fitting."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write nll_gap.csv/json here."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """NLL gap (spec 2.7): mean NLL under the top component minus under the whole mixture."""

    from gemkit.data import load
    from gemkit.eval.io import write_csv, write_json
    from gemkit.eval.nll_gap import nll_gap, nll_gap_over_seeds, summarize_gaps
    from gemkit.train import TrainConfig

    set_threads(threads)
    data = load(dataset)
    console = make_console()
    if checkpoint is not None:
        from gemkit.models import load_models

        models = load_models(checkpoint)
        if models.behavior is None:
            raise GemkitError(f"{checkpoint} has no behavior GMM.")
        obs = models.normalize_obs(data.observations)
        g = nll_gap(models.behavior, obs, data.actions.float())
        summary = summarize_gaps([g], models.behavior.n_components, [0], 0)
        source = f"behavior GMM of {checkpoint}"
    else:
        cfg = TrainConfig(
            hidden=tuple(parse_ints(hidden, "--hidden", minimum=1)),
            n_critics=1,
            batch_size=batch_size,
        )
        with progress_bar(console) as bar:
            task = bar.add_task(f"fitting {seeds} K={k} GMM(s)", total=seeds * steps)

            def cb(i: int, done: int, total: int) -> None:
                if done % 50 == 0 or done == total:
                    bar.update(task, completed=i * steps + done)

            summary = nll_gap_over_seeds(
                data, k, list(range(seeds)), steps, config=cfg, progress=cb
            )
        source = f"{seeds} MLE fit(s) of {steps} steps"
    row = summary.row()
    shown = {
        "nll_gmm": f"{summary.nll_gmm_mean:.4f} +- {summary.nll_gmm_std:.4f}",
        "nll_top1": f"{summary.nll_top1_mean:.4f} +- {summary.nll_top1_std:.4f}",
        "gap": f"{summary.gap_mean:.4f} +- {summary.gap_std:.4f}",
    }
    console.print(
        rich_table(
            f"NLL gap on {dataset} ({len(data)} pairs), K={summary.k}, {source}",
            [shown],
            [("nll_gmm", "NLL_gmm"), ("nll_top1", "NLL_top1"), ("gap", "gap = NLL_top1 - NLL_gmm")],
        )
    )
    verdict = "mixture structure helps" if summary.gap_mean > 0 else "no gain from the mixture"
    console.print(f"gap {summary.gap_mean:.4f} ({verdict})")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "nll_gap.csv", [{"dataset": dataset, **row}])
        write_json(
            out / "nll_gap.json",
            {
                "dataset": dataset,
                "source": source,
                **row,
                "per_seed": [vars_(g) for g in summary.per_seed],
            },
        )
        console.print(f"wrote {out / 'nll_gap.csv'} and {out / 'nll_gap.json'}")


def vars_(obj: Any) -> dict[str, Any]:
    """attrs instance -> dict."""
    import attrs

    return attrs.asdict(obj)


# ---------------------------------------------------------------------- profile
@app.command("profile")
@guarded
def profile_cmd(
    n: str = typer.Option("1,64,1024,2048", "--n", help="Candidate budgets N of GEM."),
    t: Optional[str] = typer.Option(
        None,
        "--T",
        help="Denoising steps T of an untrained DDPM sampler (default 10,20,50,100 without "
        "--preset, none with it).",
    ),
    preset: Optional[str] = typer.Option(
        None,
        "--preset",
        help="Time these presets' rules instead of GEM alone (e.g. gem,idql,sfbc,ifql): a "
        "diffusion or flow preset samples the trained model of --proposer-from.",
    ),
    proposer_from: Optional[list[Path]] = typer.Option(
        None,
        "--proposer-from",
        help="Model directory of 'gemkit fit-proposer' (repeat for a diffusion and a flow "
        "model); needs --checkpoint.",
    ),
    device: Device = typer.Option(
        Device.all, "--device", help="cpu, cuda, or all (cpu, plus cuda when available)."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Profile these networks (default: untrained ones)."
    ),
    state_dim: int = typer.Option(17, "--state-dim", min=1, help="S without a checkpoint."),
    action_dim: int = typer.Option(6, "--action-dim", min=1, help="A without a checkpoint."),
    hidden: str = typer.Option("256,256", "--hidden", help="Widths without a checkpoint."),
    n_critics: int = typer.Option(10, "--critics", min=1, help="E without a checkpoint."),
    n_components: int = typer.Option(5, "--components", min=1, help="K without a checkpoint."),
    batch: int = typer.Option(1, "--batch", min=1, help="States per call."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Timed calls per point."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write profile.csv/json here."),
) -> None:
    """Latency and peak memory vs N of select(), against T-step DDPM sampling (same widths).

    With --preset, each preset's whole rule is timed at every N (proposals, critic, support,
    reduction); with --proposer-from, the diffusion / flow presets sample the trained models
    (their T is the one they were fitted with).
    """
    import torch

    from gemkit.config import ALL_PRESETS, SelectorConfig
    from gemkit.eval.io import write_csv, write_json
    from gemkit.eval.profile import profile_diffusion, profile_select, random_models

    set_threads(threads)
    if proposer_from and checkpoint is None:
        raise GemkitError("--proposer-from needs --checkpoint: the networks it was fitted with.")
    presets = parse_names(preset, "preset", sorted(ALL_PRESETS)) if preset else []
    if device is Device.cuda and not torch.cuda.is_available():
        raise GemkitError("--device cuda: CUDA is not available here; use --device cpu.")
    devices = (
        ["cpu"]
        if device is Device.cpu
        else ["cuda"]
        if device is Device.cuda
        else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    )
    widths = tuple(parse_ints(hidden, "--hidden", minimum=1))
    ns = parse_ints(n, "--n")
    ts = parse_ints(t, "--T", minimum=1) if t else ([] if presets else [10, 20, 50, 100])
    console = make_console()
    rows: list[dict[str, Any]] = []
    for dev in devices:
        if checkpoint is not None:
            from gemkit.models import load_models

            models = load_models(checkpoint)
        else:
            models = random_models(state_dim, action_dim, widths, n_components, n_critics)
        ref = models.actor if models.actor is not None else models.behavior
        if ref is None:
            raise GemkitError(f"{checkpoint} has no actor or behavior GMM to profile.")
        with progress_bar(console) as bar:
            total = len(ns) * max(1, len(presets)) + len(ts)
            task = bar.add_task(f"profiling on {dev}", total=total)

            def cb(_: Any, task: Any = task) -> None:
                bar.advance(task)

            rules = [("gem", models, None)] if not presets else [
                (p, with_proposer(models, proposer_from or [], p), SelectorConfig.preset(p))
                for p in presets
            ]  # fmt: skip
            sel = []
            for name, m, cfg in rules:
                sel += profile_select(m, ns, device=dev, batch=batch, repeats=repeats,
                                      config=cfg, method=name, progress=cb)  # fmt: skip
            dif = profile_diffusion(
                ref.state_dim,
                ref.action_dim,
                ref.hidden,
                ts,
                device=dev,
                batch=batch,
                repeats=repeats,
                progress=cb,
            )
        rows += [r.row() for r in sel + dif]
    cols = [
        ("method", "method"),
        ("knob", "knob"),
        ("value", "value"),
        ("device", "device"),
        ("latency_ms", "latency ms (median)"),
        ("latency_p90_ms", "p90 ms"),
        ("peak_mb", "peak MB"),
        ("weights_mb", "weights MB"),
    ]
    console.print(
        rich_table(
            f"deployment profile (batch {batch}, {repeats} calls each, "
            f"{torch.get_num_threads()} CPU thread(s))",
            rows,
            cols,
        )
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "profile.csv", rows)
        write_json(out / "profile.json", {"rows": rows, "threads": torch.get_num_threads()})
        console.print(f"wrote {out / 'profile.csv'} and {out / 'profile.json'}")


def with_proposer(models: Any, directories: list[Path], preset: str) -> Any:
    """``models`` with the generative model ``preset``'s proposer samples (``diffusion`` or
    ``flow``) attached from the one of ``directories`` that holds it; ``models`` themselves
    for a preset whose proposer is a GMM (or when none of them holds it: composing then says
    what to fit)."""
    import copy

    from gemkit.config import SelectorConfig
    from gemkit.models.generative import GENERATIVE_KINDS
    from gemkit.models.io import attach_generative

    kind = GENERATIVE_KINDS.get(SelectorConfig.preset(preset).proposer)
    if kind is None:
        return models
    for d in directories:
        m = attach_generative(copy.copy(models), d)
        if isinstance(m.generative, kind):
            return m
    return models


# ---------------------------------------------------------------------- oracle
@diagnose_app.command("oracle")
@guarded
def oracle_cmd(
    models: Path = typer.Option(..., "--models", help="A training run or a models directory."),
    dataset: str = typer.Option(
        ...,
        "--dataset",
        help="Local Minari dataset id (its evaluation env) or a gymnasium id; a MuJoCo task.",
    ),
    n: str = typer.Option("64", "--n", help="Candidate budgets N, comma-separated."),
    value: str = typer.Option("lcb", "--value", help="Value term (gemkit components)."),
    lam: Optional[float] = typer.Option(None, "--lam", help="Constant support weight lambda."),
    beta: Optional[float] = typer.Option(None, "--beta", help="LCB width beta."),
    episodes: int = typer.Option(3, "--episodes", min=1, help="Episodes driven per N."),
    probe_every: int = typer.Option(50, "--probe-every", min=1, help="Probe every k-th step."),
    horizon: int = typer.Option(200, "--horizon", min=1, help="Steps per branch."),
    gamma: float = typer.Option(0.99, "--gamma", help="Discount of the branch returns."),
    seed: int = typer.Option(0, "--seed", help="Episode and selector seed."),
    control_eps: float = typer.Option(
        1e-3, "--control-eps", min=0.0, help="The control branch's change of the anchor."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write oracle.json/csv here."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """Each candidate's true return, by branching the simulator: does the critic rank them?"""
    from gemkit import compose
    from gemkit.eval.evaluate import resolve_env_spec
    from gemkit.eval.io import write_csv, write_json
    from gemkit.eval.oracle import candidate_oracle, summarize_probes
    from gemkit.models.io import as_models

    set_threads(threads)
    spec, _ = resolve_env_spec(dataset)
    bundle = as_models(models)
    knobs = {"value": value, "lam": lam, "lam_T": lam, "beta": beta}
    follow = compose(models=bundle, n=0)
    console = make_console()
    rows, probes_out = [], []
    for budget in parse_ints(n, "--n", minimum=1):
        sel = compose(models=bundle, n=budget, seed=seed, **knobs)  # type: ignore[arg-type]
        with progress_bar(console) as bar:
            task = bar.add_task(f"N={budget}: driving and branching", total=episodes)

            def advance(done: int, _total: int, bar: Any = bar, task: Any = task) -> None:
                bar.update(task, completed=done)

            probes = candidate_oracle(
                sel, spec, follow, episodes=episodes, probe_every=probe_every,
                horizon=horizon, gamma=gamma, seed=seed, control_eps=control_eps,
                progress=advance,
            )  # fmt: skip
        rows.append({"n": budget, **summarize_probes(probes).to_dict()})
        probes_out += [{"n": budget, **p.to_dict()} for p in probes]
    cols = [("n", "N"), ("probes", "probes"), ("spearman_value", "rho(value, return)"),
            ("spearman_score", "rho(score, return)"), ("spearman_support", "rho(loglik, return)"),
            ("chosen_minus_anchor", "chosen - anchor"), ("best_minus_chosen", "best - chosen"),
            ("chosen_fell", "chosen fell"), ("anchor_fell", "anchor fell"),
            ("return_spread", "return spread"), ("chaos_floor", "chaos floor"),
            ("overrating_vs_support", "rho(overrating, -loglik)")]  # fmt: skip
    shown = [{k: (f"{r[k]:.3f}" if isinstance(r[k], float) else r[k]) for k, _ in cols}
             for r in rows]  # fmt: skip
    console.print(rich_table(f"candidate oracle on {dataset} ({models})", shown, cols))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        setup = {"models": str(models), "dataset": dataset, "value": value, "lam": lam,
                 "beta": beta, "episodes": episodes, "probe_every": probe_every,
                 "horizon": horizon, "gamma": gamma, "seed": seed,
                 "control_eps": control_eps}  # fmt: skip
        write_csv(out / "oracle.csv", [{**setup, **r} for r in rows])
        write_json(out / "oracle.json", {**setup, "summary": rows, "probes": probes_out})
        console.print(f"wrote {out / 'oracle.csv'} and {out / 'oracle.json'}")

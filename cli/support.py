"""``gemkit fit-support`` (the behavior GMM alone, for critics trained elsewhere) and
``gemkit fit-proposer`` (a generative behavior model: the literature's candidate sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import guarded, make_console, parse_ints, progress_bar, set_threads
from .main import app

#: the options both fitting commands take
DATASET = typer.Option(..., "--dataset", help="Local Minari dataset id.")
OUT = typer.Option(..., "--out", help="Model directory to write (reruns resume).")
STEPS = typer.Option(100_000, "--steps", min=1, help="Gradient steps.")
HIDDEN = typer.Option("256,256", "--hidden", help="MLP sizes, e.g. 256,256.")
CHECKPOINT_EVERY = typer.Option(
    5_000, "--checkpoint-every", min=1, help="Steps between resumable saves."
)
THREADS = typer.Option(None, "--threads", min=1, help="torch CPU threads.")


@app.command("fit-support")
@guarded
def fit_support_cmd(
    dataset: str = DATASET,
    out: Path = OUT,
    steps: int = STEPS,
    k: int = typer.Option(5, "--k", min=1, help="Mixture components K."),
    seed: int = typer.Option(0, "--seed", min=0, help="Initialisation and minibatch seed."),
    hidden: str = HIDDEN,
    checkpoint_every: int = CHECKPOINT_EVERY,
    threads: Optional[int] = THREADS,
) -> None:
    """Fit only the behavior GMM (GEM's support term) on a dataset; resumable.

    Use the result with a critic from another library:
    gemkit compose --support-from OUT --critic d3rlpy:model.d3 --proposer behavior --anchor none
    """
    from gemkit.data import load
    from gemkit.train import TrainConfig
    from gemkit.train.support_fit import fit_support

    set_threads(threads)
    data = load(dataset)
    cfg = TrainConfig(hidden=tuple(parse_ints(hidden, "--hidden", minimum=1)))
    console = make_console(stderr=True)
    with progress_bar(console) as bar:
        task = bar.add_task(f"behavior GMM on {dataset}", total=steps)
        fit_support(data, out, steps, k=k, seed=seed, config=cfg,
                    checkpoint_every=checkpoint_every,
                    progress=lambda i, _n: bar.update(task, completed=i))  # fmt: skip
    typer.echo(f"fitted the behavior GMM (K = {k}) on {dataset} for {steps:,} steps: {out}")


@app.command("fit-proposer")
@guarded
def fit_proposer_cmd(
    dataset: str = DATASET,
    out: Path = OUT,
    kind: str = typer.Option(
        "diffusion", "--kind", help="diffusion (DDPM, IDQL's schedule) or flow (flow matching)."
    ),
    steps: int = STEPS,
    chain_steps: Optional[int] = typer.Option(
        None, "--chain-steps", min=1, help="Sampling steps (default: diffusion 5, flow 10)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Initialisation, minibatches, noise."),
    hidden: str = HIDDEN,
    checkpoint_every: int = CHECKPOINT_EVERY,
    threads: Optional[int] = THREADS,
) -> None:
    """Fit a generative behavior model (the candidates of IDQL, SfBC, IFQL); resumable.

    Use it as a candidate source over any critic:
    gemkit compose --checkpoint RUN --proposer-from OUT --preset idql
    """
    from gemkit.data import load
    from gemkit.train import TrainConfig
    from gemkit.train.proposer_fit import GENERATIVE_KINDS, fit_proposer

    if kind not in GENERATIVE_KINDS:
        from gemkit.errors import UnknownComponentError, unknown_name_message

        raise UnknownComponentError(unknown_name_message("--kind", kind, GENERATIVE_KINDS))
    set_threads(threads)
    data = load(dataset)
    cfg = TrainConfig(hidden=tuple(parse_ints(hidden, "--hidden", minimum=1)))
    console = make_console(stderr=True)
    with progress_bar(console) as bar:
        task = bar.add_task(f"{kind} behavior model on {dataset}", total=steps)
        fit_proposer(data, out, steps, kind=kind, seed=seed, chain_steps=chain_steps, config=cfg,
                     checkpoint_every=checkpoint_every,
                     progress=lambda i, _n: bar.update(task, completed=i))  # fmt: skip
    typer.echo(f"fitted a {kind} behavior model on {dataset} for {steps:,} steps: {out}")


"""``gemkit experiment``: a stage of a results suite (the experiments behind ``docs/results*``)."""

from __future__ import annotations

import typer

from ._common import guarded
from .main import app


@app.command(
    "experiment",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
@guarded
def experiment_command(ctx: typer.Context) -> None:
    """Run a stage of a results suite: train, validate, test, auto, report or all.

    The suites (--suite mazes, maze2d, locomotion or fork) are the results pages' experiments
    (gemkit.experiments): every run, evaluation cell and page regenerates from committed
    cells. 'gemkit experiment report --suite maze2d --help' lists every flag; the same as
    'python reproductions/mazes.py'.
    """
    from gemkit.experiments.args import parse
    from gemkit.experiments.stages import run_stage

    run_stage(*parse(ctx.args, experiment_command.__doc__, prog="gemkit experiment"))

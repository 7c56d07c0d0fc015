"""GEM on a suite of D4RL-style tasks: the paper's knob protocol, a fair baseline, results.

A *suite* picks the tasks (``--suite``): ``mazes`` (the default: the three Minari-recipe
PointMazes, ``docs/results.md``), ``maze2d`` (D4RL's maze2d-v1 recipe, the paper's task,
``docs/results-maze2d.md``), ``locomotion`` (``gemkit/hopper-medium-v0``,
``gemkit/hopper-medium-replay-v0``, ...: D4RL's MuJoCo locomotion recipe,
``docs/results-locomotion.md``; ``reproductions/locomotion.py`` is this script with
``--suite locomotion``) or ``fork`` (gemkit's toy task with the paper's stress-test
ablations, ``docs/results-fork.md``). The suite sets the defaults (tasks, training options,
episodes, budgets, where the report goes); every one of them is a flag.

Stages (each resumable; every evaluated cell is cached in ``<out>/cells-*.jsonl``):

``train``
    Phase I for every task and training seed, one ``gemkit train`` run each (the fair
    same-critic unimodal baseline trains in the same run), with model snapshots for the learning
    curves. Runs that finished are skipped, interrupted ones resumed. A missing dataset is made
    first (locomotion: its SAC run too, in ``--sac-root``, resumable).
``validate``
    The paper's protocol (method page, section 3): an inference-only sweep of ``beta`` and
    ``lambda_T`` at ``N = 64`` on *validation* evaluation seeds, for every checkpoint. The knobs
    with the best mean validation score over the suite (all tasks and training seeds) are
    chosen once for the whole suite.
``test``
    With the chosen knobs, on *test* evaluation seeds (disjoint from validation): GEM over
    ``N``, the same-critic unimodal baseline (single-shot and with ``N`` candidates), ``no_pw``
    at the largest ``N``, the ``lambda_T`` frontier; the learning curves on the snapshots; and,
    for the tasks in ``--mass-tasks``, GEM and the baseline with every MuJoCo body mass scaled
    by each of ``--mass-scales`` (MassScale; locomotion only).
``report``
    Tables (CSV/JSON), plots (PNG) and the suite's doc (``docs/results.md`` for the mazes).

Run everything (``--worker i/2`` splits the evaluation cells over two processes, one per core;
``--backend ray`` runs them as Ray tasks from one command instead)::

    python reproductions/mazes.py train
    python reproductions/mazes.py validate --worker 0/2 &
    python reproductions/mazes.py validate --worker 1/2; wait
    python reproductions/mazes.py test --worker 0/2 &
    python reproductions/mazes.py test --worker 1/2; wait
    python reproductions/mazes.py report

(the same with ``reproductions/locomotion.py`` for the locomotion suite). ``auto`` evaluates
checkpoints as their runs finish (validation first; the test stage starts once every checkpoint
is validated), so it can run beside ``train``.
"""

from __future__ import annotations

from collections.abc import Sequence

from gemkit.experiments.args import parse
from gemkit.experiments.stages import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    stage, config = parse(argv, description=__doc__)
    run_stage(stage, config)


if __name__ == "__main__":
    main()

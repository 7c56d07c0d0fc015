"""GEM on the D4RL-recipe locomotion datasets: ``reproductions/mazes.py --suite locomotion``.

The same stages, cell cache and knob protocol as the maze reproduction (its docstring says
what each stage does), with the locomotion suite's defaults: ``hopper-medium`` and
``hopper-medium-replay`` (``--tasks`` also takes ``walker2d-*`` and ``halfcheetah-*``),
``n_critics=5 hidden=128,128 reward_scale=return_range``, 100,000 gradient steps, 5 validation
and 10 test episodes of up to 1,000 steps, ``N`` in 0, 1, 16, 64, 256, and the MassScale
robustness cells on ``hopper-medium``; the report is ``docs/results-locomotion.md``::

    python reproductions/locomotion.py train --runs R --out C --sac-root S
    python reproductions/locomotion.py validate --runs R --out C --worker 0/2 &
    python reproductions/locomotion.py validate --runs R --out C --worker 1/2; wait
    python reproductions/locomotion.py test --runs R --out C --worker 0/2 &
    python reproductions/locomotion.py test --runs R --out C --worker 1/2; wait
    python reproductions/locomotion.py report --runs R --out C
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gemkit.experiments.args import parse
from gemkit.experiments.stages import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run_stage(*parse(["--suite", "locomotion", *argv], description=__doc__))


if __name__ == "__main__":
    main()

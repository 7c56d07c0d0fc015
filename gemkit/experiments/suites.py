"""The suites: which tasks a results page covers, their paper numbers, defaults and where the
page goes (:data:`SUITES`), and one suite run's settings (:class:`SuiteConfig`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.experiments.tasks import (
    FORK_NAMES,
    LOCOMOTION_NAMES,
    MAZE2D_NAMES,
    MAZE_NAMES,
    PAPER,
    PAPER_LOCOMOTION,
)

__all__ = ["COMMON_DEFAULTS", "STRESS_PRESETS", "SUITES", "Suite", "SuiteConfig", "read_settings"]


@attrs.frozen
class Suite:
    """What differs between suites: the tasks, their paper numbers, defaults and where the
    report goes. Everything else (cells, knob protocol, report) is shared."""

    name: str  #: ``--suite``; also the prefix of the report's CSV/JSON/PNG files
    script: str  #: the command that runs it
    title: str  #: the doc's heading
    word: str  #: what a task is called in the tables ("maze", "task")
    tasks: tuple[str, ...]  #: the tasks ``--tasks`` takes
    default_tasks: tuple[str, ...]
    paper: Mapping[str, Mapping[str, float]]
    paper_note: str  #: what the paper's numbers are (other data, another budget)
    data_line: str  #: the report's data line; ``{tasks}`` and ``{sizes}`` are filled in
    doc: str  #: the report, relative to ``docs/``
    figures: str  #: its tables and plots, relative to ``docs/``
    defaults: Mapping[str, Any]  #: argparse defaults of this suite (``dest`` -> value)
    steps_flag: str = "--task-steps"  #: the per-task budget flag the report names
    train_note: str = ""  #: why the suite's ``--train-set`` (follows the defaults in the report)
    timing_note: str = ""  #: measured training speed, for the report
    findings: str = ""  #: the findings page the report links (a path from the repository root)
    scale: str = "the dataset's reference scores"  #: which references normalise the scores
    note: str = ""  #: a paragraph under the heading: what the suite's task is not


#: which reference returns each suite's scores are normalised with (said in every report)
MAZE_SCALE = ("gemkit's own reference returns stored in each dataset (Minari's procedure: the "
              "uniform random policy and the replanning scripted expert), which are 1.3-1.7x "
              "stricter than D4RL's maze2d references: not the paper's scale "
              "(docs/datasets.md)")  # fmt: skip
MAZE2D_SCALE = ("D4RL's published maze2d-v1 reference returns (`d4rl/infos.py`), the paper's "
                "scale")  # fmt: skip
LOCOMOTION_SCALE = ("D4RL's published reference returns of the `*-v2` tasks (`d4rl/infos.py`), "
                    "applied to gymnasium's v5 environments")  # fmt: skip

COMMON_DEFAULTS: dict[str, Any] = {
    "steps": 100_000, "snapshot_every": 20_000, "train_set": ["n_critics=5", "hidden=128,128"],
    "budgets": [0, 1, 16, 64, 256, 1024], "episodes": 10, "test_episodes": 30,
    "curve_episodes": 10, "big_episodes": 10, "mass_scales": [], "mass_tasks": [],
    "stress": [],
}  # fmt: skip

#: the paper's stress-test ablations (each one change from GEM; ``gemkit.config.PRESETS``)
#: that ``--stress`` evaluates at the largest N; ``no_pw`` is always tested
STRESS_PRESETS = ("anchor_bary", "behavior_only_cands", "no_anchor", "no_lcb",
                  "unimodal_actor_cands", "raw")  # fmt: skip

SUITES: dict[str, Suite] = {
    "mazes": Suite(
        name="mazes", script="reproductions/mazes.py",
        title="Results: GEM on the D4RL-recipe PointMazes", word="maze",
        tasks=MAZE_NAMES, default_tasks=MAZE_NAMES, paper=PAPER,
        paper_note="The paper's Table 1 (Maze2D): D4RL's `maze2d-*-v1` data (not ours), 1M "
        "gradient steps, its own networks and evaluation.",
        data_line="`gemkit/pointmaze-{{{tasks}}}-v1`, made by `gemkit data make pointmaze-<maze>` "
        "with Minari's D4RL pointmaze recipe ({sizes}); see `docs/datasets.md` for the "
        "comparison with Minari's cards.",
        doc="results.md", figures="results", defaults=COMMON_DEFAULTS,
        steps_flag="--maze-steps",
        timing_note="Training ran at 80-130 gradient steps/s per job here (two jobs and the "
        "evaluation sharing two cores), about 15-20 minutes per 100,000 steps. ",
        findings="docs/findings/pointmaze.md",
        scale=MAZE_SCALE,
        note="These mazes follow Minari's recipe, not D4RL's `maze2d-*-v1` that the paper "
        "used: the reward is goal-conditioned (a new goal at each success, 6-D observations) "
        "and the scores use gemkit's replanning-expert references, 1.3-1.7x stricter than "
        "D4RL's. The paper's task, on the paper's scale, is "
        "[results-maze2d.md](results-maze2d.md).",
    ),
    "maze2d": Suite(
        name="maze2d", script="reproductions/mazes.py --suite maze2d",
        title="Results: GEM on D4RL's Maze2D recipe (the paper's task)", word="maze",
        tasks=MAZE2D_NAMES, default_tasks=MAZE2D_NAMES,
        paper={f"maze2d-{k}": v for k, v in PAPER.items()},
        paper_note="The paper's Table 1 (Maze2D): D4RL's own `maze2d-*-v1` files (ours are "
        "rebuilt with the same recipe), 1M gradient steps, its own networks; both on D4RL's "
        "published reference scores.",
        data_line="`gemkit/{{{tasks}}}-v1`, made by `gemkit data make maze2d-<maze>` "
        "with D4RL's maze2d-v1 recipe ({sizes}); scores on D4RL's published references "
        "(`d4rl/infos.py`); see `docs/datasets.md`.",
        doc="results-maze2d.md", figures="results/maze2d", defaults=COMMON_DEFAULTS,
        steps_flag="--maze-steps", scale=MAZE2D_SCALE, findings="docs/findings/maze2d.md",
    ),
    # 1000-step episodes make evaluation dearer per episode than the mazes' (300-800 steps):
    # D4RL's 10 test episodes, 5 validation ones, N up to 256 (``--budgets ... 1024`` adds the
    # paper's stress point).
    "locomotion": Suite(
        name="locomotion", script="reproductions/locomotion.py",
        title="Results: GEM on the D4RL-recipe locomotion datasets", word="task",
        tasks=LOCOMOTION_NAMES, default_tasks=("hopper-medium", "hopper-medium-replay"),
        paper=PAPER_LOCOMOTION,
        paper_note="The paper's Table 1 (Locomotion): D4RL's `*-v2` data in its mujoco-py "
        "envs (not ours: gymnasium's v5 envs and our own SAC behaviour policy), 1M gradient "
        "steps, its own networks and evaluation (its appendix's per-environment GEM table, at "
        "the ablations' defaults, gives less on some tasks, e.g. 74.89 on hopper-medium-v2).",
        train_note=" (128x128 networks and 5 critics: the maze runs' sizes, which trained at "
        "~80 steps/s per core here; the paper's profile, 10 critics and 256x256, runs ~27 "
        "steps/s on these CPUs, docs/performance.md; rewards "
        "x 1000 / (max - min episode return): IQL's recipe on D4RL locomotion, so alpha and the "
        "expectile act in the same units on every task)",
        timing_note="Training ran at about 80 gradient steps/s per job here (one job per core), "
        "about 20 minutes per 100,000 steps; the whole evaluation took about 10 minutes. ",
        findings="docs/findings/locomotion.md",
        scale=LOCOMOTION_SCALE,
        data_line="`gemkit/{{{tasks}}}-v0`, made by `gemkit data make <task>` with D4RL's "
        "locomotion recipe (a SAC run stopped at a third of D4RL's expert return; medium: 1M "
        "steps of its policy, medium-replay: its replay buffer, medium-expert: the medium data "
        "plus 1M steps of the same run continued to D4RL's expert return; {sizes}); see "
        "`docs/datasets.md`.",
        doc="results-locomotion.md", figures="results/locomotion",
        defaults={**COMMON_DEFAULTS, "steps": 100_000, "snapshot_every": 20_000,
                  "train_set": ["n_critics=5", "hidden=128,128", "reward_scale=return_range"],
                  "budgets": [0, 1, 16, 64, 256], "episodes": 5, "test_episodes": 10,
                  "curve_episodes": 5, "big_episodes": 10,
                  "mass_scales": [0.5, 0.75, 1.0, 1.25, 1.5],
                  "mass_tasks": ["hopper-medium"]},
    ),
    # the toy task: two routes around an obstacle, 100-step episodes, minutes per run on a CPU
    "fork": Suite(
        name="fork", script="reproductions/mazes.py --suite fork",
        title="Results: GEM on the fork task", word="task",
        tasks=FORK_NAMES, default_tasks=FORK_NAMES, paper={},
        paper_note="The paper has no fork task.",
        data_line="`gemkit/fork-v0`, made by `gemkit data make fork` (a scripted controller "
        "that takes either route around the obstacle with action noise 0.1; {sizes}); see "
        "`docs/datasets.md`.",
        doc="results-fork.md", figures="results/fork", findings="docs/findings/fork.md",
        scale="the dataset's reference scores (a uniform random policy and the noiseless "
        "scripted controller)",
        defaults={**COMMON_DEFAULTS, "steps": 5_000, "snapshot_every": 1_000,
                  "train_set": ["n_critics=5", "hidden=128,128", "gmm_pretrain_steps=1000"],
                  "episodes": 20, "test_episodes": 50, "curve_episodes": 20,
                  "big_episodes": 20, "stress": list(STRESS_PRESETS)},
    ),
}  # fmt: skip


def read_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def read_settings(path: Path) -> dict[str, Any]:
    """A suite run's settings from a ``.json`` or ``.toml`` file (any subset of
    :class:`SuiteConfig`'s fields), for ``--config``; a one-line error for a bad file."""
    from gemkit.errors import GemkitError

    p = Path(path)
    if not p.is_file():
        raise GemkitError(f"--config {str(p)!r}: no such file.")
    try:
        if p.suffix == ".toml":
            data = read_toml(p.read_text())
        elif p.suffix == ".json":
            data = json.loads(p.read_text())
        else:
            raise GemkitError(f"--config {str(p)!r} must end in .toml or .json.")
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError, JSONDecodeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GemkitError(f"cannot parse {str(p)!r}: {first}") from None
    names = {f.name for f in attrs.fields(SuiteConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GemkitError(f"{str(p)!r}: unknown setting(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(names))}.")  # fmt: skip
    return data


def _list(x: Sequence[Any]) -> list[Any]:
    return list(x)


@attrs.frozen(kw_only=True)
class SuiteConfig:
    """One run of a suite: its tasks, seeds, budgets, knob grid, evaluation sizes and folders
    (``reproductions/mazes.py``'s flags, one field each; JSON round trip). Sequences are lists,
    as the command line gives them (the report prints them as such)."""

    suite: str = "mazes"
    tasks: list[str] = attrs.field(converter=_list)
    seeds: list[int] = attrs.field(converter=_list, factory=lambda: [0, 1, 2])
    steps: int
    task_steps: Mapping[str, int] = attrs.field(factory=dict)
    snapshot_every: int
    train_set: list[str] = attrs.field(converter=_list)
    betas: list[float] = attrs.field(converter=_list, factory=lambda: [0.5, 1.0, 2.0])
    lam0: float = 1.0
    lam_const: list[float] = attrs.field(converter=_list, factory=lambda: [0.003, 0.01, 0.03])
    lam_z: list[float] = attrs.field(converter=_list, factory=lambda: [0.1, 0.3, 1.0])
    frontier: list[float] = attrs.field(converter=_list, factory=lambda: [0.0, 0.003, 0.03, 0.3])
    lam_T: list[float] = attrs.field(converter=_list, factory=lambda: [0.0, 0.1, 0.3, 1.0])
    val_n: int = 64
    budgets: list[int] = attrs.field(converter=_list)
    baseline_n: int = 64
    episodes: int
    test_episodes: int
    curve_episodes: int
    big_episodes: int
    mass_scales: list[float] = attrs.field(converter=_list, factory=list)
    mass_tasks: list[str] = attrs.field(converter=_list, factory=list)
    #: stress-test ablations (:data:`STRESS_PRESETS`) tested at the largest N
    stress: list[str] = attrs.field(converter=_list, factory=list)
    runs: Path = attrs.field(converter=Path)
    out: Path = attrs.field(converter=Path)
    doc: Path = attrs.field(converter=Path)
    figures: Path = attrs.field(converter=Path)
    sac_root: Path | None = None
    worker: str = "0/1"
    #: where the evaluation cells run: ``serial`` (this process) or ``ray`` (one task per cell)
    backend: str = "serial"
    address: str | None = None  #: an existing Ray cluster (``ray``; default: a local one)
    local_cpus: int | None = None  #: CPUs of a local Ray started for the suite
    threads: int = 1
    runs_per_task: int = 1
    device: str = "cpu"
    smoke: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SuiteConfig:
        """From a mapping with (at least) every field; other keys (``stage``) are ignored."""
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_json(self) -> str:
        """The settings as JSON (paths as strings); :meth:`from_json` reads it back."""
        d = attrs.asdict(self, recurse=False)
        d = {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else
                 dict(v) if isinstance(v, Mapping) else v) for k, v in d.items()}  # fmt: skip
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SuiteConfig:
        return cls.from_mapping(json.loads(text))

    def to_toml(self) -> str:
        """The settings as TOML (fields that are ``None`` left out: their defaults on reading);
        :meth:`from_toml` reads it back."""
        from gemkit.train.config import toml_value

        d = json.loads(self.to_json())
        return "".join(f"{k} = {toml_value(v)}\n" for k, v in d.items() if v is not None)

    @classmethod
    def from_toml(cls, text: str) -> SuiteConfig:
        return cls.from_mapping(read_toml(text))

    @property
    def suite_spec(self) -> Suite:
        """This run's :class:`Suite`."""
        return SUITES[self.suite]

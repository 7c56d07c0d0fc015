"""The experiment tasks: their names, datasets, horizons, reference scores and paper numbers.

A *task* is a short name (``fork``: gemkit's two-route toy task; ``umaze``: the Minari-recipe
PointMaze; ``maze2d-umaze``: D4RL's maze2d-v1 recipe, the paper's task; ``hopper-medium``:
D4RL's locomotion recipe) that says which
gemkit dataset trains it, which environment evaluates it, over what horizon, and on which
reference returns its scores are normalised.
"""

from __future__ import annotations

__all__ = [
    "FORK_NAMES",
    "LOCOMOTION_NAMES",
    "MAZE2D_NAMES",
    "MAZE_NAMES",
    "PAPER",
    "PAPER_LOCOMOTION",
    "TEST_SEEDS",
    "VAL_SEEDS",
    "dataset_id",
    "horizon",
    "reference_scores",
    "remember_reference_scores",
    "split_locomotion",
]

#: gemkit's fork task (``gemkit/fork-v0``: two routes around an obstacle; the quickstart's data)
FORK_NAMES = ("fork",)
MAZE_NAMES = ("umaze", "medium", "large")
#: D4RL's maze2d-v1 recipe (the paper's task): ``gemkit/maze2d-<maze>-v1``.
MAZE2D_NAMES = tuple(f"maze2d-{m}" for m in MAZE_NAMES)
LOCOMOTION_NAMES = tuple(
    f"{t}-{k}"
    for t in ("hopper", "walker2d", "halfcheetah")
    for k in ("medium", "medium-replay", "expert", "medium-expert")
)

#: Validation and test evaluation seeds never overlap (seed s runs envs s * 1000 + i).
VAL_SEEDS = (100,)
TEST_SEEDS = (0,)

#: The paper's Table 1 (Maze2D, D4RL maze2d-*-v1, 1M gradient steps, 3 seeds): other data and
#: another budget, shown for reference only.
PAPER = {
    "umaze": {"GEM": 59.03, "IQL": 42.11},
    "medium": {"GEM": 117.61, "IQL": 34.85},
    "large": {"GEM": 90.16, "IQL": 61.72},
}
#: The paper's Table 1 (Locomotion, D4RL *-v2, 1M gradient steps, 3 seeds; H-M, H-MR, H-ME,
#: W-M, W-MR, W-ME, HC-M, HC-MR, HC-ME; it has no expert-only rows): other data and another
#: budget, shown for reference only.
PAPER_LOCOMOTION = {
    "hopper-medium": {"GEM": 100.08, "IQL": 67.53},
    "hopper-medium-replay": {"GEM": 101.23, "IQL": 97.43},
    "hopper-medium-expert": {"GEM": 110.33, "IQL": 107.42},
    "walker2d-medium": {"GEM": 83.51, "IQL": 80.91},
    "walker2d-medium-replay": {"GEM": 97.02, "IQL": 82.15},
    "walker2d-medium-expert": {"GEM": 109.74, "IQL": 111.72},
    "halfcheetah-medium": {"GEM": 54.42, "IQL": 48.31},
    "halfcheetah-medium-replay": {"GEM": 49.60, "IQL": 44.46},
    "halfcheetah-medium-expert": {"GEM": 100.95, "IQL": 94.74},
}


def split_locomotion(task: str) -> tuple[str, str]:
    """``"hopper-medium-replay"`` -> ``("hopper", "medium-replay")``."""
    env, kind = task.split("-", 1)
    return env, kind


def dataset_id(task: str) -> str:
    """The Minari id of the fork task, a maze (``umaze``, ...; ``maze2d-umaze``, ...) or a
    locomotion task (``hopper-medium``, ...)."""
    if task in FORK_NAMES:
        from gemkit.data import FORK_DATASET_ID

        return FORK_DATASET_ID
    if task in MAZE2D_NAMES:
        from gemkit.data import maze2d_dataset_id

        return maze2d_dataset_id(task.removeprefix("maze2d-"))
    if task in MAZE_NAMES:
        from gemkit.data import pointmaze_dataset_id

        return pointmaze_dataset_id(task)
    from gemkit.data import locomotion_dataset_id

    return locomotion_dataset_id(*split_locomotion(task))


def horizon(task: str) -> int:
    """``H`` of the cosine lambda schedule: the task's episode length."""
    if task in FORK_NAMES:
        import gymnasium as gym

        from gemkit.envs import FORK_ENV_ID

        return int(gym.spec(FORK_ENV_ID).max_episode_steps or 100)
    if task in MAZE2D_NAMES:
        from gemkit.envs.maze2d import MAZE2D

        return MAZE2D[task.removeprefix("maze2d-")].horizon
    if task in MAZE_NAMES:
        from gemkit.data import MAZES

        return int(MAZES[task].horizon)
    import gymnasium as gym

    from gemkit.data import LOCOMOTION_TASKS

    steps = gym.spec(LOCOMOTION_TASKS[split_locomotion(task)[0]].env_id).max_episode_steps
    return int(steps or 1000)


_REFS: dict[str, tuple[float, float]] = {}


def reference_scores(task: str) -> tuple[float, float]:
    """The random and expert returns of ``task``: the fork task's and a pointmaze's from its
    dataset's metadata, a maze2d's and a locomotion task's from D4RL's published tables (the
    numbers their datasets store, no dataset needed)."""
    if task not in _REFS:
        if task in MAZE2D_NAMES:
            from gemkit.data.maze2d import D4RL_REF_SCORES

            _REFS[task] = D4RL_REF_SCORES[task.removeprefix("maze2d-")]
        elif task in MAZE_NAMES or task in FORK_NAMES:
            from gemkit.data import read_metadata

            meta = read_metadata(dataset_id(task))
            _REFS[task] = (float(meta["ref_min_score"]), float(meta["ref_max_score"]))
        else:
            from gemkit.data import LOCOMOTION_TASKS

            spec = LOCOMOTION_TASKS[split_locomotion(task)[0]]
            _REFS[task] = (spec.d4rl_random, spec.d4rl_expert)
    return _REFS[task]


def remember_reference_scores(task: str, ref: tuple[float, float]) -> None:
    """Give :func:`reference_scores` the references of ``task`` where its dataset (which stores
    them) is not on this machine: the ones a results page's facts kept beside its cells."""
    _REFS.setdefault(task, (float(ref[0]), float(ref[1])))

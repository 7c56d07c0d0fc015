"""The rebuilt Maze2D datasets' statistics and both score scales, as one JSON.

For each maze: D4RL's published ``REF_MIN_SCORE`` / ``REF_MAX_SCORE`` (``d4rl/infos.py``), gemkit's
references measured on ``gemkit/Maze2d-<maze>-v1`` (the uniform random policy; the noiseless
controller replanning every episode; one controller reused across episodes, which never replans
after its first), and the dataset's size, episodes, episode lengths and reward rate.

Usage (the datasets first: ``gemkit data make maze2d-<maze>``)::

    python reproductions/maze2d_references.py --episodes 100 \\
        --out docs/results/maze2d/references.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np


def maze_row(maze: str, episodes: int, seed: int) -> dict[str, Any]:
    from gemkit.data import load, maze2d_dataset_id
    from gemkit.data.maze2d import D4RL_REF_SCORES, maze2d_reference_scores

    t0 = time.perf_counter()
    rand, fresh = maze2d_reference_scores(maze, episodes, seed)
    _, reused = maze2d_reference_scores(maze, episodes, seed, reuse_controller=True)
    row: dict[str, Any] = {
        "d4rl_ref_min": D4RL_REF_SCORES[maze][0],
        "d4rl_ref_max": D4RL_REF_SCORES[maze][1],
        "gemkit_random": rand,
        "gemkit_expert_replanning": fresh,
        "gemkit_expert_reused_controller": reused,
        "reference_episodes": episodes,
        "reference_s": round(time.perf_counter() - t0, 1),
    }
    try:
        data = load(maze2d_dataset_id(maze))
    except Exception as exc:  # the references stand without the dataset
        row["dataset"] = f"not loaded: {exc}"
        return row
    ends = np.flatnonzero(data.timeouts.numpy())
    lengths = np.diff(np.concatenate([[-1], ends]))
    row["dataset"] = {
        "id": maze2d_dataset_id(maze),
        "transitions": len(data),
        "episodes": len(ends),
        "mean_episode_length": float(lengths.mean()),
        "max_episode_length": int(lengths.max()),
        "reward_mean": float(data.rewards.mean()),
        "terminals": int(data.terminals.sum()),
        "actions_at_bound": float((data.actions.abs() >= 1.0).float().mean()),
    }
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mazes", nargs="+", default=["umaze", "medium", "large"])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/results/maze2d/references.json")
    args = p.parse_args(argv)
    from gemkit.eval.io import write_json

    body = {
        "what": "Maze2D (D4RL maze2d-v1 recipe): datasets and reference returns on two scales",
        "command": "python reproductions/maze2d_references.py "
        + f"--episodes {args.episodes} --seed {args.seed} --out {args.out}",
        "mazes": {m: maze_row(m, args.episodes, args.seed) for m in args.mazes},
    }
    write_json(Path(args.out), body)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

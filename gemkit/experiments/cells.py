"""Evaluation cells: one selector configuration on one checkpoint, evaluated once and cached.

A cell is a JSON object (``stage``, ``task``, ``train_seed``, ``step``, ``actor``, ``config``,
``eval_seeds``, ``episodes``, and the measured fields); its ``key`` hashes everything that
determines its numbers. Cells live in ``cells-*.jsonl`` files (one per worker, append-only; a
later line with the same key wins), which a results page is rebuilt from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LATE_KNOBS", "cell_key", "make_cell", "read_cell_file", "read_cells"]

#: selector knobs added after cells were first cached, with the default they had implicitly
LATE_KNOBS: dict[str, Any] = {"temperature": 1.0}


def cell_key(cell: dict[str, Any]) -> str:
    """The identity of an evaluation cell: everything that determines its numbers.

    The task is hashed under its first name, ``"maze"``, a MassScale factor and a Phase I
    variant only where there is one, and a selector knob added since cells were first cached
    (:data:`LATE_KNOBS`) only where it is not its default, so the cells cached before keep
    their keys.
    """
    ident = {
        k: cell[k]
        for k in ("stage", "train_seed", "step", "actor", "config", "eval_seeds", "episodes")
    }
    ident["config"] = {
        k: v for k, v in cell["config"].items() if not (k in LATE_KNOBS and v == LATE_KNOBS[k])
    }
    ident["maze"] = cell["task"]
    if cell.get("mass_scale") is not None:
        ident["mass_scale"] = cell["mass_scale"]
    if cell.get("variant") is not None:  # a Phase I variant's run (gemkit.experiments.variants)
        ident["variant"] = cell["variant"]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def read_cell_file(path: Path) -> dict[str, dict[str, Any]]:
    """The cells cached in one ``.jsonl`` file, by key (a rerun's later line wins); empty when
    the file does not exist."""
    if not Path(path).is_file():
        return {}
    rows = (json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())
    return {row["key"]: row for row in rows}


def read_cells(out: Path) -> dict[str, dict[str, Any]]:
    """Every cached cell (all workers' files), by key; a row of the maze-only script names
    its task ``maze``."""
    cells: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(out).glob("cells-*.jsonl")):
        for row in read_cell_file(path).values():
            if "task" not in row and "maze" in row:
                row["task"] = row.pop("maze")
            cells[row["key"]] = row
    return cells


def make_cell(
    stage: str,
    task: str,
    seed: int,
    step: int,
    actor: str,
    config: dict[str, Any],
    eval_seeds: Sequence[int],
    episodes: int,
    **tags: Any,
) -> dict[str, Any]:
    cell = {
        "stage": stage,
        "task": task,
        "train_seed": seed,
        "step": step,
        "actor": actor,
        "config": config,
        "eval_seeds": list(eval_seeds),
        "episodes": episodes,
        **tags,
    }
    cell["key"] = cell_key(cell)
    return cell

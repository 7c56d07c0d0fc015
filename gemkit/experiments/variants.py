"""Phase I variants: one training setting changed at a time, each run scored beside a reference
run at the same step, with a suite's chosen knobs (``reproductions/ablations.py``).

A variant's cells are ordinary evaluation cells (:func:`~gemkit.experiments.cells.make_cell`)
tagged with the ``variant`` (part of their key) and the ``run`` directory their networks come
from (not part of the key), so they live in the same store and are evaluated by the same
:func:`~gemkit.experiments.stages.evaluate_cells` as a suite's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gemkit.experiments.cells import make_cell
from gemkit.experiments.plan import selector_params
from gemkit.experiments.suites import SuiteConfig
from gemkit.experiments.tasks import TEST_SEEDS

__all__ = [
    "KNOBS",
    "VARIANTS",
    "across_seeds",
    "columns",
    "parse_knobs",
    "variant_cells",
    "variant_scores",
]

#: each variant's ``--set`` on top of the suite's training settings (``density``: none, the
#: reference)
VARIANTS: dict[str, list[str]] = {
    "density": [],
    "censored": ["gmm_likelihood=censored"],
    "undetached": ["detach_gamma=false"],
    "k2": ["n_components=2"],
    "c_ent0": ["c_ent=0"],
    "alpha1": ["alpha=1.0"],
    "alpha10": ["alpha=10.0"],
}

#: the selection knobs a variant's cells take from the suite
KNOBS = ("value", "beta", "lam", "lam_T")


def parse_knobs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["value=lcb", "beta=1", ...]`` as knobs; every one of :data:`KNOBS` must be given."""
    got: dict[str, Any] = {}
    for kv in pairs:
        key, sep, val = kv.partition("=")
        if not sep or key not in KNOBS:
            raise SystemExit(f"--knobs {kv!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(KNOBS)}")  # fmt: skip
        try:
            got[key] = val if key == "value" else float(val)
        except ValueError:
            raise SystemExit(f"--knobs {kv!r}: {key} takes a number") from None
    missing = [k for k in KNOBS if k not in got]
    if missing:
        raise SystemExit(f"--knobs: also give {', '.join(missing)}")
    return got


def columns(n: int) -> list[tuple[str, int]]:
    """The ``(actor, N)`` a variant is scored at: GEM's anchor, the fair baseline (both
    single-shot), GEM with ``n`` candidates."""
    return [("gem", 0), ("baseline", 0), ("gem", n)]


def variant_cells(
    config: SuiteConfig,
    task: str,
    seed: int,
    steps: int,
    runs: Mapping[str, Path],
    knobs: Mapping[str, Any],
    n: int = 64,
    episodes: int = 30,
) -> list[dict[str, Any]]:
    """The test cells of each variant in ``runs`` (variant -> run directory) at ``steps``:
    :func:`columns` at the suite's ``knobs``."""
    cells = []
    for variant, run in runs.items():
        for actor, k in columns(n):
            cfg = selector_params(config, task, n=k, **knobs)
            cells.append(make_cell("test", task, seed, steps, actor, cfg, TEST_SEEDS, episodes,
                                   series="variant", variant=variant, run=str(run)))  # fmt: skip
    return cells


Score = dict[tuple[str, int, str, int], float]


def variant_scores(cells: Iterable[dict[str, Any]], steps: int) -> Score:
    """``(variant, training seed, actor, N) -> score`` of the variant cells at ``steps``."""
    return {(c["variant"], c["train_seed"], c["actor"], c["config"]["n"]): c["score_mean"]
            for c in cells if c.get("variant") is not None and c["step"] == steps}  # fmt: skip


def across_seeds(scores: Score, n: int) -> dict[str, dict[str, Any]]:
    """Per variant measured on more than one training seed: its scores beside the reference's
    (``density``) on every seed where both have all of :func:`columns`, and their means over
    those seeds (the reference's mean over the same seeds, not over all of its own)."""
    cols = columns(n)
    keys = [f"{a}_n{k}" for a, k in cols]
    out: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        if v == "density":
            continue
        seeds = sorted({s for (v_, s, _, _) in scores if v_ == v
                        and all((w, s, a, k) in scores for w in (v, "density") for a, k in cols)})
        if len(seeds) < 2:
            continue
        per = [{"seed": s, **{f"{w}_{key}": scores[(w_, s, a, k)]
                              for w, w_ in (("reference", "density"), ("variant", v))
                              for key, (a, k) in zip(keys, cols, strict=True)}}
               for s in seeds]  # fmt: skip
        mean = {f: sum(r[f] for r in per) / len(per) for f in per[0] if f != "seed"}
        out[v] = {"set": VARIANTS[v], "seeds": seeds, "per_seed": per, "mean": mean}
    return out

"""reproductions/selector_variants.py: the sweep cells of several runs collected per task, seed
and step, and reported as mean and std over training seeds."""

from __future__ import annotations

import json
import pathlib
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from script_fixtures import load_script


@pytest.fixture(scope="module")
def variants() -> ModuleType:
    return load_script("reproductions/selector_variants.py", "selector_variants_script")


def _cell(key: str, score: float, value: str = "lcb_z", preset: str = "gem") -> dict[str, Any]:
    config = {"proposer": "actor", "value": value, "beta": 1.0, "lam": 0.3, "k": 1, "n": 64}
    return {"stage": "sweep", "key": key, "preset": preset, "config": config,
            "score_mean": score, "support_z": 0.5, "violation": 0.1,
            "critic_evals": 65.0}  # fmt: skip


def _write(folder: pathlib.Path, cells: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    (folder / "cells-0of1.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells))


def test_folders_name_a_seed_and_an_optional_snapshot(variants: ModuleType) -> None:
    assert variants.folder(2, None) == "s2"
    assert variants.folder(0, 40_000) == "s0-step40000"
    assert variants.parse_folder("s0-step40000") == (0, 40_000)
    assert variants.parse_folder("s12") == (12, None)


def test_collect_and_report_give_mean_and_std_over_seeds(
    variants: ModuleType, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    task = out / "hopper-medium-replay"
    _write(task / "s0", [_cell("a", 10.0), _cell("b", 1.0, value="mean"),
                         _cell("a", 20.0)])  # a rerun of key a: its later line counts
    _write(task / "s1", [_cell("a", 40.0), _cell("b", 3.0, value="mean")])
    _write(task / "s0-step40000", [_cell("a", 90.0)])
    cells = tmp_path / "cells.jsonl"
    assert variants.collect([out], cells) == 5
    rows = variants.report(cells)
    got = {(r["step"], r["variant"]): r for r in rows}
    gem = got[("final", "gem actor lcb_z beta=1 lam=0.3 k=1 N=64")]
    assert gem["seeds"] == [0, 1]
    np.testing.assert_allclose([gem["score_mean"], gem["score_mean_std"]],
                               [np.mean([20.0, 40.0]), np.std([20.0, 40.0])])  # fmt: skip
    assert got[("final", "gem actor mean beta=1 lam=0.3 k=1 N=64")]["score_mean"] == 2.0
    snap = got[("40000", "gem actor lcb_z beta=1 lam=0.3 k=1 N=64")]
    assert snap["seeds"] == [0] and snap["score_mean"] == 90.0
    assert {r["task"] for r in rows} == {"hopper-medium-replay"}
    assert "| hopper-medium-replay | 40000 |" in variants.markdown(rows)
    with pytest.raises(SystemExit, match="run the `run` stage"):
        variants.collect([tmp_path / "empty"], tmp_path / "x.jsonl")


def test_the_committed_variants_summary_regenerates_from_its_cells(
    variants: ModuleType, tmp_path: pathlib.Path
) -> None:
    root = pathlib.Path(__file__).resolve().parents[1]
    cells = root / "docs/results/locomotion/variants_cells.jsonl"
    summary = root / "docs/results/locomotion/variants_summary.json"
    out = tmp_path / "summary.json"
    variants.main(["report", "--cells", str(cells), "--summary", str(out)])
    assert out.read_bytes() == summary.read_bytes()
    assert out.with_suffix(".csv").read_bytes() == summary.with_suffix(".csv").read_bytes()

"""The outside IQL reference (gemkit.experiments.outside and reproductions/iql_reference.py):
the report stage's curves of the test cells."""

from __future__ import annotations

import json
import pathlib
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from script_fixtures import load_script

from gemkit.experiments import outside


@pytest.fixture(scope="module")
def iqlref() -> ModuleType:
    return load_script("reproductions/iql_reference.py", "iql_reference_script")


def _cell(maze: str, step: int, n: int | None, score: float, seed: int = 0) -> dict[str, Any]:
    series = "iql" if n is None else f"gem-over-iql n={n} lcb lam=0.003"
    return {"key": f"{maze}-s{seed}-{step}-{series}", "maze": maze, "train_seed": seed,
            "step": step, "series": series, "n": n, "lam": 0.003, "beta": 1.0, "value": "lcb",
            "support": "" if n is None else "/runs/support", "episodes": 30,
            "score_mean": score, "score_ep_std": 1.0, "violation": 0.1,
            "support_z": 0.5}  # fmt: skip


def test_curves_group_by_series_sort_by_step_and_keep_a_reruns_last_cell(
    iqlref: ModuleType,
) -> None:
    rows = [_cell("umaze", 40_000, 64, 10.0), _cell("umaze", 20_000, 64, 20.0),
            _cell("umaze", 20_000, None, 30.0), _cell("umaze", 20_000, 16, 40.0),
            _cell("umaze", 20_000, 64, 25.0),  # a rerun of the same key: this one counts
            _cell("large", 20_000, 64, 99.0), _cell("umaze", 20_000, 64, 98.0, seed=1)]  # fmt: skip
    curves = outside.iql_curves(rows, "umaze", 0)
    assert list(curves) == ["iql", "gem-over-iql n=16 lcb lam=0.003",
                            "gem-over-iql n=64 lcb lam=0.003"]  # fmt: skip
    gem64 = curves["gem-over-iql n=64 lcb lam=0.003"]
    assert [(c["step"], c["score_mean"]) for c in gem64] == [(20_000, 25.0), (40_000, 10.0)]
    assert [c["score_mean"] for c in curves["iql"]] == [30.0]


def test_report_writes_the_curves_and_a_plot(iqlref: ModuleType, tmp_path: pathlib.Path) -> None:
    rows = [_cell("large", s, n, float(s // 1000 + (n or 0)))
            for s in (20_000, 40_000) for n in (None, 1, 64)]  # fmt: skip
    (tmp_path / "cells-iql.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report.json"
    iqlref.main(["report", "--maze", "large", "--out", str(tmp_path), "--report", str(out)])
    got = json.loads(out.read_text())["curves"]
    assert got["gem-over-iql n=64 lcb lam=0.003"] == [
        {k: r[k] for k in got["iql"][0]} for r in rows if r["n"] == 64
    ]
    assert [c["score_mean"] for c in got["iql"]] == [20.0, 40.0]
    assert out.with_suffix(".png").stat().st_size > 0


def test_report_without_cells_says_what_to_run(iqlref: ModuleType, tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit, match="run the test stage"):
        iqlref.main(["report", "--maze", "umaze", "--out", str(tmp_path)])
    (tmp_path / "cells-iql.jsonl").write_text(json.dumps(_cell("large", 20_000, 1, 1.0)) + "\n")
    with pytest.raises(SystemExit, match="no cells of umaze seed 0"):
        iqlref.main(["report", "--maze", "umaze", "--out", str(tmp_path)])


def test_curve_means_match_numpy_over_all_and_the_later_half(iqlref: ModuleType) -> None:
    scores = [64.7, 62.5, 57.9, 68.6, 58.2, 44.8]
    rows = [_cell("umaze", 20_000 * (i + 1), 64, x) for i, x in enumerate(scores)]
    got = outside.curve_means(outside.iql_curves(rows, "umaze", 0))
    m = got["gem-over-iql n=64 lcb lam=0.003"]
    assert m["snapshots"] == 6
    np.testing.assert_allclose(m["all"], np.mean(scores))
    np.testing.assert_allclose(m["later_half"], np.mean(scores[3:]))  # steps 80k-120k > 60k


def test_seed_means_match_numpy_over_the_seeds_common_series(iqlref: ModuleType) -> None:
    scores = {1: [10.0, 30.0, 50.0, 70.0], 2: [20.0, 20.0, 40.0, 90.0]}
    rows = [_cell("medium", 20_000 * (i + 1), 64, x, seed=k)
            for k, xs in scores.items() for i, x in enumerate(xs)]  # fmt: skip
    rows.append(_cell("medium", 20_000, 16, 5.0, seed=1))  # only in seed 1: left out
    got = outside.seed_means({k: outside.curve_means(outside.iql_curves(rows, "medium", k))
                             for k in scores})  # fmt: skip
    assert list(got) == ["gem-over-iql n=64 lcb lam=0.003"]
    m = got["gem-over-iql n=64 lcb lam=0.003"]
    per_all = [np.mean(xs) for xs in scores.values()]
    per_late = [np.mean(xs[2:]) for xs in scores.values()]  # steps 60k, 80k > 40k
    np.testing.assert_allclose([m["all"], m["all_std"]], [np.mean(per_all), np.std(per_all)])
    np.testing.assert_allclose([m["later_half"], m["later_half_std"]],
                               [np.mean(per_late), np.std(per_late)])  # fmt: skip
    assert m["seeds"] == [1, 2]


def test_report_over_several_seeds_keeps_each_seeds_curves(
    iqlref: ModuleType, tmp_path: pathlib.Path
) -> None:
    rows = [_cell("medium", s, n, float(s // 1000 + (n or 0) + 100 * k), seed=k)
            for k in (1, 2) for s in (20_000, 40_000) for n in (None, 64)]  # fmt: skip
    (tmp_path / "cells-iql.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report.json"
    iqlref.main(["report", "--maze", "medium", "--seeds", "1", "2", "--out", str(tmp_path),
                 "--report", str(out)])  # fmt: skip
    got = json.loads(out.read_text())
    assert [c["score_mean"] for c in got["seeds"]["2"]["curves"]["iql"]] == [220.0, 240.0]
    np.testing.assert_allclose(got["mean_over_seeds"]["iql"]["all"], (130.0 + 230.0) / 2)
    assert out.with_suffix(".png").stat().st_size > 0
    with pytest.raises(SystemExit, match="no cells of medium seed 3"):
        iqlref.main(["report", "--maze", "medium", "--seeds", "1", "3", "--out", str(tmp_path),
                     "--report", str(out)])  # fmt: skip


def test_restore_puts_a_reports_cells_back_and_up_to_cuts_the_curves(
    iqlref: ModuleType, tmp_path: pathlib.Path
) -> None:
    rows = [_cell("umaze", s, n, float(s // 1000 + (n or 0)))
            for s in (20_000, 40_000, 60_000) for n in (None, 64)]  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cells-iql.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = tmp_path / "first.json"
    iqlref.main(["report", "--maze", "umaze", "--out", str(tmp_path / "a"), "--report",
                 str(first)])  # fmt: skip
    # a fresh cache: the report's cells come back, and a second restore adds nothing
    for _ in range(2):
        iqlref.main(["restore", "--maze", "umaze", "--seed", "0", "--report", str(first),
                     "--out", str(tmp_path / "b")])  # fmt: skip
    cache = (tmp_path / "b" / "cells-iql.jsonl").read_text()
    restored = [json.loads(x) for x in cache.splitlines()]
    assert len(restored) == len(rows) and all(r["restored_from"] == str(first) for r in restored)
    again = tmp_path / "again.json"
    iqlref.main(["report", "--maze", "umaze", "--out", str(tmp_path / "b"), "--report",
                 str(again)])  # fmt: skip
    assert json.loads(again.read_text())["curves"] == json.loads(first.read_text())["curves"]
    cut = tmp_path / "cut.json"
    iqlref.main(["report", "--maze", "umaze", "--out", str(tmp_path / "b"), "--report", str(cut),
                 "--up-to", "40000"])  # fmt: skip
    got = json.loads(cut.read_text())
    assert [c["step"] for c in got["curves"]["iql"]] == [20_000, 40_000]
    np.testing.assert_allclose(got["mean_score"]["iql"]["later_half"], 40.0)  # steps > 20,000
    with pytest.raises(SystemExit, match="no such file"):
        iqlref.main(["restore", "--maze", "umaze", "--report", str(tmp_path / "none.json"),
                     "--out", str(tmp_path / "b")])  # fmt: skip

"""reproductions/ablations.py and gemkit.experiments.variants: the Phase I variants' cells
(ordinary cells of the store, keyed by their variant) and their report (no training here)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from script_fixtures import load_script

from gemkit.experiments import make_cell, read_cells

ROOT = Path(__file__).resolve().parents[1]


def _scores(variant: str, seed: int, **scores: float) -> list[dict[str, Any]]:
    """Evaluated variant cells of medium at 60,000 steps: ``gem_n64=17.0`` etc."""
    out = []
    for col, x in scores.items():
        actor, n = col.rsplit("_n", 1)
        c = make_cell("test", "medium", seed, 60_000, actor, {"n": int(n)}, [0], 30,
                      series="variant", variant=variant)  # fmt: skip
        out.append({**c, "score_mean": x})
    return out


def _three(variant: str, seed: int, anchor: float, base: float, n64: float) -> list[dict[str, Any]]:
    return _scores(variant, seed, gem_n0=anchor, baseline_n0=base, gem_n64=n64)


def _write(out: Path, rows: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "cells-0of1.jsonl").open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def abl() -> ModuleType:
    return load_script("reproductions/ablations.py", "repro_ablations")


def test_every_variant_changes_one_setting_and_gets_three_cells(abl: ModuleType) -> None:
    args = abl.parse_args(["eval", "--variants", "density", "censored", "k2"])
    assert abl.VARIANTS["density"] == [] and all(len(v) == 1 for k, v in abl.VARIANTS.items()
                                                 if k != "density")  # fmt: skip
    cells = abl.cells(args)
    assert [(c["variant"], c["actor"], c["config"]["n"]) for c in cells[:3]] == [
        ("density", "gem", 0), ("density", "baseline", 0), ("density", "gem", 64)]
    assert len(cells) == 9 and len({c["key"] for c in cells}) == 9  # the variant is in the key
    assert {c["config"]["value"] for c in cells} == {"lcb_z"}
    assert {c["run"] for c in cells if c["variant"] == "k2"} == {"reproductions/out/ablations/"
                                                                 "runs/medium-k2-s0"}


def test_reference_run_replaces_density(abl: ModuleType, tmp_path: Path) -> None:
    args = abl.parse_args(["train", "--runs", str(tmp_path), "--reference", "/ref"])
    assert abl.run_dir(args, "density") == Path("/ref")
    assert abl.run_dir(args, "censored") == tmp_path / "medium-censored-s0"


def test_report_table_and_json(abl: ModuleType, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rows = []
    for v, base in (("density", 10.0), ("censored", 20.0)):
        for actor, n, add in (("gem", 0, 0.0), ("baseline", 0, 5.0), ("gem", 64, 9.0)):
            rows += _scores(v, 0, **{f"{actor}_n{n}": base + add})
            rows += _scores(v, 1, **{f"{actor}_n{n}": -1.0})  # not in seed 0's table
    _write(tmp_path, rows)
    out = tmp_path / "abl.json"
    abl.main(["report", "--out", str(tmp_path), "--json", str(out)])
    text = capsys.readouterr().out
    assert "| density | (reference) | 10.0 | 15.0 | 19.0 |" in text
    assert "| censored | gmm_likelihood=censored | 20.0 | 25.0 | 29.0 |" in text
    saved = json.loads(out.read_text())
    assert saved["rows"][1] == {"variant": "censored", "set": ["gmm_likelihood=censored"],
                                "gem_n0": 20.0, "baseline_n0": 25.0, "gem_n64": 29.0}  # fmt: skip


def test_train_command_is_the_reproductions_plus_one_change(abl: ModuleType, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            ) -> None:  # fmt: skip
    ran: list[list[str]] = []
    monkeypatch.setattr(abl.subprocess, "run", lambda cmd, check: ran.append(cmd))
    abl.main(["train", "--runs", str(tmp_path), "--steps", "600", "--variants", "censored"])
    out = str(tmp_path / "medium-censored-s0")
    assert ran == [["gemkit", "train", "--dataset", "gemkit/pointmaze-medium-v1", "--seed", "0",
                    "--out", out, "--set", "n_critics=5", "--set", "hidden=128,128", "--set",
                    "gmm_likelihood=censored", "--steps", "600", "--compile", "--snapshot-every",
                    "20000", "--threads", "1", "--quiet"]]  # fmt: skip


def test_explicit_knobs_replace_the_lost_cell_cache(abl: ModuleType) -> None:
    args = abl.parse_args(["eval", "--variants", "c_ent0", "--knobs", "value=lcb", "beta=1",
                           "lam=0.003", "lam_T=0.003"])  # fmt: skip
    cells = abl.cells(args)
    assert len(cells) == 3
    for c in cells:
        cfg = c["config"]
        assert (cfg["value"], cfg["beta"], cfg["lam"], cfg["lam_T"]) == ("lcb", 1.0, 0.003, 0.003)
    for bad, says in ((["value=lcb"], "also give beta, lam, lam_T"),
                      (["gamma=1"], "KEY one of value, beta, lam, lam_T"),
                      (["beta=high", "value=lcb", "lam=0", "lam_T=0"], "beta takes a number")):
        with pytest.raises(SystemExit, match=says):
            abl.cells(abl.parse_args(["eval", "--knobs", *bad]))
    both = abl.parse_args(["eval", "--knobs", "value=lcb", "--knobs-from", "x"])
    with pytest.raises(SystemExit, match="not both"):
        abl.cells(both)




def test_restore_then_report_across_seeds(abl: ModuleType, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    # a committed report with seed 0 only, restored; then new seeds' cells as eval writes them
    committed = tmp_path / "committed"
    _write(committed, _three("density", 0, 6.0, 24.0, 17.0) + _three("c_ent0", 0, 1.0, 24.0, 18.0))
    report = tmp_path / "committed.json"
    abl.main(["report", "--out", str(committed), "--json", str(report)])
    cache = tmp_path / "cache"
    abl.main(["restore", "--out", str(cache), "--report", str(report)])
    abl.main(["restore", "--out", str(cache), "--report", str(report)])  # adds nothing twice
    restored = list(read_cells(cache).values())
    assert len(restored) == 6 and all(r["restored_from"] == str(report) for r in restored)
    new = (_three("density", 1, 10.0, 16.0, 24.0) + _three("c_ent0", 1, 5.0, 16.0, 20.0)
           + _three("c_ent0", 2, 9.0, 20.0, 30.0))  # seed 2 has no reference: left out
    _write(cache, new)
    capsys.readouterr()
    out = tmp_path / "abl.json"
    abl.main(["report", "--out", str(cache), "--json", str(out)])
    text = capsys.readouterr().out
    assert "| mean | 8.0 / 3.0 | 20.0 / 20.0 | 20.5 / 19.0 |" in text
    body = json.loads(out.read_text())["across_seeds"]
    assert list(body) == ["c_ent0"] and body["c_ent0"]["seeds"] == [0, 1]
    ref = np.array([[6.0, 24.0, 17.0], [10.0, 16.0, 24.0]]).mean(axis=0)
    var = np.array([[1.0, 24.0, 18.0], [5.0, 16.0, 20.0]]).mean(axis=0)
    mean = body["c_ent0"]["mean"]
    np.testing.assert_allclose([mean["reference_gem_n0"], mean["reference_baseline_n0"],
                                mean["reference_gem_n64"]], ref)  # fmt: skip
    np.testing.assert_allclose([mean["variant_gem_n0"], mean["variant_baseline_n0"],
                                mean["variant_gem_n64"]], var)  # fmt: skip
    with pytest.raises(SystemExit, match="no such file"):
        abl.main(["restore", "--out", str(cache), "--report", str(tmp_path / "none.json")])
    # filters: one variant, one seed
    only = tmp_path / "only"
    abl.main(["restore", "--out", str(only), "--report", str(report), "--variants", "c_ent0",
              "--only-seeds", "0"])  # fmt: skip
    assert {(r["variant"], r["train_seed"]) for r in read_cells(only).values()} == {("c_ent0", 0)}
    abl.main(["restore", "--out", str(tmp_path / "none"), "--report", str(report),
              "--only-seeds", "5"])  # fmt: skip
    assert read_cells(tmp_path / "none") == {}


REPORTS = sorted((ROOT / "docs" / "results").glob("ablations*.json"))


@pytest.mark.parametrize("report", REPORTS, ids=[p.stem for p in REPORTS])
def test_committed_ablation_reports_regenerate_from_the_store(
    abl: ModuleType, report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each committed ablation report, restored into an empty cell store, reports itself (a
    report written before ``across_seeds`` existed: the fields it has)."""
    committed = json.loads(report.read_text())
    abl.main(["restore", "--out", str(tmp_path), "--report", str(report)])
    out = tmp_path / "again.json"
    abl.main(["report", "--out", str(tmp_path), "--steps", str(committed["steps"]), "--episodes",
              str(committed["episodes"]), "--json", str(out)])  # fmt: skip
    got = json.loads(out.read_text())
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(got.pop("every_seed"), key=key) == sorted(committed.pop("every_seed"), key=key)
    assert {k: got[k] for k in committed} == committed

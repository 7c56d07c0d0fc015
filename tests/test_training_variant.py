"""reproductions/training_variant.py: a training variant is measured on the suite's own test
cells at the suite's committed knobs, and each of its cells is paired with the committed cell
of the same key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_fixtures import load_script

from gemkit.experiments.cells import read_cells

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "results" / "locomotion"


def test_the_variant_is_planned_at_the_committed_knobs_and_paired_by_key(tmp_path: Path) -> None:
    tv = load_script("reproductions/training_variant.py", "training_variant")
    out = tmp_path / "cells"
    config = tv.suite_config(["--runs", str(tmp_path / "runs"), "--out", str(out), "--tasks",
                              "hopper-medium", "--seeds", "0", "1"])  # fmt: skip
    plan = tv.planned(config)
    knobs = json.loads((COMMITTED / "locomotion_summary.json").read_text())["knobs"]
    gem64 = [c for c in plan if c["actor"] == "gem" and c["config"]["n"] == 64]
    assert len(gem64) == 2 and all(c["config"]["beta"] == knobs["beta"] for c in gem64)
    assert {c["series"] for c in plan} == {"curve", "gem", "baseline"}
    assert {c["config"]["n"] for c in plan} == {0, 64}
    # the variant's cells: every planned cell, scoring 10 on seed 0 and 20 on seed 1
    out.mkdir()
    audits = {"violation": 0.0, "support_z": 0.0, "collapse_dist": 0.0, "success_rate": 0.0,
              "steps_per_s": 1.0, "returns": [1.0]}
    rows = [{**c, **audits, "score_mean": 10.0 * (1 + c["train_seed"])} for c in plan]
    (out / "cells-0of1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    body = tv.report(config, tmp_path / "v.json")
    variant = body["tasks"]["hopper-medium"]["variant"]
    assert variant["GEM N=64"]["score"] == 15.0 and variant["GEM N=64"]["score_std"] == 5.0
    assert variant["gem later half"]["score"] == 15.0
    # the suite's side is the committed cell of the same key
    suite = read_cells(COMMITTED / "cells")
    ref = [suite[c["key"]]["score_mean"] for c in gem64]
    got = body["tasks"]["hopper-medium"]["suite"]["GEM N=64"]
    assert got["score"] == pytest.approx(np.mean(ref)) and got["train_seeds"] == 2
    assert json.loads((tmp_path / "v.json").read_text()) == body
    assert "| hopper-medium | variant | 15.0 ± 5.0 |" in tv.table(body)
    assert "validation" not in body  # the variant's runs were not validated
    # validated: the knobs ranked on the variant's cells, each beside the suite's score
    from gemkit.experiments.plan import validation_cells
    from gemkit.experiments.protocol import rank_knobs

    val = validation_cells(config)
    score = {c["key"]: float(i) for i, c in enumerate(val)}  # the last setting ranks first
    (out / "cells-val.jsonl").write_text("".join(
        json.dumps({**c, **audits, "score_mean": score[c["key"]]}) + "\n" for c in val))
    ranked = tv.report(config, tmp_path / "v.json")["validation"]
    best = rank_knobs([{**c, "score_mean": score[c["key"]]} for c in val])[0]
    assert ranked[0]["val_score"] == best["val_score"]
    assert len(ranked) == len({(c["config"]["beta"], c["config"]["lam"], c["config"]["lam_T"],
                                c["config"]["value"]) for c in val})  # fmt: skip
    fields = ("beta", "lam", "lam_T", "value")
    theirs = rank_knobs(suite[c["key"]] for c in val if c["key"] in suite)
    same = next(k for k in theirs if all(k[f] == best[f] for f in fields))
    assert ranked[0]["suite_val_score"] == same["val_score"]

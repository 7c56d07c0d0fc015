"""Unit tests of the experiment building blocks: NLL gap, sweep grid, profile."""

from __future__ import annotations

import csv
import math
import pathlib
from typing import Any

import numpy as np
import pytest
import torch

from gemkit.config import SelectorConfig
from gemkit.data.transitions import Transitions
from gemkit.eval.nll_gap import nll_gap, summarize_gaps
from gemkit.eval.profile import DenoiserMLP, ddpm_sample, peak_memory_bytes
from gemkit.eval.results import METRICS, config_key
from gemkit.eval.runs import summarize
from gemkit.eval.sweep import (
    RUN_FIELDS,
    STORE,
    SweepGrid,
    aggregate_runs,
    migrate_runs_csv,
    sweep_cells,
)
from gemkit.experiments.cells import read_cells
from gemkit.models import ConditionalGMM, CriticEnsemble, Models
from gemkit.models.critic import ValueNetwork


def _numpy_gap(gmm: ConditionalGMM, s: torch.Tensor, a: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        p = gmm(s)
    w = p.log_weights.exp().double().numpy()  # [B, K]
    mu = p.means.double().numpy()  # [B, K, A]
    sd = np.exp(p.log_std.double().numpy())  # [K, A]
    x = a.double().numpy()
    b, k = w.shape
    nll_gmm = nll_top = 0.0
    for i in range(b):
        dens = []
        for j in range(k):
            z = (x[i] - mu[i, j]) / sd[j]
            logn = (
                -0.5 * np.sum(z**2) - np.sum(np.log(sd[j])) - 0.5 * len(z) * math.log(2 * math.pi)
            )
            dens.append(w[i, j] * math.exp(logn))
            if j == int(np.argmax(w[i])):
                nll_top -= logn
        nll_gmm -= math.log(sum(dens))
    return nll_gmm / b, nll_top / b


def test_nll_gap_matches_a_numpy_reference() -> None:
    torch.manual_seed(0)
    gmm = ConditionalGMM(3, 2, n_components=4, hidden=(8,))
    with torch.no_grad():
        gmm.log_std_param.uniform_(-1.0, 0.0)
    s, a = torch.randn(50, 3), torch.rand(50, 2) * 2 - 1
    g = nll_gap(gmm, s, a, chunk=7)  # several chunks
    ref_gmm, ref_top = _numpy_gap(gmm, s, a)
    assert g.nll_gmm == pytest.approx(ref_gmm, rel=1e-5)
    assert g.nll_top1 == pytest.approx(ref_top, rel=1e-5)
    assert g.gap == pytest.approx(ref_top - ref_gmm, rel=1e-4)
    assert g.transitions == 50


def test_nll_gap_is_zero_for_one_component() -> None:
    torch.manual_seed(1)
    gmm = ConditionalGMM(3, 2, n_components=1, hidden=(8,))
    g = nll_gap(gmm, torch.randn(20, 3), torch.rand(20, 2))
    assert abs(g.gap) < 1e-5


def test_nll_gap_is_positive_on_bimodal_data_under_a_bimodal_mixture() -> None:
    gmm = ConditionalGMM(1, 1, n_components=2, hidden=(4,))
    with torch.no_grad():
        for p in gmm.parameters():
            p.zero_()
        gmm.means_head.bias.copy_(torch.tensor([-1.0, 1.0]))  # tanh -> +-0.76
        gmm.log_std_param.fill_(-2.0)
    a = torch.tensor([[-0.76], [0.76]]).repeat(10, 1)
    g = nll_gap(gmm, torch.zeros(20, 1), a)
    assert g.gap > 10.0  # half the data sits on the component the top-1 rule ignores
    s = summarize_gaps([g, g], 2, [0, 1], 0)
    assert s.gap_std == 0.0 and s.gap_mean == pytest.approx(g.gap)


def test_sweep_grid_applies_presets_last_dedupes_and_drops_invalid_topk() -> None:
    grid = SweepGrid(presets=("gem", "no_pw", "single_shot", "no_anchor"), n=(0, 4),
                     lam=(0.5, 1.0), k=(1, 3))  # fmt: skip
    cells = grid.cells(100)
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys))
    by = {}
    for c in cells:
        by.setdefault(c.preset, []).append(c.config)
    assert all(c.lam == 0.0 and c.lam_T == 0.0 for c in by["no_pw"])
    # no_anchor at N = 0 has no candidates; k = 3 needs 3 of them
    assert {(c.n, c.k) for c in by["no_anchor"]} == {(4, 1), (4, 3)}
    # single_shot (N = 0) resolves to the same configs as gem at N = 0: run once, as gem
    assert "single_shot" not in by
    # k = 3 needs N + 1 >= 3 candidates: never with N = 0
    assert not any(c.config.k == 3 and c.config.n == 0 for c in cells)
    assert all(c.config.reducer == ("topk" if c.config.k > 1 else "top1") for c in cells)
    assert all(c.config.horizon == 100 for c in cells)
    # gem: 2 lam x (N=0 k=1, N=4 k=1, N=4 k=3) = 6; no_pw: lam collapses -> 3
    assert (len(by["gem"]), len(by["no_pw"])) == (6, 3)
    with pytest.raises(ValueError, match="gem"):
        SweepGrid(presets=("gme",)).cells()


def test_sweep_grid_has_a_value_axis() -> None:
    grid = SweepGrid(presets=("gem", "no_lcb"), n=(8,), value=("lcb", "lcb_z", "min"))
    cells = grid.cells(100)
    assert [c.config.value for c in cells if c.preset == "gem"] == ["lcb", "lcb_z", "min"]
    assert all(c.config.beta == 0.0 for c in cells if c.preset == "no_lcb")
    assert len({c.key for c in cells}) == 6
    assert grid.reference(100).value == "lcb"
    assert SweepGrid().cells(100)[0].config.value == "lcb"  # the default: GEM's LCB


def test_aggregate_runs_mean_and_std_over_seeds() -> None:
    grid = SweepGrid(n=(4,))
    (cell,) = grid.cells(100)
    store: dict[str, dict[str, Any]] = {}
    for c, v in zip(sweep_cells("t", cell, [0, 1, 2], 3, None), (10.0, 30.0, 99.0), strict=True):
        store[c["key"]] = {**c, "score_mean": v, "return_mean": 1.0, "success_rate": None,
                           "support_z": 0.5, "violation": 0.1, "collapse_dist": 0.2,
                           "steps_per_s": 100.0}  # fmt: skip
    (row,) = aggregate_runs(store, "t", [cell], seeds=[0, 1], episodes=3)
    assert row["seeds"] == 2
    assert row["score_mean"] == 20.0 and row["score_std"] == 10.0
    assert math.isnan(row["success_rate"]) and row["violation"] == pytest.approx(0.1)
    assert aggregate_runs(store, "t", [cell], seeds=[0], episodes=5) == []
    assert aggregate_runs(store, "other", [cell], seeds=[0], episodes=3) == []
    assert aggregate_runs(store, "t", [cell], seeds=[0], episodes=3, mass_scale=2.0) == []


def test_sweep_cells_share_a_config_across_presets_and_keep_seeds_apart() -> None:
    (gem,) = SweepGrid(n=(4,), lam=(0.0,), lam_T=(0.0,)).cells(100)
    (no_pw,) = SweepGrid(presets=("no_pw",), n=(4,)).cells(100)
    assert gem.key == no_pw.key  # lambda = 0 either way
    a, b = sweep_cells("t", gem, [0, 1], 3, None), sweep_cells("t", no_pw, [0, 1], 3, None)
    assert [c["key"] for c in a] == [c["key"] for c in b]
    assert a[0]["key"] != a[1]["key"] and a[0]["preset"] == "gem" and b[0]["preset"] == "no_pw"


def test_a_legacy_runs_csv_migrates_into_the_store(tmp_path: pathlib.Path) -> None:
    grid = SweepGrid(n=(4, 8))
    cells = grid.cells(100)
    knobs = {k: "" if v is None else str(v) for k, v in cells[0].config.to_dict()["params"].items()}
    metrics = {m: "" for m in METRICS} | {"score_mean": "12.5", "violation": "0.25"}
    with (tmp_path / "runs.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, RUN_FIELDS)
        w.writeheader()
        w.writerow({"preset": "gem", **knobs, "seed": "0", "episodes": "3", "mass_scale": "",
                    **metrics})  # fmt: skip
    planned = [c for cell in cells for c in sweep_cells("t", cell, [0], 3, None)]
    assert migrate_runs_csv(tmp_path / "runs.csv", tmp_path / STORE, planned) == 1
    (row,) = read_cells(tmp_path).values()
    assert row["key"] == planned[0]["key"] and row["score_mean"] == 12.5
    assert row["violation"] == 0.25 and row["support_z"] is None


def test_config_key_equates_csv_and_typed_values() -> None:
    cfg = SelectorConfig(n=4, lam=1.0)
    typed = cfg.to_dict()["params"]
    as_csv = {k: ("" if v is None else str(v)) for k, v in typed.items()}
    as_csv["n"], as_csv["lam"] = 4, 1.0
    assert config_key(as_csv) == config_key(typed)  # a row read back from CSV: the same config
    assert config_key(typed) == config_key({**typed, "n": 4.0})
    assert config_key({**as_csv, "n": "8"}) != config_key(typed)


def test_summarize_std_over_seeds() -> None:
    from gemkit.eval.evaluate import EvalResult

    def res(returns: list[float], seed: int) -> EvalResult:
        r = np.array(returns)
        return EvalResult("x", len(r), seed, r, np.ones(len(r), int), float(r.mean()),
                          float(r.std()), 100 * float(r.mean()), 100 * float(r.std()), None,
                          None, None, None, 10.0, len(r))  # fmt: skip

    s = summarize("t", [res([0, 1], 0), res([1, 1], 1)], [0, 1], ref_scores=(0.0, 1.0))
    assert s.score_mean == 75.0 and s.score_std == 25.0
    assert s.score_ep_std == pytest.approx(100 * np.std([0, 1, 1, 1]))
    assert math.isnan(s.violation) and math.isnan(s.success_rate)


def test_cpu_peak_measure_tracks_live_tensors() -> None:
    def fn() -> torch.Tensor:
        x = torch.ones(250_000)  # 1 MB
        y = x * 2  # 2 MB live
        del x
        z = torch.ones(500_000)  # 1 + 2 = 3 MB live
        return y.sum() + z.sum()

    peak = peak_memory_bytes(fn)
    assert 2.9e6 <= peak <= 3.2e6


def test_ddpm_sampler_shapes_box_and_seed() -> None:
    torch.manual_seed(0)
    den = DenoiserMLP(5, 3, (16, 16))
    s = torch.randn(4, 5)
    a = ddpm_sample(den, s, 10, generator=torch.Generator().manual_seed(1))
    b = ddpm_sample(den, s, 10, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 3) and torch.equal(a, b)
    assert float(a.abs().max()) <= 1.0


def _toy() -> tuple[Models, Transitions]:
    torch.manual_seed(0)
    n = 256
    obs = torch.randn(n, 3)
    act = torch.rand(n, 2) * 2 - 1
    data = Transitions(
        observations=obs, actions=act, rewards=torch.rand(n), next_observations=obs,
        terminals=torch.zeros(n), timeouts=torch.zeros(n),
        action_low=-torch.ones(2), action_high=torch.ones(2),
        obs_mean=torch.zeros(3), obs_std=torch.ones(3), meta={},
    )  # fmt: skip
    models = Models(
        actor=ConditionalGMM(3, 2, 3, hidden=(8,)),
        behavior=ConditionalGMM(3, 2, 3, hidden=(8,)),
        critic=CriticEnsemble(3, 2, 2, (8,)),
        value=ValueNetwork(3, (8,)),
        meta={"obs_mean": [0.0] * 3, "obs_std": [1.0] * 3, "train_config": {"batch_size": 32}},
    )
    return models, data

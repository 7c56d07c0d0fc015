"""The candidate oracle (gemkit.eval.oracle): ranks and Spearman against plain loops, branch
returns against one-candidate-at-a-time replays of the simulator, the summary against hand
computation, and a clear error outside MuJoCo."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from gemkit import compose
from gemkit.errors import GemkitError
from gemkit.eval.oracle import (
    OracleProbe,
    branch_returns,
    candidate_oracle,
    control_action,
    fall_separation,
    rank,
    spearman,
    summarize_probes,
    value_bins,
)
from gemkit.models import ConditionalGMM, CriticEnsemble, Models, ValueNetwork

pytest.importorskip("mujoco")

S, A = 11, 3  # Hopper-v5


def ref_rank(x: np.ndarray) -> np.ndarray:
    """Average ranks by counting: rank = (#smaller) + (#equal - 1) / 2."""
    return np.array([sum(y < v for y in x) + (sum(y == v for y in x) - 1) / 2 for v in x])


def ref_spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ref_rank(a), ref_rank(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den


def test_rank_and_spearman_match_plain_loops_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, size=9).astype(float)  # many ties
        b = rng.normal(size=9)
        np.testing.assert_allclose(rank(a), ref_rank(a))
        if len(set(a)) > 1:
            assert spearman(a, b) == pytest.approx(ref_spearman(a, b), abs=1e-12)
    assert np.isnan(spearman(np.ones(4), np.arange(4.0)))
    assert spearman(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1.0)


def follow(x: torch.Tensor) -> torch.Tensor:
    """Elementwise, so a batch and one row give the same floats."""
    return torch.tanh(0.5 * x[:, :A])


def test_branch_returns_equal_one_candidate_at_a_time_replays() -> None:
    env = gym.make("Hopper-v5")
    env.reset(seed=3)
    for _ in range(5):
        env.step(np.full(A, 0.3))
    qpos, qvel = env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()
    cand = np.random.default_rng(1).uniform(-1.5, 1.5, size=(6, A))  # some outside the box
    branches = [gym.make("Hopper-v5") for _ in range(6)]
    for b in branches:
        b.reset(seed=0)
    gamma, horizon = 0.97, 80
    ret, lengths, fell = branch_returns(branches, qpos, qvel, cand, follow,
                                        horizon=horizon, gamma=gamma)  # fmt: skip
    for j in range(6):
        one = gym.make("Hopper-v5")
        one.reset(seed=9)
        one.unwrapped.set_state(qpos, qvel)
        total, k, a, down = 0.0, 0, np.clip(cand[j], -1, 1), False
        while k < horizon:
            o, r, term, _, _ = one.unwrapped.step(a)
            total += gamma**k * r
            k += 1
            if term:
                down = True
                break
            a = follow(torch.as_tensor(o, dtype=torch.float32)[None]).numpy()[0].astype(float)
        assert ret[j] == total and lengths[j] == k and fell[j] == down
    assert fell.any() and not fell.all()  # both kinds of branch are exercised


def test_summary_matches_hand_computation() -> None:
    def probe(returns, value, loglik, index, fell):  # type: ignore[no-untyped-def]
        v = np.asarray(value, float)
        return OracleProbe(0, 0, np.asarray(returns, float), np.full(len(v), 10),
                           np.asarray(fell, bool), v, np.zeros(len(v)), np.asarray(loglik, float),
                           v, index)  # fmt: skip

    p1 = probe([1.0, 3.0, 2.0], [0.0, 2.0, 1.0], [0.0, -1.0, -2.0], 1, [False, False, True])
    p2 = probe([5.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, -1.0, -2.0], 2, [False, True, True])
    import attrs

    p1 = attrs.evolve(p1, control_return=1.5)
    p2 = attrs.evolve(p2, control_return=4.0)
    s = summarize_probes([p1, p2])
    assert s.chaos_floor == pytest.approx((0.5 + 1.0) / 2)
    assert s.probes == 2
    assert s.spearman_value == pytest.approx((1.0 + -1.0) / 2)
    assert s.chosen_minus_anchor == pytest.approx(((3 - 1) + (0 - 5)) / 2)
    assert s.best_minus_chosen == pytest.approx((0 + 5) / 2)
    assert s.chosen_fell == pytest.approx(0.5) and s.anchor_fell == 0.0
    assert s.return_spread == pytest.approx((np.std([1, 3, 2]) + np.std([5, 1, 0])) / 2)
    # p2: the critic ranks the least-supported candidate first and it is the worst: overrating
    # grows with lack of support (rho = 1); p1: the critic's order is the true one (rho NaN,
    # left out of the mean)
    assert s.overrating_vs_support == pytest.approx(1.0)
    # falls: p1 values its standing candidates 0 and 2 against the falling 1: one of two pairs
    # right; p2 values the standing candidate 0 below both falls: none right
    assert s.set_fell == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert s.mixed == 1.0
    assert s.fall_auc_value == pytest.approx((0.5 + 0.0) / 2)
    assert s.fall_auc_support == 1.0  # the falls are the least likely in both sets
    no_anchor = attrs_evolve(p1)
    assert np.isnan(summarize_probes([no_anchor]).chosen_minus_anchor)
    with pytest.raises(GemkitError, match="no probes"):
        summarize_probes([])


def ref_fall_separation(x: np.ndarray, fell: np.ndarray) -> float:
    wins, pairs = 0.0, 0
    for i in range(len(x)):
        for j in range(len(x)):
            if not fell[i] and fell[j]:
                pairs += 1
                wins += 1.0 if x[i] > x[j] else 0.5 if x[i] == x[j] else 0.0
    return wins / pairs if pairs else float("nan")


def test_fall_separation_matches_a_plain_loop_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        m = int(rng.integers(2, 12))
        x = rng.integers(0, 4, m).astype(float)  # small integers: many ties
        fell = rng.random(m) < 0.4
        got, want = fall_separation(x, fell), ref_fall_separation(x, fell)
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12)
    assert fall_separation(np.array([2.0, 1.0]), np.array([False, True])) == 1.0
    assert np.isnan(fall_separation(np.array([2.0, 1.0]), np.array([False, False])))


def test_value_bins_match_a_plain_loop() -> None:
    rng = np.random.default_rng(5)
    probes = []
    for _ in range(30):
        m = int(rng.integers(1, 9))
        v = rng.integers(0, 3, m).astype(float)  # ties: mean ranks
        ret = rng.normal(size=m) if rng.random() < 0.8 else np.ones(m)  # some equal sets
        probes.append(OracleProbe(0, 0, ret, np.full(m, 5), rng.random(m) < 0.3, v, np.zeros(m),
                                  np.zeros(m), v, 0))  # fmt: skip
    got = value_bins(probes, bins=4)
    sums = {b: [0.0, 0.0, 0] for b in range(4)}
    for p in probes:
        m = len(p.returns)
        if m < 2:
            continue
        r = rank(p.value)
        for j in range(m):
            b = min(int(r[j] / (m - 1) * 4), 3)
            sd = float(np.std(p.returns))
            sums[b][0] += float(p.fell[j])
            sums[b][1] += (p.returns[j] - np.mean(p.returns)) / sd if sd > 0 else 0.0
            sums[b][2] += 1
    for b in range(4):
        f, z, c = sums[b]
        assert got["count"][b] == c
        assert got["fell"][b] == pytest.approx(f / c) and got["return_z"][b] == pytest.approx(z / c)
    assert np.isnan(value_bins(probes[:0] + [probes[0]] * 0, bins=2)["fell"]).all()


def attrs_evolve(p: OracleProbe) -> OracleProbe:
    import attrs

    return attrs.evolve(p, has_anchor=False)


def hopper_models() -> Models:
    torch.manual_seed(0)  # initialisation only
    return Models(
        actor=ConditionalGMM(S, A, 3, hidden=(16,)),
        behavior=ConditionalGMM(S, A, 3, hidden=(16,)),
        critic=CriticEnsemble(S, A, 3, hidden=(16,)),
        value=ValueNetwork(S, hidden=(16,)),
    )


def test_candidate_oracle_probes_the_selectors_own_candidates_reproducibly() -> None:
    models = hopper_models()
    sel = compose(models=models, n=4)
    anchor = compose(models=models, n=0)
    kw = dict(episodes=2, probe_every=7, max_steps=20, horizon=15, gamma=0.9, seed=5)
    probes = candidate_oracle(sel, "Hopper-v5", anchor, **kw)  # type: ignore[arg-type]
    again = candidate_oracle(compose(models=models, n=4), "Hopper-v5", anchor, **kw)  # type: ignore[arg-type]
    assert [(p.episode, p.t) for p in probes] == [(p.episode, p.t) for p in again]
    assert all(p.t % 7 == 0 and len(p.returns) == 5 for p in probes)
    for p, q in zip(probes, again, strict=True):
        np.testing.assert_array_equal(p.returns, q.returns)
        np.testing.assert_array_equal(p.score, q.score)
    # the first probe: the reset state, the selector's first draw, branched by hand
    first = probes[0]
    env = gym.make("Hopper-v5")
    obs, _ = env.reset(seed=5)
    x0 = torch.as_tensor(obs, dtype=torch.float32)[None]
    s0 = compose(models=models, n=4).select(x0, generator=torch.Generator().manual_seed(5), t=0)
    # ... with its control branch, the anchor moved by 1e-3 in the probe's seeded direction,
    # branched beside the candidates (one batch, as the oracle runs it)
    ctrl = control_action(s0.candidates[0, 0].numpy(), 1e-3, 5, 0, 0)
    assert np.linalg.norm(ctrl - s0.candidates[0, 0].numpy()) == pytest.approx(1e-3)
    branches = [gym.make("Hopper-v5") for _ in range(6)]
    for b in branches:
        b.reset(seed=0)
    both = np.concatenate([s0.candidates[0].numpy(), ctrl[None]])
    ret, _, _ = branch_returns(branches, env.unwrapped.data.qpos.copy(),
                               env.unwrapped.data.qvel.copy(), both, anchor, horizon=15,
                               gamma=0.9)  # fmt: skip
    np.testing.assert_array_equal(first.returns, ret[:5])
    assert first.control_return == ret[5]
    assert first.index == int(s0.index[0])
    summary = summarize_probes(probes)
    assert summary.probes == len(probes) and np.isfinite(summary.best_minus_chosen)


def test_a_non_mujoco_env_is_refused_in_one_line() -> None:
    from gemkit.models import Models as _M  # noqa: F401

    sel = compose(models=hopper_models(), n=2)
    with pytest.raises(GemkitError, match="MuJoCo"):
        candidate_oracle(sel, "CartPole-v1", lambda x: x)
    with pytest.raises(GemkitError, match="horizon"):
        branch_returns([], np.zeros(1), np.zeros(1), np.zeros((0, 1)), follow, horizon=0,
                       gamma=0.9)  # fmt: skip


def test_the_cli_writes_a_summary_per_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from gemkit.cli.main import app
    from typer.testing import CliRunner

    from gemkit.models import save_models

    save_models(tmp_path / "m", hopper_models())
    res = CliRunner().invoke(app, ["diagnose", "oracle", "--models", str(tmp_path / "m"),
                                   "--dataset", "Hopper-v5", "--n", "2,4", "--episodes", "1",
                                   "--probe-every", "10", "--horizon", "5", "--out",
                                   str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o" / "oracle.json").read_text())
    assert [r["n"] for r in doc["summary"]] == [2, 4]
    assert {len(p["returns"]) for p in doc["probes"] if p["n"] == 4} == {5}
    bad = CliRunner().invoke(app, ["diagnose", "oracle", "--models", str(tmp_path / "m"),
                                   "--dataset", "CartPole-v1"])  # fmt: skip
    assert bad.exit_code != 0 and "MuJoCo" in bad.output


def test_the_committed_oracle_summary_regenerates_from_its_probes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """reproductions/candidate_oracle.py report: the summary in docs/results/locomotion comes
    from the committed probes, byte for byte."""
    import json
    from pathlib import Path

    from script_fixtures import load_script

    root = Path(__file__).resolve().parents[1]
    probes = root / "docs/results/locomotion/oracle_probes.json.gz"
    summary = root / "docs/results/locomotion/oracle_summary.json"
    script = load_script("reproductions/candidate_oracle.py", "candidate_oracle_script")
    out = tmp_path / "summary.json"
    script.main(["report", "--probes", str(probes), "--summary", str(out)])
    assert out.read_bytes() == summary.read_bytes()
    assert out.with_suffix(".csv").read_bytes() == summary.with_suffix(".csv").read_bytes()
    rows = json.loads(out.read_text())["rows"]
    assert {r["task"] for r in rows} >= {"walker2d-medium", "halfcheetah-medium"}


def test_a_probe_round_trips_through_its_json_form() -> None:
    import json

    import attrs

    p = OracleProbe(1, 7, np.array([1.5, -2.0]), np.array([3, 200]), np.array([True, False]),
                    np.array([0.1, 0.2]), np.array([-1.0, 1.0]), np.array([-3.0, -4.0]),
                    np.array([0.0, 0.5]), 1, has_anchor=False, control_return=2.25)  # fmt: skip
    q = OracleProbe.from_dict(json.loads(json.dumps(p.to_dict())))
    for f in attrs.fields(OracleProbe):
        np.testing.assert_array_equal(getattr(q, f.name), getattr(p, f.name))
    assert q.fell.dtype == bool and q.has_anchor is False


def test_collect_tags_a_snapshots_probes_and_report_keeps_steps_apart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A snapshot's probes (``run --snapshot``) are reported apart from the final models'."""
    import gzip
    import json

    from script_fixtures import load_script

    script = load_script("reproductions/candidate_oracle.py", "candidate_oracle_script")
    assert script.snapshot_step("runs/t-s0/snapshots/step_00040000") == 40_000
    assert script.snapshot_step("runs/t-s0") is None
    probe = OracleProbe(0, 0, np.array([1.0, 2.0]), np.array([5, 5]), np.array([False, True]),
                        np.array([0.0, 1.0]), np.zeros(2), np.array([0.0, -1.0]),
                        np.array([0.0, 1.0]), 1)  # fmt: skip
    for out, models in (("final", "runs/hop-s0"), ("snap", "runs/hop-s0/snapshots/step_00040000")):
        body = {"models": models, "summary": [{"n": 1}],
                "probes": [probe.to_dict() | {"n": 1}]}  # fmt: skip
        (tmp_path / out / "hop-s0").mkdir(parents=True)
        (tmp_path / out / "hop-s0" / "oracle.json").write_text(json.dumps(body))
    probes = tmp_path / "p.json.gz"
    assert script.collect([tmp_path / "final", tmp_path / "snap"], probes) == 2
    with gzip.open(probes, "rt") as g:
        assert len(json.load(g)["setups"]) == 2
    rows = script.report(script.read_groups(probes))
    assert [(r["task"], r["step"], r["n"]) for r in rows] == [("hop", 40_000, 1),
                                                              ("hop", "final", 1)]  # fmt: skip
    assert rows[0]["fall_auc_value"] == 0.0 and rows[0]["chosen_fell"] == 1.0
    assert "| step |" in script.markdown(rows)


def test_decisions_rank_the_chosen_candidate_within_its_set() -> None:
    from script_fixtures import load_script

    script = load_script("reproductions/candidate_oracle.py", "candidate_oracle_script")
    p = OracleProbe(0, 13, np.array([231.2, 7.8, 220.0]), np.array([200, 7, 200]),
                    np.array([False, True, False]), np.array([0.1, 4.2, 0.5]),
                    np.array([1.4, -4.2, 0.1]), np.array([3.1, -10.5, -0.2]),
                    np.array([0.5, 3.0, 0.6]), 1)  # fmt: skip
    (row,) = script.decisions({"probes": [p.to_dict() | {"n": 2}]})
    assert (row["t"], row["chosen_fell"], row["chosen_length"]) == (13, True, 7)
    assert (row["value_rank"], row["loglik_rank"], row["candidates"]) == (2, 0, 3)
    assert row["set_fell"] == pytest.approx(1 / 3) and row["anchor_return"] == 231.2
    assert "| 2 | 0 | 13 | 7.8, fell (7) | 231.2, up |" in script.decisions_markdown([row])

"""The adaptive candidate budget: exact limits, per-state growth, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import GemkitError, compose
from gemkit.budget import AdaptiveBudget, AdaptiveSelector, settled


def _selector(n: int = 16):
    return compose(models=tiny_models(), n=n, beta=1.0, lam=0.1)


def test_always_growing_equals_fixed_n_max() -> None:
    s = states(7)
    ad = AdaptiveSelector(_selector(), AdaptiveBudget(n0=4, n_max=64, kappa=math.inf))
    g1, g2 = gen(3), gen(3)
    a = ad.select(s, generator=g1)
    f = _selector(64).select(s, generator=g2)
    for name in ("action", "candidates", "score", "value", "support", "index", "support_z"):
        assert torch.equal(getattr(a, name), getattr(f, name)), name
    assert torch.equal(g1.get_state(), g2.get_state())  # the next step draws the same too
    assert a.n_used.tolist() == [64] * 7
    assert a.critic_evals.tolist() == [5 + 1 + 17 + 1 + 65] * 7  # rounds 4, 16, 64 + probes


@pytest.mark.parametrize("budget", [AdaptiveBudget(n0=8, n_max=8),
                                    AdaptiveBudget(n0=8, n_max=128, kappa=-math.inf)])
def test_never_growing_equals_fixed_n0(budget: AdaptiveBudget) -> None:
    s = states(5)
    a = AdaptiveSelector(_selector(), budget).select(s, generator=gen(1))
    f = _selector(8).select(s, generator=gen(1))
    assert torch.equal(a.action, f.action) and torch.equal(a.score, f.score)
    assert a.n_used.tolist() == [8] * 5


def test_states_grow_on_their_own_and_results_are_padded() -> None:
    s = states(32)
    ad = AdaptiveSelector(_selector(), AdaptiveBudget(n0=4, n_max=64, kappa=1.0))
    a = ad.select(s, generator=gen(0))
    used = a.n_used
    assert set(used.tolist()) <= {4, 16, 64}
    assert a.candidates.shape[1] == int(used.max()) + 1
    # each state's set: finite for its own M, padded beyond
    for i in range(32):
        m = int(used[i]) + 1
        assert bool(torch.isfinite(a.candidates[i, :m]).all())
        assert bool(torch.isnan(a.candidates[i, m:]).all())
        assert bool(torch.isneginf(a.score[i, m:]).all())
        assert int(a.index[i]) < m
        assert torch.equal(a.action[i], a.candidates[i, a.index[i]])
    # a state that stopped at round r got round r's selection on its own rows
    again = ad.select(s, generator=gen(0))
    assert torch.equal(again.action, a.action) and torch.equal(again.n_used, used)
    # with these networks some states settle at once and some grow to the end
    stopped = used == 4
    assert 0 < int(stopped.sum()) < 32 and bool((used == 64).any())
    assert a.critic_evals[stopped].tolist() == [6.0] * int(stopped.sum())
    # a larger kappa asks for a clearer lead: never fewer candidates
    wary = AdaptiveSelector(_selector(), AdaptiveBudget(n0=4, n_max=64, kappa=4.0))
    assert bool((wary.select(s, generator=gen(0)).n_used >= used).all())


def test_settled_rule_against_a_plain_loop() -> None:
    sel = _selector(8).select(states(6), generator=gen(2))
    dis = torch.rand(6, generator=gen(4))
    got = settled(sel, dis, 0.5)
    for i in range(6):
        top = sorted(sel.score[i].tolist(), reverse=True)
        assert bool(got[i]) == ((top[0] - top[1]) > 0.5 * float(dis[i]))


def test_bad_budgets_are_one_line_errors() -> None:
    for kw, msg in (({"n0": 0}, "n0 must be >= 1"), ({"n0": 32, "n_max": 16}, "n_max"),
                    ({"growth": 1}, "growth"), ({"kappa": float("nan")}, "kappa")):  # fmt: skip
        with pytest.raises(GemkitError, match=msg) as e:
            AdaptiveBudget(**kw)
        assert "\n" not in str(e.value)


def test_compose_with_a_budget_and_the_eval_command(fork_store, tmp_path) -> None:
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    from gemkit.budget import AdaptiveSelector
    from gemkit.data import FORK_DATASET_ID
    from gemkit.models import save_models

    m = tiny_models()
    sel = compose(models=m, n=4, budget=AdaptiveBudget(n0=2, n_max=8))
    assert isinstance(sel, AdaptiveSelector)
    assert any(part == "budget" for part, _, _ in sel.describe())
    assert sel(states(3)).shape == (3, 2)  # __call__ goes through the adaptive select
    with pytest.raises(GemkitError, match="AdaptiveBudget"):
        compose(models=m, budget=16)
    # the CLI: fixed rows and the adaptive row, with the compute each cost
    ckpt = tmp_path / "ckpt"
    fork = __import__("gemkit.data", fromlist=["load"]).load(FORK_DATASET_ID)
    from gemkit.models import ConditionalGMM, CriticEnsemble, Models

    torch.manual_seed(0)
    s, a = fork.state_dim, fork.action_dim
    save_models(ckpt, Models(actor=ConditionalGMM(s, a, 3, hidden=(16,)),
                             behavior=ConditionalGMM(s, a, 3, hidden=(16,)),
                             critic=CriticEnsemble(s, a, 3, hidden=(16,)),
                             meta={"dataset_id": FORK_DATASET_ID}))  # fmt: skip
    r = CliRunner().invoke(app, ["eval", "--checkpoint", str(ckpt), "--n", "16", "--adaptive",
                                 "--n0", "2", "--n-max", "16", "--episodes", "2", "--out",
                                 str(tmp_path / "ev")])  # fmt: skip
    assert r.exit_code == 0, r.output
    import csv

    rows = list(csv.DictReader((tmp_path / "ev" / "eval.csv").open()))
    assert [row["label"].split()[1] for row in rows] == ["N=16", "adaptive"]
    fixed, adapt = (float(row["critic_evals"]) for row in rows)
    assert fixed == 17.0 and 3.0 <= adapt <= 3 + 1 + 9 + 1 + 17


def test_gain_cue_stops_where_growth_stopped_paying() -> None:
    s = states(24)
    rounds = {n: _selector(n).select(s, generator=gen(0)) for n in (4, 16, 64)}
    sel = AdaptiveSelector(_selector(), AdaptiveBudget(n0=4, n_max=64, kappa=0.5, cue="gain"))
    out = sel.select(s, generator=gen(0))
    assert bool((out.n_used >= 16).all())  # the first round always grows
    # a plain loop over states with the same rule
    from gemkit.budget import top1_disagreement

    best4, best16 = (rounds[n].score.max(1).values for n in (4, 16))
    unc16 = top1_disagreement(sel.selector, s, rounds[16])
    for i in range(24):
        stop = float(best16[i] - best4[i]) <= 0.5 * float(unc16[i])
        assert int(out.n_used[i]) == (16 if stop else 64)
    with pytest.raises(GemkitError, match="cue must be lead or gain"):
        AdaptiveBudget(cue="other")


def test_disagreement_is_in_the_units_of_a_z_scored_value() -> None:
    """A z-scored value term reports the per-state scale it divided by in the selection
    (``value_scale``: the population std of the raw LCB over the candidate set, the same
    candidates a plain LCB selector scores), and the disagreement cue is divided by it."""
    import attrs

    from gemkit.budget import top1_disagreement

    s = states(6)
    raw_sel = _selector(16)
    z_sel = compose(models=tiny_models(), n=16, beta=1.0, lam=0.1, value="lcb_z")
    out_raw, out_z = raw_sel.select(s, generator=gen(0)), z_sel.select(s, generator=gen(0))
    plain = compose(models=tiny_models(), n=16, beta=1.0, lam=0.0).select(s, generator=gen(0))
    assert out_raw.value_scale is None and out_z.value_scale is not None
    torch.testing.assert_close(out_z.value_scale, plain.value.std(1, unbiased=False))
    unscaled = top1_disagreement(z_sel, s, attrs.evolve(out_z, value_scale=None))
    torch.testing.assert_close(top1_disagreement(z_sel, s, out_z) * out_z.value_scale, unscaled)
    # the cue reads the selection it is given, not state left in the value term by a call
    z_sel.select(states(6, seed=9), generator=gen(1))
    torch.testing.assert_close(top1_disagreement(z_sel, s, out_z) * out_z.value_scale, unscaled)
    assert out_raw.score.shape == out_z.score.shape

"""Every selection equation against a plain numpy reference (spec 2.2-2.6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import compose
from gemkit.reducers import Top1, TopK
from gemkit.scorers import LambdaSchedule, combine_score, lcb
from gemkit.support import zscore


def np_lcb(q: np.ndarray, beta: float) -> np.ndarray:
    return q.mean(0) - beta * q.std(0, ddof=0)


def np_zscore(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        row = x[b]
        out[b] = (row - row.mean()) / max(row.std(ddof=0), 1e-6)
    return out


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_lcb_matches_numpy(beta: float) -> None:
    q = torch.randn(7, 4, 9, generator=gen(0))
    np.testing.assert_allclose(
        lcb(q, beta).numpy(), np_lcb(q.double().numpy(), beta), rtol=1e-5, atol=1e-6
    )


def test_zscore_matches_numpy_and_clamps_constant_rows() -> None:
    x = torch.randn(5, 11, generator=gen(1))
    x[2] = 3.0  # constant row: std 0 -> clamped at 1e-6, z = 0
    np.testing.assert_allclose(
        zscore(x).numpy(), np_zscore(x.double().numpy()), rtol=1e-5, atol=1e-5
    )
    assert torch.equal(zscore(x)[2], torch.zeros(11))
    assert torch.equal(zscore(torch.tensor([[4.0]])), torch.zeros(1, 1))


def test_topk_matches_numpy_loop_and_top1_is_argmax() -> None:
    cand = torch.randn(4, 10, 3, generator=gen(2))
    score = torch.randn(4, 10, generator=gen(3))
    for k in (1, 3, 10):
        got = TopK(k)(cand, score).numpy()
        for b in range(4):
            best = np.argsort(-score[b].numpy())[:k]
            np.testing.assert_allclose(got[b], cand[b].numpy()[best].mean(0), rtol=1e-5, atol=1e-6)
    top1 = Top1()(cand, score)
    torch.testing.assert_close(top1, TopK(1)(cand, score))


@pytest.mark.parametrize(("lam_0", "lam_T", "h"), [(1.0, 0.1, 100), (0.2, 0.8, 7), (0.5, 0.5, 10)])
def test_cosine_schedule_matches_formula(lam_0: float, lam_T: float, h: int) -> None:
    sched = LambdaSchedule(lam_0, lam_T, h)
    ts = torch.arange(0, 2 * h)
    got = sched(ts).numpy()
    for t in range(2 * h):
        ref = lam_T + (lam_0 - lam_T) * 0.5 * (1 + math.cos(math.pi * min(t, h) / h))
        assert got[t] == pytest.approx(ref, abs=1e-6)
    assert got[0] == pytest.approx(lam_0) and got[-1] == pytest.approx(lam_T)


def test_score_is_eq4_with_per_state_lambda() -> None:
    v = torch.randn(3, 5, generator=gen(4))
    z = torch.randn(3, 5, generator=gen(5))
    lam = torch.tensor([0.0, 0.5, 2.0])
    ref = v.numpy() + lam.numpy()[:, None] * z.numpy()
    np.testing.assert_allclose(combine_score(v, z, lam).numpy(), ref, rtol=1e-6)


@pytest.mark.parametrize("normalization", ["zscore", "raw"])
def test_selector_end_to_end_against_numpy(normalization: str) -> None:
    models = tiny_models()
    sel = compose(models=models, n=12, beta=0.7, lam=0.3, support=normalization, z_min=-0.5)
    s = states(6)
    out = sel.select(s, generator=gen(9))
    cand = out.candidates
    # value: LCB over the critic ensemble, candidate by candidate
    q = np.zeros((5, 6, 13))
    for b in range(6):
        for m in range(13):
            q[:, b, m] = models.critic(s[b : b + 1], cand[b, m : m + 1]).detach().numpy()[:, 0]
    np.testing.assert_allclose(out.value.numpy(), np_lcb(q, 0.7), rtol=1e-4, atol=1e-5)
    # support: behavior log-likelihood, then per-state z-score (or raw)
    ll = models.behavior.log_prob(s, cand).detach().double().numpy()
    np.testing.assert_allclose(out.loglik.numpy(), ll, rtol=1e-5, atol=1e-5)
    z = np_zscore(ll)
    sup = z if normalization == "zscore" else ll
    np.testing.assert_allclose(out.support.numpy(), sup, rtol=1e-4, atol=1e-4)
    # Eq. 4 and top-1
    np.testing.assert_allclose(out.score.numpy(), np_lcb(q, 0.7) + 0.3 * sup, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.score, out.value + out.lam[:, None] * out.support)
    idx = out.score.argmax(1)
    assert torch.equal(out.index, idx)
    torch.testing.assert_close(out.action, cand[torch.arange(6), idx])
    # audits (spec 2.6): SupportZ, Violation, CollapseDist
    zsel = z[np.arange(6), idx.numpy()]
    np.testing.assert_allclose(out.support_z.numpy(), zsel, rtol=1e-4, atol=1e-4)
    assert out.violation.tolist() == (zsel < -0.5).astype(float).tolist()
    mu = models.behavior(s).means.detach().numpy()
    for b in range(6):
        d = min(np.linalg.norm(mu[b, k] - out.top1[b].numpy()) for k in range(mu.shape[1]))
        assert out.collapse_dist[b].item() == pytest.approx(d, rel=1e-5, abs=1e-6)


def test_anchor_is_first_candidate_and_n0_is_the_single_shot_actor() -> None:
    models = tiny_models()
    s = states(4)
    out = compose(models=models, n=5).select(s, generator=gen())
    torch.testing.assert_close(out.candidates[:, 0], models.actor.mode(s))
    bary = compose(models=models, preset="anchor_bary", n=5).select(s, generator=gen())
    torch.testing.assert_close(bary.candidates[:, 0], models.actor.barycenter(s))
    single = compose(models=models, preset="single_shot").select(s, generator=gen())
    assert single.candidates.shape == (4, 1, 2)
    torch.testing.assert_close(single.action, models.actor.mode(s))
    none = compose(models=models, preset="no_anchor", n=5).select(s, generator=gen())
    assert none.candidates.shape == (4, 5, 2)


def test_sources_draw_from_their_model() -> None:
    models = tiny_models()
    s = states(4)
    for preset, ref in (
        ("gem", lambda g: models.actor.sample(s, 6, generator=g)),
        ("behavior_only_cands", lambda g: models.behavior.sample(s, 6, generator=g)),
        ("unimodal_actor_cands", lambda g: models.actor.sample_collapsed(s, 6, generator=g)),
    ):
        out = compose(models=models, preset=preset, n=6).select(s, generator=gen(5))
        torch.testing.assert_close(out.candidates[:, 1:], ref(gen(5)))


def test_lambda_schedule_follows_t_per_state() -> None:
    sel = compose(models=tiny_models(), n=4, lam=1.0, lam_T=0.0, horizon=10)
    out = sel.select(states(3), generator=gen(), t=torch.tensor([0, 5, 50]))
    torch.testing.assert_close(out.lam, torch.tensor([1.0, 0.5, 0.0]))


def test_vectorised_selection_equals_per_state_loop() -> None:
    """Scoring B states at once equals scoring each state alone on the same candidates."""
    models = tiny_models()
    sel = compose(models=models, n=9)
    s = states(5)
    out = sel.select(s, generator=gen(1))
    for b in range(5):
        v = sel.value(s[b : b + 1], out.candidates[b : b + 1])
        ll = sel.support.log_likelihood(s[b : b + 1], out.candidates[b : b + 1])
        torch.testing.assert_close(v[0], out.value[b], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            sel.support.normalize(ll)[0], out.support[b], rtol=1e-4, atol=1e-5
        )


def test_third_party_single_critic_and_numpy_states() -> None:
    models = tiny_models()

    def critic(st: torch.Tensor, act: torch.Tensor) -> torch.Tensor:  # [B, M] -> E = 1
        return -(act - 0.25).square().sum(-1)

    models.critic = critic
    sel = compose(models=models, n=256, lam=0.0, value="lcb")
    out = sel.select(states(2).numpy(), generator=gen())
    torch.testing.assert_close(out.value, critic(None, out.candidates))  # type: ignore[arg-type]
    best = out.candidates[torch.arange(2), out.value.argmax(1)]
    torch.testing.assert_close(out.action, best)
    assert (out.action - 0.25).abs().max() < 0.5


# ---------------------------------------------------------------- audits (method.md 2.6)
def test_violation_at_n1_is_not_decided_by_rounding() -> None:
    """At N = 1 the two z-scores are exactly -1 and +1: z_min = -1 is never violated."""
    models = tiny_models()
    s = states(2000, seed=3)
    out = compose(models=models, n=1, lam=0.0, z_min=-1.0).select(s, generator=gen(2))
    # in float32 the same z-scores fall below -1 for some states (the old audit's flips)
    z32 = zscore(out.loglik)[torch.arange(2000), out.index]
    assert bool((z32 < -1.0).any())
    assert set(out.support_z.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert bool((out.support_z == -1.0).any())  # the low-support candidate is picked sometimes
    assert out.violation.dtype == torch.float32
    assert float(out.violation.sum()) == 0.0


def test_support_audits_match_numpy_in_float64() -> None:
    from gemkit.selector import Z_TOL, support_audits

    ll = torch.randn(64, 9, generator=gen(4)) * 5
    index = torch.randint(0, 9, (64,), generator=gen(5))
    z, violation = support_audits(ll, index, z_min=-0.7)
    want = np_zscore(ll.double().numpy())[np.arange(64), index.numpy()]
    np.testing.assert_allclose(z.numpy(), want, rtol=1e-6, atol=1e-6)
    assert violation.tolist() == (want < -0.7 - Z_TOL).astype(float).tolist()


def test_audits_are_undefined_without_support() -> None:
    out = compose(models=tiny_models(), n=4, support="none").select(states(3), generator=gen())
    for audit in (out.support_z, out.violation, out.collapse_dist):
        assert bool(audit.isnan().all())


def test_one_forward_per_network_and_call_changes_nothing() -> None:
    """The anchor, source, support and audits share one forward of each GMM per select()."""
    from core_fixtures import gen, states, tiny_models

    from gemkit import compose
    from gemkit.models.gmm import ConditionalGMM

    models = tiny_models()
    sel = compose(models=models, n=16)
    s = states(5)
    calls: dict[int, int] = {}
    real = ConditionalGMM.forward

    def counting(self: ConditionalGMM, x: torch.Tensor):  # type: ignore[no-untyped-def]
        calls[id(self)] = calls.get(id(self), 0) + 1
        return real(self, x)

    try:
        ConditionalGMM.forward = counting  # type: ignore[method-assign]
        shared = sel.select(s, generator=gen(0))
        assert calls == {id(models.actor): 1, id(models.behavior): 1}
        calls.clear()
        # the same selection as each component computing its own forward
        from gemkit.selector import Selector

        unshared = Selector._select(sel, s, gen(0), 0, None)
        assert calls == {id(models.actor): 2, id(models.behavior): 2}  # anchor+source, two audits
    finally:
        ConditionalGMM.forward = real  # type: ignore[method-assign]
    for name in ("action", "candidates", "score", "loglik", "collapse_dist"):
        assert torch.equal(getattr(shared, name), getattr(unshared, name)), name
    # the selector's own components stay unbound: nothing of one selection outlives it
    assert all(getattr(c, "forwards", None) is None
               for c in (sel.proposer, sel.proposer.anchor, sel.proposer.source, sel.support))


def test_lcb_z_is_the_lcb_z_scored_within_each_candidate_set() -> None:
    """``value="lcb_z"``: (LCB - its mean over the set) / its population std, per state (numpy
    reference); with lambda = 0 it picks what ``lcb`` picks."""
    from core_fixtures import gen, states, tiny_models

    from gemkit import compose

    m = tiny_models()
    s = states(6)
    z = compose(models=m, n=16, value="lcb_z", beta=0.7, lam=0.0).select(s, generator=gen(0))
    plain = compose(models=m, n=16, value="lcb", beta=0.7, lam=0.0).select(s, generator=gen(0))
    v = plain.value.double().numpy()
    ref = (v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True)
    np.testing.assert_allclose(z.value.double().numpy(), ref, rtol=1e-4, atol=1e-5)
    assert torch.equal(z.index, plain.index)

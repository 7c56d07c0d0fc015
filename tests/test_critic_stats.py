"""Critic statistics (gemkit.eval.critic_stats) against a plain numpy loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gemkit.errors import GemkitError
from gemkit.eval.critic_stats import critic_statistics


def ref_stats(q, v, nv, r, d, alpha, gamma, clip):  # type: ignore[no-untyped-def]
    """One transition at a time, as the docstring defines each statistic."""
    e, b = q.shape
    qmin = [min(q[m, i] for m in range(e)) for i in range(b)]
    adv = [qmin[i] - v[i] for i in range(b)]
    g = [min(math.exp(alpha * a), clip) for a in adv]
    td = [qmin[i] - (r[i] + gamma * (1 - d[i]) * nv[i]) for i in range(b)]
    stds = [float(np.std([q[m, i] for m in range(e)])) for i in range(b)]
    return {
        "q_mean": float(np.mean(qmin)),
        "q_std": float(np.std(qmin, ddof=1)),
        "v_mean": float(np.mean(v)),
        "adv_mean": float(np.mean(adv)),
        "adv_std": float(np.std(adv, ddof=1)),
        "weight_moved": sum(abs(alpha * a) > 1 for a in adv) / b,
        "guidance_mean": float(np.mean(g)),
        "guidance_ess": sum(g) ** 2 / (b * sum(x * x for x in g)),
        "td_mean": float(np.mean(td)),
        "td_rms": math.sqrt(sum(x * x for x in td) / b),
        "member_std": float(np.mean(stds)),
    }


@pytest.mark.parametrize("e", [1, 2, 5])
def test_critic_statistics_match_a_plain_loop(e: int) -> None:
    gen = torch.Generator().manual_seed(e)
    b = 300
    q = torch.randn(e, b, generator=gen) * 0.5
    v = torch.randn(b, generator=gen) * 0.5
    nv = torch.randn(b, generator=gen)
    r = torch.rand(b, generator=gen)
    d = (torch.rand(b, generator=gen) < 0.1).float()
    got = critic_statistics(q, v, nv, r, d, alpha=3.0, discount=0.99, max_weight=5.0).row()
    want = ref_stats(q.double().numpy(), v.double().numpy(), nv.double().numpy(),
                     r.double().numpy(), d.double().numpy(), 3.0, 0.99, 5.0)  # fmt: skip
    assert got["n"] == b
    for k, x in want.items():
        assert got[k] == pytest.approx(x, rel=1e-9, abs=1e-12), k
    # the clip is active in this draw, so the test also covers it
    assert want["guidance_mean"] < float(torch.exp(3.0 * (q.amin(0) - v)).mean())


def test_equal_advantages_read_as_behaviour_cloning() -> None:
    b = 50
    q = torch.full((3, b), 0.4)
    stats = critic_statistics(q, torch.full((b,), 0.4), torch.zeros(b), torch.zeros(b),
                              torch.zeros(b))  # fmt: skip
    assert stats.guidance_ess == pytest.approx(1.0)
    assert stats.weight_moved == 0.0
    assert stats.member_std == 0.0


def test_bad_shapes_and_nans_are_clear_errors() -> None:
    q = torch.zeros(2, 10)
    ok = torch.zeros(10)
    with pytest.raises(GemkitError, match=r"v must be \[B\] = \[10\]"):
        critic_statistics(q, torch.zeros(9), ok, ok, ok)
    with pytest.raises(GemkitError, match="q must be"):
        critic_statistics(torch.zeros(2, 3, 4), ok, ok, ok, ok)
    bad = ok.clone()
    bad[3] = float("nan")
    with pytest.raises(GemkitError, match="NaN"):
        critic_statistics(q, bad, ok, ok, ok)

"""Hypothesis property tests: z-score invariances, LCB monotone in beta, argmax semantics."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gemkit.reducers import Top1
from gemkit.scorers import lcb
from gemkit.support import zscore

rows = arrays(
    "float64",
    st.tuples(st.integers(1, 4), st.integers(2, 12)),
    elements=st.floats(-100, 100, allow_nan=False, width=32),
)


@settings(max_examples=60, deadline=None)
@given(x=rows, shift=st.floats(-50, 50), scale=st.floats(0.1, 20))
def test_zscore_is_shift_and_scale_invariant(x, shift: float, scale: float) -> None:
    t = torch.as_tensor(x)
    spread = t.std(-1, unbiased=False)
    z = zscore(t)
    z2 = zscore(t * scale + shift)
    ok = spread > 1e-3  # rows whose std is near the 1e-6 clamp are not invariant by design
    torch.testing.assert_close(z[ok], z2[ok], rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    q=arrays("float64", st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 5)),
             elements=st.floats(-10, 10, allow_nan=False)),
    b1=st.floats(0, 5),
    b2=st.floats(0, 5),
)  # fmt: skip
def test_lcb_is_monotone_non_increasing_in_beta(q, b1: float, b2: float) -> None:
    t = torch.as_tensor(q)
    lo, hi = sorted((b1, b2))
    assert bool((lcb(t, hi) <= lcb(t, lo) + 1e-12).all())
    torch.testing.assert_close(lcb(t, 0.0), t.mean(0))


@settings(max_examples=60, deadline=None)
@given(
    score=arrays("float64", st.tuples(st.integers(1, 4), st.integers(1, 9)),
                 elements=st.integers(-8, 8).map(float)),  # exact under the shift: ties stay ties
    shift=st.integers(-5, 5).map(float),
)  # fmt: skip
def test_top1_picks_the_argmax_and_ignores_a_common_shift(score, shift: float) -> None:
    s = torch.as_tensor(score)
    cand = torch.arange(s.numel(), dtype=torch.float64).reshape(*s.shape, 1)
    a = Top1()(cand, s)
    for b in range(s.shape[0]):
        picked = int(a[b, 0].item()) - b * s.shape[1]
        assert s[b, picked] == s[b].max()
        assert picked == int(s[b].argmax())  # ties: the first (anchor) wins
    torch.testing.assert_close(Top1()(cand, s + shift), a)

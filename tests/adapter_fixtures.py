"""Shared by the adapter tests: gemkit models whose raw and normalised states differ, and a
check that a batch of bad calls each raise a one-line error."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from core_fixtures import tiny_models

from gemkit.models import Models

MEAN, STD = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, 0.5, 4.0])


def models_with_stats() -> Models:
    """gemkit's tiny actor/behavior/critic with observation statistics: raw != normalised."""
    m = tiny_models()
    m.meta.update(obs_mean=MEAN.tolist(), obs_std=STD.tolist())
    return m


Case = tuple[type[Exception], str, Callable[[], object]]


def assert_one_line_errors(cases: Sequence[Case]) -> None:
    """Each ``(exception, pattern, call)``: ``call()`` raises it, matching, in one line."""
    for exc, match, call in cases:
        with pytest.raises(exc, match=match) as e:
            call()
        assert "\n" not in str(e.value), str(e.value)

"""reproductions/policy_fit.py: the Gaussian fit against numpy."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import torch
from script_fixtures import load_script


@pytest.fixture(scope="module")
def fit() -> ModuleType:
    return load_script("reproductions/policy_fit.py", "policy_fit_script")


def test_gaussian_fit_matches_numpy(fit: ModuleType) -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.rand(50, 2, generator=g) * 2 - 1
    act = torch.rand(50, 2, generator=g) * 2 - 1
    log_std = torch.tensor([-0.8, -0.3])
    got = fit.gaussian_fit(mean, log_std, act)
    m, a, ls = mean.double().numpy(), act.double().numpy(), log_std.double().numpy()
    sd = np.exp(ls)
    nll = -np.sum(-0.5 * ((a - m) / sd) ** 2 - ls - 0.5 * np.log(2 * np.pi), axis=1).mean()
    assert got["mse"] == pytest.approx(float(((m - a) ** 2).mean()), rel=1e-5)
    assert got["nll"] == pytest.approx(float(nll), rel=1e-5)

"""reproductions/actor_isolation.py: gemkit's K = 1 actor and d3rlpy's IQL policy are one model."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
import torch
from script_fixtures import load_script


@pytest.fixture(scope="module")
def iso() -> ModuleType:
    return load_script("reproductions/actor_isolation.py", "actor_isolation_script")


def test_the_two_actors_compute_the_same_likelihood(iso: ModuleType) -> None:
    gen = torch.Generator().manual_seed(0)
    gmm, gmm_ll, gmm_act = iso.make_actor("gemkit", 6, 2, gen)
    d3, d3_ll, d3_act = iso.make_actor("d3rlpy", 6, 2, gen)
    with torch.no_grad():  # copy the gemkit actor's weights into the d3rlpy-style policy
        d3.encoder.load_state_dict(gmm.trunk.state_dict())
        d3.mu.load_state_dict(gmm.means_head.state_dict())
        log_std = gmm.log_std_param.clamp(gmm.log_std_min, gmm.log_std_max)  # [1, A]
        frac = (log_std - d3.min_logstd) / (d3.max_logstd - d3.min_logstd)
        d3.logstd.copy_(torch.log(frac / (1 - frac)))  # inverse sigmoid
    s = torch.randn(64, 6, generator=gen)
    a = torch.rand(64, 2, generator=gen) * 2 - 1
    assert torch.allclose(gmm_ll(s, a), d3_ll(s, a), atol=1e-5)
    assert torch.allclose(gmm_act(s), d3_act(s), atol=1e-6)


def test_d3rlpy_style_log_std_stays_in_its_range(iso: ModuleType) -> None:
    pol = iso.D3rlpyStylePolicy(3, 2)
    with torch.no_grad():
        pol.logstd.fill_(50.0)
    assert pol(torch.zeros(1, 3))[1].max().item() == pytest.approx(2.0)
    with torch.no_grad():
        pol.logstd.fill_(0.0)
    assert pol(torch.zeros(1, 3))[1].max().item() == pytest.approx(-1.5)
    with torch.no_grad():
        assert math.isfinite(float(pol.log_prob(torch.zeros(4, 3), torch.ones(4, 2)).sum()))


def test_uniform_weights_are_behaviour_cloning(iso: ModuleType) -> None:
    w = iso.guidance_weights("uniform", torch.zeros(7, 3), torch.zeros(7, 2))
    assert torch.equal(w, torch.ones(7))
    with pytest.raises(SystemExit, match="uniform, iql:PATH or gemkit:DIR"):
        iso.guidance_weights("bogus", torch.zeros(7, 3), torch.zeros(7, 2))

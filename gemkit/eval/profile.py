"""Deployment compute profile: latency and peak memory of ``select()`` vs N and T-step sampling.

The paper contrasts GEM's *parallel* candidates (one batched forward of N samples) with methods
whose knob is a number of *sequential* denoising steps T (diffusion policies, e.g. IDQL). Here
both are measured on the same machine with the same network widths:

- GEM: ``Selector.select`` on one state with ``N`` candidates (actor GMM, critic ensemble,
  behavior GMM, all networks of the given sizes);
- a DDPM-style sampler: a denoiser MLP ``eps(s, a_t, t)`` with the same hidden widths as the
  actor, run for ``T`` ancestral steps (linear beta schedule) from Gaussian noise.

Latency is the median wall time per call (CUDA synchronised). Peak memory is the peak of live
tensor memory during one call plus the resident weights: on CUDA from the caching allocator
(``max_memory_allocated``), on CPU from the torch profiler's allocation/free events (op
granularity, so scratch memory freed inside one op is not counted).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from gemkit.config import SelectorConfig
from gemkit.models.critic import CriticEnsemble
from gemkit.models.gmm import ConditionalGMM
from gemkit.models.io import Models
from gemkit.models.mlp import mlp
from gemkit.selector import compose

__all__ = [
    "DenoiserMLP",
    "ProfileRow",
    "cpu_name",
    "ddpm_sample",
    "measure",
    "on_device",
    "profile_diffusion",
    "profile_select",
    "random_models",
]


@functools.cache
def cpu_name() -> str:
    """The CPU model (``lscpu``'s "Model name"), to name beside every timing; asked once per
    process (every evaluated cell records it)."""
    import platform
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.machine()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


@attrs.frozen
class ProfileRow:
    """One measured configuration.

    Attributes:
        method: ``"gem"``, a preset's name (a trained proposer's rule) or ``"ddpm"`` (an
            untrained T-step sampler).
        knob: ``"N"`` or ``"T"``.
        value: the knob's value.
        device: ``cpu`` or ``cuda``.
        batch: states per call.
        latency_ms: median wall time per call.
        latency_p90_ms: 90th percentile.
        peak_mb: peak tensor memory during a call, weights included (MB = 1e6 bytes).
        weights_mb: resident weights of the networks involved.
        repeats: timed calls.
    """

    method: str
    knob: str
    value: int
    device: str
    batch: int
    latency_ms: float
    latency_p90_ms: float
    peak_mb: float
    weights_mb: float
    repeats: int

    def row(self) -> dict[str, Any]:
        """A flat dict (CSV/JSON-ready)."""
        return attrs.asdict(self)


class DenoiserMLP(nn.Module):
    """``eps(s, a_t, t)``: an MLP on ``[s, a_t, emb(t)]`` with a sinusoidal step embedding.

    Args:
        state_dim: ``S``.
        action_dim: ``A``.
        hidden: trunk widths (same as the actor's, for a like-for-like comparison).
        t_dim: size of the sinusoidal embedding of the step index.
    """

    def __init__(
        self, state_dim: int, action_dim: int, hidden: Sequence[int], t_dim: int = 16
    ) -> None:
        super().__init__()
        self.t_dim = t_dim
        self.action_dim = action_dim
        self.net = mlp(state_dim + action_dim + t_dim, tuple(hidden), action_dim)
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(t_dim // 2) / max(t_dim // 2, 1))
        self.register_buffer("freqs", freqs)

    freqs: Tensor

    def forward(self, states: Tensor, actions: Tensor, t: Tensor) -> Tensor:
        """``[B, S], [B, A], [B] -> [B, A]`` predicted noise."""
        ang = t.float().unsqueeze(-1) * self.freqs  # [B, t_dim/2]
        emb = torch.cat([ang.sin(), ang.cos()], dim=-1)
        return self.net(torch.cat([states, actions, emb], dim=-1))


@torch.no_grad()
def ddpm_sample(
    denoiser: DenoiserMLP,
    states: Tensor,
    steps: int,
    generator: torch.Generator | None = None,
    action_dim: int | None = None,
) -> Tensor:
    """DDPM ancestral sampling (Ho et al., 2020) with a linear beta schedule, ``T = steps``.

    ``a_{t-1} = (a_t - beta_t / sqrt(1 - abar_t) eps(s, a_t, t)) / sqrt(alpha_t) + sigma_t z``,
    ``sigma_t^2 = beta_t``; the result is clipped to ``[-1, 1]``.

    Args:
        denoiser: the noise model.
        states: ``[B, S]``.
        steps: ``T`` (sequential network calls).
        generator: source of the noise.
        action_dim: ``A`` (default: the denoiser's output size).

    Returns:
        ``[B, A]`` actions.
    """
    b = states.shape[0]
    a_dim = action_dim if action_dim is not None else denoiser.action_dim
    dev = states.device
    betas = torch.linspace(1e-4, 0.02 * 1000 / steps, steps, device=dev).clamp(max=0.999)
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, 0)
    a = torch.randn(b, a_dim, generator=generator, device=dev)
    for i in reversed(range(steps)):
        t = torch.full((b,), i, device=dev)
        eps = denoiser(states, a, t)
        a = (a - betas[i] / torch.sqrt(1.0 - abar[i]) * eps) / torch.sqrt(alphas[i])
        if i > 0:
            a = a + torch.sqrt(betas[i]) * torch.randn(a.shape, generator=generator, device=dev)
    return a.clamp(-1.0, 1.0)


def _weights_mb(*modules: nn.Module) -> float:
    total = 0
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            total += t.numel() * t.element_size()
    return total / 1e6


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ layer logs start/stop lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory_bytes(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Peak extra tensor memory (bytes) during one ``fn()`` call.

    On CUDA from the caching allocator (``max_memory_allocated`` over the call); on CPU from the
    torch profiler's allocation/free events (op granularity, so scratch memory freed inside one
    op is not counted).
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with (
        _native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    deltas: list[tuple[float, int]] = []
    for e in prof.events():
        if e.name == "[memory]":
            deltas.append((e.time_range.start, int(e.cpu_memory_usage)))
        elif e.self_cpu_memory_usage:
            deltas.append((e.time_range.start, int(e.self_cpu_memory_usage)))
    deltas.sort()
    cur = peak = 0
    for _, d in deltas:
        cur += d
        peak = max(peak, cur)
    return float(peak)


def measure(
    fn: Callable[[], Any], device: str, repeats: int = 20, warmup: int = 3
) -> tuple[float, float, float]:
    """Median and p90 latency (ms) of ``fn()`` and its peak extra tensor memory (bytes).

    Args:
        fn: the call to time.
        device: ``cpu`` or ``cuda`` (synchronised around every call).
        repeats: timed calls.
        warmup: untimed calls first.
    """
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    peak = peak_memory_bytes(fn, device)
    times.sort()
    p90 = times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)]
    return statistics.median(times), p90, peak


def random_models(
    state_dim: int,
    action_dim: int,
    hidden: Sequence[int] = (256, 256),
    n_components: int = 5,
    n_critics: int = 10,
    seed: int = 0,
) -> Models:
    """Untrained networks of the given sizes (latency does not depend on the weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Models(
            actor=ConditionalGMM(state_dim, action_dim, n_components, hidden=hidden),
            behavior=ConditionalGMM(state_dim, action_dim, n_components, hidden=hidden),
            critic=CriticEnsemble(state_dim, action_dim, n_critics, hidden),
        )


def profile_select(
    models: Models,
    ns: Sequence[int],
    *,
    device: str = "cpu",
    batch: int = 1,
    repeats: int = 20,
    warmup: int = 3,
    config: SelectorConfig | None = None,
    method: str = "gem",
    progress: Callable[[ProfileRow], None] | None = None,
) -> list[ProfileRow]:
    """Latency and peak memory of a selector's ``select()`` on ``batch`` states for each ``N``.

    Args:
        models: the networks; left where they are (a copy runs on ``device`` when they are
            elsewhere).
        ns: candidate budgets.
        device: ``cpu`` or ``cuda``.
        batch: states per call.
        repeats: timed calls per ``N``.
        warmup: untimed calls per ``N``.
        config: base selector knobs (default GEM); a preset's config times that rule, e.g.
            ``SelectorConfig.preset("idql")`` with a trained diffusion model in ``models``.
        method: the rows' ``method`` label.
        progress: called with each finished row.
    """
    models = on_device(models, device)
    ref = models.actor if models.actor is not None else models.behavior
    assert ref is not None
    weights = _weights_mb(*models.modules().values())
    gen = torch.Generator(device=device).manual_seed(0)
    states = torch.randn(batch, ref.state_dim, generator=gen, device=device)

    def call_for(n: int) -> Callable[[], Any]:
        sel = compose(config=(config or SelectorConfig()).evolve(n=n), models=models)
        return lambda: sel.select(states, generator=gen)

    return _profile_rows(method, "N", ns, call_for, device, batch, repeats, warmup, weights,
                         progress)  # fmt: skip


def on_device(models: Models, device: str | torch.device) -> Models:
    """``models`` if all their weights are on ``device``, else a copy moved there.

    The caller's networks are never moved: they may be shared (a trainer's, a selector's).
    """
    target = torch.device(device)
    params = [p for m in models.modules().values() for p in m.parameters()]
    if all(
        p.device.type == target.type and (target.index is None or p.device.index == target.index)
        for p in params
    ):
        return models
    return copy.deepcopy(models).to(target)


def _profile_rows(
    method: str,
    knob: str,
    values: Sequence[int],
    call_for: Callable[[int], Callable[[], Any]],
    device: str,
    batch: int,
    repeats: int,
    warmup: int,
    weights: float,
    progress: Callable[[ProfileRow], None] | None,
) -> list[ProfileRow]:
    """One :class:`ProfileRow` per knob value: time and measure ``call_for(value)``."""
    rows = []
    for v in values:
        lat, p90, peak = measure(call_for(v), device, repeats, warmup)
        row = ProfileRow(method, knob, int(v), device, batch, lat, p90, weights + peak / 1e6,
                         weights, repeats)  # fmt: skip
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def profile_diffusion(
    state_dim: int,
    action_dim: int,
    hidden: Sequence[int],
    ts: Sequence[int],
    *,
    device: str = "cpu",
    batch: int = 1,
    repeats: int = 20,
    warmup: int = 3,
    seed: int = 0,
    progress: Callable[[ProfileRow], None] | None = None,
) -> list[ProfileRow]:
    """Latency and peak memory of T-step DDPM sampling with a denoiser of widths ``hidden``.

    Args:
        state_dim: ``S``.
        action_dim: ``A``.
        hidden: the denoiser's widths (use the actor's).
        ts: numbers of denoising steps.
        device: ``cpu`` or ``cuda``.
        batch: states per call.
        repeats: timed calls per ``T``.
        warmup: untimed calls per ``T``.
        seed: initialisation and noise seed.
        progress: called with each finished row.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        den = DenoiserMLP(state_dim, action_dim, hidden).to(device).eval()
    weights = _weights_mb(den)
    gen = torch.Generator(device=device).manual_seed(seed)
    states = torch.randn(batch, state_dim, generator=gen, device=device)

    def call_for(t: int) -> Callable[[], Any]:
        return lambda: ddpm_sample(den, states, t, generator=gen)

    return _profile_rows("ddpm", "T", ts, call_for, device, batch, repeats, warmup, weights,
                         progress)  # fmt: skip

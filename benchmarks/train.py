"""Gradient steps/s of gemkit's full Phase I against a plain CORL-style IQL loop, same run.

GEM's step updates a critic ensemble (E members), the expectile value, the behavior GMM and the
GMM actor. The baseline is CORL's ``algorithms/offline/iql.py`` written out plainly: two critics
as separate ``nn.Sequential`` MLPs with a deep-copied target, a value MLP, a tanh-mean Gaussian
actor with a state-independent log std, three default Adam optimizers and a cosine LR schedule
for the actor. Same hidden sizes (256, 256), batch 256, synthetic D4RL-sized data.

Both loops run in one process, interleaved in rounds, and the best round of each is reported
(the least disturbed by other processes on a shared machine), with the ratio of the median
rounds beside it (a shared machine moves single rounds by 20-30 %).

``--runs R ...`` adds, for every GEM loop, R runs of it (seeds 0..R-1) trained as one batch
(:class:`gemkit.train.batch.RunBatch`, every network with a run axis), and prints their
aggregate run-steps/s against one run's steps/s measured in the same script: R separate runs
on the same cores take R times one run's time, so that ratio is the batch's speedup. On a GPU,
``--cuda-graph --graph-streams`` also times the alternative to one batched graph: R separate
runs, each with its own captured graph, replayed on R CUDA streams from one process.

``--compile`` adds, for every GEM loop, the same trainer with its loss computation (forward and
backward) compiled by ``torch.compile`` (``Trainer(compile=True)``), and prints the compiled vs
eager ratio measured in the same run (compilation warm-up excluded and reported apart).

Usage::

    python benchmarks/train.py --threads 1 --steps 300 --rounds 3
    python benchmarks/train.py --compile --critics 5 --critic-modes bmm --hidden 128 \
        --state-dim 6 --action-dim 2      # the maze reproduction's sizes
    python benchmarks/train.py --critics 5 --critic-modes loop --hidden 128 --state-dim 4 \
        --action-dim 2 --compile --runs 3 8   # batches of runs at the Maze2D sizes
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds select.py, which would shadow the stdlib module torch imports: drop this
# script's own folder from the import path before anything else is imported.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable

import attrs
import torch
from torch import Tensor, nn

from gemkit.data.transitions import Transitions
from gemkit.train import TrainConfig, Trainer
from gemkit.train.batch import RunBatch
from gemkit.train.batches import pack_for
from gemkit.train.trainer import COMPILE_MODES


# ---------------------------------------------------------------- the CORL-style IQL baseline
def _mlp(dims: list[int], out_act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 2):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    def __init__(self, s: int, a: int, h: int) -> None:
        super().__init__()
        self.q1 = _mlp([s + a, h, h, 1])
        self.q2 = _mlp([s + a, h, h, 1])

    def both(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        sa = torch.cat([s, a], 1)
        return self.q1(sa).squeeze(-1), self.q2(sa).squeeze(-1)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return torch.min(*self.both(s, a))


class GaussianPolicy(nn.Module):
    def __init__(self, s: int, a: int, h: int) -> None:
        super().__init__()
        self.net = _mlp([s, h, h, a], nn.Tanh())
        self.log_std = nn.Parameter(torch.zeros(a))

    def forward(self, s: Tensor) -> torch.distributions.Normal:
        mean = self.net(s)
        std = torch.exp(self.log_std.clamp(-20.0, 2.0))
        return torch.distributions.Normal(mean, std)


class IQL:
    """CORL's IQL update, plainly (``iql.py``: ImplicitQLearning.train)."""

    def __init__(self, s: int, a: int, h: int, max_steps: int, device: str = "cpu") -> None:
        self.qf = TwinQ(s, a, h).to(device)
        self.q_target = copy.deepcopy(self.qf).requires_grad_(False)
        self.vf = _mlp([s, h, h, 1]).to(device)
        self.actor = GaussianPolicy(s, a, h).to(device)
        self.v_opt = torch.optim.Adam(self.vf.parameters(), lr=3e-4)
        self.q_opt = torch.optim.Adam(self.qf.parameters(), lr=3e-4)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.a_opt, max_steps)
        self.tau, self.beta, self.iql_tau, self.discount = 0.005, 3.0, 0.7, 0.99

    def train(self, batch: list[Tensor]) -> dict[str, float]:
        obs, act, rew, nxt, done = batch
        with torch.no_grad():
            next_v = self.vf(nxt).squeeze(-1)
        # value
        with torch.no_grad():
            target_q = self.q_target(obs, act)
        v = self.vf(obs).squeeze(-1)
        adv = target_q - v
        w = torch.abs(self.iql_tau - (adv < 0).float())
        v_loss = torch.mean(w * adv**2)
        self.v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        self.v_opt.step()
        # critics
        targets = rew + (1.0 - done) * self.discount * next_v.detach()
        qs = self.qf.both(obs, act)
        q_loss = sum(torch.nn.functional.mse_loss(q, targets) for q in qs) / len(qs)
        self.q_opt.zero_grad(set_to_none=True)
        q_loss.backward()  # type: ignore[union-attr]
        self.q_opt.step()
        with torch.no_grad():
            for tp, sp in zip(self.q_target.parameters(), self.qf.parameters(), strict=True):
                tp.data.copy_((1 - self.tau) * tp.data + self.tau * sp.data)
        # actor
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=100.0)
        bc_losses = -self.actor(obs).log_prob(act).sum(-1)
        policy_loss = torch.mean(exp_adv * bc_losses)
        self.a_opt.zero_grad(set_to_none=True)
        policy_loss.backward()
        self.a_opt.step()
        self.sched.step()
        # CORL logs the three losses with .item() every step
        return {
            "v": v_loss.detach().item(),
            "q": float(q_loss.detach()),  # type: ignore[union-attr]
            "pi": policy_loss.detach().item(),
        }


# ---------------------------------------------------------------- data and timing
def synthetic(n: int, s: int, a: int, seed: int = 0) -> Transitions:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, s, generator=g)
    return Transitions(
        observations=obs,
        actions=torch.rand(n, a, generator=g) * 2 - 1,
        rewards=torch.randn(n, generator=g),
        next_observations=obs + 0.1 * torch.randn(n, s, generator=g),
        terminals=(torch.rand(n, generator=g) < 0.01).float(),
        timeouts=torch.zeros(n),
        action_low=-torch.ones(a),
        action_high=torch.ones(a),
        obs_mean=obs.mean(0),
        obs_std=obs.std(0),
        meta={"dataset_id": "synthetic"},
    )


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def steps_per_s(step: Callable[[], object], steps: int, per_call: int = 1) -> float:
    """Steps/s of ``step`` (which takes ``per_call`` gradient steps per call) over ``steps``."""
    calls = max(1, steps // per_call)
    _sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    _sync()  # queued GPU work belongs to these steps
    return calls * per_call / (time.perf_counter() - t0)


#: gradient steps per call of a CUDA-graph loop (``Trainer.train_steps``, as ``train()`` runs it)
GRAPH_STEPS_PER_CALL = 50


#: the profiler's names for dense matrix multiplies (eager aten ops and inductor's extern calls)
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise")


def matmul_share(step: Callable[[], object], steps: int = 50) -> float:
    """Fraction of a loop's self CPU time spent in :data:`MATMUL_OPS` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    return mm / max(total, 1e-9)


def graph_streams(
    data: Transitions, cfg: TrainConfig, packed: object, r: int
) -> Callable[[], None]:
    """R runs (seeds 0..R-1), each a trainer with its own captured CUDA graph (eager inside,
    as the batch's graph is), one call of the result replaying :data:`GRAPH_STEPS_PER_CALL`
    steps of every run, run i on CUDA stream i: the alternative to one batched graph (the runs'
    kernels overlap where the GPU has room)."""
    trainers = [Trainer(data, attrs.evolve(cfg, seed=i), data=packed, cuda_graph=True)
                for i in range(r)]  # fmt: skip
    streams = [torch.cuda.Stream(torch.device(cfg.device)) for _ in range(r)]

    def step() -> None:
        main = torch.cuda.current_stream(torch.device(cfg.device))
        for t, stream in zip(trainers, streams, strict=True):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                t.train_steps(GRAPH_STEPS_PER_CALL)
        for stream in streams:
            main.wait_stream(stream)

    return step


def compile_ablations(data: Transitions, cfg: TrainConfig) -> dict[str, Trainer]:
    """Compiled trainers with a compile-time saving of the trainer's undone.

    ``python-wrapper``: inductor's default Python wrapper around the compiled kernels (the
    trainer asks for the C++ one on a CPU, :func:`gemkit.train.trainer.compile_options`).
    """
    python_wrapper = Trainer(data, cfg, compile=True)
    python_wrapper._losses = torch.compile(python_wrapper.compute_losses)
    return {"python-wrapper": python_wrapper}


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=300, help="timed steps per round and loop")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--state-dim", type=int, default=17)
    p.add_argument("--action-dim", type=int, default=6)
    p.add_argument("--components", type=int, default=5)
    p.add_argument("--critics", type=int, nargs="+", default=[2, 10])
    p.add_argument("--critic-modes", nargs="+", default=["loop", "bmm"], choices=["loop", "bmm"])
    p.add_argument("--hidden", type=int, default=256, help="width of every 2-layer MLP")
    p.add_argument("--compile", action="store_true", help="also time compiled GEM trainers")
    p.add_argument("--device", default="cpu", help="cpu or cuda (every loop and its data)")
    p.add_argument(
        "--cuda-graph",
        action="store_true",
        help="also time GEM trainers whose whole step is one captured CUDA graph "
        "(Trainer(cuda_graph=True); with --compile, also compiled + graph); needs --device cuda",
    )
    p.add_argument(
        "--tf32",
        action="store_true",
        help="float32 matrix multiplies on TF32 tensor cores "
        "(torch.set_float32_matmul_precision('high'); GPUs from Ampere on)",
    )
    p.add_argument(
        "--loop-steps",
        type=int,
        default=0,
        help="then run gemkit's real training loop (train(): metrics, checkpoints) for this many "
        "steps on 1M synthetic transitions with the first --critics/--critic-modes and the "
        "fastest options asked for, and project the time of 1M updates",
    )
    p.add_argument(
        "--compile-modes",
        nargs="+",
        default=["default"],
        choices=list(COMPILE_MODES),
        help="torch.compile modes to time with --compile (default: default)",
    )
    p.add_argument(
        "--compile-ablation",
        action="store_true",
        help="with --compile, also time a compiled trainer with inductor's Python wrapper "
        "(what the trainer's C++ wrapper is worth)",
    )
    p.add_argument(
        "--matmul-share",
        action="store_true",
        help="profile every loop and print the share of its time spent in matrix multiplies "
        "(and the speedup ceiling for a compiler that leaves the GEMMs as they are)",
    )
    p.add_argument(
        "--runs",
        type=int,
        nargs="+",
        default=[],
        help="also time batches of this many runs of every GEM loop (RunBatch), reported as "
        "aggregate run-steps/s against one run",
    )
    p.add_argument(
        "--graph-streams",
        action="store_true",
        help="with --runs and --cuda-graph, also time the alternative to one batch: R separate "
        "runs, each its own captured CUDA graph, replayed on R CUDA streams from one process",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    s, a, h, bs = args.state_dim, args.action_dim, args.hidden, 256
    data = synthetic(100_000, s, a)

    g = torch.Generator(device=args.device).manual_seed(1)
    cols = [data.observations, data.actions, data.rewards, data.next_observations, data.terminals]
    cols = [c.to(args.device) for c in cols]

    iql = IQL(s, a, h, max_steps=10**6, device=args.device)

    def iql_step() -> None:
        idx = torch.randint(0, len(data), (bs,), generator=g, device=args.device)
        iql.train([c[idx] for c in cols])

    loops: dict[str, Callable[[], object]] = {"iql": iql_step}
    per_call: dict[str, int] = {}
    for e in args.critics:
        for mode in args.critic_modes:
            cfg = TrainConfig(
                n_critics=e,
                n_components=args.components,
                gmm_pretrain_steps=0,
                critic_mode=mode,
                hidden=(h, h),
                device=args.device,
            )
            loops[f"gem_E{e}_{mode}"] = Trainer(data, cfg).train_step
            packed = pack_for(data, cfg) if args.runs else None
            for r, graphs in ((r, g) for r in args.runs
                              for g in ((False, True) if args.cuda_graph else (False,))):
                batch = RunBatch([Trainer(data, attrs.evolve(cfg, seed=i), data=packed,
                                          cuda_graph=graphs) for i in range(r)])  # fmt: skip
                name = f"gem_E{e}_{mode}_runs{r}{'_graph' if graphs else ''}"
                k = GRAPH_STEPS_PER_CALL if graphs else 1
                loops[name] = lambda b=batch, k=k: b.train_steps(k)
                per_call[name] = r * k
            for r in args.runs if args.graph_streams and args.cuda_graph else ():
                name = f"gem_E{e}_{mode}_runs{r}_streams"
                loops[name] = graph_streams(data, cfg, packed, r)
                per_call[name] = r * GRAPH_STEPS_PER_CALL
            for cmode in args.compile_modes if args.compile else []:
                tag = "" if cmode == "default" else f"[{cmode}]"
                loops[f"gem_E{e}_{mode}_compiled{tag}"] = Trainer(
                    data, cfg, compile=True, compile_mode=cmode
                ).train_step
            if args.compile and args.compile_ablation:
                for label, ablated in compile_ablations(data, cfg).items():
                    loops[f"gem_E{e}_{mode}_compiled[{label}]"] = ablated.train_step
            for compiled in (False, True) if args.cuda_graph else ():
                if compiled and not args.compile:
                    continue
                graphed = Trainer(data, cfg, compile=compiled, cuda_graph=True)
                name = f"gem_E{e}_{mode}{'_compiled' if compiled else ''}_graph"
                loops[name] = lambda t=graphed: t.train_steps(GRAPH_STEPS_PER_CALL)
                per_call[name] = GRAPH_STEPS_PER_CALL
    warmup: dict[str, float] = {}
    for name, fn in loops.items():  # warm-up (compilation and graph capture happen here)
        t0 = time.perf_counter()
        steps_per_s(fn, 20 * per_call.get(name, 1), per_call.get(name, 1))
        warmup[name] = time.perf_counter() - t0
    rounds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, fn in loops.items():
            rounds[name].append(steps_per_s(fn, args.steps, per_call.get(name, 1)))
    best = {name: max(v) for name, v in rounds.items()}
    median = {name: statistics.median(v) for name, v in rounds.items()}

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"device={_device_name(args.device)}, "
        f"threads={args.threads}, S={s}, A={a}, hidden={h}x2, batch={bs}, K={args.components}, "
        f"best of {args.rounds} rounds x {args.steps} steps"
    )
    print(
        f"{'loop':<48} {'steps/s':>9} {'ratio vs IQL':>13} {'vs eager':>9} "
        f"{'median vs eager':>16} {'warm-up s':>10}"
    )
    for name, v in best.items():
        base = name.split("_compiled")[0].split("_runs")[0].removesuffix("_graph")
        eager, eager_median = best.get(base, v), median.get(base, median[name])
        print(
            f"{name:<48} {v:9.1f} {v / best['iql']:13.2f} {v / eager:9.2f} "
            f"{median[name] / eager_median:16.2f} {warmup[name]:10.1f}"
        )
    if args.runs:
        print(f"\n{'batch of runs':<48} {'run-steps/s':>11} {'vs one run':>11} "
              f"{'median':>7} {'vs one compiled run':>20}")  # fmt: skip
        for name, v in best.items():
            if "_runs" not in name:
                continue
            base = name.split("_runs")[0]
            # graphed runs against one graphed (compiled) run, an eager batch against compiled
            graphed = name.endswith(("_graph", "_streams"))
            comp = best.get(f"{base}_compiled_graph" if graphed else f"{base}_compiled")
            vs_comp = f"{v / comp:20.2f}" if comp else f"{'-':>20}"
            print(f"{name:<48} {v:11.1f} {v / best[base]:11.2f} "
                  f"{median[name] / median[base]:7.2f} {vs_comp}")  # fmt: skip
    if args.matmul_share:
        print(f"\n{'loop':<48} {'matmul share':>13} {'ceiling (GEMMs unchanged)':>26}")
        for name, fn in loops.items():
            share = matmul_share(fn)
            print(f"{name:<48} {100 * share:12.1f}% {1 / share:25.2f}x")
    if args.loop_steps:
        real_loop(args, s, a, h)


def real_loop(args: argparse.Namespace, s: int, a: int, h: int) -> None:
    """Time ``gemkit.train.train`` itself (pretraining, metrics, two checkpoints)."""
    import tempfile

    from gemkit.train import train
    from gemkit.train.plan import plan_run

    cfg = TrainConfig(
        n_critics=args.critics[0],
        n_components=args.components,
        critic_mode=args.critic_modes[0],
        hidden=(h, h),
        device=args.device,
    )
    steps = args.loop_steps
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        train(synthetic(1_000_000, s, a), cfg, out, steps, save_every=max(1, steps // 2),
              log_every=1000, tensorboard=False, compile=args.compile,
              cuda_graph=args.cuda_graph)  # fmt: skip
        _sync()
        wall = time.perf_counter() - t0
    flags = (("compiled", args.compile), ("CUDA graph", args.cuda_graph), ("TF32", args.tf32))
    options = ", ".join(name for name, on in flags if on) or "eager"
    print(
        f"\ntrain() E={cfg.n_critics} {cfg.critic_mode} {h}x2 ({options}), {steps:,} steps "
        f"({plan_run(cfg, steps).pretrain:,} behavior-only) incl. warm-up and 2 "
        f"checkpoints: {wall:.1f} s, {steps / wall:.1f} steps/s; 1M updates: "
        f"{1e6 / (steps / wall) / 60:.1f} min at that rate"
    )


if __name__ == "__main__":
    main()

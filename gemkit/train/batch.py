"""Runs as a batch dimension: R trainers stepped together, one vectorised step for all.

:class:`RunBatch` takes R :class:`~gemkit.train.trainer.Trainer` objects built as usual (each
with its own seed, hence its own initialisation and its own minibatch generator, and possibly
its own dataset of the same shapes) and trains them as one: every parameter, buffer and Adam
moment gains a leading run axis, and one step evaluates :meth:`Trainer.compute_losses` for all
R runs at once through ``torch.func.vmap`` over ``torch.func.functional_call`` (the same loss
code as a single run, not a second copy of it), back-propagates the sum of the runs' losses
(each run's parameters receive exactly their own run's gradient), applies one fused Adam step
over the stacked tensors (elementwise, so each run's update is its own) and one Polyak update.

Each run keeps its own minibatch stream: run r draws its indices from its trainer's generator,
exactly as the single run with that seed would. The stacked state is written back into the
trainers (:meth:`RunBatch.sync`) before a checkpoint or an export, so each run's directory is a
normal run's: :func:`gemkit.train.checkpoint.save_checkpoint` and resume work unchanged, alone
or in a batch.

With ``cuda_graph`` (every trainer built with it, on a GPU) the batch replays one captured
graph per phase for all its runs (:class:`~gemkit.train.graphs.StepGraphs` over
:class:`~gemkit.train.graphs.LockstepRows`: each run's own index stream, read in lockstep).

What is and is not bit for bit (``tests/test_batch.py``): the initial weights and every
minibatch's indices are identical to the single runs'; the losses are not, because batched
matrix multiplies sum in another order than one run's (the difference after 1,000 steps is
measured there and stated in ``docs/performance.md``). A batch of one is the single trainer
itself (:func:`gemkit.train.run.train_runs` does not wrap it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from gemkit.errors import GemkitError
from gemkit.train import losses as L
from gemkit.train.graphs import LockstepRows, StepGraphs, summed_steps
from gemkit.train.trainer import Trainer

__all__ = ["RunBatch", "check_batch"]

_TARGET = "target_critic"


def check_batch(trainers: Sequence[Trainer], *, at_one_step: bool = True) -> None:
    """Raise a one-line :class:`GemkitError` unless ``trainers`` can be stepped as one batch.

    They must share every config key but ``seed``, their datasets' state and action sizes,
    their pretraining length and (``at_one_step``) their step, and all or none use CUDA graphs.
    ``at_one_step=False`` checks runs that will be brought to one step first.
    """
    if not trainers:
        raise GemkitError("a batch of runs needs at least one run.")
    first = trainers[0]
    ref = {k: v for k, v in first.config.to_dict().items() if k != "seed"}
    for i, t in enumerate(trainers[1:], start=1):
        mine = {k: v for k, v in t.config.to_dict().items() if k != "seed"}
        diff = sorted(k for k in ref.keys() | mine.keys() if ref.get(k) != mine.get(k))
        if diff:
            raise GemkitError(
                f"run {i} of the batch has another config than run 0 ({', '.join(diff)} differ); "
                "a batch shares every setting but the seed: train them as separate batches."
            )
        shapes = (t.data.state_dim, t.data.action_dim)
        if shapes != (first.data.state_dim, first.data.action_dim):
            raise GemkitError(
                f"run {i} of the batch has states/actions of size {shapes}, run 0 "
                f"{(first.data.state_dim, first.data.action_dim)}: datasets in one batch must "
                "have the same shapes."
            )
        if t.pretrain_steps != first.pretrain_steps:
            raise GemkitError(
                f"run {i} of the batch pretrains for {t.pretrain_steps} steps, run 0 for "
                f"{first.pretrain_steps}; train them as separate runs."
            )
        if at_one_step and t.step != first.step:
            raise GemkitError(
                f"run {i} of the batch is at step {t.step}, run 0 at {first.step}: bring them "
                "to one step first."
            )
    if len({t.cuda_graph for t in trainers}) > 1:
        raise GemkitError(
            "some runs of the batch replay CUDA graphs and some do not: a batch steps as one, "
            "so all or none."
        )


class _Step(nn.Module):
    """Every network of one trainer under one root, so ``functional_call`` can swap them all."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.nets = nn.ModuleDict(trainer.networks())
        self._trainer = [trainer]  # a list: not registered as a submodule

    def forward(self, batch: dict[str, Tensor], phase: str) -> dict[str, Tensor]:
        return self._trainer[0].compute_losses(batch, phase)


def _named(trainer: Trainer, kind: str) -> dict[str, Tensor]:
    """``trainer``'s parameters (``kind="params"``) or buffers, named as :class:`_Step` does."""
    out: dict[str, Tensor] = {}
    for net_name, net in trainer.networks().items():
        items = net.named_parameters() if kind == "params" else net.named_buffers()
        for k, v in items:
            out[f"nets.{net_name}.{k}"] = v
    return out


class RunBatch:
    """R trainers trained as one batch (see the module docstring).

    Args:
        trainers: the runs, as :func:`check_batch` requires them; their weights, Adam state
            and step are read here (fresh or resumed), and written back by :meth:`sync`.

    Attributes:
        trainers: the runs, in batch order.
        optimizer: one fused Adam over the stacked trained parameters.
    """

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        check_batch(trainers)
        self.trainers = list(trainers)
        first = self.trainers[0]
        self._module = _Step(first)
        per_run = [_named(t, "params") for t in self.trainers]
        names = list(per_run[0])
        with torch.no_grad():
            stacked = {n: torch.stack([p[n].detach() for p in per_run]) for n in names}
            self._buffers = {
                n: torch.stack([b[n] for b in (_named(t, "buffers") for t in self.trainers)])
                for n in _named(first, "buffers")
            }
        target = f"nets.{_TARGET}."
        self._trained = {
            n: t.requires_grad_(True) for n, t in stacked.items() if not n.startswith(target)
        }
        self._targets = {n: t for n, t in stacked.items() if n.startswith(target)}
        self._target_pairs = (
            list(self._targets.values()),
            [self._trained[n.replace(target, "nets.critic.", 1)] for n in self._targets],
        )
        self._per_run = per_run
        self.cuda_graph = first.cuda_graph
        # ``capturable`` keeps Adam's step counts on the device, as a graph replay needs
        self.optimizer = torch.optim.Adam(
            list(self._trained.values()), lr=first.config.lr, fused=True,
            capturable=self.cuda_graph,
        )  # fmt: skip
        self._load_optimizer_state()
        self._vlosses = {
            phase: vmap(functools.partial(self._call, phase=phase))
            for phase in ("pretrain", "joint")
        }
        self._graphs: StepGraphs | None = None
        if self.cuda_graph:  # every run's own index stream, stepped in lockstep
            rows = [t.rows for t in self.trainers]
            assert all(r is not None for r in rows)
            self._graphs = StepGraphs(self._update, LockstepRows(rows), first.device)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the step
    def _call(
        self, params: dict[str, Tensor], buffers: dict[str, Tensor], batch: dict[str, Tensor],
        phase: str,
    ) -> dict[str, Tensor]:  # fmt: skip
        out: dict[str, Tensor] = functional_call(self._module, (params, buffers), (batch, phase))
        return out

    @property
    def step(self) -> int:
        """Gradient steps done (every run of the batch is at the same step)."""
        return self.trainers[0].step

    def _update(self, batch: dict[str, Tensor], phase: str) -> dict[str, Tensor]:
        """The batch's step on a stacked minibatch (``[R, B, ...]``): losses, backward, Adam,
        Polyak (also what a CUDA graph holds); returns the statistics, each ``[R]``."""
        first = self.trainers[0]
        out = self._vlosses[phase]({**self._trained, **self._targets}, self._buffers, batch)
        losses = first.trained_losses(out)  # each [R]: run r's loss only reaches run r's weights
        self.optimizer.zero_grad(set_to_none=True)
        if losses:
            total = functools.reduce(torch.add, (loss.sum() for loss in losses))
            total.backward()
            self.optimizer.step()
        if phase == "joint":
            L.polyak_update(*self._target_pairs, first.config.tau)
        return out

    def train_step(self) -> dict[str, Tensor]:
        """One gradient step of every run; returns each statistic as ``[R]`` (detached)."""
        if self._graphs is not None:
            sums, _ = self.train_steps(1)
            return sums
        batches = [t.sample_batch() for t in self.trainers]
        batch = {k: torch.stack([b[k] for b in batches]) for k in batches[0]}
        out = self._update(batch, self.trainers[0].phase)
        for t in self.trainers:
            t.step += 1
        return {k: v.detach() for k, v in out.items()}

    def train_steps(
        self, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], dict[str, int]]:
        """Up to ``n`` steps of every run, as :meth:`Trainer.train_steps`: each statistic's sum
        over the steps, ``[R]``, and how many steps computed it (with CUDA graphs, whole
        stretches of steps replayed at once)."""
        return summed_steps(n, stop, lambda left: self._steps(left, stop))

    def _steps(
        self, left: int, stop: Callable[[], bool] | None
    ) -> tuple[dict[str, Tensor], int]:
        """Up to ``left`` steps of every run at once (graph replays where captured), else one
        vectorised step."""
        if self._graphs is not None:
            got = self._graphs.steps_of(self.trainers[0], left, stop)
            if got is not None:
                for t in self.trainers:
                    t.step += got[1]
                return got
            self._graphs = None  # the capture failed (and warned): eager steps from here
        return self.train_step(), 1

    # ------------------------------------------------------------------ the runs' own state
    def sync(self) -> None:
        """Write the stacked weights and Adam state back into each run's trainer."""
        with torch.no_grad():
            for r, named in enumerate(self._per_run):
                for n, p in named.items():
                    src = self._trained[n] if n in self._trained else self._targets[n]
                    p.copy_(src[r])
        for n, stacked in self._trained.items():
            state = self.optimizer.state.get(stacked)
            for r, t in enumerate(self.trainers):
                p = self._per_run[r][n]
                if not state:
                    t.optimizer.state.pop(p, None)
                    continue
                t.optimizer.state[p] = {
                    k: (v.clone() if v.dim() == 0 else v[r].clone()) for k, v in state.items()
                }

    def _load_optimizer_state(self) -> None:
        """Stack the trainers' Adam state (resumed runs) into :attr:`optimizer`."""
        for n, stacked in self._trained.items():
            states = [
                t.optimizer.state.get(self._per_run[r][n]) for r, t in enumerate(self.trainers)
            ]
            if not any(states):
                continue
            if not all(states):
                raise GemkitError(
                    f"the runs' optimizer states disagree on {n!r} (some have none): they were "
                    "not trained alike; train them as separate runs."
                )
            keys = states[0].keys()  # type: ignore[union-attr]
            merged: dict[str, Tensor] = {}
            for k in keys:
                vals = [s[k] for s in states]  # type: ignore[index]
                if vals[0].dim() == 0:
                    if any(not torch.equal(v, vals[0]) for v in vals):
                        raise GemkitError(f"the runs' Adam step counts differ for {n!r}.")
                    merged[k] = vals[0].clone()
                else:
                    merged[k] = torch.stack(vals).clone()
            self.optimizer.state[stacked] = merged

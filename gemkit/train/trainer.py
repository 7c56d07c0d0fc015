"""The trainer of GEM's Phase I: critic ensemble, expectile value, behavior GMM, actor.

Every step draws one minibatch with the run's ``torch.Generator`` and computes all four losses
from the parameters as they were at the start of the step (as IQL does: the value, critic and
actor updates of one step all read pre-update networks). The four losses touch disjoint
parameters, so their sum is back-propagated once and one fused Adam step applies every update;
this is the same arithmetic as four optimizers stepped one after the other. The run around it
(checkpoints, reports, Ctrl-C) is :func:`gemkit.train.run.train`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError
from gemkit.models.critic import CriticEnsemble, ValueNetwork
from gemkit.models.gmm import ConditionalGMM
from gemkit.models.io import Models
from gemkit.train import losses as L
from gemkit.train.batches import IndexStream, PackedTransitions, pack_for
from gemkit.train.behavior import behavior_loss
from gemkit.train.compiling import COMPILE_MODES, CUDAGRAPH_MODES, compile_options
from gemkit.train.config import TrainConfig
from gemkit.train.graphs import GRAPH_CHUNK, RunRows, StepGraphs, summed_steps
from gemkit.train.init import init_parameters, make_gmm

__all__ = ["BASELINE_SEED_OFFSET", "COMPILE_MODES", "Trainer", "compile_options"]

BASELINE_SEED_OFFSET = 7919
"""The baseline actor's initialisation generator is seeded with ``config.seed`` plus this."""


class Trainer:
    """GEM's Phase I on one dataset (spec section 1); see :class:`TrainConfig` for the maths.

    Args:
        transitions: the offline dataset.
        config: hyperparameters; ``config.seed`` seeds the run's only generator.
        dataset_id: recorded in the models' metadata.
        pretrain_steps: behavior-only steps at the start (default
            ``config.gmm_pretrain_steps``; :func:`train` passes its plan's).
        compile: run :meth:`compute_losses` through ``torch.compile`` (see
            :func:`compile_options`).
        compile_mode: ``torch.compile``'s ``mode`` when ``compile`` is on: one of
            :data:`COMPILE_MODES` (``default``; on CPU, ``max-autotune-no-cudagraphs`` was no
            faster, ``docs/performance.md``; the CUDA-graph modes are for GPUs).
        cuda_graph: capture the whole step (minibatch gather, losses, backward, Adam step,
            Polyak update and the running sums of the statistics) as one CUDA graph per phase
            and replay it (a GPU only; combines with ``compile`` in a mode without graphs of
            its own; :mod:`gemkit.train.graphs`). The minibatch indices still come from the
            run's CPU generator, drawn ahead (:class:`IndexStream`), so a run with graphs takes
            the same minibatches as one without. The first steps of each phase run eagerly;
            a capture that fails warns once and training goes on without graphs.
        data: the dataset already packed by :func:`pack_for` with this config (the runs of a
            batch on one dataset share it); by default ``transitions`` is packed here.

    Attributes:
        actor: the guided-EM GMM actor (``K = 1`` for ``actor="unimodal"``).
        behavior: the behavior GMM.
        critic: the online critic ensemble; ``target_critic`` is its Polyak copy.
        value: the expectile value network.
        optimizer: one fused Adam over every trained parameter.
        generator: the CPU generator of initialisation and minibatch indices.
        step: gradient steps done (pretraining included).
        pretrain_steps: the steps before which only the behavior GMM trains.
    """

    def __init__(
        self,
        transitions: Transitions,
        config: TrainConfig,
        dataset_id: str | None = None,
        *,
        pretrain_steps: int | None = None,
        compile: bool = False,
        compile_mode: str = "default",
        cuda_graph: bool = False,
        data: PackedTransitions | None = None,
    ) -> None:
        if compile_mode not in COMPILE_MODES:
            raise GemkitError(
                f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}."
            )
        if cuda_graph and compile and compile_mode in CUDAGRAPH_MODES:
            raise GemkitError(
                f"compile_mode {compile_mode!r} captures CUDA graphs of its own; with "
                "cuda_graph use compile_mode 'default' or 'max-autotune-no-cudagraphs'."
            )
        if cuda_graph and torch.device(config.device).type != "cuda":
            raise GemkitError(
                f"cuda_graph needs a CUDA device, but the config's device is {config.device!r}; "
                "set device=cuda or train without CUDA graphs."
            )
        self.config = config
        self.pretrain_steps = (
            config.gmm_pretrain_steps if pretrain_steps is None else pretrain_steps
        )
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise GemkitError(
                "device 'cuda' requested but CUDA is not available; use --device cpu."
            )
        self.dataset_id = (
            dataset_id if dataset_id is not None else transitions.meta.get("dataset_id")
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        s_dim, a_dim = transitions.state_dim, transitions.action_dim
        low = transitions.action_low.detach().cpu().float()
        high = transitions.action_high.detach().cpu().float()

        # ---- the data, normalised once and packed for one gather per step
        self.data = data if data is not None else pack_for(transitions, config)
        self.obs_mean, self.obs_std = self.data.obs_mean, self.data.obs_std
        self.n_transitions = self.data.n_transitions
        self.fingerprint = self.data.fingerprint

        # ---- the networks, initialised from the run's generator only
        hidden = config.hidden
        with torch.random.fork_rng(devices=[]):  # construction must not consume global RNG
            self.critic = CriticEnsemble(s_dim, a_dim, config.n_critics, hidden, config.critic_mode)  # type: ignore[arg-type]
            self.value = ValueNetwork(s_dim, hidden)
        self.actor = make_gmm(config, s_dim, a_dim, config.actor_components, low, high)
        self.behavior = make_gmm(config, s_dim, a_dim, config.n_components, low, high)
        for net in (self.critic, self.value, self.actor, self.behavior):
            init_parameters(net, self.generator, config.gmm_init_log_std)
        self.target_critic = copy.deepcopy(self.critic)
        # The fair baseline draws its initialisation from a generator of its own, so that the
        # other networks (and the minibatches) are exactly those of a run without it.
        self.baseline: ConditionalGMM | None = None
        if config.unimodal_baseline:
            self.baseline = make_gmm(config, s_dim, a_dim, 1, low, high)
            init_parameters(
                self.baseline,
                torch.Generator().manual_seed(config.seed + BASELINE_SEED_OFFSET),
                config.gmm_init_log_std,
            )
        trained: list[nn.Module] = [self.critic, self.value, self.actor, self.behavior]
        if self.baseline is not None:
            trained.append(self.baseline)
        for module in (*trained, self.target_critic):
            module.to(self.device)
        self.target_critic.requires_grad_(False)

        # Adam's state is per parameter and every network has the same lr, so one group (one
        # fused kernel call per step) is the same arithmetic as one optimizer per network.
        params = [p for net in trained for p in net.parameters()]
        # ``capturable`` keeps Adam's step counts on the device, as a graph replay needs
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True, capturable=cuda_graph)
        self.step = 0
        self.cuda_graph = cuda_graph
        self._stream: IndexStream | None = None
        if cuda_graph:
            self._stream = IndexStream(
                self.generator, self.n_transitions, config.batch_size, GRAPH_CHUNK, self.device
            )
        rows = None if self._stream is None else RunRows(self._stream, self.data)
        self._graphs = None if rows is None else StepGraphs(self._update, rows, self.device)
        self.compiled = compile
        self._losses: Callable[[dict[str, Tensor], str], dict[str, Tensor]] = self.compute_losses
        if compile:
            self._losses = torch.compile(
                self.compute_losses, options=compile_options(compile_mode, self.device)
            )

    # ------------------------------------------------------------------ one step
    @property
    def phase(self) -> str:
        """``"pretrain"`` for the first :attr:`pretrain_steps` steps, then ``"joint"``."""
        return "pretrain" if self.step < self.pretrain_steps else "joint"

    @property
    def behavior_trainable(self) -> bool:
        """Whether the behavior GMM is updated at the current step."""
        return self.phase == "pretrain" or not self.config.gmm_freeze_after_pretrain

    def sample_batch(self) -> dict[str, Tensor]:
        """A minibatch of normalised transitions, indices drawn from :attr:`generator`."""
        if self._stream is not None:
            start, _ = self._stream.take(1)
            return self.data.gather(self._stream.buffer[start])
        return self.data.sample(self.config.batch_size, self.generator)

    @property
    def rows(self) -> RunRows | None:
        """With ``cuda_graph``: the run's minibatch rows as a graph reads them (else None)."""
        return None if self._stream is None else RunRows(self._stream, self.data)

    def rng_state(self) -> Tensor:
        """The run's generator state as checkpoints store it (minibatches drawn one by one)."""
        return self._stream.state() if self._stream is not None else self.generator.get_state()

    def set_rng_state(self, state: Tensor) -> None:
        """Restore :meth:`rng_state` (from a checkpoint)."""
        if self._stream is not None:
            self._stream.set_state(state)
        else:
            self.generator.set_state(state)

    def compute_losses(self, batch: dict[str, Tensor], phase: str = "joint") -> dict[str, Tensor]:
        """The four losses of one step (with graphs) and detached statistics.

        Args:
            batch: normalised ``observations [B, S]``, ``actions [B, A]``, ``rewards [B]``,
                ``next_observations [B, S]``, ``terminals [B]``.
            phase: ``"pretrain"`` computes only ``loss_behavior``.

        Returns:
            ``loss_critic``, ``loss_value``, ``loss_actor``, ``loss_behavior`` (scalars with
            graphs; each depends only on its own network) and the detached statistics of
            :data:`LOSS_NAMES`.
        """
        cfg = self.config
        obs, act = batch["observations"], batch["actions"]
        out: dict[str, Tensor] = {}

        out["loss_behavior"] = behavior_loss(self.behavior, obs, act)
        if phase == "pretrain":
            return out

        with torch.no_grad():
            target_q = self.target_critic(obs, act).amin(0)  # [B]  min_e Q'_e
            next_v = self.value(batch["next_observations"])  # [B]
            y = L.td_target(batch["rewards"], batch["terminals"], next_v, cfg.discount)
        v = self.value(obs)  # [B]
        out["loss_value"] = L.expectile_loss(target_q - v, cfg.expectile)

        q = self.critic(obs, act)  # [E, B]
        out["loss_critic"] = L.critic_loss(q, y)

        adv = target_q - v.detach()
        g = L.guidance_weight(adv, cfg.alpha, cfg.exp_adv_max)  # [B]
        pi = self.actor(obs)
        pi_lj = self.actor.log_joint(pi, act.unsqueeze(1)).squeeze(1)  # [B, K]
        out["loss_actor"] = L.actor_loss(pi_lj, pi.log_weights, g, cfg.c_ent, cfg.detach_gamma)
        if self.baseline is not None:
            # the same g on the same minibatch: K = 1, so this is advantage-weighted regression
            b = self.baseline(obs)
            b_lj = self.baseline.log_joint(b, act.unsqueeze(1)).squeeze(1)  # [B, 1]
            out["loss_baseline"] = L.actor_loss(b_lj, b.log_weights, g, 0.0, True)
        entropy = L.gating_entropy(pi.log_weights.detach())  # a statistic, no graph

        out["q_mean"] = q.detach().mean()
        out["v_mean"] = v.detach().mean()
        out["adv_mean"] = adv.mean()
        out["guidance_mean"] = g.mean()
        out["guidance_ess"] = L.guidance_ess(g)
        out["gating_entropy"] = entropy.detach().mean()
        return out

    def train_step(self) -> dict[str, Tensor]:
        """One gradient step on a fresh minibatch; returns detached losses and statistics."""
        if self.cuda_graph:
            return self.train_steps(1)[0]
        out = self._update(self.sample_batch(), self.phase)
        self.step += 1
        return {k: v.detach() for k, v in out.items()}

    def train_steps(
        self, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], dict[str, int]]:
        """Up to ``n`` gradient steps; returns each statistic's sum over them and its count.

        A statistic is counted at the steps that compute it (``loss_critic`` not in
        pretraining). Equal to ``n`` calls of :meth:`train_step` summed; with ``cuda_graph``
        the sums are kept on the GPU by the graph itself, and read once per call. ``stop``
        is asked before every step; once it says true, no more steps are taken (:attr:`step`
        tells how many were).
        """
        return summed_steps(n, stop, lambda left: self._steps(left, stop))

    def _steps(
        self, left: int, stop: Callable[[], bool] | None
    ) -> tuple[dict[str, Tensor], int]:
        """Up to ``left`` steps at once: graph replays (or a warm-up step) where graphs are on,
        else one eager step."""
        if self.cuda_graph and self._graphs is not None:
            got = self._graphs.steps_of(self, left, stop)
            if got is not None:
                self.step += got[1]
                return got
            self.cuda_graph, self._graphs = False, None  # the capture failed (and warned)
        return self.train_step(), 1

    def _update(self, batch: dict[str, Tensor], phase: str) -> dict[str, Tensor]:
        """The step's losses, backward, Adam step and Polyak update (also what a graph holds)."""
        out = (
            self._compiled_losses(batch, phase)
            if self.compiled
            else self.compute_losses(batch, phase)
        )
        total = None
        for loss in self.trained_losses(out):
            total = loss if total is None else total + loss
        self.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()
            self.optimizer.step()
        if phase == "joint":
            L.polyak_update(self.target_critic, self.critic, self.config.tau)
        return out

    def trained_losses(self, out: dict[str, Tensor]) -> list[Tensor]:
        """The losses of :meth:`compute_losses`'s ``out`` that this step back-propagates: the
        behavior loss while the behavior GMM trains, then every other loss computed."""
        names = ["loss_behavior"] if self.behavior_trainable else []
        names += ["loss_critic", "loss_value", "loss_actor", "loss_baseline"]
        return [out[n] for n in names if n in out]

    def _compiled_losses(self, batch: dict[str, Tensor], phase: str) -> dict[str, Tensor]:
        """The compiled :meth:`compute_losses`; on a compiler failure, eager from then on."""
        try:
            return self._losses(batch, phase)
        except Exception as exc:  # torch.compile raises many types (backend, inductor, C++)
            import warnings

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {first}); training eagerly.",
                RuntimeWarning,
                stacklevel=2,
            )
            self.compiled = False
            self._losses = self.compute_losses
            return self.compute_losses(batch, phase)

    # ------------------------------------------------------------------ exports
    def meta(self) -> dict[str, Any]:
        """Metadata stored with the models (what a selector needs to use them)."""
        return {
            "producer": "gemkit.train",
            "dataset_id": self.dataset_id,
            "step": self.step,
            "pretrain_steps": self.pretrain_steps,
            "actor_kind": self.config.actor,
            "normalize_obs": self.config.normalize_obs,
            "reward_scale": self.data.reward_scale,
            "obs_mean": self.obs_mean.tolist(),
            "obs_std": self.obs_std.tolist(),
            "action_low": self.actor.action_low.tolist(),
            "action_high": self.actor.action_high.tolist(),
            "state_dim": self.actor.state_dim,
            "action_dim": self.actor.action_dim,
            "dataset_sha256": self.fingerprint,
            "train_config": self.config.to_dict(),
        }

    def models(self) -> Models:
        """The trained networks (live modules, not copies) with :meth:`meta`."""
        return Models(
            actor=self.actor,
            behavior=self.behavior,
            critic=self.critic,
            value=self.value,
            meta=self.meta(),
            baseline=self.baseline,
        )

    def networks(self) -> dict[str, nn.Module]:
        """Every network whose weights make up the trainer state, by name."""
        nets: dict[str, nn.Module] = {
            "actor": self.actor,
            "behavior": self.behavior,
            "critic": self.critic,
            "target_critic": self.target_critic,
            "value": self.value,
        }
        if self.baseline is not None:
            nets["baseline"] = self.baseline
        return nets

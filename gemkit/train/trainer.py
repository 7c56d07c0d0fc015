"""One trainer loop for GEM's Phase I: critic ensemble, expectile value, behavior GMM, actor.

Every step draws one minibatch with the run's ``torch.Generator`` and computes all four losses
from the parameters as they were at the start of the step (as IQL does: the value, critic and
actor updates of one step all read pre-update networks). The four losses touch disjoint
parameters, so their sum is back-propagated once and one fused Adam step applies every update;
this is the same arithmetic as four optimizers stepped one after the other.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from gemkit.data.transitions import Transitions
from gemkit.errors import CheckpointError, DatasetError
from gemkit.models.critic import CriticEnsemble, ValueNetwork, VectorizedLinear
from gemkit.models.gmm import ConditionalGMM
from gemkit.models.io import Models
from gemkit.train import losses as L
from gemkit.train.config import TrainConfig

BASELINE_SEED_OFFSET = 7919
"""The baseline actor's initialisation generator is seeded with ``config.seed`` plus this."""

__all__ = [
    "BASELINE_SEED_OFFSET",
    "LOSS_NAMES",
    "PRETRAIN_SHARE",
    "TrainPlan",
    "TrainProgress",
    "Trainer",
    "TrainingInterrupted",
    "check_output_dir",
    "init_parameters",
    "plan_run",
    "train",
]

PRETRAIN_SHARE = 0.25
"""A fresh run spends at most this share of its steps on behavior-only pretraining."""

LOSS_NAMES = (
    "loss_critic",
    "loss_value",
    "loss_actor",
    "loss_behavior",
    "loss_baseline",
    "q_mean",
    "v_mean",
    "adv_mean",
    "guidance_mean",
    "gating_entropy",
)
"""The per-step statistics the trainer reports, in ``metrics.csv`` column order."""


@attrs.frozen
class TrainProgress:
    """What a progress callback receives every ``log_every`` steps and at the end.

    Attributes:
        step: gradient steps done so far (pretraining included).
        total: the step the run stops at.
        metrics: means of :data:`LOSS_NAMES` over the steps since the last report
            (``nan`` for a loss not computed in that window, e.g. the actor during pretraining).
        steps_per_s: gradient steps per second over that window.
        phase: ``"pretrain"`` (behavior GMM only) or ``"joint"``.
    """

    step: int
    total: int
    metrics: dict[str, float]
    steps_per_s: float
    phase: str


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train` between two steps, after it saved a checkpoint.

    A ``KeyboardInterrupt``, so code that does not know it still stops as on any Ctrl-C.

    Attributes:
        step: the step the checkpoint holds.
        steps: the step the interrupted run was to reach.
        directory: the checkpoint directory (``train(..., resume=True)`` continues from it).
    """

    def __init__(self, step: int, steps: int, directory: Path) -> None:
        super().__init__(f"training interrupted at step {step}; checkpoint saved in {directory}")
        self.step = step
        self.steps = steps
        self.directory = directory


@attrs.frozen
class TrainPlan:
    """What a :func:`train` call does, known before it starts (see :func:`plan_run`).

    Attributes:
        config: the run's hyperparameters.
        steps: the step the run stops at.
        start: the step it starts from (0, or the checkpoint's step on resume).
        pretrain: behavior-only steps of the whole run, counted from step 0.
    """

    config: TrainConfig
    steps: int
    start: int
    pretrain: int

    @property
    def pretrain_left(self) -> int:
        """Behavior-only steps this call still runs."""
        return max(0, min(self.pretrain, self.steps) - self.start)

    @property
    def joint_left(self) -> int:
        """Joint steps (critic, value, actor, behavior, baseline) this call runs."""
        return max(0, self.steps - max(self.start, self.pretrain))

    def networks(self) -> list[str]:
        """The networks the joint steps update, as short labels."""
        c = self.config
        nets = [
            f"critic ensemble E={c.n_critics} (+ Polyak target)",
            "value V",
            f"actor {'GMM K=' + str(c.n_components) if c.actor == 'gmm' else 'Gaussian K=1'}",
        ]
        if not c.gmm_freeze_after_pretrain:
            nets.append(f"behavior GMM K={c.n_components}")
        if c.unimodal_baseline:
            nets.append("same-critic baseline actor K=1")
        return nets

    def lines(self) -> list[str]:
        """A few human-readable lines: where the run starts and ends, its phases, its networks."""
        c = self.config
        if self.start:
            head = f"resuming from step {self.start:,} to step {self.steps:,}"
            pre = f"{self.pretrain_left:,} of the {self.pretrain:,} behavior-only steps left"
        else:
            cap = (
                f" (gmm_pretrain_steps {c.gmm_pretrain_steps:,}, capped at "
                f"{PRETRAIN_SHARE:.0%} of the run)"
                if self.pretrain < c.gmm_pretrain_steps
                else ""
            )
            head = f"training steps 0 -> {self.steps:,}"
            pre = f"{self.pretrain:,} behavior-only pretraining step(s){cap}"
        widths = "x".join(str(h) for h in c.hidden)
        return [
            f"{head}: {pre}, then {self.joint_left:,} joint step(s)",
            f"joint steps update: {', '.join(self.networks())}; MLPs {widths}, "
            f"batch {c.batch_size}, "
            f"lr {c.lr:g}, seed {c.seed}",
        ]


def plan_run(
    config: TrainConfig, steps: int, *, start: int = 0, pretrain: int | None = None
) -> TrainPlan:
    """The plan of a run to ``steps``: how many steps pretrain the behavior GMM, how many are joint.

    A fresh run (``pretrain=None``) pretrains ``min(config.gmm_pretrain_steps,
    int(PRETRAIN_SHARE * steps))`` steps, so at least three quarters of any run update the
    critic, value and actor. A resumed run keeps the pretraining its checkpoint was started with
    (``pretrain``).

    Args:
        config: the run's hyperparameters.
        steps: the step to reach.
        start: the step the run starts from (a checkpoint's, on resume).
        pretrain: the checkpoint's pretraining steps on resume; ``None`` for a fresh run.

    Raises:
        CheckpointError: ``start`` is past ``steps``, or a resumed run would end inside its
            pretraining (the critic, value and actor would not train).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if start > steps:
        raise CheckpointError(f"the checkpoint is at step {start}, past --steps {steps}.")
    if pretrain is None:
        pretrain = min(config.gmm_pretrain_steps, int(PRETRAIN_SHARE * steps))
    elif start < steps <= pretrain:
        raise CheckpointError(
            f"--steps {steps} ends inside the checkpoint's behavior pretraining ({pretrain} "
            f"steps), so the critic, value and actor would not train; give --steps above "
            f"{pretrain}."
        )
    return TrainPlan(config=config, steps=steps, start=start, pretrain=pretrain)


def init_parameters(module: nn.Module, generator: torch.Generator, init_log_std: float) -> None:
    """Re-initialise ``module`` from ``generator`` exactly like ``nn.Linear``'s default.

    ``nn.Linear`` draws weight and bias from ``U(-1/sqrt(in), 1/sqrt(in))``; the same holds for
    each member of a :class:`VectorizedLinear`. A GMM's means-head bias is drawn from
    ``U(-1, 1)`` instead (component means start spread over the action box, which keeps the
    mixture from collapsing onto one component early) and its ``log sigma`` starts at
    ``init_log_std`` (narrow components claim the data near them, EM-style, instead of all
    overlapping).
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear | VectorizedLinear):
                fan_in = m.in_features
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        for m in module.modules():
            if isinstance(m, ConditionalGMM):
                # spread the K component means over the box (pre-tanh bias U(-1, 1)) so that
                # the components start apart instead of all at the box centre
                nn.init.uniform_(m.means_head.bias, -1.0, 1.0, generator=generator)
                m.log_std_param.fill_(init_log_std)


def dataset_fingerprint(transitions: Transitions) -> str:
    """SHA-256 over the transition tensors (identifies the data a checkpoint was trained on)."""
    h = hashlib.sha256()
    for name in ("observations", "actions", "rewards", "next_observations", "terminals"):
        t = getattr(transitions, name).detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(list(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """GEM's Phase I on one dataset (spec section 1); see :class:`TrainConfig` for the maths.

    Args:
        transitions: the offline dataset.
        config: hyperparameters; ``config.seed`` seeds the run's only generator.
        dataset_id: recorded in the models' metadata.
        pretrain_steps: behavior-only steps at the start (default
            ``config.gmm_pretrain_steps``; :func:`train` passes its plan's).
        compile: run :meth:`compute_losses` through ``torch.compile``.

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
    ) -> None:
        self.config = config
        self.pretrain_steps = (
            config.gmm_pretrain_steps if pretrain_steps is None else pretrain_steps
        )
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise DatasetError(
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
        if config.normalize_obs:
            mean = transitions.obs_mean.detach().cpu().float().reshape(s_dim)
            std = transitions.obs_std.detach().cpu().float().reshape(s_dim)
        else:
            mean, std = torch.zeros(s_dim), torch.ones(s_dim)
        if not bool((std > 0).all()):
            raise DatasetError("obs_std must be > 0 in every dim to normalise observations.")
        self.obs_mean, self.obs_std = mean, std
        obs = (transitions.observations.detach().cpu().float() - mean) / std
        nxt = (transitions.next_observations.detach().cpu().float() - mean) / std
        act = transitions.actions.detach().cpu().float()
        rew = transitions.rewards.detach().cpu().float().reshape(-1, 1)
        term = transitions.terminals.detach().cpu().float().reshape(-1, 1)
        self._splits = (s_dim, a_dim, 1, s_dim, 1)
        self._data = torch.cat([obs, act, rew, nxt, term], dim=1).to(self.device)
        self.n_transitions = len(transitions)
        self.fingerprint = dataset_fingerprint(transitions)

        # ---- the networks, initialised from the run's generator only
        hidden = config.hidden
        with torch.random.fork_rng(devices=[]):  # construction must not consume global RNG
            self.critic = CriticEnsemble(s_dim, a_dim, config.n_critics, hidden, config.critic_mode)  # type: ignore[arg-type]
            self.value = ValueNetwork(s_dim, hidden)
            gmm_kw: dict[str, Any] = {
                "hidden": hidden,
                "log_std_min": config.log_std_min,
                "log_std_max": config.log_std_max,
                "action_low": low.tolist(),
                "action_high": high.tolist(),
            }
            self.actor = ConditionalGMM(s_dim, a_dim, config.actor_components, **gmm_kw)
            self.behavior = ConditionalGMM(s_dim, a_dim, config.n_components, **gmm_kw)
        for net in (self.critic, self.value, self.actor, self.behavior):
            init_parameters(net, self.generator, config.gmm_init_log_std)
        self.target_critic = copy.deepcopy(self.critic)
        # The fair baseline draws its initialisation from a generator of its own, so that the
        # other networks (and the minibatches) are exactly those of a run without it.
        self.baseline: ConditionalGMM | None = None
        if config.unimodal_baseline:
            with torch.random.fork_rng(devices=[]):
                self.baseline = ConditionalGMM(s_dim, a_dim, 1, **gmm_kw)
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
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
        self.step = 0
        self.compiled = compile
        self._losses: Callable[[dict[str, Tensor], str], dict[str, Tensor]] = self.compute_losses
        if compile:
            self._losses = torch.compile(self.compute_losses)

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
        idx = torch.randint(
            0, self.n_transitions, (self.config.batch_size,), generator=self.generator
        )
        rows = self._data.index_select(0, idx.to(self.device))
        obs, act, rew, nxt, term = rows.split(self._splits, dim=1)
        return {
            "observations": obs,
            "actions": act,
            "rewards": rew.squeeze(1),
            "next_observations": nxt,
            "terminals": term.squeeze(1),
        }

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

        beh = self.behavior(obs)
        beh_lj = ConditionalGMM.component_log_joint(beh, act.unsqueeze(1)).squeeze(1)  # [B, K]
        out["loss_behavior"] = L.behavior_nll(beh_lj)
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
        pi_lj = ConditionalGMM.component_log_joint(pi, act.unsqueeze(1)).squeeze(1)  # [B, K]
        out["loss_actor"] = L.actor_loss(pi_lj, pi.log_weights, g, cfg.c_ent, cfg.detach_gamma)
        if self.baseline is not None:
            # the same g on the same minibatch: K = 1, so this is advantage-weighted regression
            b = self.baseline(obs)
            b_lj = ConditionalGMM.component_log_joint(b, act.unsqueeze(1)).squeeze(1)  # [B, 1]
            out["loss_baseline"] = L.actor_loss(b_lj, b.log_weights, g, 0.0, True)
        entropy = L.gating_entropy(pi.log_weights.detach())  # a statistic, no graph

        out["q_mean"] = q.detach().mean()
        out["v_mean"] = v.detach().mean()
        out["adv_mean"] = adv.mean()
        out["guidance_mean"] = g.mean()
        out["gating_entropy"] = entropy.detach().mean()
        return out

    def train_step(self) -> dict[str, Tensor]:
        """One gradient step on a fresh minibatch; returns detached losses and statistics."""
        phase = self.phase
        batch = self.sample_batch()
        out = self._compiled_losses(batch, phase) if self.compiled else self.compute_losses(
            batch, phase
        )
        total = out["loss_behavior"] if self.behavior_trainable else None
        for name in ("loss_critic", "loss_value", "loss_actor", "loss_baseline"):
            if name in out:
                total = out[name] if total is None else total + out[name]
        self.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()
            self.optimizer.step()
        if phase == "joint":
            L.polyak_update(self.target_critic, self.critic, self.config.tau)
        self.step += 1
        return {k: v.detach() for k, v in out.items()}

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


# ---------------------------------------------------------------------- the run
class _MetricsLog:
    """``metrics.csv`` (and TensorBoard if importable), appended at every report."""

    COLUMNS = ("step", "phase", *LOSS_NAMES, "steps_per_s", "wall_s")

    def __init__(self, path: Path, resume_step: int | None, tensorboard: bool) -> None:
        self.path = path
        keep: list[list[str]] = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            if rows and tuple(rows[0]) == self.COLUMNS:
                keep = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= resume_step]
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.COLUMNS)
            w.writerows(keep)
        self.writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self.writer = None
            else:
                self.writer = SummaryWriter(log_dir=str(path.parent / "tb"))

    def write(self, p: TrainProgress, wall_s: float) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(
                [
                    p.step,
                    p.phase,
                    *(repr(p.metrics[k]) for k in LOSS_NAMES),
                    f"{p.steps_per_s:.3f}",
                    f"{wall_s:.3f}",
                ]
            )
        if self.writer is not None:
            for k, v in p.metrics.items():
                if math.isfinite(v):
                    self.writer.add_scalar(f"train/{k}", v, p.step)
            self.writer.add_scalar("train/steps_per_s", p.steps_per_s, p.step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _windows(start: int, stop: int, every: int) -> Iterator[int]:
    """Ends of the report windows in ``(start, stop]``: multiples of ``every`` and ``stop``."""
    nxt = (start // every + 1) * every
    while nxt < stop:
        yield nxt
        nxt += every
    if stop > start:
        yield stop


def check_output_dir(out_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a fresh run into a directory that holds a checkpoint (unless ``overwrite``).

    Raises:
        CheckpointError: ``out_dir`` holds a trainer state and neither ``resume`` nor
            ``overwrite`` is set.
    """
    if not resume and not overwrite and (Path(out_dir) / "trainer_state.safetensors").exists():
        raise CheckpointError(
            f"{str(out_dir)!r} already holds a training checkpoint; resume it (--resume) or "
            "start afresh (--overwrite), or choose another --out."
        )


@contextlib.contextmanager
def _ctrl_c_flag() -> Iterator[list[bool]]:
    """While active, a first Ctrl-C (SIGINT) sets ``flag[0]`` instead of raising.

    The loop then stops at the next step boundary and saves; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread no handler can be installed, and
    Ctrl-C behaves as usual.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def train(
    transitions: Transitions,
    config: TrainConfig,
    out_dir: str | Path,
    steps: int,
    *,
    save_every: int = 10_000,
    log_every: int = 100,
    resume: bool = False,
    overwrite: bool = False,
    dataset_id: str | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    tensorboard: bool = True,
    compile: bool = False,
    snapshot_every: int | None = None,
) -> Models:
    """Run GEM's Phase I for ``steps`` gradient steps and checkpoint it in ``out_dir``.

    The first steps train the behavior GMM alone: ``min(config.gmm_pretrain_steps, steps // 4)``
    of them on a fresh run (:func:`plan_run`; a resumed run keeps its checkpoint's). The rest
    update critic ensemble, value, behavior (unless frozen), actor and baseline together. Every
    ``save_every`` steps and at the end, ``out_dir`` receives an atomic checkpoint (see
    :mod:`gemkit.train.checkpoint`) that ``gemkit.models.load_models(out_dir)`` reads and from
    which ``resume=True`` continues bit-for-bit. ``metrics.csv`` gets one row per ``log_every``
    steps (TensorBoard event files too, if ``tensorboard`` is importable and enabled).

    Ctrl-C (SIGINT, when called from the main thread) stops the run at the next step boundary,
    saves a checkpoint at that step and raises :class:`TrainingInterrupted`; a second Ctrl-C
    stops at once, without saving.

    Args:
        transitions: the dataset.
        config: hyperparameters (on resume, must equal the checkpoint's except ``device``).
        out_dir: checkpoint directory (created if needed).
        steps: total gradient steps of the run, pretraining included (on resume, the step to
            reach, counted from zero).
        save_every: checkpoint period in steps.
        log_every: report period in steps (metrics row and ``progress`` call).
        resume: continue from the checkpoint in ``out_dir``.
        overwrite: start afresh even if ``out_dir`` already holds a checkpoint.
        dataset_id: recorded in the models' metadata (default:
            ``transitions.meta["dataset_id"]``).
        progress: called with a :class:`TrainProgress` at every report.
        tensorboard: also write TensorBoard scalars when tensorboard is installed.
        compile: run the loss computation (forward and backward) through ``torch.compile``
            (same maths; falls back to eager with a warning where it cannot compile).
        snapshot_every: also export the models every this many steps to
            ``out_dir/snapshots/step_<step>`` (for learning curves; weights only).

    Returns:
        The trained :class:`~gemkit.models.Models` (actor, behavior, critic, value, meta).

    Raises:
        CheckpointError: ``resume`` without a usable checkpoint, or one from another run, or
            one whose pretraining lasts past ``steps``; a fresh run into a directory that
            holds a checkpoint (without ``overwrite``).
        TrainingInterrupted: Ctrl-C; the checkpoint in ``out_dir`` is at the step it names.
    """
    from gemkit.models.io import save_models
    from gemkit.train.checkpoint import load_trainer_state, save_checkpoint

    if steps < 0 or save_every < 1 or log_every < 1:
        raise ValueError("steps must be >= 0 and save_every, log_every >= 1.")
    out = Path(out_dir)
    check_output_dir(out, resume=resume, overwrite=overwrite)
    if snapshot_every is not None and snapshot_every < 1:
        raise ValueError("snapshot_every must be >= 1.")
    if resume:
        trainer = Trainer(transitions, config, dataset_id=dataset_id, compile=compile)
        load_trainer_state(out, trainer)
        plan_run(config, steps, start=trainer.step, pretrain=trainer.pretrain_steps)
    else:
        plan = plan_run(config, steps)
        trainer = Trainer(
            transitions, config, dataset_id=dataset_id, pretrain_steps=plan.pretrain,
            compile=compile,
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    log = _MetricsLog(out / "metrics.csv", trainer.step if resume else None, tensorboard)
    t_start = time.perf_counter()
    saved_at = -1

    def save() -> None:
        nonlocal saved_at
        save_checkpoint(out, trainer)
        saved_at = trainer.step

    try:
        with _ctrl_c_flag() as stop:
            if trainer.step == 0 and not resume:
                save()
            for end in _windows(trainer.step, steps, log_every):
                sums: dict[str, Tensor] = {}
                counts: dict[str, int] = {}
                t0 = time.perf_counter()
                n0 = trainer.step
                while trainer.step < end and not stop[0]:
                    stats = trainer.train_step()
                    for k, v in stats.items():
                        sums[k] = sums[k] + v if k in sums else v.clone()
                        counts[k] = counts.get(k, 0) + 1
                    if trainer.step % save_every == 0 and trainer.step != steps:
                        save()
                    if snapshot_every is not None and trainer.step % snapshot_every == 0:
                        save_models(
                            out / "snapshots" / f"step_{trainer.step:08d}", trainer.models()
                        )
                if trainer.step == n0:  # stopped before this window's first step
                    break
                metrics = {
                    k: float(sums[k]) / counts[k] if k in sums else float("nan") for k in LOSS_NAMES
                }
                dt = time.perf_counter() - t0
                report = TrainProgress(
                    step=trainer.step,
                    total=steps,
                    metrics=metrics,
                    steps_per_s=(trainer.step - n0) / dt if dt > 0 else float("inf"),
                    phase="pretrain" if trainer.step <= trainer.pretrain_steps else "joint",
                )
                if trainer.step == steps:
                    save()
                log.write(report, time.perf_counter() - t_start)
                if progress is not None:
                    try:
                        progress(report)
                    except KeyboardInterrupt:  # raised between two steps: a clean stop
                        stop[0] = True
                if stop[0]:
                    break
            if stop[0] and trainer.step < steps:
                if saved_at != trainer.step:
                    save()
                raise TrainingInterrupted(trainer.step, steps, out)
        if trainer.step == steps and not (out / "trainer_state.safetensors").is_file():
            save()
    finally:
        log.close()
    for net in trainer.networks().values():
        net.eval()
    return trainer.models()

"""An adaptive candidate budget: more candidates only for the states whose decision is unclear.

GEM's budget knob is one global ``N``. :class:`AdaptiveSelector` starts every state with
``n0`` candidates and re-proposes a ``growth``-times larger set, up to ``n_max``, only for the
states whose decision is not settled yet. Two cues, both measured against the critic
ensemble's disagreement at the top-1 candidate (its std over members, the critic's own
uncertainty there):

- ``lead``: settled when the top-1 score leads the runner-up by more than ``kappa`` times the
  disagreement (the choice is clear);
- ``gain``: settled when the last growth raised the best score by at most ``kappa`` times the
  disagreement (more candidates stopped paying); the first round always grows.

Settled states drop out of the batch, so their work stops there.

Every round draws from the same generator state, so a budget that always grows (``kappa =
inf``) selects exactly what the fixed ``N = n_max`` selector selects, and one that never grows
(``n_max = n0``) exactly what ``N = n0`` selects; the generator is left where the largest round
left it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import attrs
import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.scorers.values import ensemble_q
from gemkit.selection import Selection
from gemkit.selector import Selector

__all__ = ["AdaptiveBudget", "AdaptiveSelector", "settled"]


def _positive(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise GemkitError(f"{attr.name} must be >= 1, got {value}.")


@attrs.frozen
class AdaptiveBudget:
    """The knobs of the adaptive budget.

    Attributes:
        n0: sampled candidates of the first round.
        n_max: the most sampled candidates a state may get.
        growth: each round multiplies the previous round's ``N`` by this (>= 2).
        kappa: the threshold, in units of the ensemble std at the top-1 candidate. With
            ``lead``, ``inf`` always grows to ``n_max`` and ``-inf`` never grows.
        cue: ``lead`` (settled when ``score[top1] - score[top2] > kappa * std``) or ``gain``
            (settled when ``best_r - best_{r-1} <= kappa * std``).
    """

    n0: int = attrs.field(default=16, validator=_positive)
    n_max: int = attrs.field(default=1024, validator=_positive)
    growth: int = attrs.field(default=4)
    kappa: float = 1.0
    cue: str = "lead"

    def __attrs_post_init__(self) -> None:
        if self.cue not in ("lead", "gain"):
            raise GemkitError(f"cue must be lead or gain, got {self.cue!r}.")
        if self.n_max < self.n0:
            raise GemkitError(f"n_max ({self.n_max}) must be >= n0 ({self.n0}).")
        if self.growth < 2:
            raise GemkitError(f"growth must be >= 2, got {self.growth}.")
        if math.isnan(self.kappa):
            raise GemkitError("kappa must be a number (inf: always grow).")

    def wrap(self, selector: Selector) -> AdaptiveSelector:
        """``selector`` with this budget (what ``compose(..., budget=self)`` returns)."""
        return AdaptiveSelector(selector, self)

    def rounds(self) -> list[int]:
        """The ``N`` of each round: ``n0, n0 * growth, ...``, the last one ``n_max``."""
        out = [self.n0]
        while out[-1] < self.n_max:
            out.append(min(out[-1] * self.growth, self.n_max))
        return out


def top1_disagreement(selector: Selector, states: Tensor, sel: Selection) -> Tensor:
    """``[B]`` the critic ensemble's std (population) at each state's top-1 candidate, in the
    units of the value term: divided by the per-state scale a z-scored value (``lcb_z``) used
    in that selection (:attr:`~gemkit.selection.Selection.value_scale`).

    Zeros when the value term has no critic ensemble to ask (a custom value).
    """
    critic = getattr(selector.value, "critic", None)
    if critic is None:
        return torch.zeros(states.shape[0], device=states.device)
    kind = selector.observation["value"]
    s = selector.views(states)[kind]
    q = ensemble_q(critic, s, sel.top1.unsqueeze(1))  # [E, B, 1]
    std = q.std(0, unbiased=False).squeeze(-1)
    if sel.value_scale is not None:
        std = std / sel.value_scale  # the scale this selection's value term divided by
    return std


def settled(sel: Selection, disagreement: Tensor, kappa: float) -> Tensor:
    """``[B]`` bool: the top-1 score leads the runner-up by more than ``kappa * disagreement``.

    A state with a single candidate is settled.
    """
    if sel.score.shape[1] < 2:
        return torch.ones(sel.score.shape[0], dtype=torch.bool, device=sel.score.device)
    top2 = sel.score.topk(2, dim=1).values
    if math.isinf(kappa):  # inf * 0 would be NaN: infinite kappa means always / never settled
        return torch.full_like(top2[:, 0], kappa < 0, dtype=torch.bool)
    return (top2[:, 0] - top2[:, 1]) > kappa * disagreement


class AdaptiveSelector(Selector):
    """A :class:`~gemkit.selector.Selector` whose ``N`` grows per state (:class:`AdaptiveBudget`).

    Built by ``compose(..., budget=AdaptiveBudget(...))`` (or from a selector); everything but
    :meth:`select` (components, knobs, ``describe``, ``__call__``) is the wrapped selector's.

    :meth:`select` returns a :class:`~gemkit.selection.Selection` whose per-candidate fields are
    padded to the largest set used (candidates NaN, scores ``-inf``), with ``n_used [B]`` (the
    ``N`` of each state's final round) and ``critic_evals [B]`` (candidates scored over all its
    rounds, the compute it cost).
    """

    def __init__(self, selector: Selector, budget: AdaptiveBudget) -> None:
        super().__init__(
            selector.proposer, selector.value, selector.support, selector.reducer,
            selector.config, state_dim=selector.state_dim, action_dim=selector.action_dim,
            obs_mean=selector.obs_mean, obs_std=selector.obs_std, precision=selector.precision,
        )  # fmt: skip
        self.generator = selector.generator  # the same generator: seeded draws go on from it
        self.selector = selector
        self.budget = budget
        self._round_selectors = [self._with_n(n) for n in budget.rounds()]

    def _with_n(self, n: int) -> Selector:
        s = copy.copy(self.selector)
        s.config = self.selector.config.evolve(n=n)
        return s

    @torch.no_grad()
    def select(
        self,
        states: Tensor | Any,
        generator: torch.Generator | None = None,
        t: Tensor | int = 0,
    ) -> Selection:
        """Select one action per state, growing the candidate set where the decision is unclear."""
        base = self.selector
        raw = base.prepare(states)
        b = raw.shape[0]
        gen = base.generator if generator is None else generator
        start = gen.get_state()
        t_all = torch.as_tensor(t, device=raw.device).expand(b)
        active = torch.arange(b, device=raw.device)
        finals: dict[int, tuple[Tensor, Selection]] = {}
        evals = torch.zeros(b, device=raw.device)
        n_used = torch.zeros(b, dtype=torch.long, device=raw.device)
        end_state = start
        prev_best = torch.full((b,), float("-inf"), device=raw.device)
        rounds = self._round_selectors
        for r, sel_r in enumerate(rounds):
            gen.set_state(start)
            out = sel_r.select(raw[active], generator=gen, t=t_all[active])
            end_state = gen.get_state()
            evals[active] += out.score.shape[1]
            n_used[active] = sel_r.config.n
            if r == len(rounds) - 1:
                done = torch.ones(active.numel(), dtype=torch.bool, device=raw.device)
            else:
                unc = top1_disagreement(base, raw[active], out)
                evals[active] += 1  # the disagreement probe: one more critic call per state
                if self.budget.cue == "lead":
                    done = settled(out, unc, self.budget.kappa)
                else:  # gain: the first round has no previous best (-inf) and grows
                    best = out.score.max(dim=1).values
                    done = (best - prev_best[active]) <= self.budget.kappa * unc
                    prev_best[active] = best
            if bool(done.any()):
                finals[r] = (active[done], _rows(out, done))
            active = active[~done]
            if active.numel() == 0:
                break
        gen.set_state(end_state)
        return _merge(finals, b, n_used, evals)

    def describe(self) -> list[tuple[str, str, str]]:
        """The wrapped selector's rows, its ``n`` replaced by the adaptive budget."""
        b = self.budget
        rounds = " -> ".join(str(n) for n in b.rounds())
        row = ("budget", "adaptive", f"N = {rounds} while top-1 lead <= {b.kappa:g} x ensemble "
               "std at top-1")  # fmt: skip
        return [row if part == "n" else (part, name, detail)
                for part, name, detail in self.selector.describe()]  # fmt: skip


def _rows(sel: Selection, mask: Tensor) -> Selection:
    fields = {f.name: _take(getattr(sel, f.name), mask) for f in attrs.fields(Selection)}
    return Selection(**fields)  # type: ignore[arg-type]


def _take(x: Tensor | None, mask: Tensor) -> Tensor | None:
    return None if x is None else x[mask]


def _merge(
    finals: dict[int, tuple[Tensor, Selection]], b: int, n_used: Tensor, evals: Tensor
) -> Selection:
    """One :class:`Selection` for all states from the rounds where each one settled."""
    m = max(s.score.shape[1] for _, s in finals.values())
    first = next(iter(finals.values()))[1]
    out: dict[str, Tensor | None] = {}
    for f in attrs.fields(Selection):
        ref = getattr(first, f.name)
        if ref is None:
            out[f.name] = None
            continue
        per_candidate = ref.dim() >= 2 and f.name != "action"
        shape = (b, m, *ref.shape[2:]) if per_candidate else (b, *ref.shape[1:])
        fill = float("-inf") if f.name == "score" else float("nan")
        buf = (torch.full(shape, fill, dtype=ref.dtype, device=ref.device)
               if ref.is_floating_point() else torch.zeros(shape, dtype=ref.dtype,
                                                          device=ref.device))  # fmt: skip
        for rows, sel in finals.values():
            val = getattr(sel, f.name)
            if per_candidate:
                buf[rows, : val.shape[1]] = val
            else:
                buf[rows] = val
        out[f.name] = buf
    out["n_used"] = n_used
    out["critic_evals"] = evals
    return Selection(**out)  # type: ignore[arg-type]

"""Screening: cheap statistics of every checkpoint, and the segments where training changes regime.

Random sampling catches a fake in proportion to the segments it fakes. A fake of *one*
segment that moves the state into a regime from which the rest is cheap to produce (every
tensor NaN, all-zero weights, a replaced final model) saves nearly all the work and is
sampled rarely. Screening finds such segments from statistics that cost a forward pass per
checkpoint, not a replay, and the verifier replays them besides its sample; whistleblowers
screen every proof the same way.

Statistics of checkpoint ``i``: ``finite`` (every tensor finite), the parameter norm
``‖p_i‖₂``, and the probe loss ``L_i``: the task's loss on its probe batch (the first batch
of the seed's data order), a native float32 forward pass. Of segment ``i`` (checkpoint ``i``
to ``i + 1``): the update ``u_i = ‖p_{i+1} − p_i‖₂`` and the learning rate it ran at,
``λ_i = Σ`` of the schedule's rate over its ``k`` steps (so a schedule's drops are no
anomaly), giving the rate-normalized update ``ν_i = u_i / λ_i``.

**The rule.** Segment ``i`` is flagged when

1. *non-finite*: checkpoint ``i`` is finite (tensors and probe loss) and ``i + 1`` is not;
2. *frozen*: ``u_i = 0`` although ``λ_i > 0`` (nothing moved; a copied state, or a fixed
   point such as all-zero weights);
3. *jump or collapse*: ``|ln(ν_i / ν̃_i)| ≥ ln 8``, where ``ν̃_i`` is the median of ``ν_j``
   over the four segments before ``i``, so that a trajectory's slow drift is no anomaly and
   a lasting change of level is flagged where it starts;
4. *norm shift*: ``|ln(‖p_{i+1}‖ / ‖p_i‖)| ≥ ln 4``;
5. *loss shift*: the probe loss moves to a new level: the gap between the range of
   ``L_{i−1}, L_i`` and the range of ``L_{i+1}, L_{i+2}`` (those that exist; zero where
   the ranges overlap) is ``≥ 8 · m_i``, where ``m_i`` is the median of ``|L_{j+1} − L_j|``
   over the eight segments before ``i`` (at least two of them, and positive).

Rules 3 and 5 compare a segment with those before it, so segment 0, which has none and is
in every sample (``agents.learning.selection``), is judged by rules 1, 2 and 4 only: the
first descent of the loss and a warm-up are no anomaly; nor is segment 1's loss change
measured against segment 0's alone (a warm-up can hold the first descent back to segment
1). Rule 5 reads two checkpoints on each side, and eight segments before, because the
probe loss of one batch is noisy: in honest training it jumps at one checkpoint and falls
back at the next now and then (of a 200-segment proof of a 64-256-256-10 MLP, at
checkpoints 18 and 142), and four changes before a segment can happen to be a hundred
times smaller than the typical one. A regime
a fake moves into lasts, so it shows on both checkpoints after the fake; a loss that
leaves its level for one checkpoint and comes back moved into no regime (two segments
faked, which sampling covers).

Flags are ranked: non-finite first, then frozen, then by how far past its limit the largest
ratio is; a verifier replays the first ``limit`` of them that are not in its sample
(``DEFAULT_LIMIT``). A solver avoids every flag only by making each segment look like its
neighbours in movement, norm and loss, which is what honest training of the task produces;
a fake that does so still does not save the work, and random sampling covers the rest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from statistics import median

import numpy as np
import torch

from agents.learning.distance import norm_of_difference
from agents.learning.layout import PARAM_PREFIX, State
from agents.learning.models import build_model, loss_value
from agents.learning.schedule import LearningRate
from agents.learning.task import Task

DEFAULT_LIMIT = 4
"""Flagged segments a verifier replays besides its sample."""
UPDATE_RATIO = 8.0
NORM_RATIO = 4.0
LOSS_RATIO = 8.0
NEIGHBOURHOOD = 4
"""Segments before a segment whose rate-normalized updates give its typical update."""
LOSS_NEIGHBOURHOOD = 8
"""Segments before a segment whose probe-loss changes give its typical change."""


@dataclass(frozen=True)
class CheckpointStatistics:
    """What screening reads of one checkpoint."""

    finite: bool
    param_norm: float
    probe_loss: float

    @property
    def healthy(self) -> bool:
        """Every tensor and the probe loss finite."""
        return self.finite and math.isfinite(self.probe_loss)


@dataclass(frozen=True)
class ScreeningFlag:
    """A segment the rule flags, why, and its rank key (tier, then score, higher first)."""

    segment: int
    reason: str
    tier: int  # 0 non-finite, 1 frozen, 2 a ratio past its limit
    score: float  # for tier 2: the largest ratio over its limit (≥ 1)


def probe_batch(task: Task) -> np.ndarray:
    """The probe batch: the sample indices of the first step of the seed's data order."""
    first: np.ndarray = task.batches(0, 1)[0]
    return first


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch on the calling thread alone (restored afterwards): a probe batch is too small
    to share, and torch's OpenMP threads, woken in a process whose exact kernels have run
    their own pool, took 30 times as long for it (6.7 s instead of 0.2 s for the 201
    checkpoints of a 64-256-256-10 MLP)."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Prober:
    """Computes checkpoint statistics for one task (the model is built once); its forward
    passes run on the calling thread only."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self._model = build_model(task.spec)
        index = torch.from_numpy(np.array(probe_batch(task), dtype=np.int64))
        inputs = torch.from_numpy(np.array(task.inputs))
        if task.targets is None:
            context = task.context
            windows = torch.stack([inputs[i : i + context + 1] for i in index.tolist()])
            self._x, self._y = windows[:, :-1], windows[:, 1:]
        else:
            self._x = inputs[index]
            self._y = torch.from_numpy(np.array(task.targets))[index]

    def statistics(self, state: State) -> CheckpointStatistics:
        """The statistics of checkpoint ``state``."""
        finite = all(bool(np.isfinite(t).all()) for t in state.values())
        names = [n for n in state if n.startswith(PARAM_PREFIX)]
        squares = sum(float(np.sum(np.square(state[n], dtype=np.float64))) for n in names)
        norm = math.sqrt(squares) if math.isfinite(squares) else math.inf
        params = dict(self._model.named_parameters())
        with torch.no_grad(), _one_torch_thread():
            for path, param in params.items():
                param.copy_(torch.from_numpy(np.array(state[PARAM_PREFIX + path])))
            loss = float(loss_value(self._task.spec, self._model(self._x), self._y))
        return CheckpointStatistics(finite, norm, loss)


def segment_rates(task: Task) -> list[float]:
    """``λ_i``: the sum of the schedule's rates over each segment's steps (in step order, in
    binary64; the rates of all steps prepared at once, the schedule's own values)."""
    rate = LearningRate(task.spec)
    k = task.spec.checkpoint_interval
    rate.prepare(0, task.spec.steps)
    return [
        sum(float(rate(t)) for t in range(i * k, (i + 1) * k))
        for i in range(task.spec.segment_count)
    ]


def updates(states: Sequence[State]) -> list[float]:
    """``u_i = ‖p_{i+1} − p_i‖₂`` for consecutive checkpoints."""
    names = [n for n in states[0] if n.startswith(PARAM_PREFIX)]
    return [norm_of_difference(b, a, names, "l2") for a, b in itertools.pairwise(states)]


def _before(values: Sequence[float], i: int, count: int) -> list[float]:
    """The finite values of the ``count`` segments before ``i``."""
    return [values[j] for j in range(max(0, i - count), i) if math.isfinite(values[j])]


def _level_gap(losses: Sequence[float], i: int) -> float:
    """How far the probe loss moved across segment ``i``: the gap between the range of the
    finite ``L_{i−1}, L_i`` and that of the finite ``L_{i+1}, L_{i+2}`` (0 where they
    overlap); ``L_i`` and ``L_{i+1}`` are finite."""
    before = [v for v in losses[max(0, i - 1) : i + 1] if math.isfinite(v)]
    after = [v for v in losses[i + 1 : i + 3] if math.isfinite(v)]
    return max(0.0, min(after) - max(before), min(before) - max(after))


def _log_ratio(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return math.inf if a != b else 0.0
    return abs(math.log(a / b))


def screen(
    stats: Sequence[CheckpointStatistics],
    update_norms: Sequence[float],
    rates: Sequence[float],
) -> list[ScreeningFlag]:
    """Every segment the rule flags (see the module docstring), ranked."""
    segments = len(update_norms)
    if len(stats) != segments + 1 or len(rates) != segments:
        raise ValueError("screening needs S + 1 checkpoints, S updates and S rates")
    normalized = [u / r if r > 0 else math.inf for u, r in zip(update_norms, rates, strict=True)]
    losses = [s.probe_loss for s in stats]
    changes = [
        abs(losses[i + 1] - losses[i]) if math.isfinite(losses[i + 1] - losses[i]) else math.inf
        for i in range(segments)
    ]
    flags: list[ScreeningFlag] = []
    for i in range(segments):
        before, after = stats[i], stats[i + 1]
        if before.healthy and not after.healthy:
            flags.append(ScreeningFlag(i, "turns non-finite", 0, math.inf))
            continue
        if not (before.healthy and after.healthy):
            continue  # already non-finite: the segment that turned it is flagged
        if update_norms[i] == 0 and rates[i] > 0:
            flags.append(ScreeningFlag(i, "frozen: the parameters did not move", 1, math.inf))
            continue
        ratios = [(_log_ratio(after.param_norm, before.param_norm) / math.log(NORM_RATIO), "norm")]
        if i > 0:
            around = _before(normalized, i, NEIGHBOURHOOD)
            if around:
                ratios.append(
                    (_log_ratio(normalized[i], median(around)) / math.log(UPDATE_RATIO), "update")
                )
            typical = _before(changes, i, LOSS_NEIGHBOURHOOD)
            if len(typical) >= 2 and median(typical) > 0:
                gap = _level_gap(losses, i)
                ratios.append((gap / (LOSS_RATIO * median(typical)), "probe loss"))
        score, what = max(ratios)
        if score >= 1:
            flags.append(ScreeningFlag(i, f"{what} out of line with its neighbours", 2, score))
    return sorted(flags, key=lambda f: (f.tier, -f.score, f.segment))


def screen_states(
    task: Task, states: Sequence[State], norms: Sequence[float] | None = None
) -> list[ScreeningFlag]:
    """Screen a proof's checkpoints (``S + 1`` states); ``norms``: their ``updates``, where
    the caller has them already."""
    prober = Prober(task)
    if norms is None:
        norms = updates(states)
    return screen([prober.statistics(s) for s in states], norms, segment_rates(task))


def extra_segments(
    flags: Sequence[ScreeningFlag], exclude: Sequence[int], limit: int = DEFAULT_LIMIT
) -> list[int]:
    """The first ``limit`` flagged segments not in ``exclude``, in increasing order."""
    skip = set(exclude)
    chosen = [f.segment for f in flags if f.segment not in skip][:limit]
    return sorted(chosen)

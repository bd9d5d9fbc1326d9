"""The profiler: its budget, its drift model, the τ it proposes and the bound it states."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agents.learning.backends import get_backend
from agents.learning.backends.base import Backend, Session
from agents.learning.distance import group_distances, segment_distance
from agents.learning.drift import (
    EXCEED_TARGET,
    SPREAD_FLOOR,
    DriftModel,
    fit_model,
    rejection_probability,
)
from agents.learning.layout import State
from agents.learning.profiler import MIN_WINDOW, growth_allowance, profile, window_length
from agents.learning.proof import ProofDirectory
from agents.learning.task import Task, open_task
from tests.learning.conftest import real_spec


def _task(tmp_path: Path, **overrides: object) -> Task:
    spec = real_spec(**overrides)
    return open_task(spec, ProofDirectory(tmp_path / "data", create=True))


@pytest.mark.parametrize(
    ("segments", "variants", "budget", "window"),
    [
        (200, 3, 0.1, 9),  # (20 − 2) / 2 segments of work per window segment
        (200, 1, 0.1, 10),
        (1000, 3, 0.1, 49),
        (200, 3, 0.5, 49),
        (30, 3, 0.1, MIN_WINDOW),  # too few segments for the budget: the minimum
        (3, 3, 0.1, 3),  # never more than the task has
    ],
)
def test_window_fits_the_budget(
    tmp_path: Path, segments: int, variants: int, budget: float, window: int
) -> None:
    task = _task(tmp_path, steps=2 * segments, checkpoint_interval=2, batch_size=8)
    assert window_length(task, variants, budget) == window


@pytest.mark.parametrize(
    ("schedule", "growth"),
    [
        ({"kind": "constant", "lr": 0.01}, 1.0),
        # Two halvings after the window: the last segments run at a quarter of its rate.
        ({"kind": "step", "lr": 0.1, "gamma": 0.5, "every": 400}, 4.0),
        # Linear decay to a tenth: the last segment's mean rate is just above lr / 10.
        ({"kind": "linear", "lr": 0.1, "warmup": 0, "final": 0.1}, 9.27),
    ],
)
def test_growth_allowance_follows_the_schedule(
    tmp_path: Path, schedule: dict[str, object], growth: float
) -> None:
    task = _task(tmp_path, steps=1200, checkpoint_interval=20, schedule=schedule)
    assert growth_allowance(task, 5) == pytest.approx(growth, rel=0.01)


def test_a_schedule_that_decays_to_zero_allows_unbounded_growth(tmp_path: Path) -> None:
    task = _task(
        tmp_path,
        steps=40,
        checkpoint_interval=1,
        schedule={"kind": "linear", "lr": 0.1, "final": 0.0},
        verification={"segments": 3, "tau": 0.01},
    )
    # The last step's rate is lr / 40, not 0: growth is large but finite.
    assert growth_allowance(task, 4) == pytest.approx(40, rel=0.01)


def test_model_bound_and_exceed_probability_agree() -> None:
    model = DriftModel(samples=9, log_mean=math.log(1e-6), log_spread=1.3, growth=4.0)
    for target in (1e-2, 1e-6, 1e-9):
        tau = model.bound(target)
        assert model.exceed_probability(tau) == pytest.approx(target, rel=1e-6)
        assert model.exceed_probability(2 * tau) < target < model.exceed_probability(tau / 2)


def test_model_reads_back_and_counts_segments_of_a_verification() -> None:
    model = DriftModel(samples=5, log_mean=-11.0, log_spread=1.0, growth=float("inf"))
    assert DriftModel.from_json(model.to_json()) == model
    assert model.exceed_probability(1.0) == 1.0  # unbounded growth: no τ is safe
    assert rejection_probability(0.0, 5) == 0.0 and rejection_probability(1.0, 5) == 1.0
    assert rejection_probability(1e-6, 5) == pytest.approx(5e-6, rel=1e-5)


def test_fit_takes_the_spread_floor_and_ignores_exact_zeros() -> None:
    flat = fit_model([2e-6, 2e-6, 2e-6, 0.0], growth=1.0)
    assert flat is not None and flat.samples == 3 and flat.log_spread == SPREAD_FLOOR
    assert flat.log_mean == pytest.approx(math.log(2e-6))
    wide = fit_model([1e-8, 1e-4], growth=1.0)
    assert wide is not None and wide.log_spread > SPREAD_FLOOR
    assert fit_model([0.0, 0.0], growth=1.0) is None


def test_profile_measures_within_its_budget_and_covers_the_whole_run(tmp_path: Path) -> None:
    task = _task(
        tmp_path,
        steps=400,
        checkpoint_interval=4,  # S = 100: a window of (10 − 2) / 2 = 4 segments
        model={"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3, "activation": "silu"},
        schedule={"kind": "linear", "lr": 0.01, "warmup": 8, "final": 0.2},
        verification={"segments": 3, "tau": 0.01},
    )
    variants = [
        get_backend("native"),
        get_backend("native", threads=2),
        get_backend("native", microbatches=2),
    ]
    result = profile(task, variants=variants)
    spec = task.spec
    k = spec.checkpoint_interval
    assert result.window == [0, 1, 2, 3]
    assert result.cost_steps == (2 * 4 + 2) * k and result.cost_ratio <= 0.1
    # The main variant on every window segment, the others on the last one.
    assert [(o.who, o.segment) for o in result.drift] == [
        (variants[0].describe(), 0),
        (variants[0].describe(), 1),
        (variants[0].describe(), 2),
        (variants[0].describe(), 3),
        *((v.describe(), 3) for v in variants[1:]),
    ]
    assert all(o.distance > 0 for o in result.drift)
    assert result.model is not None
    assert result.tau >= result.model.growth * result.max_drift
    assert result.exceed_probability <= EXCEED_TARGET * 1.0001
    assert result.exceed_probability_verification == pytest.approx(
        1 - (1 - result.exceed_probability) ** 3
    )
    cheats = {o.who: o.distance for o in result.cheats}
    assert set(cheats) == {"skip", "half_steps", "one_step_short"}
    assert result.cheat_min_distance == min(cheats.values()) > 10 * result.tau
    assert result.warnings == []
    document = result.to_json()
    assert document["exceed_probability"] == result.exceed_probability
    assert document["cost_ratio"] == result.cost_ratio and document["window"] == [0, 1, 2, 3]

    # What the profile promises, checked on every segment of a whole honest run: a
    # native solver's checkpoints replayed by the exact kernels stay below τ.
    solver = get_backend("native").start(task, task.initial_state())
    states = [solver.state()]
    for index in range(spec.segment_count):
        solver.run(task.segment_batches(index))
        states.append(solver.state())
    exact = get_backend("exact")
    verification = spec.verification
    for index in range(spec.segment_count):
        replay = exact.start(task, states[index])
        replay.run(task.segment_batches(index))
        grouped = group_distances(
            states[index],
            states[index + 1],
            replay.state(),
            verification.metric,
            verification.epsilon,
        )
        assert segment_distance(grouped) <= result.tau, index


def test_exact_mode_is_not_profiled(tmp_path: Path) -> None:
    task = _task(tmp_path, verification={"segments": 3, "tolerance": "exact"})
    result = profile(task)
    assert result.tau == 0 and result.skipped and result.cost_steps == 0


def test_a_task_too_short_for_its_budget_says_so(tmp_path: Path) -> None:
    task = _task(tmp_path, verification={"segments": 3, "tau": 0.01})  # S = 10
    result = profile(task, variants=[get_backend("native")])
    assert result.window == [0, 1, 2, 3] and result.cost_ratio == pytest.approx(0.8)
    assert any("too few segments" in w for w in result.warnings)


def test_budget_must_be_a_fraction(tmp_path: Path) -> None:
    task = _task(tmp_path)
    for budget in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="budget"):
            profile(task, budget=budget)


def test_fit_leaves_infinite_drift_out_of_the_model() -> None:
    model = fit_model([1e-5, math.inf, 1e-5], growth=1.0)
    assert model is not None and model.samples == 2
    assert model.log_mean == pytest.approx(math.log(1e-5)) and model.log_spread == SPREAD_FLOOR
    assert fit_model([math.inf, 0.0], growth=1.0) is None


class _Overflowing(Backend):
    """Native training whose state overflows to +inf once it has run ``after`` steps: an
    honest divergence the exact replay does not share."""

    name = "overflowing"

    def __init__(self, after: int) -> None:
        self.inner, self.after = get_backend("native"), after

    def start(self, task: Task, state: State, *, trace: bool = False) -> Session:
        inner, after = self.inner.start(task, state), self.after

        class _Session(Session):
            def run(self, batches: np.ndarray, on_step: object = None) -> None:
                inner.run(batches)

            def state(self) -> State:
                state = inner.state()
                if float(state["step"].reshape(-1)[0]) < after:
                    return state
                return {n: v if n == "step" else np.full_like(v, np.inf) for n, v in state.items()}

        return _Session()


def test_a_divergence_one_side_only_is_infinite_drift_and_says_so(tmp_path: Path) -> None:
    task = _task(tmp_path, verification={"segments": 3, "tau": 0.01})  # S = 10, k = 4
    k = task.spec.checkpoint_interval
    result = profile(task, variants=[_Overflowing(after=3 * k)])
    assert [o.distance for o in result.drift][:2] == pytest.approx([0.0, 0.0], abs=1e-3)
    assert result.drift[-1].distance == math.inf and result.max_drift == math.inf
    # τ covers the finite drift only, and the warning names the divergence.
    assert result.model is not None and math.isfinite(result.tau)
    assert any("diverged" in w for w in result.warnings)

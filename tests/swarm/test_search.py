"""The searches: valid plans, never worse than random sampling, deterministic under a seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.swarm.cost import check_plan, plan_cost
from agents.swarm.descent import RANDOM_STARTS
from agents.swarm.errors import SwarmError
from agents.swarm.network import load_network
from agents.swarm.schedule import schedule, search
from agents.swarm.workload import load_model, workload_for

from .conftest import EXAMPLES, SCENARIOS, random_weights

# The paper's search at a small size, so that a property test runs in seconds.
SMALL_GA = {"population": 8, "offspring": 24}
shapes = st.sampled_from(
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 2), (2, 3), (4, 2), (2, 4), (3, 3), (4, 4)]
)


def _options(method: str) -> dict[str, int]:
    return SMALL_GA if method == "genetic" else {}


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), shapes, st.sampled_from(["random", "genetic", "descent"]))
def test_every_method_returns_a_valid_plan_with_its_true_cost(
    seed: int, shape: tuple[int, int], method: str
) -> None:
    w = random_weights(seed, *shape, symmetric=bool(seed % 3))
    result = search(w, method, seed, **_options(method))
    plan = check_plan(w, result.pipelines)
    assert result.cost == plan_cost(w, plan)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), shapes)
def test_searches_never_lose_to_the_random_plans_they_start_from(
    seed: int, shape: tuple[int, int]
) -> None:
    # A search re-arranges the partitions of its random starts optimally; the cost
    # of the same or an equally good plan, summed in another order, may differ
    # from the sampled plan's in the last bit (seed 57463, shape (2, 4): 1 ulp).
    w = random_weights(seed, *shape, symmetric=bool(seed % 2))
    starts = {"genetic": SMALL_GA["population"], "descent": RANDOM_STARTS}
    for method, samples in starts.items():
        floor = search(w, "random", seed, samples=samples).cost.total
        found = search(w, method, seed, **_options(method)).cost.total
        assert found <= floor * (1 + 1e-12), method


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), shapes)
def test_ours_never_loses_to_a_large_random_sample(seed: int, shape: tuple[int, int]) -> None:
    # The paper's search gives no such promise: at the small size used here its
    # pipeline-minded local search often settles on a partition that a few hundred
    # random plans beat.
    w = random_weights(seed, *shape, symmetric=bool(seed % 2))
    floor = search(w, "random", seed + 1, samples=256).cost.total
    assert search(w, "descent", seed).cost.total <= floor * (1 + 1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), shapes, st.sampled_from(["random", "genetic", "descent"]))
def test_a_seed_fixes_the_plan(seed: int, shape: tuple[int, int], method: str) -> None:
    w = random_weights(seed, *shape)
    first = search(w, method, seed, **_options(method))
    again = search(w, method, seed, **_options(method))
    assert np.array_equal(first.pipelines, again.pipelines)
    assert first.cost == again.cost


def test_seeds_matter_for_random_sampling() -> None:
    w = random_weights(7, 4, 4)
    plans = {search(w, "random", s, samples=1).pipelines.tobytes() for s in range(5)}
    assert len(plans) > 1


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ours_on_the_paper_scenarios(scenario: str) -> None:
    net = load_network(EXAMPLES / f"{scenario}.json")
    wl = workload_for(load_model(EXAMPLES / "gpt3-1.3b.json"), net.size)
    ours = schedule(net, wl, "descent", 0, kicks=0)
    sampled = schedule(net, wl, "random", 0, samples=500)
    assert ours.cost.total < sampled.cost.total


def test_devices_too_small_for_a_stage_are_refused() -> None:
    net = load_network(EXAMPLES / "multiple-datacenters.json")
    model = load_model(EXAMPLES / "gpt3-1.3b.json")
    wl = workload_for(model, net.size, stages=1)  # the whole model on every device
    with pytest.raises(SwarmError, match="cannot hold a stage"):
        schedule(net, wl, "descent")

"""The swarm benchmark's judgement of its own figures (``benchmarks.swarm.pipeline_goals``)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.swarm import BANDWIDTHS, SCENARIOS, pipeline_goals, scheduler_figures


def _run(loss: float, samples_per_s: float = 100.0) -> dict[str, Any]:
    return {"loss": loss, "samples_per_s": samples_per_s}


@pytest.mark.parametrize(
    ("aq", "direct", "noise", "aq_within", "direct_within"),
    [
        (1.01, 1.30, 0.05, True, False),  # the expected outcome
        (1.10, 1.30, 0.05, False, False),  # AQ-SGD too far off
        (0.96, 1.04, 0.05, True, True),  # both close: direct passes too
        (0.90, 1.30, 0.05, False, False),  # far below counts as off as well
        (1.00, 1.00, 0.00, True, True),  # no noise: only equality passes
    ],
)
def test_losses_are_judged_against_the_noise_of_fp32(
    aq: float, direct: float, noise: float, aq_within: bool, direct_within: bool
) -> None:
    figures = {"unshaped": {"fp32": _run(1.0), "aq_2bit": _run(aq), "direct_2bit": _run(direct)}}
    goals = pipeline_goals(figures, noise)
    assert goals["aq_2bit_within_noise"] is aq_within
    assert goals["direct_2bit_within_noise"] is direct_within
    assert goals["aq_2bit_loss_gap"] == pytest.approx(aq - 1.0)
    assert not any(key.startswith("aq_2bit_speedup") for key in goals)  # nothing shaped ran


def test_speedup_is_taken_at_the_slowest_shaped_bandwidth() -> None:
    shaped = {k: v for k, v in BANDWIDTHS.items() if v is not None}
    slowest = min(shaped, key=shaped.__getitem__)
    others = [k for k in shaped if k != slowest]
    figures: dict[str, Any] = {"unshaped": {"fp32": _run(1.0)}}
    for label in others:
        figures[label] = {"fp32": _run(1.0, 50.0), "aq_2bit": _run(1.0, 60.0)}
    figures[slowest] = {
        "fp32": _run(1.0, 10.0),
        "aq_2bit": _run(1.0, 35.0),
        "aq_4bit": _run(1.0, 25.0),
    }
    goals = pipeline_goals(figures, 0.01)
    assert goals[f"aq_2bit_speedup_at_{slowest}"] == pytest.approx(3.5)
    assert goals[f"aq_4bit_speedup_at_{slowest}"] == pytest.approx(2.5)
    assert [k for k in goals if "speedup" in k] == [
        f"aq_2bit_speedup_at_{slowest}",
        f"aq_4bit_speedup_at_{slowest}",
    ]


def test_the_scheduler_figures_have_the_keys_swarm_json_promises() -> None:
    # The paper's search at a toy budget: this checks the figures' shape, not their values.
    figures = scheduler_figures(population=4, offspring=4)
    assert sorted(figures) == sorted(SCENARIOS)
    for scenario, row in figures.items():
        assert {"random", "baseline", "ours", "baseline_search_s", "ours_search_s"} <= set(row)
        assert all(isinstance(v, float) and v >= 0 for v in row.values()), scenario
        # Eight random plans are no match for our search on any of the five.
        assert row["ours"] <= row["random"], scenario
        assert row["search_ratio"] == row["ours_search_s"] / row["baseline_search_s"]

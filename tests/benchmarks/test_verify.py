"""The verify benchmark's figures from interleaved runs, and its check that verdicts agree."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.verify import (
    CHECKS_ALONE,
    CONFIGS,
    PARTS,
    REPLAYS_ALONE,
    WARM_UP,
    Run,
    check_verdicts,
    overlap,
    summarize,
)


def _runs(*walls_and_cpus: tuple[float, float]) -> list[Run]:
    return [Run(wall, cpu, checks_s=wall / 2) for wall, cpu in walls_and_cpus]


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        # One round: every spread is 0 and the baseline's ratio 1.
        (
            {"base": _runs((10.0, 8.0)), "other": _runs((5.0, 12.0))},
            {
                "base": {"wall_s": 10.0, "cpu_s": 8.0, "ratio": 1.0, "cpu_ratio": 1.0},
                "other": {"wall_s": 5.0, "cpu_s": 12.0, "ratio": 0.5, "cpu_ratio": 1.5},
            },
        ),
        # Three rounds, the machine slowing down: the ratios are the rounds' (0.5, 0.5, 0.8),
        # not the medians' (8 / 12).
        (
            {
                "base": _runs((10.0, 8.0), (12.0, 9.0), (20.0, 10.0)),
                "other": _runs((5.0, 8.0), (6.0, 9.0), (16.0, 12.0)),
            },
            {
                "base": {"wall_s": 12.0, "wall_spread_s": 10.0, "cpu_s": 9.0, "cpu_spread_s": 2.0},
                "other": {
                    "wall_s": 6.0,
                    "wall_runs_s": [5.0, 6.0, 16.0],
                    "wall_spread_s": 11.0,
                    "cpu_s": 9.0,
                    "cpu_runs_s": [8.0, 9.0, 12.0],
                    "ratio": 0.5,
                    "ratio_runs": [0.5, 0.5, 0.8],
                    "ratio_spread": 0.3,
                    "cpu_ratio": 1.0,
                    "checks_s": 3.0,
                },
            },
        ),
        # An even count: the medians are the mean of the middle two.
        (
            {
                "base": _runs((4.0, 4.0), (2.0, 2.0), (3.0, 3.0), (1.0, 1.0)),
                "other": _runs((2.0, 6.0), (2.0, 3.0), (1.5, 3.0), (1.0, 1.0)),
            },
            {
                "base": {"wall_s": 2.5, "wall_spread_s": 3.0, "ratio_runs": [1.0] * 4},
                "other": {
                    "wall_s": 1.75,
                    "cpu_s": 3.0,
                    "ratio_runs": [0.5, 1.0, 0.5, 1.0],
                    "ratio": 0.75,
                    "cpu_ratio": 1.25,  # of 1.5, 1.5, 1.0, 1.0
                },
            },
        ),
    ],
)
def test_summary_of_interleaved_runs(
    runs: dict[str, list[Run]], expected: dict[str, dict[str, Any]]
) -> None:
    figures = summarize(runs, "base")
    assert set(figures) == set(runs)
    for name, values in expected.items():
        for key, value in values.items():
            assert figures[name][key] == pytest.approx(value), (name, key)


def test_every_configuration_needs_a_run_in_every_round() -> None:
    with pytest.raises(ValueError, match="every round"):
        summarize({"base": _runs((1.0, 1.0), (1.0, 1.0)), "other": _runs((1.0, 1.0))}, "base")
    with pytest.raises(ValueError, match="every round"):
        summarize({"base": [], "other": []}, "base")


def _verdict(
    trace_root: str | None, replay_root: str = "aa", verdict: str = "pass"
) -> dict[str, Any]:
    segment = {"index": 3, "replay_root": replay_root, "trace_root": trace_root, "pass": True}
    return {"verdict": verdict, "segments": [segment], "selected": [3], "reasons": []}


TRACED = {"one": True, "two": True, "plain": False}


def test_the_same_verdicts_pass() -> None:
    check_verdicts(
        {
            "one": [_verdict("t1"), _verdict("t1")],
            "two": [_verdict("t1")],
            "plain": [_verdict(None), _verdict(None)],
        },
        TRACED,
    )


@pytest.mark.parametrize(
    ("verdicts", "message"),
    [
        # A trace root differs between two traced configurations.
        ({"one": [_verdict("t1")], "two": [_verdict("t2")]}, "two run 0 differs from one"),
        # ... or between two runs of one.
        ({"one": [_verdict("t1"), _verdict("t2")]}, "one run 1 differs"),
        # An untraced run replays to another state root.
        (
            {"one": [_verdict("t1")], "plain": [_verdict(None), _verdict(None, "bb")]},
            "plain run 1 differs from plain",
        ),
        # Traced and untraced runs agree among themselves but not with each other.
        (
            {"one": [_verdict("t1")], "plain": [_verdict(None, verdict="fail")]},
            "one and plain differ beyond their trace roots",
        ),
    ],
)
def test_a_different_verdict_fails_loudly(
    verdicts: dict[str, list[dict[str, Any]]], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message):
        check_verdicts(verdicts, TRACED)


def test_the_configurations_measure_what_the_rule_chooses_between() -> None:
    """The baseline replays on the calling thread, and both sides of ``replays_at_once``'s
    choice on two cores are measured: two traced workers (one replay at a time) and four
    (two at once)."""
    traced = {(c.workers, c.trace) for c in CONFIGS}
    assert {(1, True), (2, True), (4, True)} <= traced
    assert CONFIGS[0].name == "workers_1" and CONFIGS[0].workers == 1
    assert len({c.name for c in CONFIGS}) == len(CONFIGS)
    # The warm-up loads the kernels of a traced and of an untraced replay.
    assert {c.trace for c in CONFIGS if c.name in WARM_UP} == {True, False}


def test_overlap_is_measured_against_the_replays_alone_of_the_same_round() -> None:
    runs = {
        # Round 1 on a slower machine: every run takes longer.
        "workers_2": _runs((5.0, 8.0), (7.0, 9.0), (5.5, 8.0)),
        CHECKS_ALONE: _runs((0.6, 0.6), (0.8, 0.8), (0.6, 0.6)),
        REPLAYS_ALONE: _runs((4.0, 7.0), (6.5, 8.0), (4.0, 7.4)),
    }
    figures = overlap(runs, ["workers_2"], cores=2)
    assert figures == {
        "workers_2": {
            # 1.0, 0.5 and 1.5 added to the same round's replays: the median 1.0, not
            # 5.5 - 4.0 of the medians.
            "added_s": 1.0,
            "added_runs_s": [1.0, 0.5, 1.5],
            # max(4.0, 7.6 / 2), max(6.5, 8.8 / 2), max(4.0, 8.0 / 2): the median 4.0.
            "ideal_s": 4.0,
        }
    }
    # Where the CPU time of both parts is more than the replays' wall time on the cores,
    # the ideal is the CPU time spread over them: the median of 7.6, 8.8 and 8.0.
    assert overlap(runs, ["workers_2"], cores=1)["workers_2"]["ideal_s"] == pytest.approx(8.0)


def test_the_parts_are_timed_besides_the_configurations() -> None:
    assert set(PARTS) == {CHECKS_ALONE, REPLAYS_ALONE}
    assert not set(PARTS) & {c.name for c in CONFIGS}

"""Chain-ready values from local work: binary32 patterns, the distances a report carries,
and what examining a spec finds."""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.learning.spec import load_spec
from agents.roles.situation import PoolParameters
from agents.roles.tasks import TaskView
from agents.roles.work import (
    UNREPLAYABLE,
    Hardware,
    WorkRunner,
    _fit,
    binary32_bits,
    bits_to_float,
    examine_spec,
    warm_up,
)
from agents.store import open_store

TINY = Path(__file__).resolve().parents[1] / "e2e" / "tiny.yaml"
PARAMS = PoolParameters(
    solver_stake_bps=20_000,
    verifier_stake_bps=10_000,
    profiler_stake_bps=5_000,
    segments_to_sample=5,
)


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1.0, 1e-3, 3.4028234663852886e38, 1e-45, 0.1, 123456.789]
)
def test_binary32_bits_round_to_nearest(value: float) -> None:
    expected = int(np.float32(value).view(np.uint32))
    assert binary32_bits(value) == expected
    assert bits_to_float(expected) == float(np.float32(value))


def test_binary32_bits_of_specials() -> None:
    assert binary32_bits(float("inf")) == UNREPLAYABLE
    assert binary32_bits(float("nan")) == 0x7FC00000
    assert binary32_bits(1e39) == UNREPLAYABLE  # overflows binary32
    assert struct.unpack("<f", UNREPLAYABLE.to_bytes(4, "little"))[0] == float("inf")


ONE, TWO, THREE = (binary32_bits(v) for v in (1.0, 2.0, 3.0))


@pytest.mark.parametrize(
    ("distances", "expected", "fitted"),
    [
        ([ONE, TWO, THREE], 3, [ONE, TWO, THREE]),
        ([THREE, ONE, TWO, ONE], 3, [THREE, ONE, TWO]),  # more than the pool takes: worst kept
        ([ONE, TWO, ONE, THREE], 2, [ONE, THREE]),
        ([TWO], 3, [TWO, TWO, TWO]),  # fewer: padded with the worst
        ([], 2, [UNREPLAYABLE, UNREPLAYABLE]),
    ],
)
def test_reports_carry_exactly_the_pools_count_and_keep_the_worst(
    distances: list[int], expected: int, fitted: list[int]
) -> None:
    out = _fit(distances, expected)
    assert out == fitted
    if distances:
        assert max(map(bits_to_float, out)) == max(map(bits_to_float, distances))


def _view(spec_cid: str, spec_hash: str, mode: str = "tolerant") -> TaskView:
    return TaskView(task_id=1, status="Open", mode=mode, spec_cid=spec_cid, spec_hash=spec_hash)


def test_examine_spec(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    spec = load_spec(TINY)
    cid = store.put_bytes(spec.canonical_bytes())
    good_hash = "0x" + spec.spec_hash().hex()
    facts = examine_spec(store, _view(cid, good_hash), PARAMS)
    assert facts.problem is None and facts.segments == 10 and facts.steps == 200
    assert facts.ops > 0 and not facts.exact
    problems = {
        "hash": examine_spec(store, _view(cid, "0x" + "00" * 32), PARAMS).problem,
        "mode": examine_spec(store, _view(cid, good_hash, "exact"), PARAMS).problem,
        "count": examine_spec(
            store, _view(cid, good_hash), PoolParameters(1, 1, 1, segments_to_sample=4)
        ).problem,
        "missing": examine_spec(
            store, _view("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", good_hash), PARAMS
        ).problem,
    }
    assert "does not hash to the spec hash" in str(problems["hash"])
    assert "exact on chain" in str(problems["mode"])
    assert "the pool expects 4 distances" in str(problems["count"])
    assert "unreadable" in str(problems["missing"])


def test_warm_up_runs_the_exact_engine_traced_and_untraced_to_one_state() -> None:
    # A verifier's warm-up replays traced as well; tracing never changes the arithmetic.
    untraced, traced = warm_up(Hardware(device="cpu", threads=1), trace=True)
    assert len(untraced) == 32 and untraced == traced
    assert warm_up(Hardware(device="cpu", threads=1), trace=False) == [untraced]


@pytest.mark.parametrize(
    ("job", "status"),
    [(lambda: {"x": 1}, "done"), (lambda: 1 / 0, "failed")],
    ids=["done", "crashed"],
)
def test_work_runner_calls_back_once_the_state_is_final(job: Any, status: str) -> None:
    # The agent's loop wakes on this callback instead of waiting out its poll interval.
    finished = threading.Event()
    seen: list[str] = []
    runner = WorkRunner(
        on_finished=lambda: (seen.append(runner.states()["k"].status), finished.set())
    )
    runner.start("k", job)
    assert finished.wait(10.0)
    assert seen == [status]
    assert runner.running() == []

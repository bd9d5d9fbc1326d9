"""The round benchmark's figures from paired runs: medians, spread and the fixed costs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.chain.client import ChainClient
from agents.devnet.anvil import Anvil, start_anvil
from agents.roles import intents
from benchmarks.round import (
    REACTIONS,
    WATCH_S,
    BlockWatcher,
    _warm,
    cpu_between,
    cpu_seconds,
    job_cpu,
    sandwiched,
    summarize,
    verification_times,
)


def _result(
    round_s: float, train: float, replay: float, tag: str, profile: float = 0.0
) -> dict[str, Any]:
    return {
        "round_s": round_s,
        "outcome": "Passed",
        "reaction_ms": 50.0,
        "reactions": 3,
        "phases_s": {
            "TaskSubmitted->TaskProfiled": profile,
            "TaskProfiled->TaskClaimed": 0.5,
            "TaskClaimed->ProofCommitted": train,
            "VerificationClaimed->RandomnessDrawn": 0.25,  # the solver's reaction: fixed
            "RandomnessDrawn->VerificationReported": replay,
            "VerificationReported->TaskSettled": 2.25,
            tag: 0.0,
        },
    }


def test_three_pairs() -> None:
    pairs = [
        (60.0, _result(75.0, 66.0, 5.0, "first")),  # overhead 1.25, fixed 4
        (70.0, _result(84.0, 72.0, 6.0, "second")),  # overhead 1.2, fixed 6
        (65.0, _result(85.0, 70.0, 5.0, "third")),  # overhead 85/65 = 1.3077, fixed 10
    ]
    figures = summarize(pairs)
    assert figures["overhead_runs"] == [1.25, 1.2, 1.308]
    assert figures["overhead"] == 1.25
    assert figures["overhead_spread"] == pytest.approx(0.108)
    assert figures["plain_train_s"] == 65.0
    assert figures["plain_train_runs_s"] == [60.0, 70.0, 65.0]
    assert figures["round_s"] == 84.0
    assert figures["round_runs_s"] == [75.0, 84.0, 85.0]
    # Phases and reactions come from the pair of the median overhead (the first).
    assert "first" in figures["phases_s"]
    assert figures["fixed_s"] == 6.0
    # Growing phases over plain training: 71/60, 78/70, 75/65; the median is 75/65.
    assert figures["scaling"] == 1.154
    assert figures["overhead_1h"] == round(75 / 65 + 6 / 3600, 3)


def test_profiling_grows_with_the_task() -> None:
    # Tolerant mode: the profile runs a share of the task's steps.
    figures = summarize([(10.0, _result(20.0, 11.0, 1.0, "tolerant", profile=5.0))])
    assert figures["fixed_s"] == 3.0 and figures["scaling"] == 1.7
    assert figures["overhead_1h"] == round(1.7 + 3 / 3600, 3)


def test_one_pair_and_an_even_count() -> None:
    one = summarize([(10.0, _result(20.0, 12.0, 1.0, "only"))])
    assert one["overhead_runs"] == [2.0] and one["overhead"] == 2.0
    assert one["overhead_spread"] == 0.0
    assert one["fixed_s"] == 7.0 and one["scaling"] == 1.3
    two = summarize(
        [(10.0, _result(20.0, 12.0, 1.0, "slow")), (10.0, _result(15.0, 11.0, 1.0, "fast"))]
    )
    assert two["overhead"] == 1.75 and two["overhead_spread"] == 0.5
    assert "fast" in two["phases_s"]  # the lower middle pair


def test_an_agent_is_warm_once_its_warm_up_ended() -> None:
    started = 'ts=1 level=info logger=agents.roles.agent msg="agent started" role=solver\n'
    assert not _warm(started)
    assert _warm(
        started + 'ts=2 level=info logger=agents.roles.agent msg="engine warm" seconds=4\n'
    )
    assert _warm(started + 'ts=2 level=warning msg="warm-up failed" error="ImportError: x"\n')


def test_cpu_between_blocks() -> None:
    """CPU seconds per process between two blocks, for processes seen at both."""
    cpu = {3: {"solver": 1.0, "anvil": 0.5}, 9: {"solver": 4.25, "anvil": 0.75, "late": 2.0}}
    assert cpu_between(cpu, 3, 9) == {"solver": 3.25, "anvil": 0.25}
    assert cpu_between(cpu, 3, 12) == {}


def test_cpu_seconds_of_this_process_grow() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after > before
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_reactions_name_the_agents_answers() -> None:
    """The intents the reaction time is measured on, as the agents name them (a renamed intent
    would silently drop out of the median)."""
    answers = [
        intents.claim(1),
        intents.claim_verification(1, 0),
        intents.reveal_seed(1),
        intents.reveal_seed(1, 3),
        intents.withdraw([1]),
    ]
    assert all(key.startswith(REACTIONS) for key in answers)
    others = [intents.commit(1), intents.report(1, 0), intents.reveal(1, 0)]
    assert not any(key.startswith(REACTIONS) for key in others)


def test_a_rounds_baseline_is_the_mean_of_the_plain_runs_around_it() -> None:
    """A machine slowing down from 60 to 80 s over the run: each round is set against the plain
    runs on either side of it."""
    results = [_result(75.0, 60.0, 5.0, "a"), _result(84.0, 70.0, 5.0, "b")]
    pairs = sandwiched([60.0, 70.0, 80.0], results)
    assert [plain for plain, _ in pairs] == [65.0, 75.0]
    assert [r for _, r in pairs] == results
    assert summarize(pairs)["overhead_runs"] == [round(75 / 65, 3), round(84 / 75, 3)]
    with pytest.raises(ValueError, match="one plain run"):
        sandwiched([60.0, 70.0], results)


def test_job_cpu_reads_the_last_finished_job_of_a_kind_from_an_agents_log() -> None:
    import logging

    from agents.node.logs import StructuredFormatter

    formatter = StructuredFormatter()

    def line(message: str, **fields: Any) -> str:
        record = logging.LogRecord("agents.roles.agent", logging.INFO, "", 0, message, (), None)
        record.fields = fields
        return formatter.format(record)

    log = "\n".join(
        [
            line("start work", kind="train", task=1, reason="claimed; training"),
            line("work failed", key="train/1", seconds=1.0, cpu=0.5, error="a store failure"),
            line("work done", key="train/1", seconds=70.1, cpu=66.25, error=""),
            line("work done", key="replay/1/0", seconds=5.0, cpu=1.5, error=""),
        ]
    )
    assert job_cpu(log, "train/") == 66.25
    assert job_cpu(log, "replay/") == 1.5
    assert job_cpu(log, "drift/") is None
    assert job_cpu("", "train/") is None


def test_verification_times_come_from_the_verifiers_last_line() -> None:
    import logging

    from agents.node.logs import StructuredFormatter

    formatter = StructuredFormatter()

    def line(message: str, **fields: Any) -> str:
        record = logging.LogRecord("agents.roles.work", logging.INFO, "", 0, message, (), None)
        record.fields = fields
        return formatter.format(record)

    earlier = line("verification times", segments=7, checks_s=9.0, replays_s=9.0, seconds=9.0)
    rejected = line("verification times", segments=0, checks_s=0.25, seconds=0.5)
    last = line("verification times", segments=11, checks_s=1.25, replays_s=9.5, seconds=10.0)
    assert verification_times("\n".join([earlier, line("work done", key="replay/1/0"), last])) == {
        "replayed_segments": 11,
        "replay_split_s": {"checks": 1.25, "replays": 9.5, "verification": 10.0},
    }
    assert verification_times(rejected) == {
        "replayed_segments": 0,
        "replay_split_s": {"checks": 0.25, "verification": 0.5},
    }
    assert verification_times(line("engine warm", seconds=1.0)) == {}


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.chain
def test_the_block_watcher_sees_each_block_with_the_cpu_used_by_then(anvil: Anvil) -> None:
    watcher = BlockWatcher(anvil.url, {"bench": os.getpid()})
    try:
        client = ChainClient(anvil.url)
        _until(lambda: watcher.head == 0)
        for _ in range(3):
            client.rpc.request("evm_mine")
        _until(lambda: watcher.head == 3)
    finally:
        watcher.stop()
    assert sorted(watcher.seen) == [0, 1, 2, 3]
    assert all(set(watcher.cpu[n]) == {"bench"} for n in range(4))
    times = [watcher.seen[n] for n in range(4)]
    assert times == sorted(times) and times[-1] <= time.time()


@pytest.mark.chain
def test_the_block_watcher_waits_out_a_node_that_does_not_answer(tmp_path: Path) -> None:
    anvil = start_anvil(log_path=tmp_path / "anvil.log")
    watcher = BlockWatcher(anvil.url)
    try:
        _until(lambda: watcher.head == 0)
        anvil.stop()
        assert watcher.block_number() is None
        time.sleep(3 * WATCH_S)
        assert watcher.head == 0 and sorted(watcher.seen) == [0]
    finally:
        watcher.stop()

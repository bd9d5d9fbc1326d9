"""The audit's pure rules: the settlement table, the verdict rule and the task record, as
tables and in bulk: the settlement as the audit reads it (``agents.rules``, which the scripts'
reference model re-exports and the contract tests hold to the chain) against the table written
out independently (tests/audit/outcomes.py), the record against the scripts' version."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.audit.payouts import Marks, expected_payouts, outcome_of_verdict, verdict_of
from agents.audit.record import record_of
from agents.exact.float32 import to_bits
from agents.rules import FOLDED_EVENTS, FOLDED_PARTIES
from scripts import protocol
from tests.audit.outcomes import OUTCOMES, bps, written_out

REPO_ROOT = Path(__file__).resolve().parents[2]

PARAMS = {
    "protocolFeeBps": 100,
    "verificationFeeBps": 1_000,
    "profileFeeBps": 200,
    "solverStakeBps": 20_000,
    "verifierStakeBps": 10_000,
    "profilerStakeBps": 5_000,
    "slashToSubmitterBps": 2_500,
}

# bounty 10,000 wei: F = 1,000, P = 200, S = 20,000, V = 10,000, Q = 5,000; a slashed S
# gives 5,000 to the submitter and 15,000 to the jackpot, nothing to the verifier, whose fee
# is F for a pass and a fail alike; a profile nobody accepted is not paid.
TABLE = [
    ("Passed", True, False, (0, 28_800, 11_000, 5_200, 0)),
    ("Passed", False, False, (0, 29_000, 11_000, 0, 0)),
    ("Passed", False, True, (0, 29_000, 0, 0, 11_000)),
    ("Failed", True, False, (13_800, 0, 11_000, 5_200, 15_000)),
    ("Failed", False, False, (14_000, 0, 11_000, 0, 15_000)),
    ("Failed", False, True, (14_000, 0, 0, 0, 26_000)),
    ("SolverTimedOut", True, False, (14_800, 0, 0, 5_200, 15_000)),
    ("SeedWithheld", True, False, (14_800, 0, 10_000, 5_200, 15_000)),
    ("Unverified", True, False, (9_800, 20_000, 0, 5_200, 0)),
    ("Unverified", False, False, (10_000, 20_000, 0, 0, 0)),
    ("Cancelled", True, False, (10_000, 0, 0, 5_000, 0)),
    ("Cancelled", False, False, (10_000, 0, 0, 0, 0)),
    ("Expired", True, False, (10_000, 0, 0, 5_000, 0)),
]


@pytest.mark.parametrize(("outcome", "profiled", "forfeited", "row"), TABLE)
def test_settlement_table(
    outcome: str, profiled: bool, forfeited: bool, row: tuple[int, ...]
) -> None:
    paid = expected_payouts(PARAMS, outcome, 10_000, profiled, forfeited)
    assert paid is not None
    assert tuple(paid.values()) == row


def test_an_outcome_the_pool_never_settles_has_no_payouts() -> None:
    assert expected_payouts(PARAMS, "None", 10_000, True) is None


@settings(max_examples=300, deadline=None)
@given(
    bounty=st.integers(0, 2**80 - 1),
    fees=st.tuples(bps, bps).filter(lambda t: t[0] + t[1] <= 10_000),
    slash=bps,
    stakes=st.tuples(st.integers(1, 100_000), st.integers(1, 100_000), st.integers(0, 100_000)),
    outcome=st.sampled_from(sorted(OUTCOMES)),
    profiled=st.booleans(),
    forfeited=st.booleans(),
)
def test_settlement_agrees_with_the_scripts(
    bounty: int,
    fees: tuple[int, int],
    slash: int,
    stakes: tuple[int, int, int],
    outcome: str,
    profiled: bool,
    forfeited: bool,
) -> None:
    forfeited = forfeited and outcome in ("Passed", "Failed")
    params = {
        "protocolFeeBps": 100,
        "verificationFeeBps": fees[0],
        "profileFeeBps": fees[1],
        "solverStakeBps": stakes[0],
        "verifierStakeBps": stakes[1],
        "profilerStakeBps": stakes[2],
        "slashToSubmitterBps": slash,
    }
    ns = SimpleNamespace(**params)
    amounts = protocol.Amounts.of(bounty, ns)
    theirs = protocol.payouts(OUTCOMES[outcome], amounts, profiled, ns, forfeited)
    ours = expected_payouts(params, outcome, bounty, profiled, forfeited)
    assert ours == {
        "submitter": theirs.submitter,
        "solver": theirs.solver,
        "verifier": theirs.verifier,
        "profiler": theirs.profiler,
        "jackpot": theirs.jackpot,
    }
    assert ours == written_out(params, outcome, bounty, profiled, Marks(forfeited=forfeited))


@pytest.mark.parametrize(
    ("distances", "tau", "verdict"),
    [
        ([], 0.0, "Pass"),
        ([0, 0], 0.0, "Pass"),
        ([to_bits(1e-45)], 0.0, "Fail"),  # the smallest subnormal is above τ = 0
        ([to_bits(1e-3)], 1e-3, "Pass"),
        ([to_bits(1e-3), to_bits(1e-3) + 1], 1e-3, "Fail"),  # one ulp above τ
        ([0x7F800000], 3.0e38, "Fail"),  # +inf
        ([0x7FC00000], 3.0e38, "Fail"),  # NaN lies above every finite τ
    ],
)
def test_verdict_rule(distances: list[int], tau: float, verdict: str) -> None:
    assert verdict_of(distances, to_bits(tau)) == verdict


def test_outcome_of_a_verdict() -> None:
    assert [outcome_of_verdict(v) for v in ("Pass", "Fail", "None")] == [
        "Passed",
        "Failed",
        "None",
    ]


TOPICS = {name: bytes([i + 1]) * 32 for i, name in enumerate((*FOLDED_EVENTS, "TaskClaimed"))}

log_entries = st.lists(
    st.tuples(
        st.sampled_from(sorted(TOPICS)),
        st.integers(1, 3),  # task id
        st.lists(st.binary(min_size=32, max_size=32), max_size=1),  # a second indexed topic
        st.binary(max_size=200),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(entries=log_entries)
def test_record_agrees_with_the_scripts(
    entries: list[tuple[str, int, list[bytes], bytes]],
) -> None:
    logs: list[dict[str, Any]] = [
        {
            "topics": ["0x" + t.hex() for t in [TOPICS[name], task.to_bytes(32, "big"), *extra]],
            "data": "0x" + data.hex(),
        }
        for name, task, extra, data in entries
    ]
    folded = {TOPICS[name] for name in FOLDED_EVENTS}
    # The same logs with bytes, as web3 decodes them (the scripts' case).
    decoded = [
        {
            "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
            "data": bytes.fromhex(log["data"][2:]),
        }
        for log in logs
    ]
    expected = protocol.record_from_logs(decoded, {name: TOPICS[name] for name in FOLDED_EVENTS}, 2)
    assert record_of(logs, folded, 2) == expected
    # Both fold with agents.rules.fold_record; the fold written out once more, here.
    written = bytes(32)
    for name, task, extra, data in entries:
        topics = [TOPICS[name], task.to_bytes(32, "big"), *extra]
        if task == 2 and TOPICS[name] in folded:
            written = keccak(written + b"".join(topics) + keccak(data))
    assert written == expected


def test_a_changed_event_changes_the_record() -> None:
    topic = TOPICS["TaskSubmitted"]
    subject = (1).to_bytes(32, "big")
    log = {"topics": ["0x" + topic.hex(), "0x" + subject.hex()], "data": "0x01"}
    changed = {**log, "data": "0x02"}
    folded = {topic}
    assert record_of([log], folded, 1) != record_of([changed], folded, 1)
    assert record_of([log], folded, 1) != bytes(32)
    assert record_of([log], folded, 2) == bytes(32)  # another task's log is not folded


def _folded_in_source() -> dict[str, str]:
    """The events ITaskPool.sol's NatSpec marks ``@dev Folded``, in the order declared, each
    with its second indexed parameter (the party the record folds in after the task id)."""
    source = (REPO_ROOT / "contracts" / "interfaces" / "ITaskPool.sol").read_text()
    folded: dict[str, str] = {}
    marked, event, indexed = False, None, []
    for line in source.splitlines():
        text = line.strip()
        if event is not None:
            if " indexed " in text:
                indexed.append(text.split()[-1].rstrip(",);"))
            if ")" in text:
                folded[event] = indexed[1]
                event, indexed = None, []
        elif text.startswith("/// @dev"):
            marked = text.startswith("/// @dev Folded")
        elif text.startswith("event "):
            if marked:
                event = text.split()[1].split("(")[0]
            marked = False
        elif not text.startswith("///"):
            marked = False
    return folded


def test_folded_events_are_the_ones_the_interface_marks() -> None:
    marked = _folded_in_source()
    assert len(marked) >= 7  # the parse finds the interface's markings
    assert dict(FOLDED_PARTIES) == marked
    assert tuple(marked) == FOLDED_EVENTS
    assert protocol.FOLDED_EVENTS is FOLDED_EVENTS  # re-exported: one list

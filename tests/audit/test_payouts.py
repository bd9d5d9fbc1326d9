"""Payouts after challenges (agents/audit/payouts.py, agents/audit/money.py): the settlement
table with the marks challenges leave in ``Task.flags`` (VOID, STAKE_TAKEN, SLASH_AWARDED,
FORFEITED) and the forced-error tax, as a table and in bulk against the table written out
independently (tests/audit/outcomes.py) and the scripts' reference model (the same
``agents.rules``, read without the audit's names); the
marks a task's events call for; the credits of won challenges, their balances across the pool
and the jackpot's forced-error awards."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.audit.money import (
    check_credit_balances,
    check_credits,
    check_jackpot_awards,
    check_marks,
    marks_of,
)
from agents.audit.payouts import Marks, expected_payouts
from agents.chain.abi import DecodedLog
from scripts import protocol
from tests.audit.outcomes import OUTCOMES, bps, written_out

PARAMS = {
    "protocolFeeBps": 100,
    "verificationFeeBps": 1_000,
    "profileFeeBps": 200,
    "solverStakeBps": 20_000,
    "verifierStakeBps": 10_000,
    "profilerStakeBps": 5_000,
    "slashToSubmitterBps": 2_500,
    "forcedErrorPpm": 120_000,
    "forcedErrorTaxBps": 600,
    "profileRejectionFeeBps": 100,
}
BOUNTY = 10_000  # F = 1,000, P = 200, S = 20,000 (σS = 5,000), V = 10,000, Q = 5,000, T = 600
VOID = Marks(void=True)
TAKEN = Marks(stake_taken=True)
AWARDED = Marks(slash_awarded=True)

# (outcome, profiled, marks, (submitter, solver, verifier, profiler, jackpot))
TABLE = [
    # A report defeated as its proof failed (a whistleblower beat both): no verifier payout,
    # the fee stays with the bounty (the submitter's), the jackpot's 15,000 to the winner.
    ("Failed", True, Marks(void=True, slash_awarded=True), (14_800, 0, 0, 5_200, 0)),
    ("Failed", False, Marks(void=True, slash_awarded=True), (15_000, 0, 0, 0, 0)),
    # ... both lost the game against the proof: nobody won the jackpot's part.
    ("Failed", True, VOID, (14_800, 0, 0, 5_200, 15_000)),
    # A proof that lost while its report stood: the verifier is paid as usual.
    ("Failed", True, AWARDED, (13_800, 0, 11_000, 5_200, 0)),
    # A stake credited back before settlement (a fault report voided by a published state):
    # the verifier's fee only.
    ("Passed", True, TAKEN, (0, 28_800, 1_000, 5_200, 0)),
    ("Passed", False, TAKEN, (0, 29_000, 1_000, 0, 0)),
    ("Failed", False, TAKEN, (14_000, 0, 1_000, 0, 15_000)),
    # Forfeited: fee and stake to the jackpot; with a taken stake, only the fee is left to lose.
    ("Passed", False, Marks(forfeited=True), (0, 29_000, 0, 0, 11_000)),
    ("Passed", False, Marks(forfeited=True, stake_taken=True), (0, 29_000, 0, 0, 1_000)),
    # Marks change nothing in outcomes without a report.
    ("Unverified", True, VOID, (9_800, 20_000, 0, 5_200, 0)),
    ("SeedWithheld", False, AWARDED, (15_000, 0, 10_000, 0, 15_000)),
    ("Cancelled", True, TAKEN, (10_000, 0, 0, 5_000, 0)),
]


@pytest.mark.parametrize(("outcome", "profiled", "marks", "row"), TABLE)
def test_settlement_after_challenges(
    outcome: str, profiled: bool, marks: Marks, row: tuple[int, ...]
) -> None:
    paid = expected_payouts(PARAMS, outcome, BOUNTY, profiled, marks=marks)
    assert paid is not None
    assert tuple(paid.values()) == row


# The first verification claim's report may be forced: its verifier, when paid, pays the tax
# T = 600 to the jackpot (out of its fee: the stake comes back whole).
TAXED = [
    ("Passed", False, Marks(), (0, 29_000, 10_400, 0, 600)),
    ("Failed", True, Marks(), (13_800, 0, 10_400, 5_200, 15_600)),
    ("Failed", True, AWARDED, (13_800, 0, 10_400, 5_200, 600)),
    # Nothing paid, nothing taxed: forfeited (all to the jackpot anyway), voided.
    ("Passed", False, Marks(forfeited=True), (0, 29_000, 0, 0, 11_000)),
    ("Failed", False, VOID, (15_000, 0, 0, 0, 15_000)),
    # Outcomes without a paid report pay no tax.
    ("SeedWithheld", False, Marks(), (15_000, 0, 10_000, 0, 15_000)),
    ("Unverified", False, Marks(), (10_000, 20_000, 0, 0, 0)),
]


@pytest.mark.parametrize(("outcome", "profiled", "marks", "row"), TAXED)
def test_the_forced_error_tax(
    outcome: str, profiled: bool, marks: Marks, row: tuple[int, ...]
) -> None:
    paid = expected_payouts(PARAMS, outcome, BOUNTY, profiled, marks=marks, taxed=True)
    assert paid is not None
    assert tuple(paid.values()) == row
    # A pool that forces no errors charges none.
    free = expected_payouts({**PARAMS, "forcedErrorPpm": 0}, outcome, BOUNTY, profiled, marks=marks)
    assert free == expected_payouts(PARAMS, outcome, BOUNTY, profiled, marks=marks, taxed=False)


def test_the_marks_are_the_flag_bits() -> None:
    assert Marks(forfeited=True).bits == int(protocol.Flag.FORFEITED)
    assert VOID.bits == int(protocol.Flag.VOID)
    assert TAKEN.bits == int(protocol.Flag.STAKE_TAKEN)
    assert AWARDED.bits == int(protocol.Flag.SLASH_AWARDED)
    every = sum(int(f) for f in protocol.Flag)
    assert Marks.of_bits(every) == Marks(True, True, True, True)
    assert Marks.of_bits(int(protocol.Flag.DEFEATED | protocol.Flag.RANDOMNESS)) == Marks()
    assert Marks(void=True, slash_awarded=True).names() == "VOID | SLASH_AWARDED"


@settings(max_examples=2_000, deadline=None)
@given(
    bounty=st.one_of(st.integers(0, 10**6), st.integers(0, 2**80 - 1)),
    fees=st.tuples(bps, bps).filter(lambda t: t[0] + t[1] <= 10_000),
    slash=bps,
    stakes=st.tuples(st.integers(1, 100_000), st.integers(1, 100_000), st.integers(0, 100_000)),
    outcome=st.sampled_from(sorted(OUTCOMES)),
    profiled=st.booleans(),
    flags=st.integers(0, 255),
    tax=st.tuples(bps, st.integers(0, 1_000_000), st.booleans()),
)
def test_settlement_after_challenges_agrees_with_the_scripts(
    bounty: int,
    fees: tuple[int, int],
    slash: int,
    stakes: tuple[int, int, int],
    outcome: str,
    profiled: bool,
    flags: int,
    tax: tuple[int, int, bool],
) -> None:
    """Every outcome under every combination of ``Task.flags`` bits (those that change nothing
    included), taxed or not: the audit's reading agrees with the reference model the contract
    tests hold to the chain, and both with the table written out independently."""
    params = {
        "protocolFeeBps": 100,
        "verificationFeeBps": fees[0],
        "profileFeeBps": fees[1],
        "solverStakeBps": stakes[0],
        "verifierStakeBps": stakes[1],
        "profilerStakeBps": stakes[2],
        "slashToSubmitterBps": slash,
        # The tax is at most the fee (the pool refuses more).
        "forcedErrorTaxBps": min(tax[0], fees[0]),
        "forcedErrorPpm": tax[1],
    }
    ns = SimpleNamespace(**params)
    amounts = protocol.Amounts.of(bounty, ns)
    taxed = tax[2]
    theirs = protocol.payouts(OUTCOMES[outcome], amounts, profiled, ns, flags=flags, taxed=taxed)
    marks = Marks.of_bits(flags)
    ours = expected_payouts(params, outcome, bounty, profiled, marks=marks, taxed=taxed)
    assert ours == {
        "submitter": theirs.submitter,
        "solver": theirs.solver,
        "verifier": theirs.verifier,
        "profiler": theirs.profiler,
        "jackpot": theirs.jackpot,
    }
    assert ours == written_out(params, outcome, bounty, profiled, marks, taxed)


# --------------------------------------------------------------------------- marks from events

VERIFIER = "0x" + "aa" * 20
SECOND = "0x" + "ab" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
ZERO = "0x" + "00" * 20
ROOTS = ["0x" + "11" * 32, "0x" + "22" * 32]
TRUE_ROOTS = ["0x" + "11" * 32, "0x" + "33" * 32]


class Story:
    """A task's events as the pool emits them; each call of ``tx`` is one transaction."""

    def __init__(self) -> None:
        self.events: list[DecodedLog] = []
        self._tx = 0

    def tx(self, *events: tuple[str, dict[str, Any]]) -> Story:
        self._tx += 1
        for name, args in events:
            self.events.append(
                DecodedLog(
                    contract="TaskPool",
                    name=name,
                    args={"taskId": 1, **args},
                    address="0x" + "22" * 20,
                    block_number=self._tx,
                    block_hash="0x" + "33" * 32,
                    log_index=len(self.events),
                    tx_hash="0x" + self._tx.to_bytes(32, "big").hex(),
                )
            )
        return self


def claimed(verifier: str = VERIFIER) -> tuple[str, dict[str, Any]]:
    return "VerificationClaimed", {"verifier": verifier, "stake": 10_000}


def drawn(claim_block_hash: str = "0x" + "cb" * 32) -> tuple[str, dict[str, Any]]:
    return "RandomnessDrawn", {"randomness": "0x" + "55" * 32, "claimBlockHash": claim_block_hash}


def reported(verifier: str = VERIFIER) -> tuple[str, dict[str, Any]]:
    return "VerificationReported", {"verifier": verifier, "traceRoots": ROOTS}


def revealed(forced: bool, roots: list[str], deadline: int = 0) -> tuple[str, dict[str, Any]]:
    args = {"forced": forced, "traceRoots": roots, "challengeDeadline": deadline}
    return "VerificationRevealed", args


def resolved(cid: int, who: str, claim: int, ruling: int) -> tuple[str, dict[str, Any]]:
    args = {"challengeId": cid, "challenger": who, "claim": claim, "state": 3, "ruling": ruling}
    return "ChallengeResolved", args


def defeated(winner: str, slashed: int = 10_000) -> tuple[str, dict[str, Any]]:
    return "ReportDefeated", {"verifier": VERIFIER, "winner": winner, "slashed": slashed}


def caught(catchers: list[str], each: int) -> tuple[str, dict[str, Any]]:
    return "ForcedErrorCaught", {"verifier": VERIFIER, "catchers": catchers, "award": each}


def uncaught(award: int) -> tuple[str, dict[str, Any]]:
    return "ForcedErrorUncaught", {"verifier": VERIFIER, "award": award}


def proof_failed(winner: str, award: int = 15_000) -> tuple[str, dict[str, Any]]:
    return "ProofFailed", {"solver": BOB, "winner": winner, "award": award}


def reopened() -> tuple[str, dict[str, Any]]:
    return "VerificationReopened", {"deadline": 9}


def settled(outcome: int) -> tuple[str, dict[str, Any]]:
    return "TaskSettled", {"outcome": outcome}


PASSED, FAILED, UNVERIFIED = 1, 2, 6


def first_round() -> Story:
    """Claimed before the randomness existed (forceable where forced errors are on), reported."""
    return Story().tx(claimed()).tx(drawn()).tx(reported())


STORIES: list[tuple[str, Story, int, Marks]] = [
    ("an honest reveal", first_round().tx(revealed(False, ROOTS), settled(PASSED)), 1, Marks()),
    ("settled unrevealed", first_round().tx(settled(PASSED)), 1, Marks(forfeited=True)),
    (
        "a seed past the claim block's reach: not forceable, nothing to reveal",
        Story().tx(claimed()).tx(drawn("0x" + "00" * 32)).tx(reported()).tx(settled(PASSED)),
        1,
        Marks(),
    ),
    ("no forced errors here", first_round().tx(settled(PASSED)), 0, Marks()),
    (
        "forced and honest",
        first_round().tx(revealed(True, ROOTS), settled(PASSED)),
        1,
        Marks(forfeited=True),
    ),
    (
        "disowning its report",
        first_round().tx(revealed(False, TRUE_ROOTS), settled(FAILED)),
        1,
        Marks(forfeited=True),
    ),
    (
        "a caught forced error, its true roots settled: the verifier is not slashed",
        first_round()
        .tx(resolved(1, ALICE, 1, 2))
        .tx(revealed(True, TRUE_ROOTS, deadline=99), caught([ALICE], 3_000))
        .tx(settled(PASSED)),
        1,
        Marks(),
    ),
    (
        "a forced error nobody caught",
        first_round()
        .tx(revealed(True, TRUE_ROOTS, deadline=99), uncaught(3_000))
        .tx(settled(PASSED)),
        1,
        Marks(),
    ),
    (
        "caught, and defeated on a root it stands by in the same reveal",
        first_round()
        .tx(resolved(1, ALICE, 1, 2), resolved(2, BOB, 1, 2))
        .tx(
            revealed(True, TRUE_ROOTS, deadline=99),
            defeated(BOB, 0),
            reopened(),
            caught([ALICE], 3_000),
        )
        .tx(claimed(SECOND))
        .tx(reported(SECOND))
        .tx(settled(PASSED)),
        1,
        Marks(),
    ),
    (
        "a lying report and a fake proof both beaten by one whistleblower",
        first_round()
        .tx(resolved(1, ALICE, 1, 2))
        .tx(resolved(2, ALICE, 2, 2), defeated(ALICE), proof_failed(ALICE), settled(FAILED)),
        0,
        Marks(void=True, slash_awarded=True),
    ),
    (
        "the report defeated and the proof lost by both",
        first_round()
        .tx(resolved(1, ALICE, 1, 3))
        .tx(resolved(2, ALICE, 2, 3), defeated(ZERO), proof_failed(ZERO, 0), settled(FAILED)),
        0,
        VOID,
    ),
    (
        "a report defeated, then the proof fails under the next verifier",
        first_round()
        .tx(resolved(1, ALICE, 1, 2), defeated(ALICE), reopened())
        .tx(claimed(SECOND))
        .tx(reported(SECOND))
        .tx(resolved(2, BOB, 2, 2), proof_failed(BOB), settled(FAILED)),
        1,
        AWARDED,
    ),
    (
        "defeated at the last round: unverified",
        first_round().tx(resolved(1, ALICE, 1, 2), defeated(ALICE), settled(UNVERIFIED)),
        1,
        Marks(),
    ),
]


@pytest.mark.parametrize(
    ("story", "ppm", "marks"), [s[1:] for s in STORIES], ids=[s[0] for s in STORIES]
)
def test_the_marks_a_story_leaves(story: Story, ppm: int, marks: Marks) -> None:
    assert marks_of(story.events, ppm) == marks


def test_stored_flags_other_than_the_events_call_for_are_named() -> None:
    story = next(s[1] for s in STORIES if s[0].startswith("a lying report and a fake proof"))
    found: list[tuple[str, str, bool]] = []

    def add(area: str, claim: str, chain: object, audit: object, holds: bool) -> None:
        found.append((str(chain), str(audit), holds))

    stored = int(protocol.Flag.VOID | protocol.Flag.SLASH_AWARDED | protocol.Flag.PROOF_FAILED)
    assert check_marks(story.events, PARAMS, stored, add) == Marks(void=True, slash_awarded=True)
    assert found == [("VOID | SLASH_AWARDED", "VOID | SLASH_AWARDED", True)]
    check_marks(story.events, PARAMS, int(protocol.Flag.VOID), add)
    assert found[-1] == ("VOID", "VOID | SLASH_AWARDED", False)


# --------------------------------------------------------------------------- credits


def _checked(run: Any) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    run(lambda area, claim, chain, audit, holds: found.append((claim, holds)))
    return found


@pytest.mark.parametrize(
    ("story", "holds", "credits"),
    [
        (first_round().tx(defeated(ALICE)), True, {ALICE: 10_000}),
        (first_round().tx(defeated(ALICE, 9_999)), False, {ALICE: 9_999}),  # not the whole stake
        (first_round().tx(defeated(ZERO)), True, {}),  # both lost: to the jackpot
        (first_round().tx(proof_failed(BOB)), True, {BOB: 15_000}),  # S − ⌊σS⌋
        (first_round().tx(proof_failed(BOB, 20_000)), False, {BOB: 20_000}),  # σS: submitter's
        (first_round().tx(proof_failed(ZERO, 15_000)), False, {}),  # nobody won it
        # A caught forced error takes no stake: a later defeat of the true roots slashes it whole.
        (first_round().tx(caught([ALICE], 1)).tx(defeated(BOB)), True, {BOB: 10_000}),
        (first_round().tx(caught([ALICE], 1)).tx(defeated(BOB, 0)), False, {BOB: 0}),
        # Caught and defeated on a root it stands by in one reveal: slashed to that game's winner.
        (first_round().tx(defeated(BOB), reopened(), caught([ALICE], 1)), True, {BOB: 10_000}),
        (first_round().tx(defeated(BOB, 0), reopened(), caught([ALICE], 1)), False, {BOB: 0}),
        # ... and the next verifier's defeat slashes its own whole stake.
        (
            first_round()
            .tx(defeated(BOB), reopened(), caught([ALICE], 1))
            .tx(claimed(SECOND))
            .tx(defeated(ALICE)),
            True,
            {BOB: 10_000, ALICE: 10_000},
        ),
        # A rejected profile: the profiler's stake Q = 5,000 back, nothing more; the fee (1 % of
        # the bounty) goes to the jackpot.
        (
            Story().tx(("ProfileRejected", {"profiler": BOB, "refund": 5_000, "fee": 100})),
            True,
            {BOB: 5_000},
        ),
        (
            Story().tx(("ProfileRejected", {"profiler": BOB, "refund": 5_000, "fee": 0})),
            False,
            {BOB: 5_000},
        ),
        (
            Story().tx(("ProfileRejected", {"profiler": BOB, "refund": 5_100, "fee": 100})),
            False,
            {BOB: 5_100},
        ),
        # An unanswered proof challenge returns the deposit; a disproved answer does not.
        (first_round().tx(resolved(4, ALICE, 2, 0)), True, {ALICE: 3}),
        (
            first_round().tx(
                ("DistanceDisproved", {"prover": BOB, "challengeId": 4}),
                resolved(4, ALICE, 2, 0),
            ),
            True,
            {},
        ),
    ],
)
def test_the_credits_of_won_challenges(story: Story, holds: bool, credits: dict[str, int]) -> None:
    out: dict[str, int] = {}

    def run(add: Any) -> None:
        out.update(check_credits(story.events, PARAMS, BOUNTY, 3, add))

    found = _checked(run)
    assert all(ok for _, ok in found) == holds, found
    assert out == credits


def test_credit_balances_across_the_pool() -> None:
    mine = first_round().tx(defeated(ALICE), ("CreditWithdrawn", {"account": ALICE, "amount": 4}))
    other = Story().tx(proof_failed(ALICE, 5)).tx(resolved(7, BOB, 2, 0))
    pool = [*other.events, *mine.events]
    credited = {ALICE: 10_000}

    def balances(alice: int) -> list[tuple[str, bool]]:
        return _checked(lambda add: check_credit_balances(credited, pool, {ALICE: alice}, 3, add))

    assert balances(10_001) == [(balances(10_001)[0][0], True)]  # 10,005 credited, 4 withdrawn
    assert not balances(10_000)[0][1]  # a credit lost
    assert not balances(10_002)[0][1]  # more held than credited
    # An account whose balance was not read is not judged.
    assert _checked(lambda add: check_credit_balances(credited, pool, {}, 3, add)) == []


def _award(recipient: str, amount: int, tx: str) -> DecodedLog:
    args = {"recipient": recipient, "amount": amount}
    return DecodedLog("Jackpot", "Awarded", args, "", 0, "", 0, tx)


def test_the_jackpot_pays_each_catcher_what_was_stated() -> None:
    story = first_round().tx(caught([ALICE, BOB], 3_000))
    tx = story.events[-1].tx_hash

    def check(awards: list[DecodedLog], s: Story = story) -> list[bool]:
        return [ok for _, ok in _checked(
            lambda add: check_jackpot_awards(s.events, awards, PARAMS, BOUNTY, add)
        )]  # fmt: skip

    # Claims: awarded at most once; at most V together; each recipient paid what was stated.
    assert check([_award(ALICE, 3_000, tx), _award(BOB, 3_000, tx)]) == [True, True, True]
    assert check([_award(ALICE, 3_000, tx)]) == [True, True, False]  # one catcher unpaid
    assert check([_award(ALICE, 3_000, tx), _award(BOB, 2_999, tx)]) == [True, True, False]
    assert check([_award(ALICE, 3_000, tx), _award(BOB, 3_000, "0x01")]) == [True, True, False]
    paid = [_award(ALICE, 3_000, tx), _award(BOB, 3_000, tx)]

    def capped(reserve: int, from_events: bool = False) -> list[bool]:
        return [ok for _, ok in _checked(
            lambda add: check_jackpot_awards(
                story.events, paid, PARAMS, BOUNTY, add, {tx: reserve},
                reserves_from_events=from_events,
            )
        )]  # fmt: skip

    # A third of 18,000 split between two: 3,000 each; of 17,999: 2,999 each.
    assert capped(18_000) == [True, True, True, True]
    assert capped(17_999) == [True, True, False, True]
    # The stake caps it when the reserve is large: min(10,000, 10**9 / 3) / 2 = 5,000 each.
    assert capped(10**9) == [True, True, False, True]
    # Summed from events (no past states), the reserve is a lower bound: ether forced in
    # without fund() may have raised the cap, never lowered it.
    assert capped(17_999, from_events=True) == [True, True, True, True]
    assert capped(18_000, from_events=True) == [True, True, True, True]
    assert capped(18_006, from_events=True) == [True, True, False, True]  # 3,001 each was due
    greedy = first_round().tx(caught([ALICE, BOB], 6_000))  # 12,000 > V
    tx2 = greedy.events[-1].tx_hash
    assert check([_award(ALICE, 6_000, tx2), _award(BOB, 6_000, tx2)], greedy) == [
        True,
        False,
        True,
    ]
    # One forced error, two awards: named.
    twice = first_round().tx(uncaught(1)).tx(caught([ALICE], 1))
    awards = [
        _award(VERIFIER, 1, twice.events[-2].tx_hash),
        _award(ALICE, 1, twice.events[-1].tx_hash),
    ]
    assert check(awards, twice)[0] is False


def test_the_jackpot_pays_the_verifier_of_a_forced_error_nobody_caught() -> None:
    story = first_round().tx(revealed(True, TRUE_ROOTS, deadline=99), uncaught(10_000))
    tx = story.events[-1].tx_hash

    def check(awards: list[DecodedLog], reserve: int | None = None) -> list[bool]:
        reserves = {tx: reserve} if reserve is not None else None
        return [ok for _, ok in _checked(
            lambda add: check_jackpot_awards(story.events, awards, PARAMS, BOUNTY, add, reserves)
        )]  # fmt: skip

    assert check([_award(VERIFIER, 10_000, tx)]) == [True, True, True]
    assert check([]) == [True, True, False]  # the verifier unpaid
    assert check([_award(ALICE, 10_000, tx)]) == [True, True, False]  # paid to someone else
    # The whole award to the verifier: min(V, a third of the reserve), not split.
    assert check([_award(VERIFIER, 10_000, tx)], 30_000) == [True, True, True, True]
    assert check([_award(VERIFIER, 10_000, tx)], 29_997) == [True, True, False, True]
    over = first_round().tx(uncaught(10_001))
    assert (
        check([], None)[0]
        and not [
            ok
            for _, ok in _checked(
                lambda add: check_jackpot_awards(
                    over.events,
                    [_award(VERIFIER, 10_001, over.events[-1].tx_hash)],
                    PARAMS,
                    BOUNTY,
                    add,
                )
            )
        ][1]
    )


def test_a_forced_fault_report_earns_no_award() -> None:
    """Nobody can catch a fault report: an award to its verifier for an uncaught forced error
    is named; after a reopening the next round's report is judged on its own."""
    faulted = ("FaultReported", {"verifier": VERIFIER, "faultRoot": "0x" + "fa" * 32})

    def claims(story: Story) -> list[tuple[str, bool]]:
        awards = [
            _award(VERIFIER, 1, e.tx_hash) for e in story.events if e.name.endswith("Uncaught")
        ]
        return _checked(lambda add: check_jackpot_awards(story.events, awards, PARAMS, BOUNTY, add))

    rule = "a forced fault report earns no award (nobody can catch one)"
    named = claims(first_round().tx(faulted).tx(uncaught(1)))
    assert (rule, False) in named
    assert rule not in [c for c, _ in claims(first_round().tx(uncaught(1)))]
    again = first_round().tx(faulted).tx(reopened()).tx(uncaught(1))
    assert rule not in [c for c, _ in claims(again)]

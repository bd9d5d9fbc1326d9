"""The money that follows a task's challenges, derived from its events (docs/contracts.md,
"Challenges" and "Payouts after challenges").

Challenges change a settlement through four marks of ``Task.flags`` (``agents.audit.payouts.
Marks``) and pay their winners outside any task, as credits (``credit(account)``, taken with
``withdrawCredit``). This module derives both from the task's events as the documented rules
say they must follow, so that the audit can hold the pool's stored flags, its ``TaskSettled``
amounts and every credit to them:

- **marks**: ``FORFEITED`` when the verifier revealed a forced report it had not falsified (or
  roots other than its report's) or never revealed a report that could be forced; ``VOID``
  when the report was defeated in the same transaction in which the proof failed; ``STAKE_TAKEN``
  when a published state voided a fault report (its stake credited back); ``SLASH_AWARDED`` when a
  failed proof had a winner. A defeat clears ``FORFEITED`` and ``STAKE_TAKEN`` (the round is
  over). A caught forced error leaves no mark: its verifier is not slashed.
- **credits**: a rejected profile credits its profiler its stake back and nothing more (the
  rejection fee goes to the jackpot); a defeated report credits its verifier's stake ``V``
  to the first winner on a root the verifier stands by; a fault
  report voided by a published start state (``StatePublished``) credits its own verifier its
  stake ``V`` back, and its ``ReportDefeated`` slashes nothing; a failed proof credits the
  jackpot's part of the solver's stake, ``S − ⌊σS⌋``, to its first winner; a proof challenge
  the solver never answered returns the challenger's deposit (the challenge bond). Across the
  pool, what an account was credited equals what it still holds (``credit(account)``) plus
  what it withdrew (``CreditWithdrawn``).
- **jackpot awards**: a forced error that was erred gets one award from the jackpot,
  ``min(V, ⌊reserve / 3⌋)`` (never more than a third of the jackpot's reserve, what the pool
  swept in the same call included; ``agents.rules.forced_error_award``): split evenly and
  rounded down among its catchers (``ForcedErrorCaught``), or whole to its verifier when nobody
  caught it (``ForcedErrorUncaught``); the jackpot awards each recipient the stated amount
  (``Awarded``, its reason the task id) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from agents.audit.payouts import Marks
from agents.rules import BPS, Amounts, forced_error_award

ZERO = "0x" + "00" * 20
PROOF_CLAIM = 2
UPHELD_STATE = 3
NO_RULING = 0
# The pool's events that move credits (of any task) and the withdrawals of credits.
CREDIT_EVENTS = (
    "ProfileRejected",
    "ReportDefeated",
    "ProofFailed",
    "ChallengeResolved",
    "DistanceDisproved",
    "StatePublished",
    "CreditWithdrawn",
)

Add = Callable[[str, str, object, object, bool], None]


class Event(Protocol):
    """A pool event: a ``DecodedLog`` or a ``TimelineEntry``."""

    @property
    def name(self) -> str: ...

    @property
    def args(self) -> dict[str, Any]: ...

    @property
    def tx_hash(self) -> str: ...


def _share(amount: int, bps: int) -> int:
    return amount * bps // BPS


def _won(address: object) -> bool:
    return int(str(address), 16) != 0


def marks_of(events: Sequence[Event], forced_error_ppm: int) -> Marks:
    """The marks the task's events (in chain order) leave in ``Task.flags``: at its settlement
    when it settled, else as they stand."""
    forceable = forfeited = void = stake_taken = slash_awarded = False
    reported: list[str] = []
    defeated_in = ""
    for e in events:
        a = e.args
        if e.name == "RandomnessDrawn":
            # Only a verifier that claimed before the randomness existed can be forced, and only
            # when the seed came while its claim's block hash was known (a zero hash: it did not).
            forceable = forced_error_ppm != 0 and int(str(a["claimBlockHash"]), 16) != 0
        elif e.name in ("VerificationReopened", "TaskTimedOut"):
            forceable = False
        elif e.name == "VerificationReported":
            reported = [str(r).lower() for r in a["traceRoots"]]
        elif e.name == "VerificationRevealed":
            forceable = False
            roots = [str(r).lower() for r in a["traceRoots"]]
            if not int(a["challengeDeadline"]) and (bool(a["forced"]) or roots != reported):
                forfeited = True  # forced and honest, or disowning its own report
        elif e.name == "StatePublished":
            # The fault report is void: its stake credited back, no reveal awaited.
            forceable, stake_taken = False, True
        elif e.name == "ReportDefeated":
            forceable = forfeited = stake_taken = False
            defeated_in = e.tx_hash
        elif e.name == "ProofFailed":
            forceable = False
            void = e.tx_hash == defeated_in
            slash_awarded = _won(a["winner"])
        elif e.name == "TaskSettled" and forceable and int(a["outcome"]) in (1, 2):
            forfeited = True  # settled without the reveal a forceable report owed
    return Marks(forfeited, void, stake_taken, slash_awarded)


def check_marks(events: Sequence[Event], params: Mapping[str, int], flags: int, add: Add) -> Marks:
    """The stored ``Task.flags`` carry the marks the events call for; returns the derived ones."""
    derived = marks_of(events, int(params.get("forcedErrorPpm", 0)))
    stored = Marks.of_bits(flags)
    add(
        "payouts",
        "the task's flags after challenges are the ones its events call for",
        stored.names(),
        derived.names(),
        stored == derived,
    )
    return derived


def refunded(events: Sequence[Event]) -> list[str]:
    """The challengers whose proof challenge the solver never answered (their deposit comes
    back): a proof challenge upheld with no ruling and no disproved answer."""
    disproved = {
        int(e.args["challengeId"])
        for e in events
        if e.name == "DistanceDisproved" and int(e.args["challengeId"])
    }
    return [
        str(e.args["challenger"])
        for e in events
        if e.name == "ChallengeResolved"
        and int(e.args["claim"]) == PROOF_CLAIM
        and int(e.args["state"]) == UPHELD_STATE
        and int(e.args["ruling"]) == NO_RULING
        and int(e.args["challengeId"]) not in disproved
    ]


def credited(events: Sequence[Event], bond: int) -> dict[str, int]:
    """What the events credit each account (lower-case address), as the events state it (the
    amounts of ``ReportDefeated`` and ``ProofFailed``) and the returned deposits."""
    out: dict[str, int] = defaultdict(int)
    for e in events:
        a = e.args
        if e.name == "ReportDefeated" and _won(a["winner"]):
            out[str(a["winner"]).lower()] += int(a["slashed"])
        elif e.name == "ProofFailed" and _won(a["winner"]):
            out[str(a["winner"]).lower()] += int(a["award"])
        elif e.name == "ProfileRejected":
            out[str(a["profiler"]).lower()] += int(a["refund"])
        elif e.name == "StatePublished":
            out[str(a["verifier"]).lower()] += int(a["refunded"])
    for challenger in refunded(events):
        out[challenger.lower()] += bond
    return dict(out)


def check_credits(
    events: Sequence[Event], params: Mapping[str, int], bounty: int, bond: int, add: Add
) -> dict[str, int]:
    """Every credit the task's events state is the one the rules give; returns what the task
    credited each account."""
    verifier_stake = _share(bounty, int(params["verifierStakeBps"]))
    solver_stake = _share(bounty, int(params["solverStakeBps"]))
    award = solver_stake - _share(solver_stake, int(params["slashToSubmitterBps"]))
    taken = False
    for e in events:
        a = e.args
        if e.name == "ReportDefeated":
            # A stake credited back already (a published state) is not slashed again.
            expected = 0 if taken else verifier_stake
            to = f"to {a['winner']}" if _won(a["winner"]) else "to the jackpot"
            add(
                "payouts",
                f"the defeated report's verifier stake goes {to}",
                int(a["slashed"]),
                expected,
                int(a["slashed"]) == expected,
            )
            taken = False
        elif e.name == "VerificationReopened":
            taken = False
        elif e.name == "StatePublished":
            expected = 0 if taken else verifier_stake
            add(
                "payouts",
                "a fault report voided by a published start state credits its verifier its stake",
                int(a["refunded"]),
                expected,
                int(a["refunded"]) == expected,
            )
            taken = True  # the defeat that follows slashes nothing
        elif e.name == "ProfileRejected":
            stake = _share(bounty, int(params["profilerStakeBps"]))
            fee = _share(bounty, int(params.get("profileRejectionFeeBps", 0)))
            add(
                "payouts",
                "a rejected profiler is credited its stake back, nothing more; "
                "the rejection fee goes to the jackpot",
                f"{a['refund']} (fee {a['fee']})",
                f"{stake} (fee {fee})",
                (int(a["refund"]), int(a["fee"])) == (stake, fee),
            )
        elif e.name == "ProofFailed":
            expected = award if _won(a["winner"]) else 0
            add(
                "payouts",
                "the failed proof's winner is credited the jackpot's part of the solver's stake",
                int(a["award"]),
                expected,
                int(a["award"]) == expected,
            )
    return credited(events, bond)


def check_credit_balances(
    task_credits: Mapping[str, int],
    pool_events: Sequence[Event],
    balances: Mapping[str, int],
    bond: int,
    add: Add,
) -> None:
    """For each account the task credited: everything the pool ever credited it (every task's
    events) equals what it holds now plus what it withdrew, so nobody took a credit it was
    not given and none was lost."""
    everything = credited(pool_events, bond)
    withdrawn: dict[str, int] = defaultdict(int)
    for e in pool_events:
        if e.name == "CreditWithdrawn":
            withdrawn[str(e.args["account"]).lower()] += int(e.args["amount"])
    for account in sorted(task_credits):
        held = balances.get(account)
        if held is None:
            continue
        add(
            "payouts",
            f"{account}'s credits: what it holds and withdrew is what the pool credited it",
            f"credit {held} + withdrawn {withdrawn[account]}",
            f"credited {everything.get(account, 0)}",
            held + withdrawn[account] == everything.get(account, 0),
        )


def check_jackpot_awards(
    events: Sequence[Event],
    awards: Sequence[Event],
    params: Mapping[str, int],
    bounty: int,
    add: Add,
    reserves: Mapping[str, int] | None = None,
    *,
    reserves_from_events: bool = False,
) -> None:
    """A forced error that was erred gets one award: the jackpot awards each of its catchers what
    ``ForcedErrorCaught`` states, or its verifier what ``ForcedErrorUncaught`` states, in the same
    transaction; together at most the verifier's stake. ``awards``: the jackpot's ``Awarded``
    events whose reason is the task; ``reserves``: per transaction, the jackpot's reserve the award
    was capped by (where known, each must be exactly ``agents.rules.forced_error_award``'s).
    ``reserves_from_events``: the reserves were summed from the jackpot's events (a node without
    past states), which cannot see ether forced in without ``fund()``: the award must then be at
    least what they give."""
    verifier_stake = _share(bounty, int(params["verifierStakeBps"]))
    paid: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for w in awards:
        paid[w.tx_hash].append((str(w.args["recipient"]).lower(), int(w.args["amount"])))
    forced = [e for e in events if e.name in ("ForcedErrorCaught", "ForcedErrorUncaught")]
    fault = False  # the round's report is a fault report, which nobody can catch
    for e in events:
        if e.name == "VerificationReopened":
            fault = False
        elif e.name == "FaultReported":
            fault = True
        elif e.name == "ForcedErrorUncaught" and fault:
            add(
                "payouts",
                "a forced fault report earns no award (nobody can catch one)",
                f"ForcedErrorUncaught {int(e.args['award'])}",
                "no award",
                False,
            )
    add(
        "payouts",
        "a task's forced error is awarded at most once",
        len(forced),
        "at most 1",
        len(forced) <= 1,
    )
    for e in forced:
        a = e.args
        caught = e.name == "ForcedErrorCaught"
        recipients = (
            [str(c).lower() for c in a["catchers"]] if caught else [str(a["verifier"]).lower()]
        )
        each = int(a["award"])
        whom = f"{len(recipients)} catcher(s)" if caught else "its verifier, nobody caught it"
        add(
            "payouts",
            "a forced error's award is at most the verifier's stake (its verifier is not slashed)",
            f"{len(recipients)} × {each}",
            f"together at most {verifier_stake}",
            each * len(recipients) <= verifier_stake,
        )
        reserve = (reserves or {}).get(e.tx_hash)
        if reserve is not None and recipients:
            due = forced_error_award(
                Amounts.of(bounty, params), reserve, len(recipients) if caught else 0
            )
            rule = "a forced error's award is min(V, a third of the jackpot's reserve), shared"
            if reserves_from_events:
                add(
                    "payouts",
                    f"{rule} (the reserve summed from the jackpot's events: a lower bound)",
                    each,
                    f"at least {due} (reserve ≥ {reserve}, {whom})",
                    each >= due,
                )
            else:
                add("payouts", rule, each, f"{due} (reserve {reserve}, {whom})", each == due)
        expected = sorted((c, each) for c in recipients) if each else []
        got = sorted(paid.get(e.tx_hash, []))
        add(
            "payouts",
            f"the jackpot awarded each recipient what {e.name} states",
            got,
            expected,
            got == expected,
        )

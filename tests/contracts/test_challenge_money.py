"""Every wei over the whole protocol with challenges and games (hypothesis stateful).

Tasks are driven to their challenge window (their verifier forced to err or not, reporting
its replay or lies, or a fault record); then any account challenges any reported root or any
segment of the proof, publishes a sampled start state against a fault report, solvers answer,
parties make their first move in the games (or do not), time passes,
anyone ends games by their clocks, resolves challenges, disproves nothing, reveals, settles,
withdraws from the pool, the game and the jackpot. Calls that revert are part of the run.

After every step: the ETH of every account and contract together is unchanged (gas is free
on the devnet), and the pool holds exactly its tasks' escrow, stakes and unpaid payouts, the
jackpot's accrual, the credits and the deposits of unanswered proof challenges. At the end
every game and task is driven to its end, everyone pulls what it is owed, and the pool and the
game are empty: nothing is stuck.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from agents.commitment import state_tensors
from scripts.deploy import DEFAULT_GAME_PARAMETERS, Deployment
from scripts.protocol import Flag, Status, sealed_roots
from tests.contracts.driver import Driver, hexed
from tests.contracts.test_challenges import (
    CHECKPOINTS,
    PROGRAM,
    TREE,
    Trace,
    conserved,
    history,
    opening,
    segment_of,
)

FAULT_ROOT = hexed(keccak(b"a fault record"))
LONG = DEFAULT_GAME_PARAMETERS.clock + DEFAULT_GAME_PARAMETERS.extension + 10
WAITS = (60, 3_000, 6_000, LONG)


class ChallengeMoney(RuleBasedStateMachine):
    deployment: Deployment
    base: Driver
    # Events seen over all runs, so that the test can show it exercised what it claims to.
    seen: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from brownie import accounts, chain

        chain.revert()
        self.pool = self.deployment.pool
        self.game = self.deployment.game
        self.jackpot = self.deployment.jackpot
        self.driver = Driver(self.pool, self.base.params, self.base.parties, self.base.clock)
        self.driver.program_root = hexed(PROGRAM.root())
        self.driver.checkpoint_root = hexed(TREE.root)
        self.accounts = [accounts[i] for i in range(10)]
        self.holders = [*self.accounts, self.pool, self.game, self.jackpot]
        self.total = self.balances()
        self.tasks: list[int] = []
        self.secrets: dict[int, bytes] = {}
        self.traces: dict[str, Trace] = {}
        self.challenges: list[int] = []
        self.games: dict[int, tuple[str, str]] = {}  # game -> (defender root, challenger root)
        self.faults: set[int] = set()  # tasks whose first report rests on a fault record

    # --- plumbing -------------------------------------------------------------------------

    def balances(self) -> int:
        return sum(int(h.balance()) for h in self.holders)

    def attempt(self, call: Any) -> Any:
        from brownie.exceptions import VirtualMachineError

        try:
            tx = call()
        except VirtualMachineError:
            return None
        for name in tx.events.keys():  # noqa: SIM118 (brownie's event dict)
            self.seen[name] = self.seen.get(name, 0) + 1
        return tx

    def pick(self, items: list[int], ref: int) -> int | None:
        return items[ref % len(items)] if items else None

    def trace(self, tag: bytes) -> Trace:
        t = Trace(tag)
        self.traces[t.hex] = t
        return t

    # --- rules --------------------------------------------------------------------------------

    @initialize(lie=st.integers(-1, 5))
    def first_task(self, lie: int) -> None:
        """Every run has a task in its challenge window, its report and its proof challenged."""
        self.new_task(False, lie, True)
        self.challenge_report(0, 0, 5)
        self.challenge_proof(0, 1, 6)
        assert len(self.challenges) == 2
        self.new_task(None, -1, False, fault=True)
        self.publish(1, lie + 1, 0)

    @rule(
        forced=st.sampled_from([True, False, None]),
        lie=st.integers(-1, 5),
        passed=st.booleans(),
        fault=st.sampled_from([False, False, True]),
    )
    def new_task(self, forced: bool | None, lie: int, passed: bool, fault: bool = False) -> None:
        d = self.driver
        task_id = d.submit()
        d.claim(task_id)
        d.commit(task_id)
        secret = d.verify_with(task_id, forced)
        self.tasks.append(task_id)
        self.secrets[task_id] = secret
        count = int(self.pool.sampleCount(task_id))
        if fault:
            # A fault report; a lying one (or a forced one) shows another root than the record's.
            self.faults.add(task_id)
            reported = FAULT_ROOT if lie < 0 else hexed(keccak(b"other record"))
            record_roots = [bytes.fromhex(FAULT_ROOT[2:])] * count
            tx = self.attempt(
                lambda: self.pool.reportFault(
                    task_id,
                    reported,
                    hexed(sealed_roots(secret, record_roots)),
                    {"from": d.parties.verifier},
                )
            )
            assert tx is not None
            return
        true = [self.trace(b"true/%d/%d" % (task_id, i)) for i in range(count)]
        shown = list(true)
        if 0 <= lie < count:
            shown[lie] = self.trace(b"lie/%d" % task_id)
        d.report(
            task_id,
            passed,
            secret=secret,
            roots=[t.hex for t in shown],
            true_roots=[t.hex for t in true],
        )

    @rule(ref=st.integers(0, 20), position=st.integers(0, 6), who=st.integers(0, 9))
    def publish(self, ref: int, position: int, who: int) -> None:
        """Anyone publishes the start state of a sampled segment against the task's report
        (refused unless it is a fault report, in its window, not yet voided)."""
        task_id = self.pick(self.tasks, ref)
        if task_id is None or self.driver.status(task_id) != Status.CHALLENGE_WINDOW:
            return
        count = int(self.pool.sampleCount(task_id))
        if position >= count:
            return
        segment = segment_of(self.driver, task_id, position)
        self.attempt(
            lambda: self.pool.publishState(
                task_id,
                position,
                history(self.pool, task_id),
                state_tensors(CHECKPOINTS[segment]),
                [hexed(p) for p in TREE.proof(segment)],
                {"from": self.accounts[who]},
            )
        )

    @rule(ref=st.integers(0, 20), position=st.integers(0, 6), who=st.integers(4, 9))
    def challenge_report(self, ref: int, position: int, who: int) -> None:
        task_id = self.pick(self.tasks, ref)
        if task_id is None or self.driver.status(task_id) != Status.CHALLENGE_WINDOW:
            return
        count = int(self.pool.sampleCount(task_id))
        if position >= count:
            return
        theirs = self.trace(b"challenger/%d/%d/%d" % (task_id, position, who))
        tx = self.attempt(
            lambda: self.pool.challengeReport(
                task_id,
                position,
                theirs.hex,
                history(self.pool, task_id),
                opening(segment_of(self.driver, task_id, position)),
                {"from": self.accounts[who], "value": self.pool.challengeBond()},
            )
        )
        if tx is not None:
            event = tx.events["ChallengeOpened"]
            self.challenges.append(int(event["challengeId"]))
            self.games[int(event["game"])] = (hexed(bytes(event["defenderTrace"])), theirs.hex)

    @rule(ref=st.integers(0, 20), segment=st.integers(0, 9), who=st.integers(4, 9))
    def challenge_proof(self, ref: int, segment: int, who: int) -> None:
        task_id = self.pick(self.tasks, ref)
        if task_id is None:
            return
        theirs = self.trace(b"proof/%d/%d/%d" % (task_id, segment, who))
        tx = self.attempt(
            lambda: self.pool.challengeProof(
                task_id,
                segment,
                theirs.hex,
                {"from": self.accounts[who], "value": self.pool.challengeBond()},
            )
        )
        if tx is not None:
            self.challenges.append(int(tx.events["ChallengeOpened"]["challengeId"]))

    @rule(ref=st.integers(0, 20))
    def answer(self, ref: int) -> None:
        challenge_id = self.pick(self.challenges, ref)
        if challenge_id is None:
            return
        c = self.pool.challenge(challenge_id)
        task_id, segment = int(c["taskId"]), int(c["segment"])
        mine = self.trace(b"answer/%d" % challenge_id)
        tx = self.attempt(
            lambda: self.pool.answerChallenge(
                challenge_id,
                mine.hex,
                0,
                history(self.pool, task_id),
                opening(segment),
                {"from": self.driver.parties.solver},
            )
        )
        if tx is not None:
            game_id = int(tx.events["ChallengeAnswered"]["game"])
            self.games[game_id] = (mine.hex, hexed(bytes(c["challengerTrace"])))

    @rule(ref=st.integers(0, 20), defender=st.booleans())
    def move(self, ref: int, defender: bool) -> None:
        game_id = self.pick(sorted(self.games), ref)
        if game_id is None:
            return
        g = self.game.game(game_id)
        who = g["defender"] if defender else g["challenger"]
        root = self.games[game_id][0 if defender else 1]
        if root not in self.traces:
            return  # a party standing behind a root nobody can open cannot move
        leaves = [hexed(x) for x in self.traces[root].leaves]
        self.attempt(
            lambda: self.game.dissect(
                game_id, leaves, [], {"from": who, "value": self.game.requiredBond()}
            )
        )

    @rule(index=st.integers(0, len(WAITS) - 1))
    def wait(self, index: int) -> None:
        self.driver.clock.advance(WAITS[index])
        self.driver.clock.mine(1)

    @rule(ref=st.integers(0, 20))
    def end_game(self, ref: int) -> None:
        game_id = self.pick(sorted(self.games), ref)
        if game_id is not None:
            self.attempt(lambda: self.game.timeout(game_id, {"from": self.accounts[9]}))

    @rule(ref=st.integers(0, 20), who=st.integers(0, 9))
    def resolve(self, ref: int, who: int) -> None:
        challenge_id = self.pick(self.challenges, ref)
        if challenge_id is not None:
            self.attempt(lambda: self.pool.resolve(challenge_id, {"from": self.accounts[who]}))

    @rule(ref=st.integers(0, 20))
    def reveal(self, ref: int) -> None:
        task_id = self.pick(self.tasks, ref)
        if task_id is None or not self.driver.flags(task_id) & Flag.FORCEABLE:
            return
        roots = self.sealed(task_id)
        self.attempt(lambda: self.driver.reveal(task_id, self.secrets[task_id], roots=roots))

    def sealed(self, task_id: int) -> list[str]:
        count = int(self.pool.sampleCount(task_id))
        if task_id in self.faults:
            return [FAULT_ROOT] * count
        return [Trace(b"true/%d/%d" % (task_id, i)).hex for i in range(count)]

    @rule(ref=st.integers(0, 20), who=st.integers(0, 9))
    def settle(self, ref: int, who: int) -> None:
        task_id = self.pick(self.tasks, ref)
        if task_id is not None:
            self.attempt(lambda: self.pool.settle(task_id, {"from": self.accounts[who]}))

    @rule(ref=st.integers(0, 20), who=st.integers(0, 9))
    def timeout(self, ref: int, who: int) -> None:
        task_id = self.pick(self.tasks, ref)
        if task_id is not None:
            self.attempt(lambda: self.pool.timeout(task_id, {"from": self.accounts[who]}))

    @rule(who=st.integers(0, 9))
    def withdraw(self, who: int) -> None:
        account = self.accounts[who]
        if self.tasks:
            self.attempt(lambda: self.pool.withdraw(self.tasks, {"from": account}))
        self.attempt(lambda: self.pool.withdrawCredit({"from": account}))
        if self.games:
            self.attempt(lambda: self.game.withdraw(sorted(self.games), {"from": account}))
        self.attempt(lambda: self.jackpot.withdraw({"from": account}))

    @rule(who=st.integers(0, 9))
    def sweep(self, who: int) -> None:
        self.attempt(lambda: self.pool.sweepJackpot({"from": self.accounts[who]}))
        if self.games:
            self.attempt(
                lambda: self.game.sweepJackpot(sorted(self.games), {"from": self.accounts[who]})
            )

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_wei_is_accounted_for(self) -> None:
        assert self.balances() == self.total
        conserved(self.pool, self.tasks)

    def teardown(self) -> None:
        """Every game and task to its end; everyone pulls; nothing stays in the pool or game."""
        for _ in range(8):
            self.wait(len(WAITS) - 1)
            for game_id in self.games:
                self.attempt(lambda g=game_id: self.game.timeout(g, {"from": self.accounts[9]}))
            for challenge_id in self.challenges:
                self.attempt(
                    lambda c=challenge_id: self.pool.resolve(c, {"from": self.accounts[9]})
                )
            for task_id in self.tasks:
                status = self.driver.status(task_id)
                if (
                    status == Status.CHALLENGE_WINDOW
                    and self.driver.flags(task_id) & Flag.FORCEABLE
                ):
                    # Reveal inside the reveal window when possible; else settle forfeits.
                    self.attempt(
                        lambda t=task_id: self.driver.reveal(
                            t, self.secrets[t], roots=self.sealed(t)
                        )
                    )
                self.attempt(lambda t=task_id: self.pool.settle(t, {"from": self.accounts[9]}))
                self.attempt(lambda t=task_id: self.pool.timeout(t, {"from": self.accounts[9]}))
            if all(self.driver.status(t) == Status.SETTLED for t in self.tasks):
                break
        assert all(self.driver.status(t) == Status.SETTLED for t in self.tasks)
        for account in self.accounts:
            self.withdraw(self.accounts.index(account))
        self.sweep(9)
        assert self.balances() == self.total
        conserved(self.pool, self.tasks)
        assert int(self.pool.balance()) == int(self.pool.jackpotAccrued()) == 0
        assert int(self.game.balance()) == 0
        assert int(self.jackpot.balance()) == int(self.jackpot.reserve())


@pytest.mark.parametrize(
    "runs", [pytest.param(6, id="fast"), pytest.param(40, id="slow", marks=pytest.mark.slow)]
)
def test_every_wei_with_challenges_and_games(
    deployment: Deployment, driver: Driver, runs: int
) -> None:
    ChallengeMoney.deployment = deployment
    ChallengeMoney.base = driver
    ChallengeMoney.seen = {}
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        ChallengeMoney,
        settings=settings(
            max_examples=runs,
            stateful_step_count=25,
            deadline=None,
            derandomize=runs <= 6,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        ),
    )
    seen = ChallengeMoney.seen
    for event in (
        "ChallengeOpened",
        "GameResolved",
        "ChallengeResolved",
        "ReportDefeated",
        "FaultReported",
        "StatePublished",
    ):
        assert seen.get(event, 0) > 0, (event, sorted(seen.items()))

"""Random action sequences against the deployed pool, checked step by step against a model.

Any account may attempt any call on any task (or on no task) at any time; the model, written
from docs/contracts.md, predicts success or the exact custom error. After every step the
pool's balance equals the escrow, stakes and unpaid payouts of all tasks plus the accrued
jackpot money, every account's balance moved by what the model says, and the touched task
reads as modelled. At the end of every run all tasks are driven to settlement, everyone
withdraws, and the pool must be empty: nothing is stuck.

The fast suite runs at least 1,000 actions; ``make test-all`` runs many more.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from scripts.deploy import ProtocolParameters
from scripts.protocol import Amounts, Mode, Outcome, Payouts, Role, Status, payouts
from tests.contracts.driver import (
    CHECKPOINT_ROOT,
    PROFILE_CID,
    PROOF_CID,
    SECRET_HASH,
    SPEC_CID,
    SPEC_HASH,
    TAU,
    TRACE_ROOTS_ROOT,
    Clock,
    f32,
    held,
    revert_message,
)

FAST_ACTIONS = 1_000
SLOW_ACTIONS = 5_000
STEPS_PER_RUN = 50
UINT80_MAX = 2**80 - 1
NAN = 0x7FC00000


class ExpectedRevertError(Exception):
    """The model's prediction that a call reverts with ``error(args)``."""

    def __init__(self, error: str, *args: Any):
        super().__init__(error, *args)
        self.error = error
        self.args_ = args


@dataclass
class ModelTask:
    """A task as the model sees it."""

    task_id: int
    submitter: str
    bounty: int
    mode: Mode
    status: Status
    deadline: int
    training_window: int
    outcome: Outcome = Outcome.NONE
    solver: str | None = None
    verifier: str | None = None
    profiler: str | None = None
    threshold: int = 0
    segments: int = 0
    randomness_block: int = 0  # block whose hash becomes the randomness; 0 when none pending
    withdrawn: set[Role] = field(default_factory=set)

    def party(self, role: Role) -> str | None:
        return {
            Role.SUBMITTER: self.submitter,
            Role.SOLVER: self.solver,
            Role.VERIFIER: self.verifier,
            Role.PROFILER: self.profiler,
        }[role]


@dataclass
class Model:
    """The whole pool as the model sees it, and the clock the next transaction runs at."""

    params: ProtocolParameters
    now: int
    block: int
    tasks: dict[int, ModelTask] = field(default_factory=dict)
    jackpot_accrued: int = 0
    jackpot_balance: int = 0

    def amounts(self, bounty: int) -> Amounts:
        return Amounts.of(bounty, self.params)

    def profiled(self, task: ModelTask) -> bool:
        return task.mode == Mode.TOLERANT and task.profiler is not None

    def payouts(self, task: ModelTask) -> Payouts:
        return payouts(task.outcome, self.amounts(task.bounty), self.profiled(task), self.params)

    def held(self, task: ModelTask) -> tuple[int, int, int]:
        if task.status == Status.SETTLED:
            paid = self.payouts(task)
            unpaid = sum(paid.for_role(r) for r in Role if r not in task.withdrawn)
            return 0, 0, unpaid
        a = self.amounts(task.bounty)
        staked = a.profiler_stake if self.profiled(task) else 0
        if task.status >= Status.TRAINING:
            staked += a.solver_stake
        if task.verifier is not None:
            staked += a.verifier_stake
        return task.bounty, staked, 0

    def pool_balance(self) -> int:
        return sum(sum(self.held(t)) for t in self.tasks.values()) + self.jackpot_accrued

    def known(self, task_id: int) -> ModelTask:
        task = self.tasks.get(task_id)
        if task is None:
            raise ExpectedRevertError("UnknownTask", task_id)
        return task

    def in_time(self, task_id: int, expected: Status) -> ModelTask:
        task = self.known(task_id)
        if task.status != expected:
            raise ExpectedRevertError("WrongStatus", task_id, int(task.status))
        if self.now > task.deadline:
            raise ExpectedRevertError("DeadlinePassed", task_id, task.deadline)
        return task

    def after_deadline(self, task: ModelTask) -> None:
        if self.now <= task.deadline:
            raise ExpectedRevertError("DeadlineNotReached", task.task_id, task.deadline)

    def settle(self, task: ModelTask, outcome: Outcome) -> None:
        task.status = Status.SETTLED
        task.outcome = outcome
        self.jackpot_accrued += self.payouts(task).jackpot

    def draw(self, task: ModelTask, block: int) -> None:
        """The randomness draw of a transaction in ``block`` (nothing before the source block)."""
        source = task.randomness_block
        if source == 0 or block <= source:
            return
        if block - source <= 256:
            task.randomness_block = 0
        else:
            task.randomness_block = block

    def sample_count(self, task: ModelTask) -> int:
        return min(task.segments, self.params.segmentsToSample)

    def due(self, task: ModelTask, account: str) -> tuple[int, set[Role]]:
        paid = self.payouts(task)
        roles = {
            r
            for r in Role
            if task.party(r) == account
            and r not in task.withdrawn
            and (r != Role.PROFILER or self.profiled(task))
        }
        return sum(paid.for_role(r) for r in roles), roles


class PoolMachine(RuleBasedStateMachine):
    """Drives the deployed pool with arbitrary calls and checks it against the model."""

    pool: Any
    jackpot: Any
    actors: list[Any]
    clock: Clock
    counter: dict[str, int]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from brownie import chain

        chain.revert()  # every run starts from the freshly deployed contracts
        params = ProtocolParameters.from_struct(self.pool.parameters())
        self.model = Model(params, now=self.clock.now(), block=self.clock.block())
        self.closing = False
        assert int(self.pool.balance()) == 0

    # -- plumbing ---------------------------------------------------------------------------

    def actor(self, index: int) -> Any:
        return self.actors[index % len(self.actors)]

    def task_id(self, ref: int) -> int:
        """An existing task most of the time, sometimes the next, unknown, id."""
        return 1 + ref % (len(self.model.tasks) + 1)

    def execute(
        self, sender: Any, value: int, send: Any, predict: Any, touched: list[int] | None = None
    ) -> Any:
        """Predict on a copy of the model, send, compare, and keep the prediction if it held."""
        from brownie.exceptions import VirtualMachineError

        if not self.closing:
            self.counter["actions"] += 1
        trial = copy.deepcopy(self.model)
        trial.block = self.model.block + 1
        try:
            delta = predict(trial)
            error = None
        except ExpectedRevertError as reverted:
            error = reverted
        before = int(sender.balance())
        self.clock.next_at(self.model.now)
        try:
            tx = send()
        except VirtualMachineError as exc:
            assert error is not None, f"unexpected revert: {exc.revert_msg}"
            assert exc.revert_msg == revert_message(error.error, *error.args_)
            tx = None
        else:
            assert error is None, f"expected {error.error}{error.args_}, the call succeeded"
            self.model = trial
        self.model.block = self.clock.block()
        after = int(sender.balance())
        assert after - before == (0 if tx is None else delta - value)
        self.check([t for t in touched or [] if t in self.model.tasks])
        return tx

    def check(self, task_ids: list[int]) -> None:
        """The balance invariant, the jackpot, and the given tasks as modelled."""
        model = self.model
        assert int(self.pool.balance()) == model.pool_balance()
        assert int(self.pool.jackpotAccrued()) == model.jackpot_accrued
        assert int(self.jackpot.balance()) == model.jackpot_balance
        for task_id in task_ids:
            task = model.tasks[task_id]
            onchain = self.pool.task(task_id)
            assert (onchain["status"], onchain["outcome"]) == (task.status, task.outcome)
            assert held(self.pool, task_id) == model.held(task)
            if task.status != Status.SETTLED:
                assert onchain["deadline"] == task.deadline
            assert onchain["randomnessBlock"] == task.randomness_block

    # -- the protocol's calls ---------------------------------------------------------------

    @rule(
        who=st.integers(0, 9),
        bounty=st.sampled_from([10**9, 10**9 + 7, 10**15 + 3, 3 * 10**18 + 1, 10**9 - 1]),
        mode=st.sampled_from([Mode.EXACT, Mode.TOLERANT]),
        window=st.sampled_from([1, 700, 50_000, 50_001, 0]),
        value_error=st.sampled_from([0, 0, 0, 1, -1]),
    )
    def submit(self, who: int, bounty: int, mode: Mode, window: int, value_error: int) -> None:
        sender = self.actor(who)
        params = self.model.params
        fee = bounty * params.protocolFeeBps // 10_000
        value = bounty + fee + value_error
        task_id = len(self.model.tasks) + 1

        def predict(m: Model) -> int:
            if bounty < params.minBounty or bounty > UINT80_MAX:
                raise ExpectedRevertError("BountyOutOfRange", bounty, params.minBounty, UINT80_MAX)
            if value != bounty + fee:
                raise ExpectedRevertError("WrongValue", bounty + fee, value)
            if window == 0 or window > params.maxTrainingWindow:
                raise ExpectedRevertError(
                    "TrainingWindowOutOfRange", window, params.maxTrainingWindow
                )
            exact = mode == Mode.EXACT
            m.tasks[task_id] = ModelTask(
                task_id,
                sender.address,
                bounty,
                mode,
                Status.OPEN if exact else Status.SUBMITTED,
                m.now + (params.claimWindow if exact else params.profileWindow),
                window,
            )
            m.jackpot_accrued += fee
            return 0

        tx = self.execute(
            sender,
            value,
            lambda: self.pool.submit(
                SPEC_CID, SPEC_HASH, bounty, int(mode), window, {"from": sender, "value": value}
            ),
            predict,
            [task_id],
        )
        if tx is not None:
            assert tx.return_value == len(self.model.tasks)

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def cancel(self, who: int, ref: int) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)

        def predict(m: Model) -> int:
            task = m.known(task_id)
            if task.status not in (Status.SUBMITTED, Status.OPEN):
                raise ExpectedRevertError("WrongStatus", task_id, int(task.status))
            if sender.address != task.submitter:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            m.settle(task, Outcome.CANCELLED)
            return 0

        self.execute(
            sender, 0, lambda: self.pool.cancel(task_id, {"from": sender}), predict, [task_id]
        )

    @rule(
        who=st.integers(0, 9),
        ref=st.integers(0, 50),
        threshold=st.sampled_from([TAU, 0, f32(0.2), 0x7F800000, NAN]),
        short=st.booleans(),
    )
    def profile(self, who: int, ref: int, threshold: int, short: bool) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        bounty = self.model.tasks[task_id].bounty if task_id in self.model.tasks else 0
        stake = self.model.amounts(bounty).profiler_stake
        value = stake - 1 if short and stake > 0 else stake

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.SUBMITTED)
            if threshold >= 0x7F800000:
                raise ExpectedRevertError("InvalidThreshold", threshold)
            if value != stake:
                raise ExpectedRevertError("WrongValue", stake, value)
            task.profiler = sender.address
            task.threshold = threshold
            task.status = Status.OPEN
            task.deadline = m.now + m.params.claimWindow
            return 0

        self.execute(
            sender,
            value,
            lambda: self.pool.profile(
                task_id, threshold, PROFILE_CID, {"from": sender, "value": value}
            ),
            predict,
            [task_id],
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), short=st.booleans())
    def claim(self, who: int, ref: int, short: bool) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        bounty = self.model.tasks[task_id].bounty if task_id in self.model.tasks else 0
        stake = self.model.amounts(bounty).solver_stake
        value = 0 if short else stake

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.OPEN)
            if value != stake:
                raise ExpectedRevertError("WrongValue", stake, value)
            task.solver = sender.address
            task.status = Status.TRAINING
            task.deadline = m.now + task.training_window
            return 0

        self.execute(
            sender,
            value,
            lambda: self.pool.claim(task_id, {"from": sender, "value": value}),
            predict,
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), segments=st.sampled_from([1, 3, 4, 9, 0]))
    def commit(self, who: int, ref: int, segments: int) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        # Mostly the solver itself, so that proofs get committed.
        task = self.model.tasks.get(task_id)
        if task is not None and task.solver is not None and who % 3:
            sender = next(a for a in self.actors if a.address == task.solver)

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.TRAINING)
            if sender.address != task.solver:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if segments == 0:
                raise ExpectedRevertError("InvalidSegmentCount", segments)
            task.segments = segments
            task.randomness_block = m.block
            task.status = Status.COMMITTED
            task.deadline = m.now + m.params.verifierClaimWindow
            return 0

        self.execute(
            sender,
            0,
            lambda: self.pool.commit(
                task_id, PROOF_CID, CHECKPOINT_ROOT, segments, {"from": sender}
            ),
            predict,
            [task_id],
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def draw_randomness(self, who: int, ref: int) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)

        def predict(m: Model) -> int:
            task = m.known(task_id)
            if task.status not in (Status.COMMITTED, Status.VERIFYING):
                raise ExpectedRevertError("WrongStatus", task_id, int(task.status))
            if task.randomness_block == 0:
                raise ExpectedRevertError("RandomnessAlreadyDrawn", task_id)
            if m.block <= task.randomness_block:
                raise ExpectedRevertError(
                    "RandomnessNotYetAvailable", task_id, task.randomness_block
                )
            m.draw(task, m.block)
            return 0

        self.execute(
            sender, 0, lambda: self.pool.drawRandomness(task_id, {"from": sender}), predict
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), short=st.booleans())
    def claim_verification(self, who: int, ref: int, short: bool) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        bounty = self.model.tasks[task_id].bounty if task_id in self.model.tasks else 0
        stake = self.model.amounts(bounty).verifier_stake
        value = stake + 1 if short else stake

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.COMMITTED)
            if sender.address == task.solver:
                raise ExpectedRevertError("SolverCannotVerify", task_id, sender.address)
            if value != stake:
                raise ExpectedRevertError("WrongValue", stake, value)
            m.draw(task, m.block)
            task.verifier = sender.address
            task.status = Status.VERIFYING
            task.deadline = m.now + m.params.verifyWindow
            return 0

        self.execute(
            sender,
            value,
            lambda: self.pool.claimVerification(
                task_id, SECRET_HASH, {"from": sender, "value": value}
            ),
            predict,
            [task_id],
        )

    @rule(
        who=st.integers(0, 9),
        ref=st.integers(0, 50),
        kind=st.sampled_from(["pass", "pass", "fail", "nan", "negative", "count"]),
    )
    def report(self, who: int, ref: int, kind: str) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        task = self.model.tasks.get(task_id)
        if task is not None and task.verifier is not None and who % 3:
            sender = next(a for a in self.actors if a.address == task.verifier)
        count = max(1, self.model.sample_count(task)) if task is not None else 1
        threshold = task.threshold if task is not None else 0
        distances = [threshold] * count
        if kind == "fail":
            distances[-1] = threshold + 1
        elif kind == "nan":
            distances[0] = NAN
        elif kind == "negative":
            distances[-1] = 0x80000001
        elif kind == "count":
            distances.append(0)

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.VERIFYING)
            if sender.address != task.verifier:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if task.randomness_block != 0:
                raise ExpectedRevertError("RandomnessPending", task_id)
            if len(distances) != m.sample_count(task):
                raise ExpectedRevertError(
                    "WrongDistanceCount", m.sample_count(task), len(distances)
                )
            for index, distance in enumerate(distances):
                if distance & 0x80000000:
                    raise ExpectedRevertError("InvalidDistance", index, distance)
            passed = all(d <= task.threshold for d in distances)
            task.outcome = Outcome.PASSED if passed else Outcome.FAILED
            task.status = Status.CHALLENGE_WINDOW
            task.deadline = m.now + m.params.challengeWindow
            return 0

        self.execute(
            sender,
            0,
            lambda: self.pool.reportVerification(
                task_id, distances, TRACE_ROOTS_ROOT, {"from": sender}
            ),
            predict,
            [task_id],
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def settle(self, who: int, ref: int) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)

        def predict(m: Model) -> int:
            task = m.known(task_id)
            if task.status != Status.CHALLENGE_WINDOW:
                raise ExpectedRevertError("WrongStatus", task_id, int(task.status))
            m.after_deadline(task)
            m.settle(task, task.outcome)
            return 0

        self.execute(
            sender, 0, lambda: self.pool.settle(task_id, {"from": sender}), predict, [task_id]
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def timeout(self, who: int, ref: int) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        self.execute(
            sender,
            0,
            lambda: self.pool.timeout(task_id, {"from": sender}),
            self.predict_timeout(task_id),
            [task_id],
        )

    def predict_timeout(self, task_id: int) -> Any:
        def predict(m: Model) -> int:
            task = m.known(task_id)
            status = task.status
            if status in (Status.SUBMITTED, Status.OPEN):
                m.after_deadline(task)
                m.settle(task, Outcome.EXPIRED)
            elif status == Status.TRAINING:
                m.after_deadline(task)
                m.settle(task, Outcome.SOLVER_TIMED_OUT)
            elif status == Status.COMMITTED:
                m.after_deadline(task)
                m.settle(task, Outcome.UNVERIFIED)
            elif status == Status.VERIFYING:
                m.after_deadline(task)
                m.jackpot_accrued += m.amounts(task.bounty).verifier_stake
                task.verifier = None
                task.status = Status.COMMITTED
                task.deadline = m.now + m.params.verifierClaimWindow
            else:
                raise ExpectedRevertError("WrongStatus", task_id, int(status))
            return 0

        return predict

    @rule(who=st.integers(0, 9), refs=st.lists(st.integers(0, 50), max_size=4))
    def withdraw(self, who: int, refs: list[int]) -> None:
        sender = self.actor(who)
        task_ids = [self.task_id(r) for r in refs]
        self.execute(
            sender,
            0,
            lambda: self.pool.withdraw(task_ids, {"from": sender}),
            self.predict_withdraw(sender.address, task_ids),
            task_ids,
        )

    def predict_withdraw(self, account: str, task_ids: list[int]) -> Any:
        def predict(m: Model) -> int:
            total = 0
            for task_id in task_ids:
                task = m.tasks.get(task_id)
                if task is None:
                    continue
                if task.status == Status.CHALLENGE_WINDOW and m.now > task.deadline:
                    m.settle(task, task.outcome)
                if task.status != Status.SETTLED:
                    continue
                due, roles = m.due(task, account)
                task.withdrawn |= roles
                total += due
            if total == 0:
                raise ExpectedRevertError("NothingToWithdraw", account)
            return total

        return predict

    @rule(who=st.integers(0, 9))
    def sweep_jackpot(self, who: int) -> None:
        sender = self.actor(who)

        def predict(m: Model) -> int:
            if m.jackpot_accrued == 0:
                raise ExpectedRevertError("NothingToSweep")
            m.jackpot_balance += m.jackpot_accrued
            m.jackpot_accrued = 0
            return 0

        self.execute(sender, 0, lambda: self.pool.sweepJackpot({"from": sender}), predict)

    # -- time -------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 60, 999, 1_001, 2_001, 4_001, 5_001, 60_000]))
    def wait(self, seconds: int) -> None:
        self.counter["actions"] += 1
        self.model.now += seconds

    @rule(ref=st.integers(0, 50), offset=st.sampled_from([0, 1]))
    def wait_for_deadline(self, ref: int, offset: int) -> None:
        """Land exactly on (or one second after) a task's deadline."""
        self.counter["actions"] += 1
        task = self.model.tasks.get(self.task_id(ref))
        if task is not None:
            self.model.now = max(self.model.now, task.deadline + offset)

    @rule(blocks=st.sampled_from([1, 300]))
    def mine(self, blocks: int) -> None:
        """Empty blocks: enough of them put a randomness block out of blockhash's reach."""
        self.counter["actions"] += 1
        self.clock.mine(blocks)
        self.model.block = self.clock.block()
        self.model.now = max(self.model.now, self.clock.now())

    # -- end of a run -----------------------------------------------------------------------

    def teardown(self) -> None:
        """Settle every task through its timeouts, pay everyone, and find the pool empty."""
        self.closing = True
        for _ in range(3):  # a stalled verification takes two timeouts
            for task_id in list(self.model.tasks):
                task = self.model.tasks[task_id]
                if task.status == Status.SETTLED:
                    continue
                self.model.now = max(self.model.now, task.deadline + 1)
                if task.status == Status.CHALLENGE_WINDOW:
                    self.settle(0, task_id - 1)
                else:
                    self.timeout(0, task_id - 1)
        assert all(t.status == Status.SETTLED for t in self.model.tasks.values())
        every = list(self.model.tasks)
        for actor in self.actors:
            if any(self.model.due(t, actor.address)[0] for t in self.model.tasks.values()):
                self.execute(
                    actor,
                    0,
                    lambda a=actor: self.pool.withdraw(every, {"from": a}),
                    self.predict_withdraw(actor.address, every),
                    every,
                )
        if self.model.jackpot_accrued:
            self.sweep_jackpot(0)
        self.check(every)
        assert int(self.pool.balance()) == 0
        assert all(held(self.pool, t) == (0, 0, 0) for t in every)
        self.counter["runs"] += 1


def run_actions(deployment: Any, target: int) -> dict[str, int]:
    """Run the machine until at least ``target`` actions have been checked."""
    from brownie import accounts

    counter = {"actions": 0, "runs": 0}
    PoolMachine.pool = deployment.pool
    PoolMachine.jackpot = deployment.jackpot
    PoolMachine.actors = [accounts[i] for i in range(1, 7)]
    PoolMachine.clock = Clock()
    PoolMachine.counter = counter
    runs = max(1, target // STEPS_PER_RUN)
    machine_settings = settings(
        max_examples=runs,
        stateful_step_count=STEPS_PER_RUN,
        deadline=None,
        # A failing sequence on a chain is replayed as found: shrinking it would take hours.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    while counter["actions"] < target:
        run_state_machine_as_test(PoolMachine, settings=machine_settings)  # type: ignore[no-untyped-call]
    return counter


def test_random_actions_keep_the_books_balanced(deployment: Any) -> None:
    counter = run_actions(deployment, FAST_ACTIONS)
    assert counter["actions"] >= FAST_ACTIONS
    assert counter["runs"] >= 1


@pytest.mark.slow
def test_many_random_actions_keep_the_books_balanced(deployment: Any) -> None:
    counter = run_actions(deployment, SLOW_ACTIONS)
    assert counter["actions"] >= SLOW_ACTIONS

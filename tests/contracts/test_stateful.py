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
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)

from agents.commitment import state_tensors
from agents.dispute.tree import MerkleLevels
from scripts.deploy import ProtocolParameters
from scripts.protocol import (
    Amounts,
    Flag,
    Mode,
    Outcome,
    Payouts,
    Role,
    Status,
    forced_error,
    payouts,
    profile_rejection,
    randomness,
    sealed_roots,
    secret_hash,
    seed_hash,
)
from tests.contracts.driver import (
    CHECKPOINT_ROOT,
    PROFILE_CID,
    PROGRAM_ROOT,
    PROOF_CID,
    SPEC_CID,
    SPEC_HASH,
    TAU,
    Clock,
    f32,
    held,
    hexed,
    last_folded,
    revert_message,
    trace_roots,
)
from tests.contracts.test_challenges import CHECKPOINTS, STATES
from tests.contracts.test_challenges import history as challenge_history

FAST_ACTIONS = 1_000
SLOW_ACTIONS = 5_000
STEPS_PER_RUN = 50
UINT80_MAX = 2**80 - 1
NAN = 0x7FC00000
BOUND = f32(0.5)


def seed_of(task_id: int) -> bytes:
    return keccak(b"seed/" + task_id.to_bytes(8, "big"))


def secret_of(task_id: int, round_: int, account: str) -> bytes:
    return keccak(b"secret/" + task_id.to_bytes(8, "big") + bytes([round_]) + account.encode())


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
    segments: int
    sampled: int
    bound: int
    outcome: Outcome = Outcome.NONE
    solver: str | None = None
    verifier: str | None = None
    profiler: str | None = None
    threshold: int = 0
    review: int = 0  # until when the submitter may reject the profile (0: none, or accepted)
    flags: int = 0
    rounds: int = 0
    randomness: bytes = b""
    secret: bytes = b""  # the current verifier's forced-error secret
    claim_block: int = 0  # the block that holds the current verifier's claim
    claim_hash: bytes = b""  # its hash (read from the chain once mined), which decides forcing
    fault_round: int = 0  # the round whose report was a fault report (reportFault)
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
    # Owed outside any task (a rejected profiler's stake and fee), by account.
    credits: dict[str, int] = field(default_factory=dict)

    def amounts(self, bounty: int) -> Amounts:
        return Amounts.of(bounty, self.params)

    def profiled(self, task: ModelTask) -> bool:
        return task.mode == Mode.TOLERANT and task.profiler is not None

    def payouts(self, task: ModelTask) -> Payouts:
        forfeited = bool(task.flags & Flag.FORFEITED)
        return payouts(
            task.outcome,
            self.amounts(task.bounty),
            self.profiled(task),
            self.params,
            forfeited,
            task.flags,
            # Only the first claim comes before the randomness: its verifier pays the tax.
            taxed=task.rounds == 1,
        )

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
        tasks = sum(sum(self.held(t)) for t in self.tasks.values())
        return tasks + self.jackpot_accrued + sum(self.credits.values())

    def under_review(self, task_id: int, sender: str) -> ModelTask:
        """The task, open with a profile ``sender``, its submitter, may accept or reject."""
        task = self.known(task_id)
        if task.status != Status.OPEN:
            raise ExpectedRevertError("WrongStatus", task_id, int(task.status))
        if task.mode != Mode.TOLERANT or task.review == 0:
            raise ExpectedRevertError("NoProfileUnderReview", task_id)
        if self.now > task.review:
            raise ExpectedRevertError("DeadlinePassed", task_id, task.review)
        if sender != task.submitter:
            raise ExpectedRevertError("NotAuthorized", task_id, sender)
        return task

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

    def verdict_end(self, task: ModelTask) -> int:
        """When a reported verdict may be settled: after its window (and the reveal window)."""
        return task.deadline + (self.params.revealWindow if task.flags & Flag.FORCEABLE else 0)

    def settle_verdict(self, task: ModelTask) -> None:
        if task.flags & Flag.FORCEABLE:
            task.flags |= Flag.FORFEITED
        self.settle(task, task.outcome)

    def sample_count(self, task: ModelTask) -> int:
        return min(task.segments, task.sampled + 2)

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
            name = f"ok:{tx.fn_name}"
            self.counter[name] = self.counter.get(name, 0) + 1
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
        assert int(self.pool.challengeFunds()[0]) == sum(model.credits.values())
        for task_id in task_ids:
            task = model.tasks[task_id]
            onchain = self.pool.task(task_id)
            assert (onchain["status"], onchain["outcome"]) == (task.status, task.outcome)
            assert held(self.pool, task_id) == model.held(task)
            if task.status != Status.SETTLED:
                assert onchain["deadline"] == task.deadline
            assert (onchain["flags"], onchain["rounds"]) == (task.flags, task.rounds)
            assert onchain["reviewDeadline"] == task.review

    # -- the protocol's calls ---------------------------------------------------------------

    @rule(
        who=st.integers(0, 9),
        bounty=st.sampled_from([10**9, 10**9 + 7, 10**15 + 3, 3 * 10**18 + 1]),
        mode=st.sampled_from([Mode.EXACT, Mode.TOLERANT]),
        window=st.sampled_from([1, 700, 50_000]),
        shape=st.sampled_from([(1, 3), (4, 3), (10, 4), (10, 3)]),
        # Most submissions are valid, so that tasks move on; the rest break one term each.
        bad=st.sampled_from(
            ["none"] * 7
            + ["bounty", "value+", "value-", "window", "window0"]
            + ["segments", "sampled", "bound", "bound0"]
        ),
    )
    def submit(
        self,
        who: int,
        bounty: int,
        mode: Mode,
        window: int,
        shape: tuple[int, int],
        bad: str,
    ) -> None:
        sender = self.actor(who)
        params = self.model.params
        segments, sampled = shape
        exact = mode == Mode.EXACT
        bound = 0 if exact else BOUND
        bounty = params.minBounty - 1 if bad == "bounty" else bounty
        window = {"window": 50_001, "window0": 0}.get(bad, window)
        segments = 0 if bad == "segments" else segments
        sampled = params.minSampledSegments - 1 if bad == "sampled" else sampled
        if bad == "bound":
            bound = f32(0.25) if exact else params.maxThreshold + 1
        elif bad == "bound0" and not exact:
            bound = 0
        fee = bounty * params.protocolFeeBps // 10_000
        value = bounty + fee + {"value+": 1, "value-": -1}.get(bad, 0)
        task_id = len(self.model.tasks) + 1
        terms = (SPEC_HASH, PROGRAM_ROOT, bounty, int(mode), window, segments, sampled, bound)

        def predict(m: Model) -> int:
            if bounty < params.minBounty or bounty > UINT80_MAX:
                raise ExpectedRevertError("BountyOutOfRange", bounty, params.minBounty, UINT80_MAX)
            if value != bounty + fee:
                raise ExpectedRevertError("WrongValue", bounty + fee, value)
            if window == 0 or window > params.maxTrainingWindow:
                raise ExpectedRevertError(
                    "TrainingWindowOutOfRange", window, params.maxTrainingWindow
                )
            if segments == 0:
                raise ExpectedRevertError("InvalidSegmentCount", segments)
            if sampled < params.minSampledSegments:
                raise ExpectedRevertError("InvalidSampleCount", sampled, params.minSampledSegments)
            if (bound != 0) if exact else (bound == 0 or bound > params.maxThreshold):
                raise ExpectedRevertError("InvalidThresholdBound", bound, params.maxThreshold)
            m.tasks[task_id] = ModelTask(
                task_id,
                sender.address,
                bounty,
                mode,
                Status.OPEN if exact else Status.SUBMITTED,
                m.now + (params.claimWindow if exact else params.profileWindow),
                window,
                segments,
                sampled,
                bound,
            )
            m.jackpot_accrued += fee
            return 0

        tx = self.execute(
            sender,
            value,
            lambda: self.pool.submit(SPEC_CID, terms, {"from": sender, "value": value}),
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
        threshold=st.sampled_from([TAU, 0, f32(0.2), BOUND + 1, 0x7F800000, NAN]),
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
            if threshold > task.bound:
                raise ExpectedRevertError("ThresholdAboveBound", threshold, task.bound)
            if value != stake:
                raise ExpectedRevertError("WrongValue", stake, value)
            task.profiler = sender.address
            task.threshold = threshold
            task.status = Status.OPEN
            task.review = m.now + m.params.profileReviewWindow
            task.deadline = task.review + m.params.claimWindow
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
            if task.mode == Mode.TOLERANT and m.now <= task.review:
                raise ExpectedRevertError("ProfileUnderReview", task_id, task.review)
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

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def accept_profile(self, who: int, ref: int) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        sender = self.party_sender(who, task.submitter if task else None)

        def predict(m: Model) -> int:
            m.under_review(task_id, sender.address).review = 0
            return 0

        accept = lambda: self.pool.acceptProfile(task_id, {"from": sender})  # noqa: E731
        if self.execute(sender, 0, accept, predict, [task_id]) is not None:
            self.counter["accepted"] = self.counter.get("accepted", 0) + 1

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), off=st.sampled_from([0, 0, 0, -1, 1]))
    def reject_profile(self, who: int, ref: int, off: int) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        sender = self.party_sender(who, task.submitter if task else None)
        amounts = self.model.amounts(task.bounty if task else 0)
        fee = amounts.profile_rejection_fee
        value = max(0, fee + off)

        def predict(m: Model) -> int:
            task = m.under_review(task_id, sender.address)
            if value != fee:
                raise ExpectedRevertError("WrongValue", fee, value)
            assert task.profiler is not None
            moved = profile_rejection(amounts)
            m.credits[task.profiler] = m.credits.get(task.profiler, 0) + moved.profiler
            m.jackpot_accrued += moved.jackpot
            task.profiler = None
            task.threshold = 0
            task.review = 0
            task.status = Status.SUBMITTED
            task.deadline = m.now + m.params.profileWindow
            return 0

        tx = self.execute(
            sender,
            value,
            lambda: self.pool.rejectProfile(task_id, {"from": sender, "value": value}),
            predict,
            [task_id],
        )
        if tx is not None:
            self.counter["rejected"] = self.counter.get("rejected", 0) + 1

    @rule(who=st.integers(0, 9))
    def withdraw_credit(self, who: int) -> None:
        sender = self.actor(who)

        def predict(m: Model) -> int:
            amount = m.credits.pop(sender.address, 0)
            if amount == 0:
                raise ExpectedRevertError("NothingToWithdraw", sender.address)
            return amount

        self.execute(sender, 0, lambda: self.pool.withdrawCredit({"from": sender}), predict)

    def party_sender(self, who: int, account: str | None) -> Any:
        """Mostly the named party itself, so that the lifecycle moves on."""
        if account is not None and who % 3:
            return next(a for a in self.actors if a.address == account)
        return self.actor(who)

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50))
    def commit(self, who: int, ref: int) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        sender = self.party_sender(who, task.solver if task else None)
        seed = hexed(seed_hash(seed_of(task_id)))
        # The checkpoint root of real states, so that a start state can be published.
        root = hexed(checkpoint_tree(task.segments).root) if task else CHECKPOINT_ROOT

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.TRAINING)
            if sender.address != task.solver:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            task.status = Status.COMMITTED
            task.deadline = m.now + m.params.verifierClaimWindow
            return 0

        self.execute(
            sender,
            0,
            lambda: self.pool.commit(task_id, PROOF_CID, root, seed, {"from": sender}),
            predict,
            [task_id],
        )

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), short=st.booleans())
    def claim_verification(self, who: int, ref: int, short: bool) -> None:
        sender, task_id = self.actor(who), self.task_id(ref)
        task = self.model.tasks.get(task_id)
        bounty = task.bounty if task is not None else 0
        stake = self.model.amounts(bounty).verifier_stake
        value = stake + 1 if short else stake
        secret = secret_of(task_id, task.rounds if task else 0, sender.address)

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.COMMITTED)
            if sender.address == task.solver:
                raise ExpectedRevertError("SolverCannotVerify", task_id, sender.address)
            if sender.address == task.submitter:
                raise ExpectedRevertError("SubmitterCannotVerify", task_id, sender.address)
            if value != stake:
                raise ExpectedRevertError("WrongValue", stake, value)
            drawn = task.flags & Flag.RANDOMNESS
            task.verifier = sender.address
            task.secret = secret
            task.status = Status.VERIFYING
            task.rounds += 1
            task.claim_block = m.block
            window = m.params.verifyWindow if drawn else m.params.seedRevealWindow
            task.deadline = m.now + window
            return 0

        tx = self.execute(
            sender,
            value,
            lambda: self.pool.claimVerification(
                task_id, hexed(secret_hash(secret)), {"from": sender, "value": value}
            ),
            predict,
            [task_id],
        )
        if tx is not None:
            from brownie import web3

            claimed = self.model.tasks[task_id]
            assert int(tx.block_number) == claimed.claim_block
            claimed.claim_hash = bytes(web3.eth.get_block(claimed.claim_block)["hash"])

    @rule(
        who=st.integers(0, 9), ref=st.integers(0, 50), wrong=st.sampled_from([False] * 4 + [True])
    )
    def reveal_seed(self, who: int, ref: int, wrong: bool) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        if task is None or task.status != Status.VERIFYING or task.flags & Flag.RANDOMNESS:
            return  # needs the events of a task waiting for its seed
        sender = self.party_sender(who, task.solver)
        seed = keccak(b"wrong") if wrong else seed_of(task_id)
        commit = last_folded(self.pool, task_id, "ProofCommitted")
        claim = last_folded(self.pool, task_id, "VerificationClaimed")

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.VERIFYING)
            if sender.address != task.solver:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if wrong:
                raise ExpectedRevertError("WrongSeed", task_id)
            task.randomness = randomness(seed, secret_hash(task.secret), task_id)
            # Past blockhash's reach the seed still counts; the claim is then not forceable.
            in_reach = m.block - task.claim_block <= 256
            if not in_reach:
                task.claim_hash = bytes(32)
            forceable = Flag.FORCEABLE if m.params.forcedErrorPpm and in_reach else 0
            task.flags |= Flag.RANDOMNESS | forceable
            task.deadline = m.now + m.params.verifyWindow
            return 0

        self.execute(
            sender,
            0,
            lambda: self.pool.revealSeed(
                task_id,
                hexed(seed),
                hexed(commit.before),
                commit.data,
                claim.data,
                {"from": sender},
            ),
            predict,
            [task_id],
        )

    @rule(
        who=st.integers(0, 9),
        ref=st.integers(0, 50),
        kind=st.sampled_from(["pass", "pass", "fail", "extra", "nan", "negative", "count"]),
        err=st.booleans(),
    )
    def report(self, who: int, ref: int, kind: str, err: bool) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        sender = self.party_sender(who, task.verifier if task else None)
        count = max(1, self.model.sample_count(task)) if task is not None else 1
        threshold = task.threshold if task is not None else 0
        distances = [threshold] * count
        extras: tuple[list[int], list[int]] = ([], [])
        if kind == "fail":
            distances[-1] = threshold + 1
        elif kind == "extra" and task is not None:
            extras = ([task.segments - 1], [threshold + 1])
        elif kind == "nan":
            distances[0] = NAN
        elif kind == "negative":
            distances[-1] = 0x80000001
        elif kind == "count":
            distances.append(0)
        # The seal holds the true roots; ``err`` reports others (a forced verifier must).
        secret = task.secret if task is not None and task.secret else b"\x01" * 32
        count_roots = len(distances) + len(extras[0])
        true = trace_roots(count_roots, b"true")
        reported = trace_roots(count_roots, b"other") if err else true
        seal = hexed(sealed_roots(secret, [bytes.fromhex(r[2:]) for r in true]))

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.VERIFYING)
            if sender.address != task.verifier:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if not task.flags & Flag.RANDOMNESS:
                raise ExpectedRevertError("RandomnessPending", task_id)
            if len(distances) != m.sample_count(task):
                raise ExpectedRevertError(
                    "WrongDistanceCount", m.sample_count(task), len(distances)
                )
            every = distances + extras[1]
            for index, distance in enumerate(every):
                if distance & 0x80000000:
                    raise ExpectedRevertError("InvalidDistance", index, distance)
            passed = all(d <= task.threshold for d in every)
            task.outcome = Outcome.PASSED if passed else Outcome.FAILED
            task.status = Status.CHALLENGE_WINDOW
            task.deadline = m.now + m.params.challengeWindow
            return 0

        self.execute(
            sender,
            0,
            lambda: self.pool.reportVerification(
                task_id, (distances, extras[0], extras[1], reported, seal), {"from": sender}
            ),
            predict,
            [task_id],
        )

    def _verifying(self) -> bool:
        return any(
            t.status == Status.VERIFYING and t.flags & Flag.RANDOMNESS
            for t in self.model.tasks.values()
        )

    def _faulted(self) -> bool:
        return any(
            t.status == Status.CHALLENGE_WINDOW and t.fault_round == t.rounds
            for t in self.model.tasks.values()
        )

    # Both rules wait for a task they can act on, so that they take no steps from the rules
    # that move tasks along (a run reaches a drawn randomness a few times per 1,000 actions).
    @precondition(_verifying)
    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), forced=st.booleans())
    def report_fault(self, who: int, ref: int, forced: bool) -> None:
        """A Fail resting on a fault record: every sampled position +inf and one root (another
        one than the sealed roots when ``forced``: the reveal then finds the report erred)."""
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        sender = self.party_sender(who, task.verifier if task else None)
        secret = task.secret if task is not None and task.secret else b"\x01" * 32
        count = max(1, self.model.sample_count(task)) if task is not None else 1
        true = trace_roots(count, b"true")
        shown = trace_roots(1, b"other")[0] if forced else true[0]
        seal = hexed(sealed_roots(secret, [bytes.fromhex(r[2:]) for r in true]))

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.VERIFYING)
            if sender.address != task.verifier:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if not task.flags & Flag.RANDOMNESS:
                raise ExpectedRevertError("RandomnessPending", task_id)
            task.outcome = Outcome.FAILED
            task.status = Status.CHALLENGE_WINDOW
            task.deadline = m.now + m.params.challengeWindow
            task.fault_round = task.rounds
            return 0

        tx = self.execute(
            sender,
            0,
            lambda: self.pool.reportFault(task_id, shown, seal, {"from": sender}),
            predict,
            [task_id],
        )
        self.count("reportFault", tx)

    @precondition(_faulted)
    @rule(
        who=st.integers(0, 9),
        ref=st.integers(0, 50),
        position=st.integers(0, 6),
        wrong=st.sampled_from([False] * 3 + [True]),
    )
    def publish(self, who: int, ref: int, position: int, wrong: bool) -> None:
        """Anyone publishes the start state of the sampled segment at ``position`` against the
        task's report (``wrong``: another checkpoint than that segment's)."""
        from agents.learning.selection import sample_segments

        sender, task_id = self.actor(who), self.task_id(ref)
        task = self.model.tasks.get(task_id)
        if task is None or task.status != Status.CHALLENGE_WINDOW or not task.randomness:
            return  # needs the task's events, its randomness and its committed states
        count = self.model.sample_count(task)
        sample = sample_segments(task.randomness, task.segments, task.sampled)
        segment = sample[position] if position < count else 0
        shown = segment + 1 if wrong else segment
        tree = checkpoint_tree(task.segments)

        def predict(m: Model) -> int:
            task = m.in_time(task_id, Status.CHALLENGE_WINDOW)
            if task.fault_round != task.rounds:
                raise ExpectedRevertError("NotFaultReport", task_id)
            if position >= count:
                raise ExpectedRevertError("InvalidPosition", position, count)
            if wrong:
                raise ExpectedRevertError("InvalidCheckpoint", segment)
            # Void without a slash: the verifier's stake is credited back, its fee stays.
            verifier = task.verifier
            assert verifier is not None
            stake = m.amounts(task.bounty).verifier_stake
            m.credits[verifier] = m.credits.get(verifier, 0) + stake
            task.flags &= ~(Flag.FORCEABLE | Flag.FORFEITED)
            task.verifier = None
            if task.rounds >= m.params.maxVerificationRounds:
                # No round left, and nobody can tell who lied: bounty and solver stake back.
                m.settle(task, Outcome.UNVERIFIED)
            else:
                task.status = Status.COMMITTED
                task.deadline = m.now + m.params.verifierClaimWindow
            return 0

        tx = self.execute(
            sender,
            0,
            lambda: self.pool.publishState(
                task_id,
                position,
                challenge_history(self.pool, task_id),
                state_tensors(CHECKPOINTS[shown]),
                [hexed(p) for p in tree.proof(segment)],
                {"from": sender},
            ),
            predict,
            [task_id],
        )
        self.count("publishState", tx)

    def count(self, name: str, tx: Any) -> None:
        """Count a call that reached a half brownie names no function of (``ok:None``)."""
        if tx is not None and not self.closing:
            self.counter[f"ok:{name}"] = self.counter.get(f"ok:{name}", 0) + 1

    @rule(who=st.integers(0, 9), ref=st.integers(0, 50), lie=st.sampled_from([False] * 4 + [True]))
    def reveal(self, who: int, ref: int, lie: bool) -> None:
        task_id = self.task_id(ref)
        task = self.model.tasks.get(task_id)
        if (
            task is None
            or task.status != Status.CHALLENGE_WINDOW
            or not task.flags & Flag.FORCEABLE
        ):
            return  # needs the events of a report that may be forced
        sender = self.party_sender(who, task.verifier)
        secret = keccak(b"not the secret") if lie else task.secret
        claim = last_folded(self.pool, task_id, "VerificationClaimed")
        drawn = last_folded(self.pool, task_id, "RandomnessDrawn")
        report = last_folded(self.pool, task_id, "VerificationReported")
        reported = ["0x" + bytes(r).hex() for r in report.args["traceRoots"]]
        true = trace_roots(len(reported), b"true")
        forced = forced_error(
            task.secret, task.randomness, task.claim_hash, self.model.params.forcedErrorPpm
        )

        def predict(m: Model) -> int:
            task = m.known(task_id)
            last = task.deadline + m.params.revealWindow
            m.after_deadline(task)
            if m.now > last:
                raise ExpectedRevertError("DeadlinePassed", task_id, last)
            if sender.address != task.verifier:
                raise ExpectedRevertError("NotAuthorized", task_id, sender.address)
            if lie:
                raise ExpectedRevertError("WrongSecret", task_id)
            erred = reported != true
            task.flags &= ~Flag.FORCEABLE
            if forced and erred:
                # Nobody challenged it here: the pool sweeps what it accrued to the jackpot and
                # has it award the verifier (a pulled award: no balance moves yet).
                task.deadline = m.now + m.params.challengeWindow
                m.jackpot_balance += m.jackpot_accrued
                m.jackpot_accrued = 0
                return 0
            if forced or erred:
                task.flags |= Flag.FORFEITED
            m.settle(task, task.outcome)
            # The reveal pushes every party its payout (all actors accept payments).
            paid = m.payouts(task)
            received = 0
            for role in Role:
                if paid.for_role(role) and (role != Role.PROFILER or m.profiled(task)):
                    task.withdrawn.add(role)
                    if task.party(role) == sender.address:
                        received += paid.for_role(role)
            return received

        self.execute(
            sender,
            0,
            lambda: self.pool.revealVerification(
                task_id,
                hexed(secret),
                true,
                hexed(claim.before),
                claim.data,
                drawn.data,
                report.data,
                {"from": sender},
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
            end = m.verdict_end(task)
            if m.now <= end:
                raise ExpectedRevertError("DeadlineNotReached", task_id, end)
            m.settle_verdict(task)
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
            elif status == Status.VERIFYING and not task.flags & Flag.RANDOMNESS:
                m.after_deadline(task)
                m.settle(task, Outcome.SEED_WITHHELD)
            elif status == Status.VERIFYING:
                m.after_deadline(task)
                m.jackpot_accrued += m.amounts(task.bounty).verifier_stake
                task.verifier = None
                task.flags &= ~Flag.FORCEABLE
                if task.rounds >= m.params.maxVerificationRounds:
                    m.settle(task, Outcome.UNVERIFIED)
                else:
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
                if task.status == Status.CHALLENGE_WINDOW and m.now > m.verdict_end(task):
                    m.settle_verdict(task)
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

    @rule(ref=st.integers(0, 50), choice=st.integers(0, 3), steps=st.integers(1, 7))
    def advance(self, ref: int, choice: int, steps: int) -> None:
        """The next ``steps`` steps of a task's happy path, by the right parties with valid inputs
        (random calls alone rarely carry a task through its whole lifecycle)."""
        if not self.model.tasks:
            return
        task_id = 1 + ref % len(self.model.tasks)
        for _ in range(steps):
            before = (self.model.tasks[task_id].status, self.model.tasks[task_id].flags)
            self.step(task_id, choice)
            if (self.model.tasks[task_id].status, self.model.tasks[task_id].flags) == before:
                break

    def step(self, task_id: int, choice: int) -> None:
        task = self.model.tasks[task_id]
        index = {a.address: i for i, a in enumerate(self.actors)}
        others = [
            i for i, a in enumerate(self.actors) if a.address not in (task.solver, task.submitter)
        ]
        r = task_id - 1
        if task.status == Status.SUBMITTED:
            self.profile(choice, r, TAU, False)
        elif task.status == Status.OPEN and task.review and self.model.now <= task.review:
            # The submitter reviews the profile: accepts it or rejects it, as often.
            if choice < 2:
                self.reject_profile(1, r, 0)
            else:
                self.accept_profile(1, r)
        elif task.status == Status.OPEN:
            self.claim(choice, r, False)
        elif task.status == Status.TRAINING:
            self.commit(1, r)
        elif task.status == Status.COMMITTED:
            self.claim_verification(others[choice % len(others)], r, False)
        elif task.status == Status.VERIFYING and not task.flags & Flag.RANDOMNESS:
            self.reveal_seed(1, r, False)
        elif task.status == Status.VERIFYING:
            forced = bool(task.flags & Flag.FORCEABLE) and forced_error(
                task.secret, task.randomness, task.claim_hash, self.model.params.forcedErrorPpm
            )
            self.report(1, r, "fail" if choice == 0 else "pass", forced or choice == 3)
        elif (
            task.status == Status.CHALLENGE_WINDOW
            and task.flags & Flag.FORCEABLE
            and self.model.now <= task.deadline + self.model.params.revealWindow
        ):
            self.model.now = max(self.model.now, task.deadline + 1)
            self.reveal(1, r, False)
        assert index  # every party is one of the actors

    # -- time -------------------------------------------------------------------------------

    @rule(
        seconds=st.sampled_from([1, 60, 801, 999, 1_001, 1_501, 2_001, 2_501, 4_001, 5_001, 60_000])
    )
    def wait(self, seconds: int) -> None:
        self.counter["actions"] += 1
        self.model.now += seconds

    @rule(ref=st.integers(0, 50), offset=st.sampled_from([0, 1]), reveal=st.booleans())
    def wait_for_deadline(self, ref: int, offset: int, reveal: bool) -> None:
        """Land on (or one second after) a task's deadline, or the end of its reveal window."""
        self.counter["actions"] += 1
        task = self.model.tasks.get(self.task_id(ref))
        if task is not None:
            end = self.model.verdict_end(task) if reveal else task.deadline
            self.model.now = max(self.model.now, end + offset)

    @rule(blocks=st.sampled_from([1, 300]))
    def mine(self, blocks: int) -> None:
        """Empty blocks: waiting past blockhash's reach must change nothing."""
        self.counter["actions"] += 1
        self.clock.mine(blocks)
        self.model.block = self.clock.block()
        self.model.now = max(self.model.now, self.clock.now())

    # -- end of a run -----------------------------------------------------------------------

    def teardown(self) -> None:
        """Settle every task through its timeouts, pay everyone, and find the pool empty."""
        self.closing = True
        for _ in range(2 + self.model.params.maxVerificationRounds):
            for task_id in list(self.model.tasks):
                task = self.model.tasks[task_id]
                if task.status == Status.SETTLED:
                    continue
                if task.status == Status.CHALLENGE_WINDOW:
                    self.model.now = max(self.model.now, self.model.verdict_end(task) + 1)
                    self.settle(0, task_id - 1)
                else:
                    self.model.now = max(self.model.now, task.deadline + 1)
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
        for index, actor in enumerate(self.actors):
            if self.model.credits.get(actor.address):
                self.withdraw_credit(index)
        if self.model.jackpot_accrued:
            self.sweep_jackpot(0)
        self.check(every)
        assert int(self.pool.balance()) == 0
        assert all(held(self.pool, t) == (0, 0, 0) for t in every)
        self.counter["runs"] += 1


@functools.cache
def checkpoint_tree(segments: int) -> MerkleLevels:
    """The checkpoint tree of a proof of ``segments`` segments over ``CHECKPOINTS``."""
    return MerkleLevels(STATES[: segments + 1])


#: The calls a run must have carried through at least once: without them the runs exercised
#: refusals only. Random runs reach them by chance (a run of 1,000 actions reached no seed
#: reveal once in CI), so the machine keeps running until they happened, up to a bound.
LIFECYCLE = ("ok:revealSeed", "ok:reportVerification")
#: How many times its action target a run may take to reach every call of ``LIFECYCLE``.
COVERAGE_BOUND = 4


def run_actions(deployment: Any, target: int) -> dict[str, int]:
    """Run the machine until at least ``target`` actions have been checked and every call of
    ``LIFECYCLE`` succeeded at least once, or until ``COVERAGE_BOUND`` times ``target``."""
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

    def covered() -> bool:
        return all(counter.get(name, 0) >= 1 for name in LIFECYCLE)

    while counter["actions"] < target or (
        not covered() and counter["actions"] < COVERAGE_BOUND * target
    ):
        run_state_machine_as_test(PoolMachine, settings=machine_settings)  # type: ignore[no-untyped-call]
    return counter


def test_random_actions_keep_the_books_balanced(deployment: Any) -> None:
    counter = run_actions(deployment, FAST_ACTIONS)
    assert counter["actions"] >= FAST_ACTIONS
    assert counter["runs"] >= 1
    # The runs carried tasks through the whole lifecycle, not only through refusals.
    missing = [name for name in LIFECYCLE if counter.get(name, 0) < 1]
    assert not missing, counter
    # How many profiles were accepted or rejected depends on the draw (none in some runs of
    # 1,000 actions): tests/contracts/test_profile_claim.py plays both, every time. So do fault
    # reports and publications (a run reaches a drawn randomness a few times per 1,000
    # actions): tests/contracts/test_challenge_money.py publishes against one in every run.


@pytest.mark.slow
def test_many_random_actions_keep_the_books_balanced(deployment: Any) -> None:
    counter = run_actions(deployment, SLOW_ACTIONS)
    assert counter["actions"] >= SLOW_ACTIONS

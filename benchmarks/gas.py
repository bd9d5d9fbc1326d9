"""Gas of every lifecycle call and of whole task paths, from transaction receipts on anvil.

Each figure is a receipt's ``gasUsed`` (the 21,000 intrinsic gas of a transaction
included). Gas is deterministic, so there is no baseline to compare with in the same run:
the reference is the goal, ``happy_path_total`` <= 400,000 gas.

Paths, one task each, with realistic CIDs (CIDv1, 59 characters):

- ``happy_path``: an exact task, submit -> claim -> commit -> claimVerification ->
  reportVerification -> the solver's withdrawal, which settles the task once the challenge
  window is over -> the verifier's withdrawal. This is how parties settle in practice.
- ``happy_path_with_settle_call``: the same with a separate ``settle`` call before the two
  withdrawals (a third party settling).
- ``tolerant_path``: a profiled task; adds the profile and the profiler's withdrawal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scripts.deploy import DEFAULT_PARAMETERS, deploy
from scripts.network import attached, local_devnet
from scripts.protocol import Amounts, Mode

GOAL = 400_000
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
SPEC_HASH = "0x" + "5e" * 32
ROOT = "0x" + "c4" * 32
SECRET_HASH = "0x" + "5c" * 32
THRESHOLD = 0x3D4CCCCD  # 0.05 as binary32
SEGMENTS = 64
TRAINING_WINDOW = 3_600


class Round:
    """Drives tasks with fixed parties and records each transaction's gas."""

    def __init__(self, pool: Any, accounts: Any):
        self.pool = pool
        self.submitter, self.solver, self.verifier, self.profiler, self.keeper = accounts[1:6]
        self.amounts = Amounts.of(10**18, DEFAULT_PARAMETERS)

    def gas(self, send: Callable[[], Any]) -> int:
        tx = send()
        if tx.status != 1:
            raise RuntimeError(f"{tx.fn_name} reverted: {tx.revert_msg}")
        return int(tx.gas_used)

    def submit(self, mode: Mode) -> tuple[int, int]:
        tx = self.pool.submit(
            CID,
            SPEC_HASH,
            self.amounts.bounty,
            int(mode),
            TRAINING_WINDOW,
            {"from": self.submitter, "value": self.amounts.bounty + self.amounts.protocol_fee},
            silent=True,
        )
        return int(tx.return_value), int(tx.gas_used)

    def profile(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.profile(
                task_id,
                THRESHOLD,
                CID,
                {"from": self.profiler, "value": self.amounts.profiler_stake},
                silent=True,
            )
        )

    def claim(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.claim(
                task_id, {"from": self.solver, "value": self.amounts.solver_stake}, silent=True
            )
        )

    def commit(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.commit(
                task_id, CID, ROOT, SEGMENTS, {"from": self.solver}, silent=True
            )
        )

    def claim_verification(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.claimVerification(
                task_id,
                SECRET_HASH,
                {"from": self.verifier, "value": self.amounts.verifier_stake},
                silent=True,
            )
        )

    def report(self, task_id: int) -> int:
        count = int(self.pool.sampleCount(task_id))
        return self.gas(
            lambda: self.pool.reportVerification(
                task_id, [0] * count, ROOT, {"from": self.verifier}, silent=True
            )
        )

    def withdraw(self, task_ids: list[int], account: Any) -> int:
        return self.gas(lambda: self.pool.withdraw(task_ids, {"from": account}, silent=True))

    def settle(self, task_id: int) -> int:
        return self.gas(lambda: self.pool.settle(task_id, {"from": self.keeper}, silent=True))

    def timeout(self, task_id: int) -> int:
        return self.gas(lambda: self.pool.timeout(task_id, {"from": self.keeper}, silent=True))


def advance(seconds: int) -> None:
    """Move the devnet clock forward (the next block comes ``seconds`` later)."""
    from brownie import web3
    from web3.types import RPCEndpoint

    web3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])


def verified(round_: Round, mode: Mode, steps: dict[str, int]) -> int:
    """A task through its report, recording each step's gas; returns its id."""
    task_id, steps["submit"] = round_.submit(mode)
    if mode == Mode.TOLERANT:
        steps["profile"] = round_.profile(task_id)
    steps["claim"] = round_.claim(task_id)
    steps["commit"] = round_.commit(task_id)
    steps["claimVerification"] = round_.claim_verification(task_id)
    steps["reportVerification"] = round_.report(task_id)
    advance(DEFAULT_PARAMETERS.challengeWindow + 1)
    return task_id


def run() -> dict[str, Any]:
    with local_devnet(accounts=8) as node, attached(node) as project:
        from brownie import accounts

        deployment = deploy(project, accounts[0], DEFAULT_PARAMETERS, silent=True)
        round_ = Round(deployment.pool, accounts)
        params = DEFAULT_PARAMETERS

        happy: dict[str, int] = {}
        task_id = verified(round_, Mode.EXACT, happy)
        happy["withdraw (solver, settles)"] = round_.withdraw([task_id], round_.solver)
        happy["withdraw (verifier)"] = round_.withdraw([task_id], round_.verifier)

        explicit: dict[str, int] = {}
        task_id = verified(round_, Mode.EXACT, explicit)
        explicit["settle"] = round_.settle(task_id)
        explicit["withdraw (solver)"] = round_.withdraw([task_id], round_.solver)
        explicit["withdraw (verifier)"] = round_.withdraw([task_id], round_.verifier)

        tolerant: dict[str, int] = {}
        task_id = verified(round_, Mode.TOLERANT, tolerant)
        tolerant["withdraw (solver, settles)"] = round_.withdraw([task_id], round_.solver)
        tolerant["withdraw (verifier)"] = round_.withdraw([task_id], round_.verifier)
        tolerant["withdraw (profiler)"] = round_.withdraw([task_id], round_.profiler)

        other: dict[str, int] = {}
        task_id, _ = round_.submit(Mode.EXACT)
        other["cancel"] = round_.gas(
            lambda: deployment.pool.cancel(task_id, {"from": round_.submitter}, silent=True)
        )
        expired, _ = round_.submit(Mode.EXACT)
        stalled, _ = round_.submit(Mode.EXACT)
        round_.claim(stalled)
        unverified, _ = round_.submit(Mode.EXACT)
        round_.claim(unverified)
        round_.commit(unverified)
        silent, _ = round_.submit(Mode.EXACT)
        round_.claim(silent)
        round_.commit(silent)
        other["drawRandomness"] = round_.gas(
            lambda: deployment.pool.drawRandomness(silent, {"from": round_.keeper}, silent=True)
        )
        round_.claim_verification(silent)
        advance(
            max(
                params.claimWindow, TRAINING_WINDOW, params.verifierClaimWindow, params.verifyWindow
            )
            + 1
        )
        other["timeout (expired)"] = round_.timeout(expired)
        other["timeout (solver slashed)"] = round_.timeout(stalled)
        other["timeout (unverified)"] = round_.timeout(unverified)
        other["timeout (verifier slashed, reopened)"] = round_.timeout(silent)
        other["sweepJackpot"] = round_.gas(
            lambda: deployment.pool.sweepJackpot({"from": round_.keeper}, silent=True)
        )
        batch = []
        for _ in range(10):
            task_id, _ = round_.submit(Mode.EXACT)
            deployment.pool.cancel(task_id, {"from": round_.submitter}, silent=True)
            batch.append(task_id)
        other["withdraw (10 tasks in one call)"] = round_.withdraw(batch, round_.submitter)

        happy_total = sum(happy.values())
        return {
            "goal_happy_path_total": GOAL,
            "happy_path_total": happy_total,
            "meets_goal": happy_total <= GOAL,
            "happy_path": happy,
            "happy_path_with_settle_call_total": sum(explicit.values()),
            "happy_path_with_settle_call": explicit,
            "tolerant_path_total": sum(tolerant.values()),
            "tolerant_path": tolerant,
            "other_calls": other,
            "deployment": {
                "Jackpot": int(deployment.jackpot.tx.gas_used),
                "TaskPool": int(deployment.pool.tx.gas_used),
            },
            "setup": {
                "chain": "anvil 1.7.1, cancun, automine, zero base fee",
                "compiler": "solc 0.8.28 (solc-js), via-IR, optimizer runs 1000000",
                "cid_length": len(CID),
                "segments": SEGMENTS,
                "sampled_segments": params.segmentsToSample,
            },
        }

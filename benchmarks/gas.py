"""Gas of every lifecycle call and of whole task paths, from transaction receipts on anvil.

Each figure is a receipt's ``gasUsed`` (the 21,000 intrinsic gas of a transaction
included). Gas is deterministic, so there is no baseline to compare with in the same run:
the reference is the goal, ``happy_path_total`` <= 400,000 gas.

Paths, one task each, with realistic CIDs (CIDv1, 59 characters):

- ``happy_path``: an exact task on the default deployment (forced errors on), submit ->
  claim -> commit -> claimVerification -> revealSeed -> reportVerification -> the verifier's
  revealVerification after the challenge window, which settles the task
  and pays every party (no withdrawal needed). This is how parties settle in practice.
- ``happy_path_without_forced_errors``: the same on a deployment with ``forcedErrorPpm = 0``:
  no reveal; the solver's withdrawal settles, the verifier withdraws.
- ``tolerant_path``: a profiled task; adds the profile and the submitter's acceptance of it
  (which lets solvers claim before the review window ends).
- ``fault_reports``: a verifier's ``reportFault`` and the ``publishState`` that answers it, for
  start states of several sizes (one tensor each, float32); the calldata of the state dominates,
  so ``publishState_gas_per_kib`` (the slope between the smallest and the largest) and the
  largest state one 30,000,000-gas block can publish follow from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.crypto import keccak

from agents.commitment import state_root, state_tensors
from agents.dispute.tree import MerkleLevels
from agents.learning.selection import sample_segments
from scripts.deploy import DEFAULT_PARAMETERS, ProtocolParameters, deploy
from scripts.network import attached, local_devnet, revert, snapshot
from scripts.protocol import (
    FOLDED_EVENTS,
    Amounts,
    Flag,
    Mode,
    fold_record,
    forced_error,
    randomness,
    sealed_roots,
    secret_hash,
    seed_hash,
)

GOAL = 400_000
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
SPEC_HASH = "0x" + "5e" * 32
PROGRAM_ROOT = "0x" + "9a" * 32
ROOT = "0x" + "c4" * 32
SEED = b"\x5e" * 32
THRESHOLD = 0x3D4CCCCD  # 0.05 as binary32
BOUND = 0x3F000000  # 0.5
SEGMENTS = 64
TRAINING_WINDOW = 3_600
FAULT_ROOT = "0x" + "fa" * 32
STATE_KIB = (1, 16, 64)
BLOCK_GAS = 30_000_000


def hexed(value: bytes) -> str:
    return "0x" + value.hex()


def event_topic(entry: dict[str, Any]) -> bytes:
    """topic0 of an ABI event: keccak256 of its canonical signature."""
    return bytes(event_abi_to_log_topic(entry))  # type: ignore[arg-type]


class Round:
    """Drives tasks with fixed parties and records each transaction's gas."""

    def __init__(self, pool: Any, accounts: Any, params: ProtocolParameters):
        self.pool = pool
        self.params = params
        self.submitter, self.solver, self.verifier, self.profiler, self.keeper = accounts[1:6]
        self.amounts = Amounts.of(10**18, params)
        self.secrets: dict[int, bytes] = {}
        self.roots: dict[int, list[bytes]] = {}

    def gas(self, send: Callable[[], Any]) -> int:
        tx = send()
        if tx.status != 1:
            raise RuntimeError(f"{tx.fn_name} reverted: {tx.revert_msg}")
        return int(tx.gas_used)

    def submit(self, mode: Mode) -> tuple[int, int]:
        bound = BOUND if mode == Mode.TOLERANT else 0
        terms = (SPEC_HASH, PROGRAM_ROOT, self.amounts.bounty, int(mode), TRAINING_WINDOW)
        tx = self.pool.submit(
            CID,
            (*terms, SEGMENTS, self.params.minSampledSegments, bound),
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

    def accept_profile(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.acceptProfile(task_id, {"from": self.submitter}, silent=True)
        )

    def reject_profile(self, task_id: int) -> int:
        value = self.amounts.profile_rejection_fee
        return self.gas(
            lambda: self.pool.rejectProfile(
                task_id, {"from": self.submitter, "value": value}, silent=True
            )
        )

    def claim(self, task_id: int) -> int:
        return self.gas(
            lambda: self.pool.claim(
                task_id, {"from": self.solver, "value": self.amounts.solver_stake}, silent=True
            )
        )

    def commit(self, task_id: int, checkpoint_root: str = ROOT) -> int:
        return self.gas(
            lambda: self.pool.commit(
                task_id,
                CID,
                checkpoint_root,
                hexed(seed_hash(SEED)),
                {"from": self.solver},
                silent=True,
            )
        )

    def claim_verification(self, task_id: int) -> int:
        """Claim with a secret that is not forced to err on this task (the happy path). Forcing
        depends on the hash of the claim's block, known once it is mined: a forced first claim
        is undone on the devnet and sent again with another secret."""
        from brownie import web3

        first = not int(self.pool.task(task_id)["flags"]) & Flag.RANDOMNESS
        for attempt in range(1_000):
            secret = keccak(attempt.to_bytes(4, "big"))
            self.secrets[task_id] = secret
            unclaimed = snapshot()
            used, block = self._claim(task_id, hexed(secret_hash(secret)))
            claimed = bytes(web3.eth.get_block(block)["hash"])
            p = self.params.forcedErrorPpm
            if not first or not forced_error(secret, self.randomness(task_id), claimed, p):
                return used
            revert(unclaimed)
        raise RuntimeError("no unforced secret in 1,000 claims")

    def _claim(self, task_id: int, hashed: str) -> tuple[int, int]:
        tx = self.pool.claimVerification(
            task_id,
            hashed,
            {"from": self.verifier, "value": self.amounts.verifier_stake},
            silent=True,
        )
        if tx.status != 1:
            raise RuntimeError(f"claimVerification reverted: {tx.revert_msg}")
        return int(tx.gas_used), int(tx.block_number)

    def folded(self, task_id: int) -> list[tuple[str, bytes, bytes]]:
        """(name, record before, data) of the task's folded events, from its logs."""

        topic0 = {event_topic(e): e["name"] for e in self.pool.abi if e["type"] == "event"}
        record, out = bytes(32), []
        for log in self.logs(task_id):
            name = topic0[bytes(log["topics"][0])]
            if name in FOLDED_EVENTS:
                out.append((name, record, bytes(log["data"])))
                record = fold_record(record, [bytes(t) for t in log["topics"]], bytes(log["data"]))
        return out

    def event(self, task_id: int, name: str) -> tuple[bytes, bytes]:
        _, before, data = [e for e in self.folded(task_id) if e[0] == name][-1]
        return before, data

    def reveal_seed(self, task_id: int) -> int:
        before, commit = self.event(task_id, "ProofCommitted")
        _, claim = self.event(task_id, "VerificationClaimed")
        return self.gas(
            lambda: self.pool.revealSeed(
                task_id,
                hexed(SEED),
                hexed(before),
                commit,
                claim,
                {"from": self.solver},
                silent=True,
            )
        )

    def report(self, task_id: int) -> int:
        count = int(self.pool.sampleCount(task_id))
        roots = [bytes([i]) * 32 for i in range(1, count + 1)]
        self.roots[task_id] = roots
        seal = hexed(sealed_roots(self.secrets[task_id], roots))
        report: tuple[Any, ...] = ([0] * count, [], [], [hexed(r) for r in roots], seal)
        return self.gas(
            lambda: self.pool.reportVerification(
                task_id, report, {"from": self.verifier}, silent=True
            )
        )

    def reveal(self, task_id: int) -> int:
        before, claim = self.event(task_id, "VerificationClaimed")
        _, drawn = self.event(task_id, "RandomnessDrawn")
        _, report = self.event(task_id, "VerificationReported")
        secret = hexed(self.secrets[task_id])
        return self.gas(
            lambda: self.pool.revealVerification(
                task_id,
                secret,
                [hexed(r) for r in self.roots[task_id]],
                hexed(before),
                claim,
                drawn,
                report,
                {"from": self.verifier},
                silent=True,
            )
        )

    def report_fault(self, task_id: int) -> int:
        count = int(self.pool.sampleCount(task_id))
        true_roots = [bytes.fromhex(FAULT_ROOT[2:])] * count
        seal = hexed(sealed_roots(self.secrets[task_id], true_roots))
        return self.gas(
            lambda: self.pool.reportFault(
                task_id, FAULT_ROOT, seal, {"from": self.verifier}, silent=True
            )
        )

    def publish_state(self, task_id: int, checkpoints: list[dict[str, np.ndarray]]) -> int:
        """The solver publishes the start state of the first sampled segment."""
        segment = sample_segments(
            self.randomness(task_id), SEGMENTS, self.params.minSampledSegments
        )[0]
        tree = MerkleLevels([state_root(c) for c in checkpoints])
        history = [(hexed(t), party, hexed(data)) for t, party, data in self.logged(task_id)]
        tensors = [(hexed(h), hexed(v)) for h, v in state_tensors(checkpoints[segment])]
        proof = [hexed(p) for p in tree.proof(segment)]
        return self.gas(
            lambda: self.pool.publishState(
                task_id, 0, history, tensors, proof, {"from": self.solver}, silent=True
            )
        )

    def randomness(self, task_id: int) -> bytes:
        return randomness(SEED, secret_hash(self.secrets[task_id]), task_id)

    def logs(self, task_id: int) -> list[Any]:
        from brownie import web3

        return list(
            web3.eth.get_logs(
                {
                    "address": self.pool.address,
                    "fromBlock": 0,
                    "toBlock": "latest",
                    "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
                }
            )
        )

    def logged(self, task_id: int) -> list[tuple[bytes, str, bytes]]:
        """(topic0, party, data) of the task's folded events, as ``publishState`` takes them."""
        folded = {
            event_topic(e)
            for e in self.pool.abi
            if e["type"] == "event" and e["name"] in FOLDED_EVENTS
        }
        return [
            (
                bytes(log["topics"][0]),
                "0x" + bytes(log["topics"][2])[-20:].hex(),
                bytes(log["data"]),
            )
            for log in self.logs(task_id)
            if bytes(log["topics"][0]) in folded
        ]

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


def states(kib: int) -> list[dict[str, np.ndarray]]:
    """The solver's checkpoints: one float32 tensor of ``kib`` KiB each, different per segment."""
    return [
        {"param/w": np.random.default_rng(i).standard_normal(kib * 256).astype(np.float32)}
        for i in range(SEGMENTS + 1)
    ]


def fault_reports(round_: Round) -> dict[str, Any]:
    """``reportFault`` and the ``publishState`` answering it, per state size."""
    out: dict[str, Any] = {}
    published: dict[int, int] = {}
    for kib in STATE_KIB:
        checkpoints = states(kib)
        task_id, _ = round_.submit(Mode.EXACT)
        round_.claim(task_id)
        round_.commit(task_id, hexed(MerkleLevels([state_root(c) for c in checkpoints]).root))
        round_.claim_verification(task_id)
        round_.reveal_seed(task_id)
        out["reportFault"] = round_.report_fault(task_id)
        published[kib] = round_.publish_state(task_id, checkpoints)
        out[f"publishState ({kib} KiB state)"] = published[kib]
    small, large = min(STATE_KIB), max(STATE_KIB)
    per_kib = (published[large] - published[small]) / (large - small)
    out["publishState_gas_per_kib"] = round(per_kib)
    out["publishState_max_kib_per_block"] = int((BLOCK_GAS - published[small]) / per_kib + small)
    return out


def verified(round_: Round, mode: Mode, steps: dict[str, int]) -> int:
    """A task through its report and the end of its challenge window; returns its id."""
    task_id, steps["submit"] = round_.submit(mode)
    if mode == Mode.TOLERANT:
        steps["profile"] = round_.profile(task_id)
        steps["acceptProfile (submitter)"] = round_.accept_profile(task_id)
    steps["claim"] = round_.claim(task_id)
    steps["commit"] = round_.commit(task_id)
    steps["claimVerification"] = round_.claim_verification(task_id)
    steps["revealSeed"] = round_.reveal_seed(task_id)
    steps["reportVerification"] = round_.report(task_id)
    advance(round_.params.challengeWindow + 1)
    return task_id


def run() -> dict[str, Any]:
    with local_devnet(accounts=8) as node, attached(node) as project:
        from brownie import accounts

        params = DEFAULT_PARAMETERS
        deployment = deploy(project, accounts[0], params, silent=True)
        round_ = Round(deployment.pool, accounts, params)

        happy: dict[str, int] = {}
        task_id = verified(round_, Mode.EXACT, happy)
        happy["revealVerification (verifier: settles, pays every party)"] = round_.reveal(task_id)

        tolerant: dict[str, int] = {}
        task_id = verified(round_, Mode.TOLERANT, tolerant)
        tolerant["revealVerification (verifier: settles, pays every party)"] = round_.reveal(
            task_id
        )

        other: dict[str, int] = {}
        task_id, _ = round_.submit(Mode.EXACT)
        other["cancel"] = round_.gas(
            lambda: deployment.pool.cancel(task_id, {"from": round_.submitter}, silent=True)
        )
        rejected, _ = round_.submit(Mode.TOLERANT)
        round_.profile(rejected)
        other["rejectProfile (stake credited, fee to jackpot)"] = round_.reject_profile(rejected)
        expired, _ = round_.submit(Mode.EXACT)
        stalled, _ = round_.submit(Mode.EXACT)
        round_.claim(stalled)
        unverified, _ = round_.submit(Mode.EXACT)
        round_.claim(unverified)
        round_.commit(unverified)
        withheld, _ = round_.submit(Mode.EXACT)
        round_.claim(withheld)
        round_.commit(withheld)
        round_.claim_verification(withheld)
        silent, _ = round_.submit(Mode.EXACT)
        round_.claim(silent)
        round_.commit(silent)
        round_.claim_verification(silent)
        round_.reveal_seed(silent)
        advance(
            max(
                params.claimWindow, TRAINING_WINDOW, params.verifierClaimWindow, params.verifyWindow
            )
            + 1
        )
        other["timeout (expired)"] = round_.timeout(expired)
        other["timeout (solver slashed)"] = round_.timeout(stalled)
        other["timeout (unverified)"] = round_.timeout(unverified)
        other["timeout (seed withheld, solver slashed)"] = round_.timeout(withheld)
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

        # The same happy path where no verifier can be forced to err: no reveal step.
        plain_params = dataclasses.replace(params, forcedErrorPpm=0)
        plain_pool = deploy(project, accounts[0], plain_params, silent=True).pool
        plain = Round(plain_pool, accounts, plain_params)
        unforced: dict[str, int] = {}
        task_id = verified(plain, Mode.EXACT, unforced)
        unforced["withdraw (solver, settles)"] = plain.withdraw([task_id], plain.solver)
        unforced["withdraw (verifier)"] = plain.withdraw([task_id], plain.verifier)

        faults = fault_reports(round_)

        happy_total = sum(happy.values())
        config = project._compiler_config["solc"]
        return {
            "goal_happy_path_total": GOAL,
            "happy_path_total": happy_total,
            "meets_goal": happy_total <= GOAL,
            "happy_path": happy,
            "happy_path_without_forced_errors_total": sum(unforced.values()),
            "happy_path_without_forced_errors": unforced,
            "tolerant_path_total": sum(tolerant.values()),
            "tolerant_path": tolerant,
            "other_calls": other,
            "fault_reports": faults,
            "deployment": {
                "Jackpot": int(deployment.jackpot.tx.gas_used),
                "TaskPool": int(deployment.pool.tx.gas_used),
            },
            "setup": {
                "chain": "anvil 1.7.1, cancun, automine, zero base fee",
                "compiler": (
                    f"solc 0.8.28 (solc-js), via-IR, optimizer runs {config['optimizer']['runs']}"
                ),
                "cid_length": len(CID),
                "segments": SEGMENTS,
                "sampled_segments": params.minSampledSegments,
                "distances_per_report": min(SEGMENTS, params.minSampledSegments + 2),
            },
        }

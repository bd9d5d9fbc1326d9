"""Drives tasks through the pool in the contract tests: parties, the devnet clock, reverts."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3.types import RPCEndpoint

from scripts.deploy import ProtocolParameters
from scripts.network import revert, snapshot
from scripts.protocol import (
    FOLDED_EVENTS,
    Amounts,
    Flag,
    Mode,
    Status,
    fold_record,
    forced_error,
    sealed_roots,
    secret_hash,
    seed_hash,
)

BOUNTY = 10**18
TRAINING_WINDOW = 10_000
SEGMENTS = 10
SAMPLED = 4
SPEC_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
PROFILE_CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
PROOF_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
SPEC_HASH = "0x" + keccak(b"spec").hex()
PROGRAM_ROOT = "0x" + keccak(b"program").hex()
CHECKPOINT_ROOT = "0x" + keccak(b"checkpoints").hex()


def trace_roots(count: int, tag: bytes = b"traces") -> list[str]:
    """``count`` distinct trace roots (one per reported segment)."""
    return ["0x" + keccak(tag + i.to_bytes(2, "big")).hex() for i in range(count)]


SEED = keccak(b"seed")
SEED_HASH = "0x" + seed_hash(SEED).hex()
SECRET = keccak(b"secret")
SECRET_HASH = "0x" + secret_hash(SECRET).hex()


def f32(value: float) -> int:
    """The binary32 bit pattern of ``value`` (rounded to nearest)."""
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


TAU = f32(0.05)
BOUND = f32(0.5)


def hexed(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@dataclass(frozen=True)
class Folded:
    """One folded event of a task: its name, the record before it, and its data as logged."""

    name: str
    before: bytes
    data: bytes
    args: dict[str, Any]


def folded_events(pool: Any, task_id: int) -> list[Folded]:
    """The task's folded events in log order, each with the record it was folded into."""
    from brownie import web3

    events = {e["name"]: e for e in pool.abi if e["type"] == "event"}
    topic0 = {
        keccak(f"{n}({','.join(_abi_type(i) for i in e['inputs'])})".encode()): n
        for n, e in events.items()
    }
    contract = web3.eth.contract(address=pool.address, abi=pool.abi)
    logs = web3.eth.get_logs(
        {
            "address": pool.address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
        }
    )
    record, out = bytes(32), []
    for log in logs:
        name = topic0[bytes(log["topics"][0])]
        if name not in FOLDED_EVENTS:
            continue
        args = dict(getattr(contract.events, name)().process_log(log)["args"])
        out.append(Folded(name, record, bytes(log["data"]), args))
        record = fold_record(record, [bytes(t) for t in log["topics"]], bytes(log["data"]))
    return out


def _abi_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


def last_folded(pool: Any, task_id: int, name: str) -> Folded:
    """The last ``name`` event folded into the task's record."""
    return [f for f in folded_events(pool, task_id) if f.name == name][-1]


def rpc(method: str, params: list[Any] | None = None) -> Any:
    """Call a JSON-RPC method on the devnet brownie is attached to."""
    from brownie import web3

    reply = web3.provider.make_request(RPCEndpoint(method), params or [])
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


class Clock:
    """The devnet's time as blocks see it; sets the timestamp of the next block exactly."""

    def now(self) -> int:
        """The timestamp of the latest block."""
        from brownie import web3

        return int(web3.eth.get_block("latest")["timestamp"])

    def block(self) -> int:
        """The number of the latest block."""
        from brownie import web3

        return int(web3.eth.block_number)

    def next_at(self, timestamp: int) -> None:
        """The next block (the next transaction, with automine) gets ``timestamp``."""
        rpc("evm_setNextBlockTimestamp", [timestamp])

    def advance(self, seconds: int) -> int:
        """The next block comes ``seconds`` after the latest one; returns its timestamp."""
        timestamp = self.now() + seconds
        self.next_at(timestamp)
        return timestamp

    def mine(self, blocks: int) -> None:
        """Mine ``blocks`` empty blocks at once."""
        rpc("anvil_mine", [hex(blocks)])


@dataclass(frozen=True)
class Parties:
    """The accounts the tests use, one per role, and one that holds none."""

    deployer: Any
    submitter: Any
    solver: Any
    verifier: Any
    profiler: Any
    stranger: Any


def error_abi(name: str) -> dict[str, Any]:
    """The ABI entry of a custom error of the project's contracts."""
    from brownie.project.main import get_loaded_projects

    project = get_loaded_projects()[0]
    names = (
        "TaskPool",
        "TaskPoolSettlement",
        "TaskPoolChallenges",
        "TaskPoolFaults",
        "Jackpot",
        "PinpointGame",
    )
    for container in (getattr(project, name) for name in names):
        for entry in container.abi:
            if entry["type"] == "error" and entry["name"] == name:
                return dict(entry)
    raise KeyError(f"no custom error {name!r} in the contracts' ABIs")


def error_data(name: str, *args: Any) -> str:
    """The revert data of custom error ``name(args)``, as hex."""
    types = [i["type"] for i in error_abi(name)["inputs"]]
    selector = keccak(f"{name}({','.join(types)})".encode())[:4]
    return "0x" + (selector + encode(types, list(args))).hex()


def revert_message(name: str, *args: Any) -> str:
    """How brownie reports a revert with custom error ``name(args)``."""
    from brownie.exceptions import decode_typed_error

    return str(decode_typed_error(HexStr(error_data(name, *args))))


@contextlib.contextmanager
def reverts(name: str, *args: Any) -> Iterator[None]:
    """Expect the block to revert with custom error ``name(args)``, exactly."""
    from brownie.exceptions import VirtualMachineError

    with pytest.raises(VirtualMachineError) as info:
        yield
    assert info.value.revert_msg == revert_message(name, *args)


class Driver:
    """Moves tasks through the lifecycle with the default party for each step."""

    def __init__(self, pool: Any, params: ProtocolParameters, parties: Parties, clock: Clock):
        self.pool = pool
        self.params = params
        self.parties = parties
        self.clock = clock
        self.secrets: dict[int, bytes] = {}
        # The roots a submission and a commit name (a real program and checkpoint tree for games).
        self.program_root = PROGRAM_ROOT
        self.checkpoint_root = CHECKPOINT_ROOT

    def amounts(self, bounty: int = BOUNTY) -> Amounts:
        return Amounts.of(bounty, self.params)

    def task(self, task_id: int) -> Any:
        return self.pool.task(task_id)

    def status(self, task_id: int) -> Status:
        return Status(self.pool.task(task_id)["status"])

    def terms(
        self,
        mode: Mode = Mode.EXACT,
        bounty: int = BOUNTY,
        training_window: int = TRAINING_WINDOW,
        segments: int = SEGMENTS,
        sampled: int = SAMPLED,
        bound: int | None = None,
    ) -> tuple[Any, ...]:
        """The ``Terms`` struct of a submission."""
        if bound is None:
            bound = 0 if mode == Mode.EXACT else BOUND
        return (
            SPEC_HASH,
            self.program_root,
            bounty,
            int(mode),
            training_window,
            segments,
            sampled,
            bound,
        )

    def submit(
        self,
        mode: Mode = Mode.EXACT,
        bounty: int = BOUNTY,
        training_window: int = TRAINING_WINDOW,
        by: Any = None,
        segments: int = SEGMENTS,
        sampled: int = SAMPLED,
        bound: int | None = None,
    ) -> int:
        value = bounty + self.amounts(bounty).protocol_fee
        tx = self.pool.submit(
            SPEC_CID,
            self.terms(mode, bounty, training_window, segments, sampled, bound),
            {"from": by or self.parties.submitter, "value": value},
        )
        return int(tx.return_value)

    def profile(self, task_id: int, threshold: int = TAU, by: Any = None) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).profiler_stake
        return self.pool.profile(
            task_id, threshold, PROFILE_CID, {"from": by or self.parties.profiler, "value": stake}
        )

    def accept_profile(self, task_id: int, by: Any = None) -> Any:
        return self.pool.acceptProfile(task_id, {"from": by or self.parties.submitter})

    def reject_profile(self, task_id: int, by: Any = None) -> Any:
        fee = self.amounts(self.task(task_id)["bounty"]).profile_rejection_fee
        sender = by or self.parties.submitter
        return self.pool.rejectProfile(task_id, {"from": sender, "value": fee})

    def claim(self, task_id: int, by: Any = None) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).solver_stake
        return self.pool.claim(task_id, {"from": by or self.parties.solver, "value": stake})

    def commit(self, task_id: int, by: Any = None, seed: bytes = SEED) -> Any:
        return self.pool.commit(
            task_id,
            PROOF_CID,
            self.checkpoint_root,
            hexed(seed_hash(seed)),
            {"from": by or self.parties.solver},
        )

    def claim_verification(self, task_id: int, by: Any = None, secret: bytes = SECRET) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).verifier_stake
        return self.pool.claimVerification(
            task_id,
            hexed(secret_hash(secret)),
            {"from": by or self.parties.verifier, "value": stake},
        )

    def seed_proof(self, task_id: int) -> tuple[str, bytes, bytes]:
        """(record before ProofCommitted, its data, the last VerificationClaimed's data)."""
        commit = last_folded(self.pool, task_id, "ProofCommitted")
        claim = last_folded(self.pool, task_id, "VerificationClaimed")
        return hexed(commit.before), commit.data, claim.data

    def reveal_seed(self, task_id: int, seed: bytes = SEED, by: Any = None) -> Any:
        before, commit, claim = self.seed_proof(task_id)
        return self.pool.revealSeed(
            task_id, hexed(seed), before, commit, claim, {"from": by or self.parties.solver}
        )

    def randomness(self, task_id: int) -> bytes:
        return bytes(last_folded(self.pool, task_id, "RandomnessDrawn").args["randomness"])

    def claim_block_hash(self, task_id: int) -> bytes:
        """The hash of the block that holds the first verifier's claim, as the seed's reveal
        recorded it."""
        return bytes(last_folded(self.pool, task_id, "RandomnessDrawn").args["claimBlockHash"])

    def distances(self, task_id: int, passed: bool = True) -> list[int]:
        """One distance per sampled segment: all within τ, or the last one beyond it."""
        threshold = int(self.task(task_id)["threshold"])
        count = int(self.pool.sampleCount(task_id))
        values = [0] * count
        if not passed:
            values[-1] = threshold + 1
        return values

    def report(
        self,
        task_id: int,
        passed: bool = True,
        by: Any = None,
        secret: bytes = SECRET,
        roots: list[str] | None = None,
        true_roots: list[str] | None = None,
        extras: tuple[list[int], list[int]] = ([], []),
    ) -> Any:
        """Report one trace root per segment (``roots``, default ``trace_roots``); the seal holds
        ``true_roots`` (default: the reported ones)."""
        distances = self.distances(task_id, passed)
        roots = roots or trace_roots(len(distances) + len(extras[0]))
        sealed = [bytes.fromhex(r[2:]) for r in (true_roots or roots)]
        return self.pool.reportVerification(
            task_id,
            (distances, extras[0], extras[1], roots, hexed(sealed_roots(secret, sealed))),
            {"from": by or self.parties.verifier},
        )

    def reveal_proof(self, task_id: int) -> tuple[str, bytes, bytes, bytes]:
        """The proof a reveal needs: the record before the last claim, and three events' data."""
        claim = last_folded(self.pool, task_id, "VerificationClaimed")
        drawn = last_folded(self.pool, task_id, "RandomnessDrawn")
        report = last_folded(self.pool, task_id, "VerificationReported")
        return hexed(claim.before), claim.data, drawn.data, report.data

    def reveal(
        self, task_id: int, secret: bytes = SECRET, roots: list[str] | None = None, by: Any = None
    ) -> Any:
        """Reveal ``secret`` and ``roots`` (default: the roots the report holds)."""
        before, claim, drawn, report = self.reveal_proof(task_id)
        if roots is None:
            reported = last_folded(self.pool, task_id, "VerificationReported").args["traceRoots"]
            roots = [hexed(bytes(r)) for r in reported]
        return self.pool.revealVerification(
            task_id,
            hexed(secret),
            roots,
            before,
            claim,
            drawn,
            report,
            {"from": by or self.parties.verifier},
        )

    def forced(self, task_id: int, secret: bytes = SECRET) -> bool:
        """Whether the verifier with ``secret`` is forced to err (if the task is forceable)."""
        return forced_error(
            secret,
            self.randomness(task_id),
            self.claim_block_hash(task_id),
            self.params.forcedErrorPpm,
        )

    def flags(self, task_id: int) -> int:
        return int(self.task(task_id)["flags"])

    def past_deadline(self, task_id: int) -> None:
        """The next transaction lands one second after the task's current deadline."""
        self.clock.next_at(int(self.task(task_id)["deadline"]) + 1)

    def settle(self, task_id: int) -> Any:
        """Settle once the windows are over (a report that may be forced: its reveal window too)."""
        end = int(self.task(task_id)["deadline"])
        if self.flags(task_id) & Flag.FORCEABLE:
            end += self.params.revealWindow
        self.clock.next_at(end + 1)
        return self.pool.settle(task_id, {"from": self.parties.stranger})

    def timeout(self, task_id: int) -> Any:
        self.past_deadline(task_id)
        return self.pool.timeout(task_id, {"from": self.parties.stranger})

    def to_status(
        self,
        status: Status,
        mode: Mode = Mode.EXACT,
        passed: bool = True,
        forced: bool | None = False,
    ) -> int:
        """A new task, driven to ``status`` along the happy path (verdict ``passed``).

        ``forced``: the verifier's secret is chosen so that it is (True) or is not (False) forced
        to err, or left as the default secret (None); see :meth:`verify_with`.
        """
        task_id = self.submit(mode)
        if mode == Mode.TOLERANT and status != Status.SUBMITTED:
            self.profile(task_id)
            self.accept_profile(task_id)
        steps: list[tuple[Status, Callable[[int], Any]]] = [
            (Status.TRAINING, self.claim),
            (Status.COMMITTED, self.commit),
        ]
        for reached, step in steps:
            if self.status(task_id) == status:
                return task_id
            step(task_id)
            assert self.status(task_id) == reached
        if status == Status.COMMITTED:
            return task_id
        secret = self.verify_with(task_id, forced)
        self.secrets[task_id] = secret
        if status == Status.VERIFYING:
            return task_id
        self.report(task_id, passed, secret=secret)
        assert self.status(task_id) == Status.CHALLENGE_WINDOW
        if status == Status.SETTLED:
            self.finish(task_id, secret)
        assert self.status(task_id) == status
        return task_id

    def verify_with(self, task_id: int, forced: bool | None, draw: bool = True) -> bytes:
        """Claim the verification of a committed task with a secret that is (not) forced, and
        (``draw``) have the solver reveal its seed. Returns the secret.

        Whether a secret is forced depends on the hash of the block that holds the claim, which
        nobody knows before it is mined: candidates are claimed on the devnet and the claim
        undone (``evm_snapshot``/``evm_revert``) until one comes out as asked.
        """
        from brownie import web3

        from scripts.protocol import randomness

        p = self.params.forcedErrorPpm
        first = not self.flags(task_id) & Flag.RANDOMNESS
        secret = SECRET
        if forced is not None and p not in (0, 1_000_000) and first:
            for attempt in range(200):
                candidate = keccak(b"secret/" + attempt.to_bytes(4, "big"))
                unclaimed = snapshot()
                claim = self.claim_verification(task_id, secret=candidate)
                claimed = bytes(web3.eth.get_block(claim.block_number)["hash"])
                r = randomness(SEED, secret_hash(candidate), task_id)
                if forced_error(candidate, r, claimed, p) == forced:
                    secret = candidate
                    break
                revert(unclaimed)
            else:
                raise AssertionError("no secret found")
        else:
            self.claim_verification(task_id, secret=secret)
        if draw:
            self.reveal_seed(task_id)
        return secret

    def finish(self, task_id: int, secret: bytes | None = None) -> Any:
        """End a task in its challenge window: the verifier reveals (if it must), or settle."""
        secret = secret or self.secrets.get(task_id, SECRET)
        if self.flags(task_id) & Flag.FORCEABLE:
            self.past_deadline(task_id)
            return self.reveal(task_id, secret)
        return self.settle(task_id)


def plain(value: Any) -> Any:
    """brownie return values and event fields as plain lists, dicts and ints, for comparisons."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "keys"):
        return {k: plain(value[k]) for k in value.keys()}  # noqa: SIM118 (brownie's event dicts)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value


def held(pool: Any, task_id: int) -> tuple[int, int, int]:
    """``held(taskId)`` as plain integers: (escrowed, staked, unpaid)."""
    escrowed, staked, unpaid = pool.held(task_id)
    return int(escrowed), int(staked), int(unpaid)


def balance(account: Any) -> int:
    """An account's balance in wei (gas is free on the devnet: the base fee is zero)."""
    return int(account.balance())

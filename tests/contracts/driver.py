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
from scripts.protocol import Amounts, Mode, Status

BOUNTY = 10**18
TRAINING_WINDOW = 10_000
SEGMENTS = 10
SPEC_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
PROFILE_CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
PROOF_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
SPEC_HASH = "0x" + keccak(b"spec").hex()
CHECKPOINT_ROOT = "0x" + keccak(b"checkpoints").hex()
TRACE_ROOTS_ROOT = "0x" + keccak(b"traces").hex()
SECRET_HASH = "0x" + keccak(b"secret").hex()


def f32(value: float) -> int:
    """The binary32 bit pattern of ``value`` (rounded to nearest)."""
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


TAU = f32(0.05)


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
    for container in (getattr(project, "TaskPool"), getattr(project, "Jackpot")):  # noqa: B009
        for entry in container.abi:
            if entry["type"] == "error" and entry["name"] == name:
                return dict(entry)
    raise KeyError(f"no custom error {name!r} in the contracts' ABIs")


def revert_message(name: str, *args: Any) -> str:
    """How brownie reports a revert with custom error ``name(args)``."""
    from brownie.exceptions import decode_typed_error

    entry = error_abi(name)
    types = [i["type"] for i in entry["inputs"]]
    selector = keccak(f"{name}({','.join(types)})".encode())[:4]
    return str(decode_typed_error(HexStr("0x" + (selector + encode(types, list(args))).hex())))


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

    def amounts(self, bounty: int = BOUNTY) -> Amounts:
        return Amounts.of(bounty, self.params)

    def task(self, task_id: int) -> Any:
        return self.pool.task(task_id)

    def status(self, task_id: int) -> Status:
        return Status(self.pool.task(task_id)["status"])

    def submit(
        self,
        mode: Mode = Mode.EXACT,
        bounty: int = BOUNTY,
        training_window: int = TRAINING_WINDOW,
        by: Any = None,
    ) -> int:
        value = bounty + self.amounts(bounty).protocol_fee
        tx = self.pool.submit(
            SPEC_CID,
            SPEC_HASH,
            bounty,
            int(mode),
            training_window,
            {"from": by or self.parties.submitter, "value": value},
        )
        return int(tx.return_value)

    def profile(self, task_id: int, threshold: int = TAU, by: Any = None) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).profiler_stake
        return self.pool.profile(
            task_id, threshold, PROFILE_CID, {"from": by or self.parties.profiler, "value": stake}
        )

    def claim(self, task_id: int, by: Any = None) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).solver_stake
        return self.pool.claim(task_id, {"from": by or self.parties.solver, "value": stake})

    def commit(self, task_id: int, segments: int = SEGMENTS, by: Any = None) -> Any:
        return self.pool.commit(
            task_id, PROOF_CID, CHECKPOINT_ROOT, segments, {"from": by or self.parties.solver}
        )

    def claim_verification(self, task_id: int, by: Any = None, secret: str = SECRET_HASH) -> Any:
        stake = self.amounts(self.task(task_id)["bounty"]).verifier_stake
        return self.pool.claimVerification(
            task_id, secret, {"from": by or self.parties.verifier, "value": stake}
        )

    def distances(self, task_id: int, passed: bool = True) -> list[int]:
        """One distance per sampled segment: all within τ, or the last one beyond it."""
        threshold = int(self.task(task_id)["threshold"])
        count = int(self.pool.sampleCount(task_id))
        values = [0] * count
        if not passed:
            values[-1] = threshold + 1
        return values

    def report(self, task_id: int, passed: bool = True, by: Any = None) -> Any:
        return self.pool.reportVerification(
            task_id,
            self.distances(task_id, passed),
            TRACE_ROOTS_ROOT,
            {"from": by or self.parties.verifier},
        )

    def past_deadline(self, task_id: int) -> None:
        """The next transaction lands one second after the task's current deadline."""
        self.clock.next_at(int(self.task(task_id)["deadline"]) + 1)

    def settle(self, task_id: int) -> Any:
        self.past_deadline(task_id)
        return self.pool.settle(task_id, {"from": self.parties.stranger})

    def timeout(self, task_id: int) -> Any:
        self.past_deadline(task_id)
        return self.pool.timeout(task_id, {"from": self.parties.stranger})

    def to_status(self, status: Status, mode: Mode = Mode.EXACT, passed: bool = True) -> int:
        """A new task, driven to ``status`` along the happy path (verdict ``passed``)."""
        task_id = self.submit(mode)
        if mode == Mode.TOLERANT and status != Status.SUBMITTED:
            self.profile(task_id)
        steps: list[tuple[Status, Callable[[int], Any]]] = [
            (Status.TRAINING, self.claim),
            (Status.COMMITTED, self.commit),
            (Status.VERIFYING, self.claim_verification),
            (Status.CHALLENGE_WINDOW, lambda t: self.report(t, passed)),
            (Status.SETTLED, self.settle),
        ]
        for reached, step in steps:
            if self.status(task_id) == status:
                break
            step(task_id)
            assert self.status(task_id) == reached
        assert self.status(task_id) == status
        return task_id


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

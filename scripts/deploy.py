"""Deploy the veritrain contracts and write the deployment manifest agents read.

As a brownie script it deploys to any brownie network::

    brownie run scripts/deploy.py --network <network-id>

The deployer is brownie's ``accounts[0]`` on development networks and, elsewhere, the
private key in ``VERITRAIN_DEPLOYER_KEY`` (never a command-line argument). The manifest
goes to ``VERITRAIN_MANIFEST`` if set, else ``deployments/<chain id>.json``; its format is
documented in docs/contracts.md ("Deployment manifest").
"""

# The parameter names are the contract's (``Params`` in Types.sol), so they stay mixedCase.
# ruff: noqa: N815

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.devnet.anvil import REPO_ROOT
from agents.dispute.game import GAME
from agents.errors import ConfigError

MANIFEST_FORMAT = "veritrain-deployment/1"
ZERO_ADDRESS = "0x" + "00" * 20
DEFAULT_MANIFEST_DIR = REPO_ROOT / "deployments"


@dataclass(frozen=True)
class ProtocolParameters:
    """The deployment parameters of the task pool (``Params`` in contracts/lib/Types.sol).

    Field order is the struct's order; units are in each name's suffix or in docs/contracts.md.
    """

    protocolFeeBps: int = 500
    verificationFeeBps: int = 4_000
    profileFeeBps: int = 800
    profileRejectionFeeBps: int = 100
    solverStakeBps: int = 20_000
    verifierStakeBps: int = 30_000
    profilerStakeBps: int = 5_000
    slashToSubmitterBps: int = 5_000
    profileWindow: int = 3_600
    profileReviewWindow: int = 3_600
    claimWindow: int = 86_400
    maxTrainingWindow: int = 7 * 86_400
    verifierClaimWindow: int = 21_600
    seedRevealWindow: int = 2_700  # at most MAX_SEED_REVEAL_WINDOW (3,072 s, 256 blocks of 12 s)
    verifyWindow: int = 21_600
    challengeWindow: int = 86_400
    revealWindow: int = 3_600
    minSampledSegments: int = 4
    maxVerificationRounds: int = 3
    forcedErrorPpm: int = 120_000
    forcedErrorTaxBps: int = 3_600
    maxThreshold: int = 0x3F800000  # 1.0 as binary32
    minBounty: int = 10**12

    def as_struct(self) -> tuple[int, ...]:
        """The values in struct order, as the constructor takes them."""
        return dataclasses.astuple(self)

    def as_dict(self) -> dict[str, int]:
        """The values by their Solidity names."""
        return dataclasses.asdict(self)

    @classmethod
    def from_struct(cls, values: Any) -> ProtocolParameters:
        """Build from a ``parameters()`` return value (a tuple in struct order)."""
        return cls(*(int(v) for v in values))


DEFAULT_PARAMETERS = ProtocolParameters()

# The arbitration contracts, deployed after the pool, in this order: the binary32 library's
# bulk evaluator (`veritrain arbiter eval`) and the one-step adjudicators.
ARBITER_CONTRACTS: tuple[str, ...] = (
    "Binary32Evaluator",
    "ElementwiseAdjudicator",
    "ReductionAdjudicator",
    "MovementAdjudicator",
    "OneStep",
)
# The one step's router takes the three family adjudicators, in this order.
ONE_STEP_FAMILIES = ("ElementwiseAdjudicator", "ReductionAdjudicator", "MovementAdjudicator")
# The pinpoint game (docs/dispute.md; manifest name ``GAME``), deployed after the arbiter: its
# one step is ``OneStep``.
GAME_CONTRACT = GAME


@dataclass(frozen=True)
class GameParameters:
    """The deployment parameters of the pinpoint game (``GameParams`` in
    contracts/interfaces/IPinpointGame.sol, less the one step and the jackpot, which are the
    deployed ones). Durations in seconds.

    Each party's clock covers a whole game (a few dozen moves) with days to spare; a turn that
    starts near the end of a clock gets three hours. Every bonded move carries
    ``bondGasPrice · answerGas`` wei: the opponent's most expensive answer (the one step, under
    150,000 gas for every op of the example models) at 20 gwei.
    """

    clock: int = 3 * 86_400
    extension: int = 3 * 3_600
    bondGasPrice: int = 20 * 10**9
    answerGas: int = 150_000
    dissectionBits: int = 3

    def as_struct(self, one_step: str, jackpot: str) -> tuple[Any, ...]:
        """The constructor's ``GameParams`` tuple for that one step and jackpot."""
        return (one_step, jackpot, *dataclasses.astuple(self))

    def as_dict(self) -> dict[str, int]:
        """The values by their Solidity names."""
        return dataclasses.asdict(self)

    @property
    def bond(self) -> int:
        """The bond of every bonded move and of a game's creation, in wei."""
        return self.bondGasPrice * self.answerGas


DEFAULT_GAME_PARAMETERS = GameParameters()


@dataclass(frozen=True)
class Deployment:
    """The deployed contracts (brownie ``Contract`` objects) and where they were deployed."""

    pool: Any
    jackpot: Any
    chain_id: int
    block: int
    deployer: str
    parameters: ProtocolParameters
    # Arbitration contracts by name (``ARBITER_CONTRACTS``); empty when not deployed.
    arbiter: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The pinpoint game, whose one step is the arbiter's ``OneStep``; None without the arbiter.
    game: Any = None
    game_parameters: GameParameters | None = None


def deploy(
    project: Any,
    deployer: Any,
    parameters: ProtocolParameters = DEFAULT_PARAMETERS,
    arbitration: str | None = None,
    silent: bool = False,
    game_parameters: GameParameters = DEFAULT_GAME_PARAMETERS,
) -> Deployment:
    """Deploy, in this order, the arbiter contracts (``ARBITER_CONTRACTS``), the Jackpot, the
    pinpoint game on the arbiter's ``OneStep`` and the jackpot (``game_parameters``), the pool's
    challenges half and the TaskPool (which creates its settlement half).

    The Jackpot pays out only through ``arbitration``, fixed for good: by default the pool itself
    (it awards the catchers of forced errors), whose address is known before it exists (the
    deployer's nonce); the zero address: never. ``project`` is the loaded brownie project,
    ``deployer`` a brownie account. The deployment block is the block of the first contract's
    creation. ``silent`` keeps brownie quiet.
    """
    from brownie import chain

    arbiters = deploy_arbiter(project, deployer, silent=silent)
    # The jackpot, the game and the challenges half come next, then the pool.
    pool_address = create_address(deployer.address, int(deployer.nonce) + 3)
    jackpot = project.Jackpot.deploy(
        pool_address if arbitration is None else arbitration, {"from": deployer}, silent=silent
    )
    game = deploy_game(
        project, deployer, arbiters["OneStep"].address, jackpot.address, game_parameters, silent
    )
    deployed = deploy_pool(project, deployer, parameters, jackpot.address, game.address, silent)
    if arbitration is None and deployed.address.lower() != pool_address.lower():
        raise ConfigError(f"the pool landed at {deployed.address}, not at {pool_address}")
    pool = pool_contract(project, deployed.address)
    pool.tx = deployed.tx
    first = next(iter(arbiters.values()))
    return Deployment(
        pool=pool,
        jackpot=jackpot,
        chain_id=int(chain.id),
        block=int(first.tx.block_number),
        deployer=deployer.address,
        parameters=ProtocolParameters.from_struct(pool.parameters()),
        arbiter=arbiters,
        game=game,
        game_parameters=game_parameters,
    )


def deploy_pool(
    project: Any,
    deployer: Any,
    parameters: ProtocolParameters,
    jackpot: str,
    game: str,
    silent: bool = False,
) -> Any:
    """Deploy the pool's challenges half, then the TaskPool (which checks that half's
    parameters and creates its settlement half); returns the TaskPool as deployed (its
    ``.address`` and ``.tx``; ``pool_contract`` gives the merged object)."""
    challenges = project.TaskPoolChallenges.deploy(
        parameters.as_struct(), jackpot, game, {"from": deployer}, silent=silent
    )
    return project.TaskPool.deploy(
        parameters.as_struct(), jackpot, game, challenges.address, {"from": deployer}, silent=silent
    )


def create_address(sender: str, nonce: int) -> str:
    """The address a contract created by ``sender`` with ``nonce`` gets (CREATE:
    ``keccak256(rlp([sender, nonce]))[12:]``)."""
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    if nonce == 0:
        encoded_nonce = b"\x80"
    elif nonce < 0x80:
        encoded_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        encoded_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + bytes.fromhex(sender[2:]) + encoded_nonce
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


def pool_abi(project: Any) -> list[dict[str, Any]]:
    """The ABI of everything at the pool's address: TaskPool and, run by delegatecall for every
    selector TaskPool lacks, TaskPoolSettlement, for every selector both lack,
    TaskPoolChallenges, and for every selector the three lack, TaskPoolFaults (each entry
    once)."""
    merged: dict[str, dict[str, Any]] = {}
    for container in (
        project.TaskPool,
        project.TaskPoolSettlement,
        project.TaskPoolChallenges,
        project.TaskPoolFaults,
    ):
        for entry in container.abi:
            if entry["type"] in ("constructor", "fallback"):
                continue
            types = ",".join(str(i["type"]) for i in entry.get("inputs", []))
            merged.setdefault(f"{entry['type']}:{entry.get('name')}({types})", entry)
    return list(merged.values())


def pool_contract(project: Any, address: str) -> Any:
    """A brownie object for the pool at ``address`` that knows both halves' functions."""
    from brownie import Contract

    make: Any = Contract.from_abi  # brownie's stubs want its own name, address and ABI types
    return make("TaskPool", address, pool_abi(project), persist=False)


def deploy_arbiter(project: Any, deployer: Any, silent: bool = False) -> dict[str, Any]:
    """Deploy the arbitration contracts; returns them by name (brownie ``Contract`` objects)."""
    deployed: dict[str, Any] = {}
    for name in ARBITER_CONTRACTS:
        args = [deployed[f].address for f in ONE_STEP_FAMILIES] if name == "OneStep" else []
        deployed[name] = getattr(project, name).deploy(*args, {"from": deployer}, silent=silent)
    return deployed


def deploy_game(
    project: Any,
    deployer: Any,
    one_step: str,
    jackpot: str,
    parameters: GameParameters = DEFAULT_GAME_PARAMETERS,
    silent: bool = False,
) -> Any:
    """Deploy the pinpoint game (``GAME_CONTRACT``) asking ``one_step`` and paying ``jackpot``."""
    contract = getattr(project, GAME_CONTRACT)
    return contract.deploy(
        parameters.as_struct(one_step, jackpot), {"from": deployer}, silent=silent
    )


def manifest(project: Any, deployment: Deployment, rpc_url: str | None = None) -> dict[str, Any]:
    """The deployment manifest: all an agent needs to talk to the contracts without brownie."""

    def entry(contract: Any, abi: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "address": contract.address,
            "transaction": contract.tx.txid,
            "block": int(contract.tx.block_number),
            "abi": abi,
        }

    built = project.TaskPool._build["compiler"]
    return {
        "format": MANIFEST_FORMAT,
        "chain_id": deployment.chain_id,
        "rpc_url": rpc_url,
        "deployment_block": deployment.block,
        "deployer": deployment.deployer,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "compiler": {
            "solc": str(built["version"]),
            "evm_version": str(built["evm_version"]),
            "optimizer_runs": int(built["optimizer"]["runs"]),
            "via_ir": bool(project._compiler_config["solc"].get("viaIR", False)),
        },
        "contracts": {
            "TaskPool": entry(deployment.pool, pool_abi(project)),
            "Jackpot": entry(deployment.jackpot, project.Jackpot.abi),
            **{
                name: entry(contract, getattr(project, name).abi)
                for name, contract in deployment.arbiter.items()
            },
            **(
                {GAME_CONTRACT: entry(deployment.game, getattr(project, GAME_CONTRACT).abi)}
                if deployment.game is not None
                else {}
            ),
        },
        "parameters": deployment.parameters.as_dict(),
        **(
            {"game_parameters": deployment.game_parameters.as_dict()}
            if deployment.game_parameters is not None
            else {}
        ),
    }


def write_manifest(document: dict[str, Any], path: Path) -> Path:
    """Write ``document`` to ``path`` atomically (a reader never sees half a manifest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)
    return path


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a deployment manifest; raises ``ConfigError`` if it is missing or not one."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no deployment manifest at {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    return document


def manifest_path(chain_id: int) -> Path:
    """Where the manifest of a deployment on ``chain_id`` goes; ``VERITRAIN_MANIFEST`` overrides."""
    override = os.environ.get("VERITRAIN_MANIFEST")
    return Path(override) if override else DEFAULT_MANIFEST_DIR / f"{chain_id}.json"


def main() -> None:
    """Entry point of ``brownie run scripts/deploy.py --network <id>``."""
    from brownie import accounts
    from brownie._config import CONFIG
    from brownie.network.main import show_active
    from brownie.project.main import get_loaded_projects

    loaded = get_loaded_projects()
    if not loaded:
        raise ConfigError("run it as `brownie run scripts/deploy.py` from the repository root")
    if CONFIG.network_type == "development":
        deployer = accounts[0]
    else:
        key = os.environ.get("VERITRAIN_DEPLOYER_KEY")
        if not key:
            raise ConfigError("set VERITRAIN_DEPLOYER_KEY to the deployer's private key")
        deployer = accounts.add(key)
    deployment = deploy(loaded[0], deployer)
    rpc_url = CONFIG.active_network.get("host")
    document = manifest(loaded[0], deployment, rpc_url)
    path = write_manifest(document, manifest_path(deployment.chain_id))
    print(f"deployed on {show_active()} (chain {deployment.chain_id}), block {deployment.block}")
    print(f"  TaskPool {deployment.pool.address}")
    print(f"  Jackpot  {deployment.jackpot.address}")
    for name, contract in deployment.arbiter.items():
        print(f"  {name} {contract.address}")
    if deployment.game is not None:
        print(f"  {GAME_CONTRACT} {deployment.game.address}")
    print(f"manifest: {path}")

"""Connection wiring: from an agent's configuration to a checked chain, its key, its store,
the pool's parameters, its data directory and its transaction executor."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from eth_account.signers.local import LocalAccount

from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.executor import DropPolicy, FeePolicy, RejectionPolicy, TransactionExecutor
from agents.chain.journal import TransactionJournal
from agents.chain.rpc import RetryPolicy
from agents.errors import VeritrainError
from agents.node.config import AgentConfig, ChainSettings
from agents.node.database import DataDirectory, bind_identity
from agents.node.keys import DEVNET_CHAIN_IDS, load_account
from agents.node.metrics import AgentMetrics
from agents.roles.situation import POOL, PoolParameters
from agents.store import ArtifactStore, open_store


@dataclass
class Connection:
    """Everything an agent (or a command) needs to act on the chain for one account."""

    config: AgentConfig
    deployment: Deployment
    client: ChainClient
    account: LocalAccount | None  # None for read-only commands
    store: ArtifactStore
    params: PoolParameters
    data: DataDirectory | None = None
    executor: TransactionExecutor | None = None
    metrics: AgentMetrics | None = None
    _blocks: dict[int, int] = field(default_factory=dict)

    @property
    def me(self) -> str:
        return str(self.signer.address)

    @property
    def signer(self) -> LocalAccount:
        if self.account is None:
            raise VeritrainError("this command was connected without a key")
        return self.account

    def block_time(self, number: int) -> int:
        """A block's timestamp (cached)."""
        if number not in self._blocks:
            self._blocks[number] = self.client.block(number).timestamp
        return self._blocks[number]


def check_adversary(adversary: str | None) -> None:
    """Refuse an adversary mode that names no craft of ``agents.learning.malformed``."""
    if adversary is None or not adversary.startswith("malformed:"):
        return
    from agents.learning.malformed import CRAFTS

    name = adversary.removeprefix("malformed:")
    if name != "cycle" and name not in CRAFTS:
        raise VeritrainError(
            f"solver.adversary: no craft {name!r} (known: cycle, {', '.join(sorted(CRAFTS))})"
        )


def connect(
    config: AgentConfig,
    role: str,
    *,
    rpc_attempts: int = 3,
    with_data: bool = True,
    with_key: bool = True,
) -> Connection:
    """Load the deployment, reach the chain, check it, load the key, open the data directory.

    Every failure is a :class:`VeritrainError` with one clear line: missing
    manifest, unreachable RPC, wrong chain id, missing contracts, bad keystore,
    data directory in use or made for another chain or account.
    """
    deployment = load_deployment(config.require_deployment())
    client = ChainClient(
        config.chain.rpc_url,
        timeout=config.chain.rpc_timeout,
        retry=RetryPolicy(attempts=rpc_attempts, initial_delay=0.25, max_delay=2.0),
    )
    deployment.check(client)
    account: LocalAccount | None = None
    if with_key:
        account = load_account(config.key, deployment.chain_id)
        if config.solver.adversary is not None and deployment.chain_id not in DEVNET_CHAIN_IDS:
            raise VeritrainError(
                f"solver.adversary is for devnets only (chain id {deployment.chain_id})"
            )
        check_adversary(config.solver.adversary)
        if config.verifier.adversary is not None and deployment.chain_id not in DEVNET_CHAIN_IDS:
            raise VeritrainError(
                f"verifier.adversary is for devnets only (chain id {deployment.chain_id})"
            )
    store = open_store(config.store.location, retrieval_timeout=config.store.retrieval_timeout)
    pool = deployment.contract(POOL)
    raw_params = pool.decode_output(
        "parameters", client.call(pool.address, pool.encode_call("parameters", ()))
    )
    params = PoolParameters.from_chain(raw_params)
    if pool.has_function("challengeBond"):  # fixed at deployment: the game's required bond
        raw_bond = client.call(pool.address, pool.encode_call("challengeBond", ()))
        params = replace(params, challenge_bond=int(pool.decode_output("challengeBond", raw_bond)))
    conn = Connection(config, deployment, client, account, store, params)
    if with_data and account is not None:
        data = DataDirectory(config.require_data_dir())
        bind_identity(
            data.db,
            {
                "chain_id": str(deployment.chain_id),
                "pool": pool.address,
                "account": conn.me,
                "role": role,
            },
        )
        conn.data = data
        conn.executor = TransactionExecutor(
            client,
            account,
            TransactionJournal(data.db),
            deployment.contracts,
            fees=fee_policy(config.chain),
            rejections=RejectionPolicy(attempts=8, delay=1.0),
            drops=DropPolicy(grace=config.chain.drop_grace),
        )
    return conn


def fee_policy(chain: ChainSettings) -> FeePolicy:
    """The executor's fee policy from the chain settings: the max fee capped at
    ``max_fee_gwei`` (none when unset), fee bumps after ``fee_bump_after`` seconds, their tip
    at most ``fee_bump_limit`` × the first one."""
    cap = chain.max_fee_gwei
    return FeePolicy(
        max_fee_per_gas=round(cap * 10**9) if cap is not None else None,
        bump_after=chain.fee_bump_after,
        bump_limit=chain.fee_bump_limit,
    )

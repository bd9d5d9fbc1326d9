"""Agent configuration: one TOML file, every setting overridable by env vars and flags.

Precedence, highest first: command-line flags (``--set section.name=value`` and
the dedicated flags), environment variables ``VERITRAIN_<SECTION>_<NAME>``
(for example ``VERITRAIN_CHAIN_RPC_URL``), the TOML file, the defaults below.
Relative paths in a file are relative to that file's directory; relative
paths from flags or the environment are relative to the working directory.

Secrets are never settings: the keystore password comes from a file named in
the config or from ``VERITRAIN_KEY_PASSWORD``; a raw private key (devnets only)
from ``VERITRAIN_PRIVATE_KEY`` (see :mod:`agents.node.keys`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.errors import ConfigError
from agents.store.base import RETRIEVAL_TIMEOUT
from agents.store.config import STORE_ENV

ENV_PREFIX = "VERITRAIN_"
# Environment variables that look like settings but are not (secrets, switches).
NOT_SETTINGS = frozenset(
    {
        "VERITRAIN_CONFIG",
        "VERITRAIN_DEBUG",
        "VERITRAIN_FAILPOINTS",
        "VERITRAIN_KEY_PASSWORD",
        "VERITRAIN_PRIVATE_KEY",
        "VERITRAIN_DEVNET_DIR",
    }
)
# Settings whose variable is not VERITRAIN_<SECTION>_<NAME>: the store's location is the one
# variable every store command reads too.
ENV_NAMES = {"store.location": STORE_ENV}
# Names a setting's variable does not have (so nothing silently ignores them).
NOT_SETTING_NAMES = {"VERITRAIN_STORE_LOCATION": STORE_ENV}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChainSettings(_Section):
    """Where the chain and the contracts are."""

    rpc_url: str = "http://127.0.0.1:8545"
    deployment: Path | None = None  # the deployment manifest (JSON)
    confirmations: Annotated[int, Field(ge=0, le=1000)] = 0
    reorg_window: Annotated[int, Field(ge=0, le=10_000)] = 12
    poll_interval: Annotated[float, Field(gt=0, le=600)] = 1.0
    # Seconds between ticks while a job of the agent runs (training, replay) and it neither
    # follows a transaction nor plays a game (the larger of this and ``poll_interval``): a
    # tick's requests and decisions share the job's process, and the job's end wakes the loop
    # at once.
    working_poll_interval: Annotated[float, Field(gt=0, le=600)] = 1.0
    rpc_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_fee_gwei: Annotated[float, Field(gt=0)] | None = None
    # Seconds a sent transaction with no receipt, whose nonce the account has used, is still
    # followed before it is judged dropped, and between checks of one the node keeps calling
    # pending (agents.chain.executor.DropPolicy).
    drop_grace: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # Seconds a sent transaction stays pending, priced below the next base fee plus the node's
    # suggested tip, before it is replaced with raised fees (agents.chain.executor.FeePolicy).
    fee_bump_after: Annotated[float, Field(gt=0, le=86_400)] = 30.0
    # A replacement's tip at most this × the transaction's first tip (FeePolicy.bump_limit):
    # what fee bumps can spend when the node lies about the base fee or the tip.
    fee_bump_limit: Annotated[float, Field(ge=1, le=1000)] = 10.0
    # Deadlines are acted on this many seconds after they pass by the local clock.
    deadline_margin: Annotated[float, Field(ge=0, le=3600)] = 1.0


class KeySettings(_Section):
    """The account the agent signs with (see :mod:`agents.node.keys`)."""

    keystore: Path | None = None
    password_file: Path | None = None


class StoreSettings(_Section):
    """The artifact store: a directory (embedded store) or a Kubo RPC URL."""

    location: str | None = None
    # Seconds a Kubo node may take to fetch an artifact from its peers before the artifact
    # counts as unavailable (the solver's fault, in a verification).
    retrieval_timeout: Annotated[float, Field(gt=0, le=86_400)] = RETRIEVAL_TIMEOUT


class AgentSettings(_Section):
    """How the agent process runs."""

    data_dir: Path | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None  # None: no endpoint
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    progress: Literal["auto", "always", "never"] = "auto"
    # Load the learning engine and compiled kernels at start, not inside the first job.
    warm_up: bool = True


class SolverPolicy(_Section):
    """Which open tasks a solver takes and how it trains them."""

    # The least bounty per 10^9 operations (static ops per step × steps) worth taking, in wei.
    min_bounty_per_gop: Annotated[int, Field(ge=0)] = 0
    max_ops: Annotated[int, Field(ge=1)] = 10**15
    max_stake_wei: Annotated[int, Field(ge=0)] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=64)] = 1  # tasks trained at once
    # The operations per second this solver trains at, in 10^9 (with its proof); when set,
    # a task whose training window is shorter than 1.25 × its ops / throughput is skipped.
    throughput_gops: Annotated[float, Field(gt=0)] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads of training, torch's and the exact kernels'; 0: every core. One thread is
    # the safe default: on a busy machine torch's spinning thread pool can be many times
    # slower, and waking the exact kernels' pool costs more than it saves for small models.
    threads: Annotated[int, Field(ge=0, le=1024)] = 1
    # Before claiming a tolerant task, measure this solver's own drift on it (a profile
    # window with its training as the only variant, drift_budget of the training) and skip
    # the task when the chance that a verification rejects its honest proof at the posted τ
    # exceeds max_rejection_risk (under the drift model of docs/proof.md). None: no check.
    max_rejection_risk: Annotated[float, Field(gt=0, lt=1)] | None = 1e-3
    drift_budget: Annotated[float, Field(gt=0, le=1)] = 0.1
    # Adversary mode for devnet demos and tests only, refused on other chains: "fake-half"
    # (skip training on half the segments), "fake-segment:<i>" (train only half the steps of
    # segment i, honestly elsewhere) or "malformed:<craft>" (commit a malformed proof,
    # agents.learning.malformed; "malformed:cycle" takes each craft in turn by task id).
    adversary: (
        Annotated[str, Field(pattern=r"^(fake-half|fake-segment:[0-9]+|malformed:[a-z0-9-]+)$")]
        | None
    ) = None
    # Devnets only, with an adversary: answer every fault report of its proof by publishing a
    # sampled start state (a malformed proof then settles Unverified after the last round: no
    # bounty, its stake back). An honest solver does so whenever its re-check passes.
    adversary_publishes: bool = False


class VerifierPolicy(_Section):
    """Which jobs a verifier takes."""

    profile: bool = True
    # The share of a task's training steps a profile may run (docs/proof.md, Profiling).
    profile_budget: Annotated[float, Field(gt=0, le=1)] = 0.1
    verify: bool = True
    max_ops: Annotated[int, Field(ge=1)] = 10**15
    max_stake_wei: Annotated[int, Field(ge=0)] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=0, le=1024)] = 1  # as solver.threads
    # Adversary mode for devnet demos and tests only, refused on other chains: "fail" (report
    # Fail on the first sampled segment, behind a lying trace) or "pass" (report Pass on every
    # failing segment, behind traces whose distance is +0); it plays its games by those lies.
    # It lies in a task's first verification round only.
    adversary: Annotated[str, Field(pattern=r"^(fail|pass)$")] | None = None


class WhistleblowerPolicy(_Section):
    """Which reports a whistleblower re-checks and how much it puts at stake challenging them
    (docs/operators.md, Running a whistleblower)."""

    # The share of reports re-checked besides those that may be forced errors (always
    # re-checked). Which ones is drawn from this agent's key, so a verifier cannot predict it.
    recheck_share: Annotated[float, Field(ge=0, le=1)] = 0.25
    # The share of tasks whose proof it checks itself, outside what its re-check replays: on
    # a task drawn (from this agent's key, per task and round), up to proof_segments segments
    # the re-check does not cover (every segment when it does not re-check the report), also
    # drawn from its key, each replayed exactly; one that fails is challenged (challengeProof).
    proof_share: Annotated[float, Field(ge=0, le=1)] = 0.25
    proof_segments: Annotated[int, Field(ge=0, le=4096)] = 5
    # Wei at most at stake at once in open challenges (their bonds); None: no limit.
    budget_wei: Annotated[int, Field(ge=0)] | None = None
    # The largest bond of one challenge; a challenge asking more is left alone. None: any.
    max_bond_wei: Annotated[int, Field(ge=0)] | None = None
    # Tasks whose spec runs more static ops are not re-checked.
    max_ops: Annotated[int, Field(ge=1)] = 10**15
    # Only these submitters' tasks (addresses, comma-separated); empty: every task.
    submitters: Annotated[str, Field(pattern=r"^(0x[0-9a-fA-F]{40}(,0x[0-9a-fA-F]{40})*)?$")] = ""
    # Challenge tasks in which this account holds a role too (a solver's own tasks are its
    # solver's business; off by default).
    own_tasks: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=0, le=1024)] = 1  # as solver.threads

    @property
    def watched_submitters(self) -> frozenset[str]:
        """The submitters watched, lower case (empty: every one)."""
        return frozenset(a.lower() for a in self.submitters.split(",") if a)


class SwarmSettings(_Section):
    """A solver that is a swarm (docs/swarm.md): its training runs on ``workers`` worker
    processes, local ones it starts or, with ``listen``, ones started on other machines that
    connect there with the key in ``key_file``; a ``plan`` (``veritrain swarm plan --out``)
    places them by device name and fixes their count."""

    workers: Annotated[int, Field(ge=0, le=4096)] = 0  # 0: no swarm (or the plan's count)
    stages: Annotated[int, Field(ge=1, le=65)] | None = None  # default: the spec's, or the plan's
    plan: Path | None = None
    listen: Annotated[str, Field(pattern=r"^[^\s:]+:[0-9]{1,5}$")] | None = None
    key_file: Path | None = None  # the swarm's key, 64 hex digits (veritrain swarm key)
    latency_ms: Annotated[float, Field(ge=0, le=60_000)] = 0.0  # emulated, per message
    step_timeout: Annotated[float, Field(gt=0)] | None = None  # seconds a step may take

    @model_validator(mode="after")
    def _consistent(self) -> SwarmSettings:
        if self.listen is not None and self.key_file is None:
            raise ValueError("swarm.listen needs swarm.key_file (workers elsewhere need the key)")
        if self.listen is not None and not self.workers and self.plan is None:
            raise ValueError("swarm.listen needs swarm.workers or swarm.plan (how many join)")
        return self

    @property
    def enabled(self) -> bool:
        return self.workers > 0 or self.listen is not None or self.plan is not None


class AgentConfig(_Section):
    """The whole configuration of one agent (or of one command-line user)."""

    chain: ChainSettings = ChainSettings()
    key: KeySettings = KeySettings()
    store: StoreSettings = StoreSettings()
    agent: AgentSettings = AgentSettings()
    solver: SolverPolicy = SolverPolicy()
    verifier: VerifierPolicy = VerifierPolicy()
    whistleblower: WhistleblowerPolicy = WhistleblowerPolicy()
    swarm: SwarmSettings = SwarmSettings()

    @model_validator(mode="after")
    def _one_swarm_session(self) -> AgentConfig:
        if self.swarm.listen is not None and self.solver.max_parallel > 1:
            raise ValueError(
                "a swarm whose workers are elsewhere trains one task at a time: "
                "solver.max_parallel must be 1 with swarm.listen"
            )
        return self

    def require_deployment(self) -> Path:
        if self.chain.deployment is None:
            raise ConfigError(
                "no deployment manifest configured: set chain.deployment in the config file, "
                "VERITRAIN_CHAIN_DEPLOYMENT, or --deployment"
            )
        return self.chain.deployment

    def require_data_dir(self) -> Path:
        if self.agent.data_dir is None:
            raise ConfigError(
                "no data directory configured: set agent.data_dir in the config file, "
                "VERITRAIN_AGENT_DATA_DIR, or --data-dir"
            )
        return self.agent.data_dir


SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in AgentConfig.model_fields.items()
}
PATH_SETTINGS = frozenset(
    {
        ("chain", "deployment"),
        ("key", "keystore"),
        ("key", "password_file"),
        ("agent", "data_dir"),
        ("swarm", "plan"),
        ("swarm", "key_file"),
    }
)


def setting_names() -> list[str]:
    """Every setting as ``section.name``."""
    return [f"{s}.{n}" for s, model in SECTIONS.items() for n in model.model_fields]


def env_name(setting: str) -> str:
    """The environment variable of ``section.name``."""
    return ENV_NAMES.get(setting) or ENV_PREFIX + setting.replace(".", "_").upper()


def load_config(
    path: Path | None,
    *,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Read ``path`` (if any), apply environment variables, then ``--set`` overrides and flags.

    ``overrides`` are ``section.name=value`` strings; ``flags`` maps
    ``section.name`` to a value (``None`` values are ignored). Raises
    :class:`ConfigError` naming the file, variable or flag at fault.
    """
    env = os.environ if env is None else env
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        data = _read_file(path)
    by_name = {env_name(setting): setting for setting in setting_names()}
    for name, value in env.items():
        if name in NOT_SETTING_NAMES:
            raise ConfigError(f"{name} is not read; the variable is {NOT_SETTING_NAMES[name]}")
        if name in by_name and name not in NOT_SETTINGS:
            # Other components read VERITRAIN_* variables of their own: skip what is no setting.
            section, key = _split_dotted(by_name[name], name)
            data.setdefault(section, {})[key] = _cwd_path(section, key, value)
    for item in overrides:
        setting, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.name=value")
        section, key = _split_dotted(setting, f"--set {item!r}")
        data.setdefault(section, {})[key] = _cwd_path(section, key, value)
    for setting, value in (flags or {}).items():
        if value is not None:
            section, key = _split_dotted(setting, f"flag for {setting}")
            data.setdefault(section, {})[key] = _cwd_path(section, key, value)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        origin = f" (from {path})" if path is not None else ""
        raise ConfigError(f"invalid setting {where}: {first['msg']}{origin}") from None


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    data: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"config file {path}: unknown section [{section}] (known: {', '.join(SECTIONS)})"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path}: {section} must be a table ([{section}])")
        out: dict[str, Any] = {}
        for key, value in values.items():
            if (section, key) in PATH_SETTINGS and isinstance(value, str):
                value = str((base / Path(value).expanduser()).resolve())
            out[key] = value
        data[section] = out
    return data


def _split_dotted(setting: str, origin: str) -> tuple[str, str]:
    section, _, key = setting.partition(".")
    if section not in SECTIONS or key not in SECTIONS[section].model_fields:
        raise ConfigError(
            f"{origin}: unknown setting {setting!r} (known: {', '.join(setting_names())})"
        )
    return section, key


def _cwd_path(section: str, key: str, value: Any) -> Any:
    if (section, key) in PATH_SETTINGS and isinstance(value, str | Path):
        return str(Path(value).expanduser().resolve())
    if isinstance(value, str) and value.lower() in ("none", "null", ""):
        return None
    return value


def render_config(config: AgentConfig) -> str:
    """The configuration as TOML (for ``veritrain config show`` and devnet files)."""
    lines: list[str] = []
    for section in SECTIONS:
        values = getattr(config, section).model_dump(mode="json")
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} =")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'

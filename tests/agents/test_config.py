"""Agent configuration and keys: precedence, paths, and one clear error for each bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from agents.errors import ConfigError
from agents.node.config import KeySettings, env_name, load_config, render_config, setting_names
from agents.node.keys import KeyLoadError, load_account, write_keystore
from agents.roles.connection import fee_policy

DEV_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_file_then_env_then_set_then_flags(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "a.toml",
        '[chain]\nrpc_url = "http://file"\npoll_interval = 3\n[solver]\nmin_bounty_per_gop = 5\n',
    )
    env = {"VERITRAIN_CHAIN_RPC_URL": "http://env", "VERITRAIN_SOLVER_MIN_BOUNTY_PER_GOP": "6"}
    assert load_config(cfg, env={}).chain.rpc_url == "http://file"
    assert load_config(cfg, env=env).chain.rpc_url == "http://env"
    c = load_config(cfg, env=env, overrides=["chain.rpc_url=http://set"])
    assert (
        c.chain.rpc_url == "http://set"
        and c.solver.min_bounty_per_gop == 6
        and c.chain.poll_interval == 3
    )
    c = load_config(
        cfg, env=env, overrides=["chain.rpc_url=http://set"], flags={"chain.rpc_url": "http://flag"}
    )
    assert c.chain.rpc_url == "http://flag"
    # A flag left unset does not override anything.
    assert load_config(cfg, env={}, flags={"chain.rpc_url": None}).chain.rpc_url == "http://file"


def test_paths_in_files_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    cfg = write(
        tmp_path / "conf" / "s.toml",
        '[chain]\ndeployment = "../d.json"\n[agent]\ndata_dir = "data"\n',
    )
    c = load_config(cfg, env={})
    assert c.chain.deployment == tmp_path / "d.json"
    assert c.agent.data_dir == tmp_path / "conf" / "data"


def test_every_setting_has_an_env_var_that_works(tmp_path: Path) -> None:
    assert env_name("agent.metrics_port") == "VERITRAIN_AGENT_METRICS_PORT"
    assert (
        load_config(None, env={"VERITRAIN_AGENT_METRICS_PORT": "9100"}).agent.metrics_port == 9100
    )
    assert "verifier.profile" in setting_names()
    # Variables of other components (no setting of ours) are left alone.
    assert load_config(None, env={"VERITRAIN_STORE_SOMETHING": "x"}).store.location is None


def test_the_store_location_has_one_variable() -> None:
    # The variable every store command reads is the agents' setting too.
    assert env_name("store.location") == "VERITRAIN_STORE"
    assert load_config(None, env={"VERITRAIN_STORE": "/srv/s"}).store.location == "/srv/s"
    with pytest.raises(ConfigError, match="VERITRAIN_STORE_LOCATION is not read"):
        load_config(None, env={"VERITRAIN_STORE_LOCATION": "/srv/s"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[chain\n", "is not valid TOML"),
        ("[chains]\nrpc_url = 'x'\n", r"unknown section \[chains\]"),
        (
            "[chain]\nconfirmations = -1\n",
            "invalid setting chain.confirmations: Input should be greater than or equal to 0",
        ),
        ("[chain]\nrpc = 'x'\n", "invalid setting chain.rpc: Extra inputs are not permitted"),
        ("[agent]\nlog_format = 'xml'\n", "invalid setting agent.log_format"),
        ("chain = 3\n", "chain must be a table"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "bad.toml", text), env={})


def test_bad_overrides_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml", env={})
    with pytest.raises(ConfigError, match=r"expected section\.name=value"):
        load_config(None, env={}, overrides=["chain.rpc_url"])
    with pytest.raises(ConfigError, match=r"unknown setting 'chain\.nope'"):
        load_config(None, env={}, overrides=["chain.nope=1"])
    with pytest.raises(ConfigError, match=r"invalid setting chain\.poll_interval"):
        load_config(None, env={"VERITRAIN_CHAIN_POLL_INTERVAL": "soon"})
    with pytest.raises(ConfigError, match="no deployment manifest configured"):
        load_config(None, env={}).require_deployment()


def test_render_round_trips(tmp_path: Path) -> None:
    c = load_config(
        None,
        env={},
        overrides=[
            "chain.rpc_url=http://x:1",
            "solver.adversary=fake-half",
            f"agent.data_dir={tmp_path}",
        ],
    )
    again = load_config(write(tmp_path / "r.toml", render_config(c)), env={})
    assert again == c


# -- keys -------------------------------------------------------------------------------------


def test_keystore_with_password_file_and_env(tmp_path: Path) -> None:
    address = write_keystore(tmp_path / "k.json", "s3cret", private_key=DEV_KEY, light=True)
    assert address == Account.from_key(DEV_KEY).address
    pw = write(tmp_path / "pw", "s3cret\n")
    by_file = load_account(KeySettings(keystore=tmp_path / "k.json", password_file=pw), 1, env={})
    by_env = load_account(
        KeySettings(keystore=tmp_path / "k.json"), 1, env={"VERITRAIN_KEY_PASSWORD": "s3cret"}
    )
    assert by_file.address == by_env.address == address
    with pytest.raises(KeyLoadError, match="exists already"):
        write_keystore(tmp_path / "k.json", "x", light=True)
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "keystore .* does not exist"),
        ("not-json", "is not a JSON keystore file"),
        ("no-crypto", "no crypto section"),
        ("wrong-password", "wrong password for keystore"),
        ("no-password", "needs a password"),
        ("unreadable-password", "password file .* cannot be read"),
    ],
)
def test_keystore_errors(tmp_path: Path, setup: str, message: str) -> None:
    keystore = tmp_path / "k.json"
    password_file: Path | None = write(tmp_path / "pw", "right")
    if setup != "missing":
        write_keystore(keystore, "right", light=True)
    if setup == "not-json":
        write(keystore, "{broken")
    if setup == "no-crypto":
        write(keystore, '{"address": "00"}')
    if setup == "wrong-password":
        password_file = write(tmp_path / "pw", "wrong")
    if setup == "no-password":
        password_file = None
    if setup == "unreadable-password":
        password_file = tmp_path / "absent"
    with pytest.raises(KeyLoadError, match=message):
        load_account(KeySettings(keystore=keystore, password_file=password_file), 31337, env={})


def test_private_key_env_only_on_devnets() -> None:
    env = {"VERITRAIN_PRIVATE_KEY": DEV_KEY}
    assert load_account(KeySettings(), 31337, env=env).address == Account.from_key(DEV_KEY).address
    with pytest.raises(KeyLoadError, match="devnets only"):
        load_account(KeySettings(), 1, env=env)
    with pytest.raises(KeyLoadError, match="not a valid private key"):
        load_account(KeySettings(), 31337, env={"VERITRAIN_PRIVATE_KEY": "0x12"})
    with pytest.raises(KeyLoadError, match="no signing key"):
        load_account(KeySettings(), 31337, env={})


def test_every_setting_is_documented() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()
    missing = [
        name
        for name in setting_names()
        if f"`{name}`" not in guide or f"`{env_name(name)}`" not in guide
    ]
    assert missing == []


def test_the_retrieval_timeout_is_a_store_setting() -> None:
    assert load_config(None, env={}).store.retrieval_timeout == 120.0
    env = {"VERITRAIN_STORE_RETRIEVAL_TIMEOUT": "600"}
    assert load_config(None, env=env).store.retrieval_timeout == 600.0
    for bad in ("0", "-5", "100000"):
        with pytest.raises(ConfigError):
            load_config(None, env={"VERITRAIN_STORE_RETRIEVAL_TIMEOUT": bad})


@pytest.mark.parametrize(
    ("settings", "cap_wei", "bump_after", "bump_limit"),
    [
        ("", None, 30.0, 10.0),
        (
            "max_fee_gwei = 0.3\nfee_bump_after = 5\nfee_bump_limit = 2.5\n",
            300_000_000,
            5.0,
            2.5,
        ),
        ("max_fee_gwei = 50\nfee_bump_limit = 1\n", 50 * 10**9, 30.0, 1.0),
    ],
)
def test_the_chain_settings_make_the_executors_fee_policy(
    tmp_path: Path, settings: str, cap_wei: int | None, bump_after: float, bump_limit: float
) -> None:
    """chain.max_fee_gwei (to wei, exactly: 0.3 gwei is 300,000,000 wei, not one less),
    chain.fee_bump_after and chain.fee_bump_limit reach the transaction executor's policy."""
    config = load_config(write(tmp_path / "a.toml", f"[chain]\n{settings}"), env={})
    fees = fee_policy(config.chain)
    assert (fees.max_fee_per_gas, fees.bump_after, fees.bump_limit) == (
        cap_wei,
        bump_after,
        bump_limit,
    )


@pytest.mark.parametrize("limit", ["0.5", "0", "-1", "1001"])
def test_a_fee_bump_limit_outside_1_to_1000_is_refused(limit: str) -> None:
    with pytest.raises(ConfigError, match="fee_bump_limit"):
        load_config(None, env={"VERITRAIN_CHAIN_FEE_BUMP_LIMIT": limit})

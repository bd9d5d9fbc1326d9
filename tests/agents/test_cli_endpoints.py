"""The reading commands' endpoints: a deployment checked against the chain that serves it, with
the chain's own error, or the audit's unusable-input error (exit 2), when it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.audit.errors import UNUSABLE, AuditInputError
from agents.chain.client import ChainClient
from agents.chain.deployment import MANIFEST_FORMAT
from agents.chain.errors import (
    ChainError,
    DeploymentError,
    RpcUnavailableError,
    WrongChainError,
)
from agents.chain.rpc import RetryPolicy
from agents.cli.endpoints import reach
from agents.devnet.anvil import Anvil
from agents.store import open_store
from tests.agents.conftest import deploy

ONCE = RetryPolicy(attempts=1)
DEAD = "http://127.0.0.1:9"


def manifest(path: Path, chain_id: int, address: str, abi: list[Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "chain_id": chain_id,
                "deployment_block": 0,
                "contracts": {"Probe": {"address": address, "abi": abi}},
            }
        )
    )
    return path


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration file or devnet directory of the machine leaks into a test."""
    monkeypatch.delenv("VERITRAIN_CONFIG", raising=False)
    monkeypatch.setenv("VERITRAIN_DEVNET_DIR", str(tmp_path / "no-devnet"))


def flags(url: str, deployment: Path, store: Path) -> dict[str, Any]:
    return {"rpc_url": url, "deployment": deployment, "store": str(store)}


def test_a_deployment_the_endpoint_serves_is_reached(
    anvil: Anvil, client: ChainClient, probe_artifact: dict[str, Any], tmp_path: Path
) -> None:
    address = deploy(client, probe_artifact)
    path = manifest(tmp_path / "d.json", client.chain_id(), address, probe_artifact["abi"])
    chain = reach("verifier", None, (), flags(anvil.url, path, tmp_path / "store"), retry=ONCE)
    assert chain.client.url == anvil.url
    assert chain.deployment.contract("Probe").address.lower() == address.lower()
    assert chain.config.store.location == str(tmp_path / "store")
    cid = chain.store().put_bytes(b"endpoints")
    assert open_store(str(tmp_path / "store")).get_bytes(cid) == b"endpoints"


@pytest.mark.parametrize("unusable", [None, AuditInputError])
def test_an_endpoint_that_does_not_serve_the_deployment_is_named(
    anvil: Anvil,
    client: ChainClient,
    probe_artifact: dict[str, Any],
    tmp_path: Path,
    unusable: type[AuditInputError] | None,
) -> None:
    address = deploy(client, probe_artifact)
    chain_id = client.chain_id()
    store = tmp_path / "store"
    cases: list[tuple[str, Path, type[ChainError], int, str]] = [
        (DEAD, manifest(tmp_path / "a.json", chain_id, address, []), RpcUnavailableError, 3, DEAD),
        (
            anvil.url,
            manifest(tmp_path / "b.json", chain_id + 1, address, []),
            WrongChainError,
            2,
            str(chain_id + 1),
        ),
        (
            anvil.url,
            manifest(tmp_path / "c.json", chain_id, "0x" + "ab" * 20, []),
            DeploymentError,
            2,
            "no contract code at Probe",
        ),
    ]
    for url, path, error, code, named in cases:
        with pytest.raises(unusable or error) as raised:
            reach("submitter", None, (), flags(url, path, store), retry=ONCE, unusable=unusable)
        assert named in str(raised.value)
        assert raised.value.exit_code == (code if unusable is None else UNUSABLE)


def test_a_manifest_that_cannot_be_loaded_stays_a_deployment_error(tmp_path: Path) -> None:
    """The manifest is the command's own input: its error is the same with or without an
    ``unusable`` class, and no endpoint is dialled for it."""
    for unusable in (None, AuditInputError):
        with pytest.raises(DeploymentError, match="does not exist"):
            reach(
                "verifier",
                None,
                (),
                flags(DEAD, tmp_path / "missing.json", tmp_path / "store"),
                unusable=unusable,
            )

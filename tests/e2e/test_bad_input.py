"""Bad input to the command line: one clear error line, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.devnet.anvil import REPO_ROOT, free_port
from agents.devnet.processes import child_env, cli_command

from .conftest import TINY_SPEC, Market, open_market


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        cwd=REPO_ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode not in (0, None), done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    m = open_market(tmp_path_factory.mktemp("bad-input") / "devnet")
    try:
        yield m
    finally:
        m.stop()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- without a chain ---------------------------------------------------------------------------


def test_invalid_spec(tmp_path: Path) -> None:
    spec = write(tmp_path / "bad.yaml", TINY_SPEC.read_text().replace("steps: 200", "steps: -5"))
    done = run("submit", str(spec), "--bounty", "1eth", "--rpc-url", "http://127.0.0.1:1")
    assert_one_error_line(done, "steps")


def test_spec_that_does_not_exist(tmp_path: Path) -> None:
    done = run("submit", str(tmp_path / "nope.yaml"), "--bounty", "1eth")
    assert_one_error_line(done, "nope.yaml")


@pytest.mark.parametrize(
    ("bounty", "fragment"), [("abc", "amount 'abc'"), ("1.5wei", "whole number of wei")]
)
def test_bad_amounts(bounty: str, fragment: str) -> None:
    assert_one_error_line(run("submit", str(TINY_SPEC), "--bounty", bounty), fragment)


def test_missing_manifest(tmp_path: Path) -> None:
    done = run("tasks", "--deployment", str(tmp_path / "deployment.json"))
    assert_one_error_line(done, "deployment manifest", "does not exist")


def test_no_manifest_configured(tmp_path: Path) -> None:
    done = run("tasks", env={"VERITRAIN_DEVNET_DIR": str(tmp_path)})
    assert_one_error_line(done, "no deployment manifest configured")


def test_bad_config_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[chain]\nconfirmations = 'many'\n")
    assert_one_error_line(run("tasks", "--config", str(config)), "chain.confirmations")


@pytest.mark.chain
def test_unreachable_rpc(market: Market) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run("tasks", "--config", str(market.config("submitter")), "--rpc-url", url)
    line = assert_one_error_line(done, url, "unreachable")
    assert done.returncode == 3, line


# -- against a devnet --------------------------------------------------------------------------


@pytest.mark.chain
def test_wrong_chain_id(market: Market, tmp_path: Path) -> None:
    manifest = json.loads(Path(market.info.manifest).read_text())
    manifest["chain_id"] = 1
    other = write(tmp_path / "mainnet.json", json.dumps(manifest))
    done = run("tasks", "--config", str(market.config("submitter")), "--deployment", str(other))
    assert_one_error_line(done, "chain id 31337", "chain id 1")


@pytest.mark.chain
def test_stale_manifest(market: Market, tmp_path: Path) -> None:
    manifest = json.loads(Path(market.info.manifest).read_text())
    manifest["contracts"]["TaskPool"]["address"] = "0x" + "12" * 20
    stale = write(tmp_path / "stale.json", json.dumps(manifest))
    done = run("tasks", "--config", str(market.config("submitter")), "--deployment", str(stale))
    assert_one_error_line(done, "no contract code")


@pytest.mark.chain
def test_insufficient_funds(market: Market) -> None:
    done = market.cli("submit", str(TINY_SPEC), "--bounty", "5000eth")
    assert_one_error_line(done, market.account("submitter"), "cannot pay")
    assert market.tasks() == {}


@pytest.mark.chain
def test_bounty_below_the_minimum(market: Market) -> None:
    done = market.cli("submit", str(TINY_SPEC), "--bounty", "5wei")
    assert_one_error_line(done, "below the pool's minimum")


@pytest.mark.chain
@pytest.mark.parametrize(
    ("setting", "content", "fragment"),
    [
        ("key.keystore", "{not json", "is not a JSON keystore file"),
        ("key.keystore", None, "does not exist"),
        ("key.password_file", "wrong password", "wrong password for keystore"),
    ],
)
def test_unreadable_keystore(
    market: Market, tmp_path: Path, setting: str, content: str | None, fragment: str
) -> None:
    path = tmp_path / "file"
    if content is not None:
        write(path, content)
    done = market.cli("submit", str(TINY_SPEC), "--bounty", "1eth", "--set", f"{setting}={path}")
    assert_one_error_line(done, fragment)


@pytest.mark.chain
def test_a_data_directory_is_held_by_one_agent(market: Market) -> None:
    first = market.agent("solver")
    market.wait(
        "the solver to start", lambda: "agent started" in first.log.read_text(errors="replace")
    )
    done = run("solver", "run", "--config", str(market.config("solver")))
    assert_one_error_line(done, "in use by another agent process")
    first.stop()


@pytest.mark.chain
def test_cancel_of_someone_elses_or_a_missing_task(market: Market) -> None:
    assert_one_error_line(market.cli("cancel", "999"), "no task 999")
    assert_one_error_line(market.cli("task", "show", "999"), "no task 999")

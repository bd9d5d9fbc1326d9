"""The solc-js adapter answers py-solc-x (and so brownie) like a native solc would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agents.devnet.anvil import REPO_ROOT

ADAPTER = REPO_ROOT / ".solcx" / "solc-v0.8.28"

GREETER = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Name} from "lib/Name.sol";

contract Greeter {
    function greet() external pure returns (string memory) {
        return Name.value();
    }
}
"""
NAME = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

library Name {
    function value() internal pure returns (string memory) {
        return "veritrain";
    }
}
"""


@pytest.fixture(autouse=True)
def adapter_installed() -> None:
    if not ADAPTER.is_file():
        pytest.fail(f"{ADAPTER} is missing: `make setup` creates it")


def run(
    args: list[str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADAPTER), *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120
    )


def standard_input(sources: dict[str, str]) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": {
                "evmVersion": "cancun",
                "optimizer": {"enabled": True, "runs": 200},
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        }
    )


def compile_json(sources: dict[str, str], args: list[str], cwd: Path | None = None) -> Any:
    done = run(["--standard-json", *args], standard_input(sources), cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def errors(output: dict[str, Any]) -> list[str]:
    return [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]


def test_version_is_reported_as_py_solc_x_expects() -> None:
    done = run(["--version"])
    assert done.returncode == 0
    assert "Version: 0.8.28+commit." in done.stdout


def test_py_solc_x_finds_the_adapter_without_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    import solcx
    from solcx import wrapper

    monkeypatch.setenv("SOLCX_BINARY_PATH", str(ADAPTER.parent))
    executable = solcx.install.get_executable("0.8.28")
    assert executable == ADAPTER
    assert str(wrapper.get_solc_version(executable)) == "0.8.28"
    assert "0.8.28" in [str(v) for v in solcx.get_installed_solc_versions()]


def test_standard_json_round_trip_with_an_import_from_disk(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Name.sol").write_text(NAME)
    # Only Greeter.sol is in the input: lib/Name.sol is read through the import callback.
    output = compile_json({"Greeter.sol": GREETER}, [], cwd=tmp_path)
    assert errors(output) == []
    greeter = output["contracts"]["Greeter.sol"]["Greeter"]
    assert [f["name"] for f in greeter["abi"]] == ["greet"]
    assert len(greeter["evm"]["bytecode"]["object"]) > 100
    assert "lib/Name.sol" in output["sources"]


def test_imports_resolve_against_base_and_allowed_paths(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "Name.sol").write_text(NAME)
    for flag in ("--base-path", "--allow-paths", "--include-path"):
        output = compile_json({"Greeter.sol": GREETER}, [flag, str(root)], cwd=tmp_path)
        assert errors(output) == [], flag


def test_a_missing_import_is_reported(tmp_path: Path) -> None:
    output = compile_json({"Greeter.sol": GREETER}, [], cwd=tmp_path)
    assert any("lib/Name.sol" in message for message in errors(output))


def test_a_compile_error_surfaces_as_an_error(tmp_path: Path) -> None:
    broken = "pragma solidity 0.8.28; contract Broken { function f( }"
    output = compile_json({"Broken.sol": broken}, [], cwd=tmp_path)
    assert any("ParserError" in message for message in errors(output))


def test_py_solc_x_compiles_standard_json_and_raises_on_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """brownie compiles through ``solcx.compile_standard``; errors become ``SolcError``."""
    import solcx
    from solcx.exceptions import SolcError

    monkeypatch.setenv("SOLCX_BINARY_PATH", str(ADAPTER.parent))
    good = json.loads(standard_input({"Name.sol": NAME.replace("internal", "public")}))
    output = solcx.compile_standard(good, solc_version="0.8.28", allow_paths=str(REPO_ROOT))
    assert output["contracts"]["Name.sol"]["Name"]["abi"][0]["name"] == "value"
    bad = json.loads(
        standard_input({"Bad.sol": "pragma solidity 0.8.28; contract C { uint x = ; }"})
    )
    with pytest.raises(SolcError, match="ParserError"):
        solcx.compile_standard(bad, solc_version="0.8.28")


def test_input_that_is_not_json_is_a_json_error() -> None:
    done = run(["--standard-json"], "{ not json")
    assert done.returncode == 0
    output = json.loads(done.stdout)
    assert output["errors"][0]["type"] == "JSONError"


def test_other_invocations_are_refused() -> None:
    done = run(["--combined-json", "abi"])
    assert done.returncode == 1
    assert "only --version and --standard-json" in done.stderr


def test_no_step_downloads_a_compiler() -> None:
    """The adapter runs the pinned npm solc-js; nothing in it or in its launcher fetches one."""
    launcher = ADAPTER.read_text()
    adapter = (REPO_ROOT / "tools" / "solc" / "solc-adapter.js").read_text()
    assert "solc-adapter.js" in launcher
    for text in (launcher, adapter):
        assert "http" not in text.lower()
    assert os.access(ADAPTER, os.X_OK)

"""The brownie build stays loadable and whole: stale artifacts go, dependencies are transitive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.network import close_dependencies, drop_stale_artifacts

OZ = "node_modules/@openzeppelin/contracts/utils/"


def _checkout(root: Path, sources: list[str], artifacts: dict[str, dict[str, Any]]) -> None:
    for source in sources:
        (root / source).parent.mkdir(parents=True, exist_ok=True)
        (root / source).write_text("// source\n")
    build = root / "build" / "contracts"
    build.mkdir(parents=True)
    for name, data in artifacts.items():
        (build / f"{name}.json").write_text(json.dumps(data))


def _artifact(source: str, dependencies: list[str], *also: str) -> dict[str, Any]:
    paths = {str(i): path for i, path in enumerate([source, *also])}
    return {"sourcePath": source, "allSourcePaths": paths, "dependencies": dependencies}


def _dependencies(root: Path, name: str) -> list[str]:
    data = json.loads((root / "build" / "contracts" / f"{name}.json").read_text())
    return list(data["dependencies"])


def test_an_artifact_built_from_a_removed_source_is_dropped(tmp_path: Path) -> None:
    _checkout(
        tmp_path,
        ["contracts/Pool.sol", "contracts/lib/Errors.sol", OZ + "Guard.sol"],
        {
            "Pool": _artifact("contracts/Pool.sol", ["Errors"], "contracts/lib/OldGuard.sol"),
            "Errors": _artifact("contracts/lib/Errors.sol", []),
            "Guard": _artifact(OZ + "Guard.sol", []),
        },
    )
    (tmp_path / "build" / "contracts" / "Broken.json").write_text("{not json")
    assert drop_stale_artifacts(tmp_path) == ["Pool"]
    left = sorted(p.stem for p in (tmp_path / "build" / "contracts").glob("*.json"))
    assert left == ["Broken", "Errors", "Guard"]
    assert drop_stale_artifacts(tmp_path) == []


def test_project_artifacts_list_the_libraries_of_their_npm_dependencies(tmp_path: Path) -> None:
    artifacts = {
        "Pool": _artifact("contracts/Pool.sol", ["Escrow", "Guard"]),
        "Escrow": _artifact("contracts/Escrow.sol", ["Guard"]),
        "Guard": _artifact(OZ + "Guard.sol", ["Slot"]),
        "Slot": _artifact(OZ + "Slot.sol", []),
    }
    _checkout(tmp_path, [], artifacts)
    assert close_dependencies(tmp_path) == []
    assert _dependencies(tmp_path, "Pool") == ["Escrow", "Guard", "Slot"]
    assert _dependencies(tmp_path, "Escrow") == ["Guard", "Slot"]
    assert _dependencies(tmp_path, "Guard") == ["Slot"]  # npm artifacts are left as built
    assert close_dependencies(tmp_path) == []
    assert _dependencies(tmp_path, "Pool") == ["Escrow", "Guard", "Slot"]


def test_a_project_artifact_whose_library_is_gone_is_compiled_again(tmp_path: Path) -> None:
    _checkout(
        tmp_path,
        [],
        {
            "Pool": _artifact("contracts/Pool.sol", ["Guard"]),
            "Other": _artifact("contracts/Other.sol", []),
            "Guard": _artifact(OZ + "Guard.sol", ["Slot"]),
        },
    )
    assert close_dependencies(tmp_path) == ["Pool"]
    left = sorted(p.stem for p in (tmp_path / "build" / "contracts").glob("*.json"))
    assert left == ["Guard", "Other"]

"""The Makefile drops the contracts' build whenever npm installs packages or the compiler
settings change, so a checkout never loads contracts compiled against old npm sources."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
STAMP = "build/.sources"
ARTIFACT = "build/contracts/TaskPool.json"
KEPT = "build/deployments/map.json"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")

# Files the build step depends on, oldest first unless a row says otherwise.
INPUTS = ["package.json", "package-lock.json", "brownie-config.yaml", "node_modules/.installed"]


def _checkout(root: Path, *, stamp: bool) -> None:
    shutil.copy(MAKEFILE, root / "Makefile")
    for name in [*INPUTS, ARTIFACT, KEPT] + ([STAMP] if stamp else []):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    for age, name in enumerate(reversed([*INPUTS, STAMP])):
        if (root / name).exists():
            when = 1_700_000_000 - 100 * age
            os.utime(root / name, (when, when))


def _touch_newer(root: Path, name: str) -> None:
    when = 1_700_000_500
    os.utime(root / name, (when, when))


def _make(root: Path) -> None:
    subprocess.run(["make", "-s", STAMP], cwd=root, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize(
    ("stamp", "newer", "dropped"),
    [
        (False, None, True),  # a checkout built before the stamp existed
        (True, None, False),  # nothing changed since the last drop
        (True, "node_modules/.installed", True),  # npm installed (other) packages
        (True, "brownie-config.yaml", True),  # compiler settings changed
    ],
    ids=["no stamp", "unchanged", "npm installed", "settings changed"],
)
def test_the_build_is_dropped_exactly_when_its_inputs_changed(
    tmp_path: Path, stamp: bool, newer: str | None, dropped: bool
) -> None:
    _checkout(tmp_path, stamp=stamp)
    if newer is not None:
        _touch_newer(tmp_path, newer)
    _make(tmp_path)
    assert (tmp_path / ARTIFACT).exists() == (not dropped)
    assert (tmp_path / KEPT).exists()  # deployments are not build outputs of the sources
    assert (tmp_path / STAMP).exists()
    # Once dropped, the next run changes nothing.
    (tmp_path / ARTIFACT).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / ARTIFACT).write_text("rebuilt")
    _make(tmp_path)
    assert (tmp_path / ARTIFACT).read_text() == "rebuilt"


def test_setup_includes_the_build_step() -> None:
    setup = next(line for line in MAKEFILE.read_text().splitlines() if line.startswith("setup:"))
    assert "$(BUILDSTAMP)" in setup


def test_lint_type_checks_the_tests_and_benchmarks_too() -> None:
    recipe = MAKEFILE.read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    calls = [line.split() for line in recipe.splitlines() if line.strip().startswith("mypy")]
    checked = {word for call in calls for word in call[1:] if not word.startswith(("-", "'"))}
    assert {"scripts", "benchmarks", "tests"} <= checked
    excluded = {call[i + 1] for call in calls for i, w in enumerate(call) if w == "--exclude"}
    assert excluded <= {"'^tests/dispute/'", "'^benchmarks/dispute\\.py$$'"}

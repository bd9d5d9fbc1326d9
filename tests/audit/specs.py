"""Task specs for audited rounds."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.conftest import TINY_SPEC


def exact_spec(directory: Path) -> Path:
    """The tiny spec in exact mode: no profiling and no drift to measure, so a round is the
    training and its verification alone, and every distance is exact."""
    data = yaml.safe_load(TINY_SPEC.read_text())
    data["name"] = "digits-mlp-tiny-exact"
    data["verification"] = {**data["verification"], "tolerance": "exact", "tau": None}
    path = directory / "exact.yaml"
    path.write_text(yaml.safe_dump(data))
    return path

"""Rounds in which the solver is a swarm of local workers: its proof passes verification by a
verifier replaying alone, in exact mode (a pipeline of two stages with AQ-SGD between them)
and in tolerant mode (two data-parallel workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import TINY_SPEC, Market

pytestmark = pytest.mark.chain

DIGITS = 1797  # the samples of the digits dataset: AQ-SGD keeps a buffer for each


def _spec(directory: Path, name: str, verification: dict[str, Any], parallel: Any) -> Path:
    data = yaml.safe_load(TINY_SPEC.read_text())
    data["name"] = name
    data["verification"] = {**data["verification"], **verification}
    data["parallel"] = parallel
    data["steps"], data["checkpoint_interval"] = 100, 10  # ten segments, as tiny.yaml's 200 / 20
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _round(market: Market, spec: Path, *settings: str) -> None:
    args = [item for setting in settings for item in ("--set", setting)]
    market.agent("solver", *args)
    market.agent("verifier")
    task_id = market.submit(spec, follow=True)
    view = market.wait_settled(task_id, timeout=600)
    assert view.outcome == "Passed" and view.verdict == "Pass", market.logs()
    assert view.penalised == []
    # The solver trained on its swarm, not in its own process.
    solver = (market.directory / "solver.log").read_text()
    assert 'backend="swarm(workers=2' in solver and "cannot train this task" not in solver


def test_an_exact_round_trained_by_a_pipeline_with_aq_sgd_passes(
    market: Market, tmp_path: Path
) -> None:
    compression = {"method": "aq", "bits": 2, "backward_bits": 4, "samples": DIGITS}
    spec = _spec(
        tmp_path,
        "digits-mlp-tiny-pipeline",
        {"tolerance": "exact", "tau": None},
        {"microbatches": 4, "stages": 2, "compression": compression},
    )
    _round(market, spec, "swarm.workers=2")


def test_a_tolerant_round_trained_by_two_data_parallel_workers_passes(
    market: Market, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "digits-mlp-tiny-parallel", {}, {"microbatches": 2})
    _round(market, spec, "swarm.workers=2")

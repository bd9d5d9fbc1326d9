"""Rounds in which the solver is a swarm of local workers: its proof passes verification by a
verifier replaying alone, in exact mode (the plan `veritrain swarm plan` makes for four
devices: two pipelines of two stages, AQ-SGD between the stages) and in tolerant mode (two
data-parallel workers)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

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


def _round(market: Market, spec: Path, *settings: str, backend: str = "swarm(workers=2") -> None:
    args = [item for setting in settings for item in ("--set", setting)]
    market.agent("solver", *args)
    market.agent("verifier")
    task_id = market.submit(spec, follow=True)
    view = market.wait_settled(task_id, timeout=600)
    assert view.outcome == "Passed" and view.verdict == "Pass", market.logs()
    assert view.penalised == []
    # The solver trained on its swarm, not in its own process.
    solver = (market.directory / "solver.log").read_text()
    assert f'backend="{backend}' in solver and "cannot train this task" not in solver


# Four GPUs on two hosts, and the digits MLP (two linear layers, so two stages) for the
# cost model.
DEVICES = {
    "name": "two-hosts",
    "devices": [
        {"name": "left", "count": 2, "host": "left", "tflops": 10, "memory_gb": 8},
        {"name": "right", "count": 2, "host": "right", "tflops": 10, "memory_gb": 8},
    ],
    "links": {
        "same_host": {"latency_ms": 0.1, "bandwidth_gbps": 100},
        "default": {"latency_ms": 20, "bandwidth_gbps": 0.1},
    },
}
MODEL = {
    "name": "digits-mlp", "layers": 2, "d_model": 64, "seq_len": 1, "parameters": 4810,
    "batch": 64, "microbatch": 16, "stages": 2, "activation_bytes": 4,
}  # fmt: skip


def test_an_exact_round_trained_on_a_plan_of_two_pipelines_with_aq_sgd_passes(
    market: Market, tmp_path: Path
) -> None:
    devices, model, plan = (
        tmp_path / "devices.json",
        tmp_path / "model.json",
        tmp_path / "plan.json",
    )
    devices.write_text(json.dumps(DEVICES))
    model.write_text(json.dumps(MODEL))
    planned = subprocess.run(
        cli_command("swarm", "plan", "--devices", str(devices), "--model", str(model),
                    "--out", str(plan)),
        cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    layout = json.loads(plan.read_text())
    assert (layout["stages"], layout["replicas"]) == (2, 2)
    # Each pipeline on one host: its activations cross a fast link, the all-reduce a slow one.
    assert sorted(name.split("-")[0] for name in layout["pipelines"][0]) in (
        ["left", "left"],
        ["right", "right"],
    )
    compression = {"method": "aq", "bits": 2, "backward_bits": 4, "samples": DIGITS}
    spec = _spec(
        tmp_path,
        "digits-mlp-tiny-pipeline",
        {"tolerance": "exact", "tau": None},
        {"microbatches": 4, "stages": 2, "compression": compression},
    )
    _round(market, spec, f"swarm.plan={plan}", backend="swarm(workers=4, stages=2")


def test_a_tolerant_round_trained_by_two_data_parallel_workers_passes(
    market: Market, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "digits-mlp-tiny-parallel", {}, {"microbatches": 2})
    _round(market, spec, "swarm.workers=2")

"""Rounds in which the solver is a swarm of local workers: its proof passes verification by a
verifier replaying alone, in exact mode (the plan `veritrain swarm plan` makes for four
devices: two pipelines of two stages, AQ-SGD between the stages) and in tolerant mode (two
data-parallel workers)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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
DEVICES: dict[str, Any] = {
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


@pytest.mark.slow
def test_a_round_trained_by_workers_started_on_their_own_passes(
    market: Market, tmp_path: Path
) -> None:
    """As docs/swarm.md runs workers on several machines: a plan, a key, the solver listening,
    each worker started by hand with its device's name and --retry."""
    devices, model, plan = (
        tmp_path / "devices.json",
        tmp_path / "model.json",
        tmp_path / "plan.json",
    )
    devices.write_text(json.dumps({**DEVICES, "devices": DEVICES["devices"][:1]}))
    model.write_text(json.dumps(MODEL))
    key = tmp_path / "swarm.key"
    for args in (
        ("swarm", "plan", "--devices", str(devices), "--model", str(model), "--out", str(plan)),
        ("swarm", "key", "--out", str(key)),
    ):
        done = subprocess.run(
            cli_command(*args), cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    names = [name for row in json.loads(plan.read_text())["pipelines"] for name in row]
    assert sorted(names) == ["left-0", "left-1"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    env = child_env({"VERITRAIN_SWARM_KEY": key.read_text().strip(), "GLOO_SOCKET_IFNAME": "lo"})
    logs = [(tmp_path / f"worker-{name}.log").open("w") for name in names]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "agents.swarm.worker", address, name, "--retry", "1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for name, log in zip(names, logs, strict=True)
    ]
    try:
        compression = {"method": "aq", "bits": 2, "backward_bits": 4, "samples": DIGITS}
        spec = _spec(
            tmp_path,
            "digits-mlp-tiny-far",
            {"tolerance": "exact", "tau": None},
            {"microbatches": 4, "stages": 2, "compression": compression},
        )
        _round(
            market, spec, f"swarm.plan={plan}", f"swarm.listen={address}",
            f"swarm.key_file={key}", backend="swarm(workers=2, stages=2",
        )  # fmt: skip
        assert all(w.poll() is None for w in workers)  # still there for the next task
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        for log in logs:
            log.close()

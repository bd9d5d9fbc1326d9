"""``veritrain swarm plan`` on the paper's scenarios, as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from agents.swarm.cost import plan_cost, weights
from agents.swarm.network import load_network
from agents.swarm.plan import load_plan
from agents.swarm.workload import load_model, workload_for
from tests.command_line import veritrain

from .conftest import EXAMPLES, SCENARIOS

MODEL = EXAMPLES / "gpt3-1.3b.json"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_plan_each_scenario(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenario: str
) -> None:
    devices = EXAMPLES / f"{scenario}.json"
    out_file = tmp_path / "plan.json"
    code, out, err = veritrain(
        capsys,
        "swarm",
        "plan",
        "--devices",
        str(devices),
        "--model",
        str(MODEL),
        "--out",
        str(out_file),
    )
    assert code == 0, err
    assert f"{scenario}: 64 devices; gpt3-1.3b in 8 stages x 8 data-parallel replicas" in out
    assert "predicted communication per iteration" in out
    lines = out.splitlines()
    assert sum(line.startswith("pipeline ") for line in lines) == 8
    # The written plan names every device once and its cost is the model's.
    plan = load_plan(out_file)
    net = load_network(devices)
    assert sorted(plan.devices) == sorted(d.name for d in net.devices)
    w = weights(net, workload_for(load_model(MODEL), net.size))
    index = np.array([[net.index(name) for name in row] for row in plan.pipelines])
    assert plan.cost is not None
    assert plan.cost.total_s == pytest.approx(plan_cost(w, index).total, rel=1e-12)
    assert f"{plan.cost.total_s:.3f} s" in out


def test_json_output_and_other_schedulers(capsys: pytest.CaptureFixture[str]) -> None:
    devices = str(EXAMPLES / "multiple-datacenters.json")
    code, out, _ = veritrain(
        capsys, "swarm", "plan", "--devices", devices, "--model", str(MODEL),
        "--scheduler", "random", "--stages", "4", "--json",
    )  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    assert (plan["stages"], plan["replicas"], plan["scheduler"]) == (4, 16, "random")
    assert len(plan["pipelines"]) == 16 and all(len(row) == 4 for row in plan["pipelines"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stages", "5"], "24 layers do not split into 5 equal stages"),
        (["--stages", "3"], "64 devices do not form 3-stage pipelines"),
        (["--scheduler", "best"], "Invalid value for '--scheduler'"),
    ],
)
def test_bad_requests_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    devices = str(EXAMPLES / "world-geo-distributed.json")
    code, out, err = veritrain(
        capsys, "swarm", "plan", "--devices", devices, "--model", str(MODEL), *args
    )
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_missing_devices_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = veritrain(
        capsys, "swarm", "plan", "--devices", str(tmp_path / "no.json"), "--model", str(MODEL)
    )
    assert code == 2 and "cannot read devices file" in err


ONE_LINK = {"default": {"latency_ms": 1, "bandwidth_gbps": 1}}


def _devices(tmp_path: Path, count: int, name: str = "a") -> Path:
    entry = {"name": name, "count": count, "tflops": 100, "memory_gb": 80}
    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"name": "small", "devices": [entry], "links": ONE_LINK}))
    return path


@pytest.mark.parametrize(
    ("which", "text", "message"),
    [
        ("devices", "{", "devices file .* is not JSON"),
        ("devices", "[]", "devices file .*: expected a JSON object$"),
        ("devices", "\xff", "devices file .* is not JSON"),
        ("devices", '{"name": "x", "devices": []}', r"devices: List should .*; links: Field"),
        (
            "devices",
            '{"name": "x", "devices": [{"name": "a", "tflops": 1, "memory_gb": 1}],'
            ' "links": {"default": {"latency_ms": NaN, "bandwidth_gbps": 1}}}',
            r"links\.default\.latency_ms: Input should be a finite number",
        ),
        ("model", "[1, 2]", "model file .*: expected a JSON object$"),
        ("model", '{"name": "g"}', r"layers: Field required; .* \(and 2 more\)"),
        (
            "model",
            json.dumps({**json.loads(MODEL.read_text()), "microbatch": 3}),
            "model file .*: batch 512 is not a multiple of microbatch 3$",
        ),
    ],
)
def test_malformed_files_are_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, which: str, text: str, message: str
) -> None:
    bad = tmp_path / f"{which}.json"
    bad.write_bytes(text.encode("latin-1"))
    paths = {"devices": EXAMPLES / "multiple-datacenters.json", "model": MODEL, which: bad}
    code, out, err = veritrain(
        capsys, "swarm", "plan", "--devices", str(paths["devices"]), "--model", str(paths["model"])
    )
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("scheduler", ["descent", "genetic", "random"])
def test_a_single_device_is_a_plan_of_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scheduler: str
) -> None:
    devices = _devices(tmp_path, 1)
    code, out, err = veritrain(
        capsys, "swarm", "plan", "--devices", str(devices), "--model", str(MODEL),
        "--stages", "1", "--scheduler", scheduler,
    )  # fmt: skip
    assert code == 0, err
    assert "predicted communication per iteration: 0.000 s" in out
    assert out.splitlines()[-1].split() == ["pipeline", "0", "a"]


def test_the_table_lines_up_with_short_device_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    devices = _devices(tmp_path, 4, name="g")
    code, out, _ = veritrain(
        capsys, "swarm", "plan", "--devices", str(devices), "--model", str(MODEL), "--stages", "2"
    )
    assert code == 0
    header, *rows = out.splitlines()[-3:]
    starts = [header.index("stage 0"), header.index("stage 1")]
    for row in rows:
        names = row.split()[2:]
        assert [row.index(name, len("pipeline 0")) for name in names] == starts, out


def test_a_plan_that_cannot_be_written_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    devices = _devices(tmp_path, 2)
    for out in (tmp_path / "missing" / "plan.json", tmp_path):
        code, printed, err = veritrain(
            capsys, "swarm", "plan", "--devices", str(devices), "--model", str(MODEL),
            "--stages", "2", "--out", str(out),
        )  # fmt: skip
        assert (code, printed) == (2, "")
        assert err.strip() == f"error: cannot write plan file {out}: " + (
            "No such file or directory" if out != tmp_path else "Is a directory"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["devices.json"]  # no temporary left

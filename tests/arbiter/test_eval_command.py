"""``veritrain arbiter eval OP``: the deployed library's bits on every line, as the CPU path's."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from agents.arbiter.batch import ELEMENTWISE, reference
from agents.arbiter.vectors import vectors
from agents.chain.deployment import Deployment
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

LINES = 20_000


def run_eval(op: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("arbiter", "eval", op, *args),
        input=text,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=child_env(),
        timeout=600,
    )


def as_lines(operands: np.ndarray) -> str:
    return "".join(" ".join(f"{v:08x}" for v in row) + "\n" for row in operands)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "sqrt", "lt", "le", "eq", "exp", "log"])
def test_eval_prints_the_cpu_paths_bits_on_every_line(
    arbiter_deployment: Deployment, arbiter_devnet_url: str, op: str
) -> None:
    spec = ELEMENTWISE[op]
    operands = vectors(op, LINES, seed=7 + int(spec.op))
    done = run_eval(
        op,
        as_lines(operands),
        "--rpc",
        arbiter_devnet_url,
        "--deployment",
        str(arbiter_deployment.path),
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("\n")
    assert printed[-1] == "" and len(printed) == LINES + 1
    want = reference(spec, operands)
    if spec.boolean:
        assert set(printed[:-1]) <= {"00000000", "00000001"}
        want = (want == 0x3F800000).astype(np.uint32)
    got = np.array([int(word, 16) for word in printed[:-1]], dtype=np.uint32)
    mismatched = np.flatnonzero(got != want)
    assert mismatched.size == 0, [as_lines(operands[i : i + 1]) for i in mismatched[:5]]


def test_eval_starts_its_own_devnet_without_rpc() -> None:
    done = run_eval("mul", "3fc00000 40000000\n\n00000001 3f000000\n7f800000 00000000\n")
    assert done.returncode == 0, done.stderr
    # 1.5 * 2 = 3; the smallest subnormal halved ties to even (+0); inf * 0 is NaN
    assert done.stdout.split() == ["40400000", "00000000", "7fc00000"]


@pytest.mark.parametrize(
    ("op", "text", "message"),
    [
        ("add", "3f800000\n", "line 1: expected 2 operand(s), got 1"),
        ("neg", "3f800000\n3f80000g\n", "line 2: '3f80000g' is not an 8-digit hex word"),
        ("sqrt", "3f8000000\n", "is not an 8-digit hex word"),
    ],
)
def test_malformed_lines_are_named_and_nothing_is_started(op: str, text: str, message: str) -> None:
    done = run_eval(op, text)
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""


def test_rpc_needs_a_manifest() -> None:
    done = run_eval("add", "3f800000 3f800000\n", "--rpc", "http://127.0.0.1:1")
    assert done.returncode == 2 and "--rpc needs --deployment" in done.stderr


def test_unknown_op_is_refused() -> None:
    done = run_eval("tanh", "3f800000\n")
    assert done.returncode == 2 and "tanh" in done.stderr

"""``veritrain arbiter``: the on-chain arbiter from the command line.

``veritrain arbiter eval OP`` evaluates an elementwise op of the trace with the deployed
binary32 library, for auditors and tests: lines of 8-digit hex operands in, one hex result
per line out, many lines per ``eth_call``.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click
import numpy as np

from agents.arbiter.batch import ELEMENTWISE, ElementwiseOp, elementwise, format_result, parse_line
from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.evaluator import Binary32Evaluator
from agents.devnet.anvil import start_anvil
from agents.devnet.contracts import DEVNET_PARAMETERS, deploy_contracts
from agents.errors import ConfigError


@click.group()
def arbiter() -> None:
    """The binary32 arbiter: evaluate the on-chain library."""


@arbiter.command(name="eval")
@click.argument("op", type=click.Choice(sorted(ELEMENTWISE)), metavar="OP")
@click.option("--rpc", "--rpc-url", "rpc", help="JSON-RPC endpoint of a chain with the contracts.")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Deployment manifest of that chain (its rpc_url is used when --rpc is not given).",
)
def eval_command(op: str, rpc: str | None, deployment: Path | None) -> None:
    """Evaluate OP on every line of stdin (operands as 8-digit hex words, space-separated);
    print one 8-digit hex result per line (lt, le, eq: 00000000 or 00000001).

    Without --rpc and --deployment a devnet is started, the contracts deployed, and the
    devnet stopped at the end. OP is one of: add sub mul div maximum minimum lt le eq
    select ldexp neg abs sqrt exp log.
    """
    spec = elementwise(op)
    operands = read_operands(spec, sys.stdin)
    with _evaluator(rpc, deployment) as evaluator:
        for start in range(0, operands.shape[0], spec.batch * 16):
            results = evaluator.evaluate(spec, operands[start : start + spec.batch * 16])
            click.echo("\n".join(format_result(spec, int(bits)) for bits in results))


def read_operands(spec: ElementwiseOp, lines: TextIO) -> np.ndarray:
    """Every non-blank line of ``lines`` as a row of ``spec.arity`` bit patterns."""
    rows = [
        parse_line(line, spec.arity, number)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    return np.array(rows, dtype=np.uint32).reshape(len(rows), spec.arity)


@contextlib.contextmanager
def _evaluator(rpc: str | None, manifest: Path | None) -> Iterator[Binary32Evaluator]:
    if manifest is not None:
        deployment = load_deployment(manifest)
        url = rpc or deployment.rpc_url
        if not url:
            raise ConfigError(f"{manifest} names no rpc_url: give --rpc")
        yield _connect(url, deployment)
        return
    if rpc is not None:
        raise ConfigError("--rpc needs --deployment (the manifest of the contracts there)")
    node = start_anvil(zero_base_fee=True)
    try:
        with tempfile.TemporaryDirectory(prefix="veritrain-arbiter-") as scratch:
            path = Path(scratch) / "deployment.json"
            deploy_contracts(node.url, path, DEVNET_PARAMETERS, Path(scratch) / "deploy.log")
            yield _connect(node.url, load_deployment(path))
    finally:
        node.stop()


def _connect(url: str, deployment: Deployment) -> Binary32Evaluator:
    client = ChainClient(url, timeout=120.0)
    deployment.check(client)
    return Binary32Evaluator(client, deployment.contract("Binary32Evaluator"))

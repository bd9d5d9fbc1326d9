"""Gas of the one-step adjudicator for every trace op, and of the binary32 library.

Every ``ops`` figure is the gas of a transaction that calls ``OneStep.adjudicate``
(``eth_estimateGas``: the 21,000 intrinsic gas and the calldata included) with both claims
proved against their output roots, the costliest form of the call:

- ``gas_typical``: the median over records of real traces (one training step and the
  distance of each example model; the every-op trace for ops they do not record), their
  last element; a reduction longer than the one step's bound is judged on its last chunk;
- ``gas_worst``: synthetic records on the largest shapes a tensor header can state (2^63
  elements: Merkle paths of 55 levels), operands that take the library's slowest paths (the
  costliest of all pairs of edge values, measured on the evaluator), reductions whose
  terms each sit in a leaf of their own (or straddle a leaf boundary); for ``state`` a
  state of 1,024 tensors (its gas grows with the number of tensors, not their size).

``f32`` is the library's own gas, measured around one call on ordinary values (median);
``dot_gas_per_term`` the marginal gas of one more ``matmul_nt`` term in a one step. Gas is
deterministic: the figures are compared with the issue's goals (``goal_ratios``), not with a
baseline of the same run. ``python -m benchmarks onestep`` runs it; ``ONESTEP_QUICK=1`` samples
fewer records.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.arbiter.batch import ELEMENTWISE
from agents.arbiter.elements import MAX_TERMS, REDUCTIONS, Element, reads, terms
from agents.arbiter.vectors import edge_grid, ordinary
from agents.arbiter.witness import (
    ClaimWitness,
    LeafWitness,
    OneStepCall,
    TensorWitness,
    claim_of,
    one_step,
    record_prefix,
)
from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.chain.evaluator import Binary32Evaluator
from agents.chain.onestep import OneStepClient
from agents.commitment import LEAF_VALUES, ZERO_LEAF_HASH, leaf_count
from agents.devnet.contracts import DEVNET_PARAMETERS, deploy_contracts
from agents.exact.optable import OPS
from agents.exact.trace import Op, OpRecord
from scripts.network import local_devnet

GOALS = {"any_op": 1_000_000, "add_one_step": 150_000, "f32_add": 600, "f32_mul": 400}
F32 = np.float32
FILL = 0x3F8CCCCD  # 1.1: leaves the step does not read are dense, like real data
BIG = (1 << 31, 1 << 32)  # 2^63 elements


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class SparseTensor:
    """A tensor of any shape that exists only where it is read: chosen values at some
    positions, ``FILL`` everywhere else, committed exactly as PROTOCOL.md §4 says."""

    def __init__(self, shape: Sequence[int], values: Mapping[int, int]) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.numel = math.prod(self.shape)
        self.values = dict(values)
        self.count = leaf_count(self.numel)
        self.depth = max(0, (self.count - 1).bit_length())
        self.header = struct.pack(">QI", self.numel, len(self.shape)) + b"".join(
            struct.pack(">Q", d) for d in self.shape
        )
        self._fill_hash = [_sha(struct.pack("<I", FILL) * LEAF_VALUES)]
        self._zero_hash = [ZERO_LEAF_HASH]
        for _ in range(self.depth):
            self._fill_hash.append(_sha(self._fill_hash[-1] * 2))
            self._zero_hash.append(_sha(self._zero_hash[-1] * 2))
        self._levels: list[dict[int, bytes]] = [
            {leaf: _sha(self.leaf_bytes(leaf)) for leaf in {p // LEAF_VALUES for p in self.values}}
        ]
        for level in range(self.depth):
            below = self._levels[level]
            parents = {i // 2 for i in below}
            self._levels.append(
                {
                    i: _sha(self.node(level, 2 * i) + self.node(level, 2 * i + 1))
                    for i in sorted(parents)
                }
            )

    def leaf_bytes(self, leaf: int) -> bytes:
        start = leaf * LEAF_VALUES
        words = []
        for position in range(start, start + LEAF_VALUES):
            if position >= self.numel:
                words.append(0)
            else:
                words.append(self.values.get(position, FILL))
        return struct.pack("<256I", *words)

    @functools.cache  # noqa: B019 - a benchmark's few objects
    def _default(self, level: int, index: int) -> bytes:
        start, end = index << level, (index + 1) << level
        if end <= self.count and (self.numel % LEAF_VALUES == 0 or end < self.count):
            return self._fill_hash[level]
        if start >= self.count:
            return self._zero_hash[level]
        if level == 0:
            return _sha(self.leaf_bytes(index))
        return _sha(self._default(level - 1, 2 * index) + self._default(level - 1, 2 * index + 1))

    def node(self, level: int, index: int) -> bytes:
        known = self._levels[level].get(index) if level < len(self._levels) else None
        return known if known is not None else self._default(level, index)

    @property
    def merkle_root(self) -> bytes:
        return self.node(self.depth, 0)

    @property
    def root(self) -> bytes:
        return _sha(self.header + self.merkle_root)

    def value(self, position: int) -> float:
        return float(np.uint32(self.values.get(position, FILL)).view(F32))

    def witness(self, positions: Sequence[int] | set[int]) -> TensorWitness:
        leaves = []
        for leaf in sorted({p // LEAF_VALUES for p in positions}):
            path = tuple(self.node(level, (leaf >> level) ^ 1) for level in range(self.depth))
            leaves.append(LeafWitness(leaf, self.leaf_bytes(leaf), path))
        return TensorWitness(self.header, self.merkle_root, tuple(leaves))


class Bench:
    """The deployed contracts and the calls the benchmark makes."""

    def __init__(self, client: ChainClient, contracts: Mapping[str, Any]) -> None:
        self.one_step = OneStepClient(client, contracts["OneStep"], errors_from=contracts.values())
        self.evaluator = Binary32Evaluator(client, contracts["Binary32Evaluator"])

    def synthetic(
        self,
        op: Op,
        attributes: tuple[int | np.float32, ...],
        inputs: Sequence[SparseTensor],
        element: int,
        term_from: int = 0,
        term_to: int | None = None,
        agreed: int = 0,
    ) -> int:
        """Gas of the one step of ``element`` of a synthetic record over sparse inputs."""
        record = OpRecord(op, attributes, tuple(t.root for t in inputs), bytes(32))
        prefix = record_prefix(record)
        bare = [TensorWitness(t.header, t.merkle_root).abi() for t in inputs]
        defined, header, count = self.one_step._call("outline", [prefix, bare, element])
        assert defined, f"synthetic {op.name} record is not defined"
        header = bytes.fromhex(header[2:])
        ndim = struct.unpack(">I", header[8:12])[0]
        out_shape = struct.unpack(f">{ndim}Q", header[12:])
        item = Element(record, tuple(t.shape for t in inputs), out_shape, element)
        last = int(count) if term_to is None else term_to
        wanted = reads(item, lambda tensor, p: inputs[tensor].value(p), term_from, last)
        call = OneStepCall(
            record=prefix,
            element=element,
            term_from=term_from,
            term_to=last,
            agreed=agreed,
            inputs=tuple(t.witness(w) for t, w in zip(inputs, wanted, strict=True)),
            claims=(ClaimWitness(bytes(32), 0), ClaimWitness(bytes(32), 0)),
            expected=0,
            terms=int(count),
        )
        defined, value, _ = self.one_step.compute(call)
        assert defined
        honest = SparseTensor(out_shape, {element: value})
        liar = SparseTensor(out_shape, {element: value ^ 1})
        claims = (
            ClaimWitness(honest.root, value, honest.witness([element])),
            ClaimWitness(liar.root, value ^ 1, liar.witness([element])),
        )
        if last != int(count):
            claims = (ClaimWitness(honest.root, value), ClaimWitness(liar.root, value ^ 1))
        call = dataclasses.replace(call, claims=claims)
        ruling = self.one_step.adjudicate(call)
        assert ruling.correct == (True, False), ruling
        return self.one_step.gas(call)


Found = dict[Op, list[tuple[OpRecord, dict[bytes, np.ndarray], list[bytes]]]]


def _records() -> Found:
    """Records by op, each with its trace's tensors and state tensor roots."""
    from tests.arbiter.traces import every_op_trace, example_trace

    found: Found = {}
    for traced in (example_trace("mlp"), example_trace("cnn"), example_trace("transformer")):
        for record in traced.records:
            found.setdefault(record.op, []).append((record, traced.tensors, traced.state_roots))
    every = every_op_trace()
    for record in every.records:
        if record.op not in found:
            found.setdefault(record.op, []).append((record, every.tensors, every.state_roots))
    return found


def _typical(bench: Bench, per_op: int) -> dict[str, int]:
    typical: dict[str, int] = {}
    rng = np.random.default_rng(1)
    for op, records in _records().items():
        picked = [records[i] for i in sorted(rng.permutation(len(records))[:per_op])]
        gas = []
        for record, tensors, state_roots in picked:
            if op is Op.STATE:
                gas.append(bench.one_step.state_gas(state_roots, [record.output, bytes(32)]))
                continue
            output = tensors[record.output]
            if output.size == 0:
                continue
            element = output.size - 1
            shapes = tuple(tuple(tensors[r].shape) for r in record.inputs)
            count = terms(Element(record, shapes, tuple(output.shape), element))
            start = max(0, count - MAX_TERMS) if op in REDUCTIONS else 0
            lie = np.array(output, copy=True)
            lie.reshape(-1)[element : element + 1].view(np.uint32)[0] ^= 1
            claims = [claim_of(output, element), claim_of(lie, element)]
            call = one_step(record, tensors, element, claims, term_from=start)
            gas.append(bench.one_step.gas(call))
        typical[op.name.lower()] = int(np.median(gas))
    return typical


def _costliest_operands(bench: Bench, name: str) -> list[int]:
    spec = ELEMENTWISE[name]
    grid = edge_grid(spec.arity)
    used = bench.evaluator.measure(spec, grid)
    return [int(v) for v in grid[int(np.argmax(used))]]


def _worst_elementwise(bench: Bench, name: str) -> int:
    spec = ELEMENTWISE[name]
    operands = _costliest_operands(bench, name)
    element = math.prod(BIG) - 1
    inputs = [SparseTensor(BIG, {element: bits}) for bits in operands]
    return bench.synthetic(spec.op, (), inputs, element)


def _alternating_subnormals(positions: Sequence[int]) -> dict[int, int]:
    # subnormal terms of alternating sign: every add takes the general path
    return {p: (0x007FFFF1 - 3 * k) | (0x80000000 if k % 2 else 0) for k, p in enumerate(positions)}


def _worst_reductions(bench: Bench) -> dict[str, int]:
    worst: dict[str, int] = {}
    # sum / amax over axis 0 of [2^15, 2^48]: every term in a leaf of its own
    rows, inner = 1 << 15, 1 << 48
    element = inner - 1
    window = list(range(rows - MAX_TERMS, rows))
    values = _alternating_subnormals([t * inner + element for t in window])
    for op in (Op.SUM, Op.AMAX):
        x = SparseTensor((rows, inner), values)
        worst[op.name.lower()] = bench.synthetic(
            op, (0,), [x], element, rows - MAX_TERMS, rows, agreed=0x00000003
        )
    # matmul_nt: K = 2^32 + 8, element (0, 0): the last 16 terms straddle a leaf boundary in
    # both operands; subnormal times normal products take the general multiply.
    depth = (1 << 32) + 8
    window = list(range(depth - MAX_TERMS, depth))
    a = SparseTensor((1 << 30, depth), _alternating_subnormals(window))
    b = SparseTensor((1 << 30, depth), {p: 0x3F7FFFFF for p in window})
    worst["matmul_nt"] = bench.synthetic(
        Op.MATMUL_NT, (), [a, b], 0, depth - MAX_TERMS, depth, agreed=0x00000005
    )
    # col2im: kernel 5, every (ky, kx) covers the pixel, each term in another row (leaf)
    k, channels, side = 5, 1 << 20, 1 << 12
    cols_shape = (side * side, channels * k * k)
    attributes = (k, 1, 2, 1, channels, side, side)
    pixel = ((0 * channels + 5) * side + 100) * side + 100
    probe = SparseTensor(cols_shape, {})
    record = OpRecord(Op.COL2IM, attributes, (probe.root,), bytes(32))
    item = Element(record, (cols_shape,), (1, channels, side, side), pixel)
    touched = sorted(reads(item, lambda t, p: 0.0, k * k - MAX_TERMS, k * k)[0])
    cols = SparseTensor(cols_shape, _alternating_subnormals(touched))
    worst["col2im"] = bench.synthetic(
        Op.COL2IM, attributes, [cols], pixel, k * k - MAX_TERMS, k * k, agreed=0x00000007
    )
    # scatter_add: the last 16 positions all land on the element's row
    positions, width, rows_out = 1 << 40, 1 << 20, 1 << 24
    target, d = 7, 3
    window = list(range(positions - MAX_TERMS, positions))
    src = SparseTensor((positions, width), _alternating_subnormals([p * width + d for p in window]))
    index = SparseTensor((positions,), {p: int(F32(target).view(np.uint32)) for p in window})
    worst["scatter_add"] = bench.synthetic(
        Op.SCATTER_ADD,
        (rows_out,),
        [src, index],
        target * width + d,
        positions - MAX_TERMS,
        positions,
        agreed=0x00000009,
    )
    return worst


def _worst_movement(bench: Bench) -> dict[str, int]:
    worst: dict[str, int] = {}
    last = math.prod(BIG) - 1
    nan = 0x7FA00001  # a NaN with a payload: copies keep it, causal_fill makes it canonical
    x = SparseTensor(BIG, {0: nan, last: nan, (1 << 32) - 1: nan})
    worst["transpose"] = bench.synthetic(Op.TRANSPOSE, (1, 0), [x], last)
    worst["reshape"] = bench.synthetic(Op.RESHAPE, (BIG[1], BIG[0]), [x], last)
    one = int(F32(1).view(np.uint32))
    tall = (1 << 24, 1 << 39)  # the indexed axis at the integer limit
    xs = SparseTensor(tall, {(1 << 39) + 5: nan})
    index = SparseTensor((1 << 24,), {(1 << 24) - 1: one})
    worst["index_select"] = bench.synthetic(
        Op.INDEX_SELECT, (0,), [xs, index], ((1 << 24) - 1) * (1 << 39) + 5
    )
    wide = (1 << 39, 1 << 24)
    xw = SparseTensor(wide, {((1 << 39) - 1) * (1 << 24) + 1: nan})
    along = SparseTensor((1 << 39, 1), {(1 << 39) - 1: one})
    worst["take_along"] = bench.synthetic(Op.TAKE_ALONG, (), [xw, along], (1 << 39) - 1)
    hot = SparseTensor((1 << 40,), {(1 << 40) - 1: int(F32(5).view(np.uint32))})
    worst["one_hot"] = bench.synthetic(Op.ONE_HOT, (1 << 23,), [hot], (1 << 63) - (1 << 23) + 5)
    cube = (1 << 31, 1 << 16, 1 << 16)
    xc = SparseTensor(cube, {(1 << 63) - 2: nan})
    worst["causal_fill"] = bench.synthetic(Op.CAUSAL_FILL, (F32(-np.inf),), [xc], (1 << 63) - 2)
    image = (1 << 16, 1 << 12, 1 << 12, 1 << 12)
    xi = SparseTensor(image, {2 * (1 << 24) + 1: nan})
    worst["im2col"] = bench.synthetic(Op.IM2COL, (3, 1, 1), [xi], 23)  # reads x[0, 2, 0, 1]
    worst["full"] = bench.synthetic(Op.FULL, (F32(1.5), *BIG), [], last)
    roots = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1024)]
    worst["state"] = bench.one_step.state_gas(roots, [bytes(32), roots[0]])
    return worst


def _dot_gas_per_term(bench: Bench) -> int:
    depth = 1024
    rng = np.random.default_rng(2)
    values = ordinary(rng, 2 * depth, 1)[:, 0]
    a = SparseTensor((4, depth), {i: int(values[i]) for i in range(depth)})
    b = SparseTensor((4, depth), {i: int(values[depth + i]) for i in range(depth)})
    one = bench.synthetic(Op.MATMUL_NT, (), [a, b], 0, 0, 1)
    full = bench.synthetic(Op.MATMUL_NT, (), [a, b], 0, 0, MAX_TERMS)
    return round((full - one) / (MAX_TERMS - 1))


def _f32(bench: Bench) -> dict[str, int]:
    rng = np.random.default_rng(3)
    figures = {}
    for name in ("add", "mul", "div", "sqrt", "exp", "log"):
        spec = ELEMENTWISE[name]
        rows = ordinary(rng, 512, spec.arity)
        if name in ("sqrt", "log"):
            rows = rows & np.uint32(0x7FFFFFFF)
        figures[name] = int(np.median(bench.evaluator.measure(spec, rows)))
    return figures


def run() -> dict[str, Any]:
    quick = os.environ.get("ONESTEP_QUICK") == "1"
    with local_devnet(accounts=2) as node, tempfile.TemporaryDirectory() as scratch:
        manifest = Path(scratch) / "deployment.json"
        deploy_contracts(node.url, manifest, DEVNET_PARAMETERS, Path(scratch) / "deploy.log")
        deployment = load_deployment(manifest)
        bench = Bench(ChainClient(node.url, timeout=300.0), deployment.contracts)
        typical = _typical(bench, per_op=2 if quick else 12)
        worst = {
            name: _worst_elementwise(bench, name)
            for name in ELEMENTWISE
            if not quick or name in ("add", "mul", "exp")
        }
        worst.update(_worst_reductions(bench))
        worst.update(_worst_movement(bench))
        dot = _dot_gas_per_term(bench)
        f32 = _f32(bench)
    ops = {
        spec.name: {"gas_typical": typical[spec.name], "gas_worst": worst[spec.name]}
        for spec in OPS
        if spec.name in worst and spec.name in typical
    }
    worst_any = max(entry["gas_worst"] for entry in ops.values())
    return {
        "ops": ops,
        "gas_worst_any_op": worst_any,
        "f32": f32,
        "dot_gas_per_term": dot,
        "max_terms": MAX_TERMS,
        "worst_merkle_depth": SparseTensor(BIG, {}).depth,
        "worst_state_tensors": 1024,
        "goal_ratios": {
            "worst_any_op": round(worst_any / GOALS["any_op"], 3),
            "add_one_step_typical": round(ops["add"]["gas_typical"] / GOALS["add_one_step"], 3),
            "mul_one_step_typical": round(ops["mul"]["gas_typical"] / GOALS["add_one_step"], 3),
            "f32_add": round(f32["add"] / GOALS["f32_add"], 3),
            "f32_mul": round(f32["mul"] / GOALS["f32_mul"], 3),
        },
    }

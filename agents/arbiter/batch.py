"""Bulk evaluation of the on-chain binary32 library: the elementwise ops, their operands.

The evaluator contract (``contracts/arbiter/Binary32Evaluator.sol``) takes one trace op code
and packed big-endian binary32 operands and returns packed results; this module names the
ops, packs and unpacks, sizes batches to fit one ``eth_call``, and computes the same results
with the exact kernels' CPU path, which the library must match bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.exact.cpu import CpuKernels
from agents.exact.errors import ExactError
from agents.exact.optable import OPS
from agents.exact.trace import Op

BOOLEAN = frozenset({Op.LT, Op.LE, Op.EQ})
COMPOSITE = frozenset({Op.EXP, Op.LOG})


@dataclass(frozen=True)
class ElementwiseOp:
    """An elementwise trace op as the evaluator takes it."""

    name: str
    op: Op
    arity: int
    boolean: bool = False  # result is 1.0 / 0.0
    # Operations per eth_call: the composites cost ~20 basic operations each.
    batch: int = 4096


ELEMENTWISE: dict[str, ElementwiseOp] = {
    spec.name: ElementwiseOp(
        spec.name,
        spec.op,
        spec.arity or 0,
        boolean=spec.op in BOOLEAN,
        batch=1024 if spec.op in COMPOSITE else 4096,
    )
    for spec in OPS
    if spec.kind == "elementwise"
}


def elementwise(name: str) -> ElementwiseOp:
    """The op called ``name``; ``ExactError`` naming the known ones otherwise."""
    try:
        return ELEMENTWISE[name]
    except KeyError:
        known = ", ".join(ELEMENTWISE)
        raise ExactError(f"unknown elementwise op {name!r}; known: {known}") from None


def pack(operands: np.ndarray) -> bytes:
    """Operand rows (``(n, arity)`` bit patterns) as the evaluator's packed words."""
    return np.ascontiguousarray(operands, dtype=">u4").tobytes()


def unpack(results: bytes) -> np.ndarray:
    """The evaluator's packed results as uint32 bit patterns."""
    if len(results) % 4:
        raise ExactError(f"packed results of {len(results)} bytes are not whole words")
    return np.frombuffer(results, dtype=">u4").astype(np.uint32)


def parse_line(line: str, arity: int, number: int) -> list[int]:
    """One input line of ``arity`` 8-digit hex words; ``ExactError`` naming the line otherwise."""
    words = line.split()
    if len(words) != arity:
        raise ExactError(f"line {number}: expected {arity} operand(s), got {len(words)}")
    values = []
    for word in words:
        text = word.removeprefix("0x").removeprefix("0X")
        if len(text) != 8:
            raise ExactError(f"line {number}: {word!r} is not an 8-digit hex word")
        try:
            values.append(int(text, 16))
        except ValueError:
            raise ExactError(f"line {number}: {word!r} is not an 8-digit hex word") from None
    return values


def format_result(spec: ElementwiseOp, bits: int) -> str:
    """A result as ``veritrain arbiter eval`` prints it (booleans as 00000000 / 00000001)."""
    if spec.boolean:
        return "00000001" if bits == 0x3F800000 else "00000000"
    return f"{bits:08x}"


_CPU = CpuKernels(threads=1)


def reference(spec: ElementwiseOp, operands: np.ndarray) -> np.ndarray:
    """The CPU path's results (uint32 bit patterns) for operand rows ``(n, arity)``."""
    rows = np.ascontiguousarray(operands, dtype=np.uint32)
    if rows.ndim != 2 or rows.shape[1] != spec.arity:
        raise ExactError(f"{spec.name} takes rows of {spec.arity} operand(s), got {rows.shape}")
    columns: Sequence[np.ndarray] = [
        np.ascontiguousarray(rows[:, i]).view(np.float32) for i in range(spec.arity)
    ]
    out = getattr(_CPU, spec.name)(*columns)
    return np.ascontiguousarray(out, dtype=np.float32).view(np.uint32)

"""The register-tiled inner loop of ``matmul_nt`` on the CPU path, in LLVM IR.

A tile computes ``C[r, j] = sum over k of A[r, k] * Bt[k, j]`` for ``rows`` rows
and ``16·vectors`` columns, keeping the accumulators in vector registers for
the whole ``k`` loop: per ``k`` it loads one row of ``Bt``, broadcasts one value
of ``A`` per row, and does one ``fmul`` and one ``fadd`` per accumulator. The IR
carries no fast-math flags, so LLVM neither fuses the multiply into the add nor
reorders the sum: every entry gets exactly the sequential dot product of
PROTOCOL.md §2 (accumulators start at ``+0.0``, ``k`` increases), the same bits
as the plain loop the tests compare it with.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import types as nbtypes
from numba.extending import intrinsic

_F32 = ir.FloatType()
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_LANES = 16
_VEC = ir.VectorType(_F32, _LANES)


def _constant(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


def _tile_function(module: ir.Module, rows: int, vectors: int) -> ir.Function:
    """``void tile(a, lda, bt, ldb, c, ldc, depth)``: addresses and byte strides as i64."""
    name = f"veritrain_matmul_tile_{rows}x{vectors * _LANES}"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [_I64] * 7), name=name)
    fn.linkage = "internal"
    a, lda, bt, ldb, c, ldc, depth = fn.args
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    zero = ir.Constant(_VEC, [0.0] * _LANES)
    b.cbranch(b.icmp_signed(">", depth, _constant(0)), loop, done)

    b.position_at_end(loop)
    k = b.phi(_I64)
    k.add_incoming(_constant(0), entry)
    accumulators = []
    for _ in range(rows * vectors):
        phi = b.phi(_VEC)
        phi.add_incoming(zero, entry)
        accumulators.append(phi)
    b_row = b.add(bt, b.mul(k, ldb))
    b_vectors = [
        b.load(b.inttoptr(b.add(b_row, _constant(64 * v)), _VEC.as_pointer()), align=4)
        for v in range(vectors)
    ]
    undefined = ir.Constant(_VEC, ir.Undefined)
    broadcast = ir.Constant(ir.VectorType(_I32, _LANES), [0] * _LANES)
    updated = []
    for r in range(rows):
        address = b.add(b.add(a, b.mul(_constant(r), lda)), b.mul(k, _constant(4)))
        value = b.load(b.inttoptr(address, _F32.as_pointer()), align=4)
        splat = b.shuffle_vector(
            b.insert_element(undefined, value, ir.Constant(_I32, 0)), undefined, broadcast
        )
        for v in range(vectors):
            updated.append(b.fadd(accumulators[r * vectors + v], b.fmul(splat, b_vectors[v])))
    k_next = b.add(k, _constant(1))
    k.add_incoming(k_next, loop)
    for phi, value in zip(accumulators, updated, strict=True):
        phi.add_incoming(value, loop)
    b.cbranch(b.icmp_signed("<", k_next, depth), loop, done)

    b.position_at_end(done)
    results = []
    for value in updated:  # every phi first: LLVM wants them at the top of the block
        result = b.phi(_VEC)
        result.add_incoming(zero, entry)
        result.add_incoming(value, loop)
        results.append(result)
    for r in range(rows):
        for v in range(vectors):
            address = b.add(b.add(c, b.mul(_constant(r), ldc)), _constant(64 * v))
            b.store(results[r * vectors + v], b.inttoptr(address, _VEC.as_pointer()), align=4)
    b.ret_void()
    return fn


def _tile_intrinsic(rows: int, vectors: int) -> Any:
    def typer(
        typingctx: Any, a: Any, lda: Any, bt: Any, ldb: Any, c: Any, ldc: Any, depth: Any
    ) -> Any:
        sig = nbtypes.void(*([nbtypes.intp] * 7))

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            builder.call(_tile_function(builder.module, rows, vectors), args)
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = f"tile_{rows}x{vectors * _LANES}"
    return intrinsic(typer)


TILE_ROWS = 4
tile_4x32: Any = _tile_intrinsic(TILE_ROWS, 2)
tile_4x16: Any = _tile_intrinsic(TILE_ROWS, 1)

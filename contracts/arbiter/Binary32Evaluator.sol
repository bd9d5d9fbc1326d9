// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32} from "../lib/Types.sol";
import {Binary32Math} from "../lib/Binary32Math.sol";
import {Errors} from "../lib/Errors.sol";
import {OpCode} from "./OpCode.sol";

/// @title Binary32Evaluator
/// @notice The binary32 library of the one-step adjudicators, exposed for bulk evaluation with
///         `eth_call`: thousands of elementwise operations per call. Auditors and tests compare
///         its results with the exact kernels' CPU path (`veritrain arbiter eval`).
/// @dev Operands and results are packed big-endian 32-bit words. Stateless: nothing to attack
///      beyond spending the caller's own gas.
contract Binary32Evaluator {
    using Binary32Math for Binary32;

    /// @notice How many operands the elementwise op `op` takes (1, 2 or 3).
    /// @param op A trace op code (docs/exact.md): 0x01–0x0B or 0x10–0x14.
    /// @return The number of operands; reverts with `UnknownOp` for any other code.
    function arity(uint16 op) public pure returns (uint256) {
        if (op >= OpCode.ADD && op <= OpCode.EQ) return 2;
        if (op == OpCode.SELECT) return 3;
        if (op == OpCode.LDEXP) return 2;
        if (op >= OpCode.NEG && op <= OpCode.LOG) return 1;
        revert Errors.UnknownOp(op);
    }

    /// @notice Evaluates the elementwise op `op` on every group of operands.
    /// @param op A trace op code of an elementwise op (see `arity`).
    /// @param operands `arity(op)` big-endian binary32 words per evaluation, back to back.
    /// @return results One big-endian binary32 word per evaluation, in order (comparisons give
    ///         the words of `1.0` and `0.0`, as the trace does).
    function evaluate(uint16 op, bytes calldata operands) external pure returns (bytes memory results) {
        uint256 operandCount = arity(op);
        uint256 width = operandCount * 4;
        if (operands.length % width != 0) revert Errors.MalformedOperands(operands.length, width);
        results = new bytes(operands.length / operandCount);
        for (uint256 at; at < operands.length; at += width) {
            uint256 offset = at / operandCount; // of this result in `results`
            Binary32 a = _word(operands, at);
            Binary32 b = width > 4 ? _word(operands, at + 4) : Binary32.wrap(0);
            Binary32 c = width > 8 ? _word(operands, at + 8) : Binary32.wrap(0);
            uint256 r = Binary32.unwrap(compute(op, a, b, c));
            assembly ("memory-safe") {
                mstore(add(add(results, 32), offset), shl(224, r))
            }
        }
    }

    /// @notice The gas one library call of `op` costs on each group of operands, measured
    ///         around the call itself: no calldata decoding, and for add, mul, div, sqrt, exp
    ///         and log no dispatch (the other ops go through `compute`, whose dispatch adds
    ///         a few dozen gas).
    /// @param op A trace op code of an elementwise op (see `arity`).
    /// @param operands As for `evaluate`.
    /// @return used The gas of each evaluation, in order.
    /// @return digest The exclusive or of the results (so that no call is optimized away).
    function measure(uint16 op, bytes calldata operands)
        external
        view
        returns (uint256[] memory used, uint256 digest)
    {
        uint256 width = arity(op) * 4;
        if (operands.length % width != 0) revert Errors.MalformedOperands(operands.length, width);
        uint256 count = operands.length / width;
        used = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            Binary32 a = _word(operands, i * width);
            Binary32 b = width > 4 ? _word(operands, i * width + 4) : Binary32.wrap(0);
            Binary32 c = width > 8 ? _word(operands, i * width + 8) : Binary32.wrap(0);
            Binary32 r = Binary32.wrap(0);
            uint256 before = 0;
            if (op == OpCode.ADD) {
                before = gasleft();
                r = a.add(b);
            } else if (op == OpCode.MUL) {
                before = gasleft();
                r = a.mul(b);
            } else if (op == OpCode.DIV) {
                before = gasleft();
                r = a.div(b);
            } else if (op == OpCode.SQRT) {
                before = gasleft();
                r = a.sqrt();
            } else if (op == OpCode.EXP) {
                before = gasleft();
                r = a.exp();
            } else if (op == OpCode.LOG) {
                before = gasleft();
                r = a.log();
            } else {
                before = gasleft();
                r = compute(op, a, b, c);
            }
            used[i] = before - gasleft();
            digest ^= Binary32.unwrap(r);
        }
    }

    /// @notice One elementwise op of the trace on binary32 operands (unused operands ignored).
    /// @param op A trace op code of an elementwise op (see `arity`).
    /// @param a The first operand (the condition of `select`).
    /// @param b The second operand, if any.
    /// @param c The third operand (`select` only).
    /// @return The result, bit-identical to the exact kernels.
    function compute(uint16 op, Binary32 a, Binary32 b, Binary32 c) public pure returns (Binary32) {
        if (op < OpCode.NEG) {
            if (op == OpCode.ADD) return a.add(b);
            if (op == OpCode.SUB) return a.sub(b);
            if (op == OpCode.MUL) return a.mul(b);
            if (op == OpCode.DIV) return a.div(b);
            if (op == OpCode.MAXIMUM) return a.maximum(b);
            if (op == OpCode.MINIMUM) return a.minimum(b);
            if (op == OpCode.LT) return a.lt(b);
            if (op == OpCode.LE) return a.le(b);
            if (op == OpCode.EQ) return a.eq(b);
            if (op == OpCode.SELECT) return a.select(b, c);
            if (op == OpCode.LDEXP) return a.ldexp(b);
        } else {
            if (op == OpCode.NEG) return a.neg();
            if (op == OpCode.ABS) return a.abs();
            if (op == OpCode.SQRT) return a.sqrt();
            if (op == OpCode.EXP) return a.exp();
            if (op == OpCode.LOG) return a.log();
        }
        revert Errors.UnknownOp(op);
    }

    function _word(bytes calldata data, uint256 at) private pure returns (Binary32 w) {
        assembly ("memory-safe") {
            w := shr(224, calldataload(add(data.offset, at)))
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32} from "../lib/Types.sol";
import {Binary32Math} from "../lib/Binary32Math.sol";
import {Query} from "../interfaces/IOneStep.sol";
import {Adjudicator} from "./Adjudicator.sol";
import {OpCode} from "./OpCode.sol";
import {OpRecords} from "./OpRecords.sol";
import {TensorProof, TensorProofs} from "./TensorProofs.sol";
import {Shapes} from "./Shapes.sol";

/// @title ElementwiseAdjudicator
/// @notice The one step of the elementwise ops 0x01–0x14 (add sub mul div maximum minimum lt
///         le eq select ldexp neg abs sqrt exp log): operands broadcast as numpy does, constant
///         operands recorded as `(slot, value)` attribute pairs (docs/exact.md).
contract ElementwiseAdjudicator is Adjudicator {
    using Binary32Math for Binary32;
    using TensorProofs for TensorProof;

    function _arity(uint16 op) private pure returns (uint256) {
        if ((op >= OpCode.ADD && op <= OpCode.EQ) || op == OpCode.LDEXP) return 2;
        if (op == OpCode.SELECT) return 3;
        if (op >= OpCode.NEG && op <= OpCode.LOG) return 1;
        return 0;
    }

    /// @dev Immediates: attribute pairs (slot:int, value:float), slots increasing and below the
    ///      arity; the tensors fill the other slots; at least one tensor.
    function _outputShape(Context memory context) internal pure override returns (bool, uint256[] memory dims) {
        uint256 arity = _arity(context.record.op);
        uint256 count = context.record.attributes.length;
        if (arity == 0 || count % 2 != 0) return (false, dims);
        uint256 pairs = count / 2;
        int256 previous = -1;
        for (uint256 p; p < pairs; ++p) {
            int256 slot = OpRecords.integerAt(context.record, 2 * p);
            if (
                !OpRecords.isInteger(context.record, 2 * p) || !OpRecords.isFloat(context.record, 2 * p + 1)
                    || slot <= previous || slot >= int256(arity)
            ) return (false, dims);
            previous = slot;
        }
        uint256 tensors = context.shapes.length;
        if (tensors == 0 || tensors + pairs != arity) return (false, dims);
        dims = context.shapes[0].dims;
        for (uint256 t = 1; t < tensors; ++t) {
            bool ok;
            (ok, dims) = Shapes.broadcast(dims, context.shapes[t].dims);
            if (!ok) return (false, dims);
        }
        return (true, dims);
    }

    function _terms(Context memory, uint256) internal pure override returns (uint256) {
        return 0;
    }

    function _value(Context memory context, TensorProof[] calldata inputs, Query calldata query)
        internal
        pure
        override
        returns (bool, Binary32)
    {
        uint16 op = context.record.op;
        uint256 arity = _arity(op);
        uint256[] memory index = Shapes.unravel(query.element, context.outDims);
        Binary32[3] memory operands = [Binary32.wrap(0), Binary32.wrap(0), Binary32.wrap(0)];
        uint256 pair = 0;
        uint256 tensor = 0;
        for (uint256 slot; slot < arity; ++slot) {
            if (
                OpRecords.isInteger(context.record, 2 * pair)
                    && uint256(OpRecords.integerAt(context.record, 2 * pair)) == slot
            ) {
                operands[slot] = OpRecords.floatAt(context.record, 2 * pair + 1);
                ++pair;
            } else {
                uint256 position = Shapes.broadcastPosition(index, context.outDims, context.shapes[tensor].dims);
                operands[slot] = inputs[tensor].valueAt(position);
                ++tensor;
            }
        }
        return (true, _apply(op, operands[0], operands[1], operands[2]));
    }

    function _apply(uint16 op, Binary32 a, Binary32 b, Binary32 c) private pure returns (Binary32) {
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
        if (op == OpCode.NEG) return a.neg();
        if (op == OpCode.ABS) return a.abs();
        if (op == OpCode.SQRT) return a.sqrt();
        if (op == OpCode.EXP) return a.exp();
        return a.log();
    }
}

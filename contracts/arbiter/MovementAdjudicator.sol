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

/// @title MovementAdjudicator
/// @notice The one step of the data-movement and constant ops (transpose, reshape,
///         index_select, take_along, one_hot, causal_fill, im2col, full) and, through the
///         shared `adjudicate`, of `STATE` records. Copies keep the bits they copy (NaN
///         payloads included), as the kernels do; `causal_fill` makes a copied NaN canonical.
contract MovementAdjudicator is Adjudicator {
    using TensorProofs for TensorProof;

    /// @dev Index tensors hold float32 integers below 2^24 (docs/exact.md, "conversions").
    uint256 private constant INTEGER_LIMIT = 1 << 24;
    uint256 private constant MAX_DIM = type(uint64).max;
    uint32 private constant ONE = 0x3F800000;

    function _outputShape(Context memory context) internal pure override returns (bool, uint256[] memory dims) {
        uint16 op = context.record.op;
        uint256 count = context.record.attributes.length;
        uint256 inputs = context.shapes.length;
        if (op == OpCode.FULL) {
            if (!OpRecords.isFloat(context.record, 0) || inputs != 0) return (false, dims);
            return _integers(context, 1, count);
        }
        if (inputs == 0) return (false, dims);
        uint256[] memory x = context.shapes[0].dims;
        if (op == OpCode.TRANSPOSE) {
            if (inputs != 1 || count != x.length) return (false, dims);
            bool ok;
            (ok, dims) = _integers(context, 0, count);
            if (!ok) return (false, dims);
            bool[] memory seen = new bool[](x.length);
            for (uint256 d; d < dims.length; ++d) {
                if (dims[d] >= x.length || seen[dims[d]]) return (false, dims);
                seen[dims[d]] = true;
                dims[d] = x[dims[d]];
            }
            return (true, dims);
        }
        if (op == OpCode.RESHAPE) {
            bool ok;
            (ok, dims) = _integers(context, 0, count);
            if (!ok || inputs != 1 || Shapes.numel(dims) != context.shapes[0].numel) return (false, dims);
            return (true, dims);
        }
        if (op == OpCode.INDEX_SELECT) {
            int256 axis = OpRecords.integerAt(context.record, 0);
            if (!OpRecords.isInteger(context.record, 0) || count != 1 || inputs != 2 || axis < 0 || uint256(axis) >= x.length) return (false, dims);
            uint256[] memory index = context.shapes[1].dims;
            if (index.length != 1 || (index[0] > 0 && x[uint256(axis)] > INTEGER_LIMIT)) return (false, dims);
            return (true, Shapes.withAxis(x, uint256(axis), index[0]));
        }
        if (op == OpCode.TAKE_ALONG) {
            if (count != 0 || inputs != 2) return (false, dims);
            dims = context.shapes[1].dims;
            uint256 n = x.length;
            if (n == 0 || dims.length != n || dims[n - 1] != 1) return (false, dims);
            for (uint256 d; d + 1 < n; ++d) {
                if (dims[d] != x[d]) return (false, dims);
            }
            if (context.shapes[1].numel > 0 && x[n - 1] > INTEGER_LIMIT) return (false, dims);
            return (true, dims);
        }
        if (op == OpCode.ONE_HOT) {
            int256 classes = OpRecords.integerAt(context.record, 0);
            if (!OpRecords.isInteger(context.record, 0) || count != 1 || inputs != 1 || classes < 0) return (false, dims);
            if (context.shapes[0].numel > 0 && uint256(classes) > INTEGER_LIMIT) return (false, dims);
            dims = new uint256[](x.length + 1);
            for (uint256 d; d < x.length; ++d) {
                dims[d] = x[d];
            }
            dims[x.length] = uint256(classes);
            return (true, dims);
        }
        if (op == OpCode.CAUSAL_FILL) {
            if (!OpRecords.isFloat(context.record, 0) || count != 1 || inputs != 1 || x.length < 2) return (false, dims);
            return (true, x);
        }
        if (op == OpCode.IM2COL) {
            (bool ok, uint256[3] memory g, uint256 oh, uint256 ow) = _im2colGeometry(context);
            if (!ok) return (false, dims);
            dims = new uint256[](2);
            (dims[0], dims[1]) = (x[0] * oh * ow, x[1] * g[0] * g[0]);
            return (true, dims);
        }
        return (false, dims);
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
        uint256 e = query.element;
        if (op == OpCode.FULL) return (true, OpRecords.floatAt(context.record, 0));
        uint256[] memory x = context.shapes[0].dims;
        if (op == OpCode.RESHAPE) return (true, inputs[0].valueAt(e));
        if (op == OpCode.TRANSPOSE) {
            uint256[] memory out = Shapes.unravel(e, context.outDims);
            uint256[] memory source = new uint256[](x.length);
            for (uint256 d; d < x.length; ++d) {
                source[uint256(OpRecords.integerAt(context.record, d))] = out[d];
            }
            return (true, inputs[0].valueAt(Shapes.ravel(source, x)));
        }
        if (op == OpCode.INDEX_SELECT) {
            uint256 axis = uint256(OpRecords.integerAt(context.record, 0));
            uint256 inner = Shapes.span(x, axis + 1, x.length);
            uint256 picked = context.outDims[axis];
            // element = (outer · picked + i) · inner + r; the source is (outer · length + row) · inner + r.
            uint256 outer = e / (picked * inner);
            uint256 i = (e / inner) % picked;
            (bool ok, uint256 row) = Binary32Math.toIndex(inputs[1].valueAt(i), x[axis]);
            if (!ok) return (false, Binary32.wrap(0));
            // Row-major index arithmetic: the divisions are exact unravelling, nothing is lost.
            // slither-disable-next-line divide-before-multiply
            return (true, inputs[0].valueAt((outer * x[axis] + row) * inner + e % inner));
        }
        if (op == OpCode.TAKE_ALONG) {
            uint256 length = x[x.length - 1];
            (bool ok, uint256 column) = Binary32Math.toIndex(inputs[1].valueAt(e), length);
            if (!ok) return (false, Binary32.wrap(0));
            return (true, inputs[0].valueAt(e * length + column));
        }
        if (op == OpCode.ONE_HOT) {
            uint256 classes = context.outDims[x.length];
            (bool ok, uint256 hot) = Binary32Math.toIndex(inputs[0].valueAt(e / classes), classes);
            if (!ok) return (false, Binary32.wrap(0));
            return (true, Binary32.wrap(hot == e % classes ? ONE : 0));
        }
        if (op == OpCode.CAUSAL_FILL) {
            uint256 cols = x[x.length - 1];
            uint256 rows = x[x.length - 2];
            if (e % cols > (e / cols) % rows) return (true, OpRecords.floatAt(context.record, 0));
            Binary32 kept = inputs[0].valueAt(e);
            return (true, Binary32Math.isEqual(kept, kept) ? kept : Binary32.wrap(uint32(Binary32Math.NAN)));
        }
        return (true, _im2col(context, inputs, e));
    }

    /// @dev Non-negative integer attributes `from` to `to` (exclusive) as dimensions.
    function _integers(Context memory context, uint256 from, uint256 to)
        private
        pure
        returns (bool, uint256[] memory values)
    {
        values = new uint256[](to - from);
        for (uint256 i = from; i < to; ++i) {
            int256 v = OpRecords.integerAt(context.record, i);
            if (!OpRecords.isInteger(context.record, i) || v < 0 || uint256(v) > MAX_DIM) return (false, values);
            values[i - from] = uint256(v);
        }
        return (true, values);
    }

    /// @dev kernel, stride, padding, checked as ExactOps checks them on a [B, C, H, W] input.
    function _im2colGeometry(Context memory context)
        private
        pure
        returns (bool ok, uint256[3] memory g, uint256 oh, uint256 ow)
    {
        if (context.record.attributes.length != 3 || context.shapes.length != 1) return (false, g, 0, 0);
        uint256[] memory x = context.shapes[0].dims;
        if (x.length != 4) return (false, g, 0, 0);
        for (uint256 i; i < 3; ++i) {
            int256 v = OpRecords.integerAt(context.record, i);
            if (!OpRecords.isInteger(context.record, i) || v < 0 || uint256(v) > MAX_DIM) return (false, g, 0, 0);
            g[i] = uint256(v);
        }
        (uint256 k, uint256 s, uint256 p) = (g[0], g[1], g[2]);
        if (k < 1 || s < 1 || x[2] + 2 * p < k || x[3] + 2 * p < k) return (false, g, 0, 0);
        oh = (x[2] + 2 * p - k) / s + 1;
        ow = (x[3] + 2 * p - k) / s + 1;
        ok = true;
    }

    function _im2col(Context memory context, TensorProof[] calldata inputs, uint256 e) private pure returns (Binary32) {
        (, uint256[3] memory g, uint256 oh, uint256 ow) = _im2colGeometry(context);
        (uint256 k, uint256 s, uint256 p) = (g[0], g[1], g[2]);
        uint256[] memory x = context.shapes[0].dims; // B, C, H, W
        uint256 width = context.outDims[1];
        uint256 row = e / width;
        uint256 col = e % width;
        uint256 b = row / (oh * ow);
        uint256 oy = (row / ow) % oh;
        uint256 ox = row % ow;
        uint256 c = col / (k * k);
        uint256 ky = (col / k) % k;
        uint256 kx = col % k;
        // y = oy·s − p + ky, x = ox·s − p + kx; outside the image the entry is +0.
        uint256 sy = oy * s + ky;
        uint256 sx = ox * s + kx;
        if (sy < p || sx < p || sy - p >= x[2] || sx - p >= x[3]) return Binary32.wrap(0);
        // Row-major index arithmetic: the divisions are exact unravelling, nothing is lost.
        // slither-disable-next-line divide-before-multiply
        return inputs[0].valueAt(((b * x[1] + c) * x[2] + (sy - p)) * x[3] + (sx - p));
    }
}

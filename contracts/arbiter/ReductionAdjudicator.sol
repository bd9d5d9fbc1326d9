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

/// @title ReductionAdjudicator
/// @notice The one step of the ops whose elements are sequential folds (PROTOCOL.md §2):
///         `sum` and `amax` along an axis, `matmul_nt`'s dot products, `col2im`'s and
///         `scatter_add`'s accumulations. Term `t` of an element, in the kernels' order:
///         - sum, amax: `x[o, t, i]`; partial(0) = +0 (sum) or -inf (amax, the identity of
///           IEEE maximum on every non-NaN value, so partial(1) = x[o, 0, i] as the kernels start);
///         - matmul_nt: `A[b, i, t] · B[b, j, t]`, the product rounded, then the sum;
///         - col2im: `(ky, kx) = (t / k, t % k)`: the column entry im2col copied from the
///           element's pixel through that kernel offset, if any (else the term adds nothing);
///         - scatter_add: position `p = t`: `src[p, d]` if `index[p]` is the element's row
///           (else nothing); every index read must be a whole number below `rows`.
contract ReductionAdjudicator is Adjudicator {
    using Binary32Math for Binary32;
    using TensorProofs for TensorProof;

    /// @dev Index tensors hold float32 integers below 2^24 (docs/exact.md, "conversions").
    uint256 private constant INTEGER_LIMIT = 1 << 24;
    uint32 private constant NEG_INF = 0xFF800000;

    function _outputShape(Context memory context) internal pure override returns (bool, uint256[] memory dims) {
        uint16 op = context.record.op;
        uint256 inputs = context.shapes.length;
        if (op == OpCode.SUM || op == OpCode.AMAX) {
            (bool ok, uint256 axis) = _axis(context);
            if (!ok || context.record.attributes.length != 1 || inputs != 1) return (false, dims);
            uint256[] memory x = context.shapes[0].dims;
            if (op == OpCode.AMAX && x[axis] == 0) return (false, dims);
            return (true, Shapes.withAxis(x, axis, 1));
        }
        if (op == OpCode.MATMUL_NT) {
            if (context.record.attributes.length != 0 || inputs != 2) return (false, dims);
            uint256[] memory a = context.shapes[0].dims;
            uint256[] memory b = context.shapes[1].dims;
            uint256 n = a.length;
            if (n < 2 || b.length != n || a[n - 1] != b[n - 1]) return (false, dims);
            for (uint256 d; d + 2 < n; ++d) {
                if (a[d] != b[d]) return (false, dims);
            }
            dims = Shapes.withAxis(a, n - 1, b[n - 2]);
            return (true, dims);
        }
        if (op == OpCode.COL2IM) {
            (bool ok, uint256[7] memory g) = _col2imGeometry(context);
            if (!ok) return (false, dims);
            dims = new uint256[](4);
            (dims[0], dims[1], dims[2], dims[3]) = (g[3], g[4], g[5], g[6]);
            return (true, dims);
        }
        if (op == OpCode.SCATTER_ADD) {
            int256 rows = OpRecords.integerAt(context.record, 0);
            if (!OpRecords.isInteger(context.record, 0) || context.record.attributes.length != 1 || inputs != 2 || rows < 0) {
                return (false, dims);
            }
            uint256[] memory src = context.shapes[0].dims;
            uint256[] memory index = context.shapes[1].dims;
            if (src.length != 2 || index.length != 1 || index[0] != src[0]) return (false, dims);
            if (src[0] > 0 && uint256(rows) > INTEGER_LIMIT) return (false, dims);
            dims = new uint256[](2);
            (dims[0], dims[1]) = (uint256(rows), src[1]);
            return (true, dims);
        }
        return (false, dims);
    }

    function _terms(Context memory context, uint256) internal pure override returns (uint256) {
        uint16 op = context.record.op;
        if (op == OpCode.SUM || op == OpCode.AMAX) {
            return context.shapes[0].dims[uint256(OpRecords.integerAt(context.record, 0))];
        }
        if (op == OpCode.MATMUL_NT) {
            uint256[] memory a = context.shapes[0].dims;
            return a[a.length - 1];
        }
        if (op == OpCode.COL2IM) {
            uint256 k = uint256(OpRecords.integerAt(context.record, 0));
            return k * k;
        }
        return context.shapes[0].dims[0]; // scatter_add: every position
    }

    function _value(Context memory context, TensorProof[] calldata inputs, Query calldata query)
        internal
        pure
        override
        returns (bool defined, Binary32 acc)
    {
        uint16 op = context.record.op;
        if (query.termFrom == 0) {
            acc = Binary32.wrap(op == OpCode.AMAX ? NEG_INF : 0);
        } else {
            acc = query.agreed;
        }
        if (op == OpCode.SUM || op == OpCode.AMAX) return (true, _fold(context, inputs, query, acc));
        if (op == OpCode.MATMUL_NT) return (true, _dot(context, inputs, query, acc));
        if (op == OpCode.COL2IM) return (true, _col2im(context, inputs, query, acc));
        return _scatterAdd(context, inputs, query, acc);
    }

    function _axis(Context memory context) private pure returns (bool, uint256) {
        int256 axis = OpRecords.integerAt(context.record, 0);
        if (!OpRecords.isInteger(context.record, 0) || axis < 0 || uint256(axis) >= context.shapes[0].dims.length) {
            return (false, 0);
        }
        return (true, uint256(axis));
    }

    function _fold(Context memory context, TensorProof[] calldata inputs, Query calldata query, Binary32 acc)
        private
        pure
        returns (Binary32)
    {
        uint256 axis = uint256(OpRecords.integerAt(context.record, 0));
        uint256[] memory x = context.shapes[0].dims;
        uint256 length = x[axis];
        uint256 inner = Shapes.span(x, axis + 1, x.length);
        // The output keeps the axis with size 1: element = outer · inner + i, and term t sits
        // at (outer · length + t) · inner + i = (element − i) · length + t · inner + i.
        uint256 i = query.element % inner;
        uint256 base = (query.element - i) * length + i;
        bool isSum = context.record.op == OpCode.SUM;
        for (uint256 t = query.termFrom; t < query.termTo; ++t) {
            Binary32 term = inputs[0].valueAt(base + t * inner);
            acc = isSum ? acc.add(term) : acc.maximum(term);
        }
        return acc;
    }

    function _dot(Context memory context, TensorProof[] calldata inputs, Query calldata query, Binary32 acc)
        private
        pure
        returns (Binary32)
    {
        uint256[] memory a = context.shapes[0].dims;
        uint256 n = a.length;
        uint256 rows = a[n - 2];
        uint256 depth = a[n - 1];
        uint256 cols = context.shapes[1].dims[n - 2];
        // element = (batch · rows + i) · cols + j; row (batch, i) of A starts at
        // (batch · rows + i) · depth, row (batch, j) of B at (batch · cols + j) · depth.
        // Row-major index arithmetic: the divisions are exact unravelling, nothing is lost.
        uint256 rowOfA = query.element / cols; // batch · rows + i
        uint256 batch = rowOfA / rows;
        // slither-disable-next-line divide-before-multiply
        uint256 rowA = rowOfA * depth;
        // slither-disable-next-line divide-before-multiply
        uint256 rowB = (batch * cols + query.element % cols) * depth;
        TensorProof calldata left = inputs[0];
        TensorProof calldata right = inputs[1];
        for (uint256 t = query.termFrom; t < query.termTo; ++t) {
            acc = acc.add(left.valueAt(rowA + t).mul(right.valueAt(rowB + t)));
        }
        return acc;
    }

    /// @dev kernel, stride, padding, then B, C, H, W; checked as ExactOps checks them, and
    ///      the columns' shape against them.
    function _col2imGeometry(Context memory context) private pure returns (bool ok, uint256[7] memory g) {
        if (context.record.attributes.length != 7 || context.shapes.length != 1) return (false, g);
        for (uint256 i; i < 7; ++i) {
            int256 v = OpRecords.integerAt(context.record, i);
            if (!OpRecords.isInteger(context.record, i) || v < 0 || v > int256(uint256(type(uint64).max))) {
                return (false, g);
            }
            g[i] = uint256(v);
        }
        (uint256 k, uint256 s, uint256 p, uint256 height, uint256 width) = (g[0], g[1], g[2], g[5], g[6]);
        if (k < 1 || s < 1 || height + 2 * p < k || width + 2 * p < k) return (false, g);
        uint256 oh = (height + 2 * p - k) / s + 1;
        uint256 ow = (width + 2 * p - k) / s + 1;
        uint256[] memory cols = context.shapes[0].dims;
        if (cols.length != 2 || cols[0] != g[3] * oh * ow || cols[1] != g[4] * k * k) return (false, g);
        return (true, g);
    }

    function _col2im(Context memory context, TensorProof[] calldata inputs, Query calldata query, Binary32 acc)
        private
        pure
        returns (Binary32)
    {
        (, uint256[7] memory g) = _col2imGeometry(context);
        (uint256 k, uint256 s, uint256 p) = (g[0], g[1], g[2]);
        uint256 oh = (g[5] + 2 * p - k) / s + 1;
        uint256 ow = (g[6] + 2 * p - k) / s + 1;
        uint256[] memory pixel = Shapes.unravel(query.element, context.outDims); // b, c, y, x
        uint256 width = context.shapes[0].dims[1];
        for (uint256 t = query.termFrom; t < query.termTo; ++t) {
            uint256 ky = t / k;
            uint256 kx = t % k;
            // im2col copied pixel (y, x) to output row (oy, ox) where oy·s − p + ky = y.
            uint256 sy = pixel[2] + p;
            uint256 sx = pixel[3] + p;
            if (sy < ky || sx < kx || (sy - ky) % s != 0 || (sx - kx) % s != 0) continue;
            uint256 oy = (sy - ky) / s;
            uint256 ox = (sx - kx) / s;
            if (oy >= oh || ox >= ow) continue;
            uint256 row = (pixel[0] * oh + oy) * ow + ox;
            uint256 col = (pixel[1] * k + ky) * k + kx;
            acc = acc.add(inputs[0].valueAt(row * width + col));
        }
        return acc;
    }

    function _scatterAdd(Context memory context, TensorProof[] calldata inputs, Query calldata query, Binary32 acc)
        private
        pure
        returns (bool, Binary32)
    {
        uint256 rows = context.outDims[0];
        uint256 width = context.outDims[1];
        uint256 target = query.element / width;
        uint256 d = query.element % width;
        for (uint256 t = query.termFrom; t < query.termTo; ++t) {
            (bool ok, uint256 row) = Binary32Math.toIndex(inputs[1].valueAt(t), rows);
            if (!ok) return (false, acc);
            if (row == target) acc = acc.add(inputs[0].valueAt(t * width + d));
        }
        return (true, acc);
    }
}

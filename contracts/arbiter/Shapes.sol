// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Shapes
/// @notice Row-major index arithmetic on tensor shapes, as numpy and the exact kernels use it.
library Shapes {
    /// @notice The number of elements of a shape (1 for a scalar shape).
    function numel(uint256[] memory dims) internal pure returns (uint256 n) {
        n = 1;
        for (uint256 d; d < dims.length; ++d) {
            n *= dims[d];
        }
    }

    /// @notice The product of `dims[from:to]`.
    function span(uint256[] memory dims, uint256 from, uint256 to) internal pure returns (uint256 n) {
        n = 1;
        for (uint256 d = from; d < to; ++d) {
            n *= dims[d];
        }
    }

    /// @notice The multi-index of flat position `position` in a tensor of shape `dims`.
    function unravel(uint256 position, uint256[] memory dims) internal pure returns (uint256[] memory index) {
        index = new uint256[](dims.length);
        for (uint256 d = dims.length; d > 0; --d) {
            uint256 size = dims[d - 1];
            index[d - 1] = position % size;
            position /= size;
        }
    }

    /// @notice The flat position of multi-index `index` in a tensor of shape `dims`.
    function ravel(uint256[] memory index, uint256[] memory dims) internal pure returns (uint256 position) {
        for (uint256 d; d < dims.length; ++d) {
            position = position * dims[d] + index[d];
        }
    }

    /// @notice numpy's broadcast of two shapes; `ok` is false when they do not broadcast.
    function broadcast(uint256[] memory a, uint256[] memory b)
        internal
        pure
        returns (bool ok, uint256[] memory out)
    {
        uint256 n = a.length > b.length ? a.length : b.length;
        out = new uint256[](n);
        for (uint256 d; d < n; ++d) {
            // aligned from the last axis
            uint256 x = d + a.length >= n ? a[d + a.length - n] : 1;
            uint256 y = d + b.length >= n ? b[d + b.length - n] : 1;
            if (x != y && x != 1 && y != 1) return (false, out);
            out[d] = x == 1 ? y : x;
        }
        ok = true;
    }

    /// @notice The flat position in an operand of shape `dims`, broadcast to `outDims`, that
    ///         supplies the output element at multi-index `outIndex`.
    function broadcastPosition(uint256[] memory outIndex, uint256[] memory outDims, uint256[] memory dims)
        internal
        pure
        returns (uint256 position)
    {
        uint256 offset = outDims.length - dims.length;
        for (uint256 d; d < dims.length; ++d) {
            position = position * dims[d] + (dims[d] == 1 ? 0 : outIndex[offset + d]);
        }
    }

    /// @notice `dims` with axis `axis` set to `size`.
    function withAxis(uint256[] memory dims, uint256 axis, uint256 size) internal pure returns (uint256[] memory out) {
        out = new uint256[](dims.length);
        for (uint256 d; d < dims.length; ++d) {
            out[d] = d == axis ? size : dims[d];
        }
    }

    /// @notice Whether two shapes are equal.
    function equal(uint256[] memory a, uint256[] memory b) internal pure returns (bool) {
        if (a.length != b.length) return false;
        for (uint256 d; d < a.length; ++d) {
            if (a[d] != b[d]) return false;
        }
        return true;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Errors} from "./Errors.sol";

/// @title Sha256Tree
/// @notice The sha256 Merkle trees of PROTOCOL.md §4 (docs/commitments.md): node = sha256(left ‖ right),
///         leaf levels padded to a power of two with the hash of a zero leaf, tensor roots as
///         sha256(shape header ‖ Merkle root). Hashing goes through the sha256 precompile.
library Sha256Tree {
    /// @notice sha256 of a leaf of 1024 zero bytes: the padding of every tree.
    bytes32 internal constant ZERO_LEAF = 0x5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef;

    /// @notice Bytes of a tensor leaf (256 binary32 values).
    uint256 internal constant LEAF_BYTES = 1024;

    /// @notice Values of a tensor leaf.
    uint256 internal constant LEAF_VALUES = 256;

    /// @notice sha256(left ‖ right).
    function pair(bytes32 left, bytes32 right) internal view returns (bytes32 out) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            if iszero(staticcall(gas(), 0x02, 0x00, 0x40, 0x00, 0x20)) { revert(0, 0) }
            out := mload(0x00)
        }
    }

    /// @notice The number of levels of a tree over `count` leaves: ⌈log2 count⌉ (0 for one leaf).
    function depth(uint256 count) internal pure returns (uint256 levels) {
        while ((uint256(1) << levels) < count) ++levels;
    }

    /// @notice The root of the complete subtree whose leaves (or nodes of one level) are `nodes`.
    /// @dev `nodes.length` must be a power of two; the caller checks it.
    function subtreeRoot(bytes32[] calldata nodes) internal view returns (bytes32) {
        bytes32[] memory level = nodes;
        for (uint256 n = level.length; n > 1; n >>= 1) {
            for (uint256 i; i < n >> 1; ++i) {
                level[i] = pair(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }

    /// @notice The root reached from `leaf` at `index` through `siblings` (lowest level first).
    function climb(bytes32 leaf, uint256 index, bytes32[] calldata siblings) internal view returns (bytes32 node) {
        node = leaf;
        for (uint256 i; i < siblings.length; ++i) {
            node = (index & 1) == 1 ? pair(siblings[i], node) : pair(node, siblings[i]);
            index >>= 1;
        }
    }

    /// @notice Reverts with `InvalidMerkleProof` unless `leaf` is leaf `index` of the tree of `levels`
    ///         levels whose root is `root`.
    function verify(bytes32 leaf, uint256 index, bytes32[] calldata siblings, uint256 levels, bytes32 root)
        internal
        view
    {
        if (siblings.length != levels || (levels < 256 && index >> levels != 0)) revert Errors.InvalidMerkleProof();
        if (climb(leaf, index, siblings) != root) revert Errors.InvalidMerkleProof();
    }

    /// @notice The tensor root of a tensor with shape header `header` and Merkle root `merkle`.
    function tensorRoot(bytes calldata header, bytes32 merkle) internal pure returns (bytes32 root) {
        root = sha256(abi.encodePacked(header, merkle));
    }

    /// @notice The element count a shape header states; reverts with `MalformedHeader` unless the
    ///         header is `u64 numel ‖ u32 ndim ‖ ndim × u64 dim` with numel the product of the dims.
    function numel(bytes calldata header) internal pure returns (uint256 count) {
        if (header.length < 12) revert Errors.MalformedHeader();
        count = uint64(bytes8(header[0:8]));
        uint256 ndim = uint32(bytes4(header[8:12]));
        if (header.length != 12 + 8 * ndim) revert Errors.MalformedHeader();
        uint256 product = 1;
        for (uint256 i; i < ndim; ++i) {
            uint256 dim = uint64(bytes8(header[12 + 8 * i:20 + 8 * i]));
            product *= dim;
            if (product > type(uint64).max) revert Errors.MalformedHeader();
        }
        if (product != count) revert Errors.MalformedHeader();
    }

    /// @notice The number of leaves of a tensor of `count` elements (one for an empty tensor).
    function leafCount(uint256 count) internal pure returns (uint256) {
        return count == 0 ? 1 : (count + LEAF_VALUES - 1) / LEAF_VALUES;
    }
}

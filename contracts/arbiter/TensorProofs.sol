// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Root} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @notice One leaf of a committed tensor and the Merkle path from it to the tensor's
///         Merkle root (PROTOCOL.md §4: 256 values per leaf, sha256, zero-leaf padding).
struct LeafProof {
    /// The leaf's number: a flat element index divided by 256.
    uint256 index;
    /// The leaf's 1024 bytes: 256 binary32 values, little-endian, zero-padded at the end.
    bytes values;
    /// Sibling hashes from the leaf level up; exactly the tree's depth of them.
    bytes32[] path;
}

/// @notice Values of a committed tensor, proved against its tensor root.
struct TensorProof {
    /// `u64be(numel) || u32be(ndim) || u64be(dim)...`: the shape, the tensor root's prefix.
    bytes header;
    /// The Merkle root over the tensor's leaves: the tensor root is sha256(header || merkleRoot).
    bytes32 merkleRoot;
    /// The leaves whose values are read, in any order.
    LeafProof[] leaves;
}

/// @notice A tensor's shape as the arbiter uses it.
struct Shape {
    uint256[] dims;
    uint256 numel;
}

/// @title TensorProofs
/// @notice Checking `TensorProof`s against tensor roots and reading proved values.
library TensorProofs {
    /// @notice Values per leaf and bytes per leaf (PROTOCOL.md §4).
    uint256 internal constant LEAF_VALUES = 256;
    uint256 internal constant LEAF_BYTES = 1024;
    /// @notice sha256 of 1024 zero bytes: the hash that pads a tree's leaf level.
    bytes32 internal constant ZERO_LEAF_HASH = 0x5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef;
    /// @notice The largest element count a header may state (a u64).
    uint256 internal constant MAX_NUMEL = type(uint64).max;

    /// @notice Checks `proof` against `root`: the header and Merkle root hash to the root, and
    ///         every leaf hashes up its path to the Merkle root at its index. Reverts with
    ///         `InvalidProof` otherwise.
    /// @return wellFormed Whether the header is a well-formed shape (numel = product of dims,
    ///         below 2^64); a malformed one is committed garbage that no op accepts.
    /// @return shape The shape the header states (empty when malformed).
    function check(TensorProof calldata proof, Root root)
        internal
        view
        returns (bool wellFormed, Shape memory shape)
    {
        if (sha256(bytes.concat(proof.header, proof.merkleRoot)) != Root.unwrap(root)) {
            revert Errors.InvalidProof(Root.unwrap(root), "header and Merkle root");
        }
        (wellFormed, shape) = parseHeader(proof.header);
        if (!wellFormed) return (false, shape);
        uint256 leafCount = leavesOf(shape.numel);
        uint256 depth = depthOf(leafCount);
        for (uint256 i; i < proof.leaves.length; ++i) {
            LeafProof calldata leaf = proof.leaves[i];
            if (
                leaf.index >= leafCount || leaf.values.length != LEAF_BYTES || leaf.path.length != depth
                    || leafRoot(leaf) != proof.merkleRoot
            ) {
                revert Errors.InvalidProof(Root.unwrap(root), "leaf");
            }
        }
    }

    /// @notice The value at flat position `position` from the proof's leaves; reverts with
    ///         `MissingLeaf` when no leaf of the proof holds it. The proof must be checked
    ///         (`check` has decoded every leaf and its 1024 bytes, so the offsets read here
    ///         are the ones it hashed).
    function valueAt(TensorProof calldata proof, uint256 position) internal pure returns (Binary32 value) {
        uint256 wanted = position / LEAF_VALUES;
        uint256 offset = (position % LEAF_VALUES) * 4;
        bool found;
        uint256 w;
        assembly ("memory-safe") {
            // proof: (header offset, merkleRoot, leaves offset); leaves: length, then offsets of
            // each (index, values offset, path offset), relative to the first offset word.
            let leaves := add(proof, calldataload(add(proof, 0x40)))
            let count := calldataload(leaves)
            let heads := add(leaves, 0x20)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                let leaf := add(heads, calldataload(add(heads, shl(5, i))))
                if eq(calldataload(leaf), wanted) {
                    let values := add(leaf, calldataload(add(leaf, 0x20)))
                    w := shr(224, calldataload(add(add(values, 0x20), offset)))
                    found := 1
                    break
                }
            }
        }
        if (!found) revert Errors.MissingLeaf(wanted);
        // little-endian bytes to the bit pattern
        w = ((w & 0xFF) << 24) | ((w & 0xFF00) << 8) | ((w >> 8) & 0xFF00) | (w >> 24);
        return Binary32.wrap(uint32(w));
    }

    /// @notice The shape a header states, and whether the header is well formed.
    function parseHeader(bytes calldata header) internal pure returns (bool wellFormed, Shape memory shape) {
        if (header.length < 12) return (false, shape);
        uint256 numel = uint64(bytes8(header[0:8]));
        uint256 ndim = uint32(bytes4(header[8:12]));
        if (header.length != 12 + 8 * ndim) return (false, shape);
        uint256[] memory dims = new uint256[](ndim);
        uint256 product = 1;
        for (uint256 d; d < ndim; ++d) {
            uint256 dim = uint64(bytes8(header[12 + 8 * d:20 + 8 * d]));
            dims[d] = dim;
            product *= dim; // both below 2^64: no overflow
            if (product > MAX_NUMEL) return (false, shape);
        }
        if (product != numel) return (false, shape);
        shape.dims = dims;
        shape.numel = numel;
        wellFormed = true;
    }

    /// @notice The header of a tensor of shape `dims`.
    function encodeHeader(uint256[] memory dims) internal pure returns (bytes memory header) {
        uint256 numel = 1;
        for (uint256 d; d < dims.length; ++d) {
            numel *= dims[d];
        }
        header = abi.encodePacked(uint64(numel), uint32(dims.length));
        for (uint256 d; d < dims.length; ++d) {
            header = bytes.concat(header, bytes8(uint64(dims[d])));
        }
    }

    /// @notice Leaves of a tensor of `numel` values (an empty tensor has one zero leaf).
    function leavesOf(uint256 numel) internal pure returns (uint256) {
        return numel == 0 ? 1 : (numel + LEAF_VALUES - 1) / LEAF_VALUES;
    }

    /// @notice Levels above the leaves of a tree over `count` leaves padded to a power of two.
    function depthOf(uint256 count) internal pure returns (uint256 depth) {
        while ((uint256(1) << depth) < count) ++depth;
    }

    /// @notice The Merkle root a leaf and its path imply (the leaf's index picks the sides).
    function leafRoot(LeafProof calldata leaf) internal view returns (bytes32 node) {
        bytes calldata values = leaf.values;
        bytes32[] calldata path = leaf.path;
        uint256 index = leaf.index;
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            calldatacopy(buffer, values.offset, values.length)
            if iszero(staticcall(gas(), 0x02, buffer, values.length, 0x00, 0x20)) { revert(0, 0) }
            node := mload(0x00)
            for { let i := 0 } lt(i, path.length) { i := add(i, 1) } {
                let sibling := calldataload(add(path.offset, shl(5, i)))
                switch and(index, 1)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                if iszero(staticcall(gas(), 0x02, 0x00, 0x40, 0x00, 0x20)) { revert(0, 0) }
                node := mload(0x00)
                index := shr(1, index)
            }
        }
    }

    /// @notice The Merkle root over `count` 32-byte hashes stored back to back in calldata at
    ///         `hashes` (PROTOCOL.md §4: the level padded to a power of two with the zero
    ///         leaf's hash); the state root of a `STATE` record's input roots.
    function merkleRoot(uint256 hashes, uint256 count) internal view returns (bytes32 root) {
        assembly ("memory-safe") {
            let width := 1
            for {} lt(width, count) {} { width := shl(1, width) }
            // The level in free memory, hashed in place pairwise up to the root.
            let level := mload(0x40)
            calldatacopy(level, hashes, shl(5, count))
            for { let i := count } lt(i, width) { i := add(i, 1) } { mstore(add(level, shl(5, i)), ZERO_LEAF_HASH) }
            for {} gt(width, 1) {} {
                width := shr(1, width)
                for { let i := 0 } lt(i, width) { i := add(i, 1) } {
                    if iszero(staticcall(gas(), 0x02, add(level, shl(6, i)), 0x40, add(level, shl(5, i)), 0x20)) {
                        revert(0, 0)
                    }
                }
            }
            root := mload(level)
        }
    }
}

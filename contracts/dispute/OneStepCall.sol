// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32} from "../lib/Types.sol";

/// @notice One leaf of a tensor with its Merkle path (the one step's `LeafProof`).
struct OneStepLeafProof {
    uint256 index;
    bytes values;
    bytes32[] path;
}

/// @notice A tensor's header and Merkle root, and the leaves a computation reads (the one step's
///         `TensorProof`).
struct OneStepTensorProof {
    bytes header;
    bytes32 merkleRoot;
    OneStepLeafProof[] leaves;
}

/// @notice Which value of an op's output the one step computes (the one step's `Query`): the
///         partial result after `termTo` terms of element `element`, from the agreed one after
///         `termFrom` terms (`agreed`, ignored when `termFrom` is 0).
struct OneStepQuery {
    uint256 element;
    uint256 termFrom;
    uint256 termTo;
    Binary32 agreed;
}

/// @title The one step, as the pinpoint game calls it
/// @notice The part of the binary32 arbiter's one-step interface (`IOneStep`) the game uses:
///         `compute` and `maxTerms`, with the same ABI.
interface IOneStepCompute {
    /// @notice The queried value of the op whose record (without its output root) is `record`.
    /// @return defined False when the op is not defined on these inputs: no claim can be right.
    /// @return value The element, or the partial result after `query.termTo` terms.
    /// @return terms The element's number of terms (0 for ops that are not reductions).
    function compute(bytes calldata record, OneStepQuery calldata query, OneStepTensorProof[] calldata inputs)
        external
        view
        returns (bool defined, Binary32 value, uint256 terms);

    /// @notice The most terms one reduction step adds (`query.termTo - query.termFrom`).
    function maxTerms() external view returns (uint256);
}
